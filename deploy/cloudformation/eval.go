package cloudformation

// A small evaluator of the CloudFormation template, enough for the tests
// (and the test stand's AWS emulator, through RenderRoles) to deploy it on
// paper: it resolves parameters (with their defaults and
// constraints), conditions, rules and the intrinsic functions the template
// uses, and fails on a reference to a resource that the scenario does not
// create, which CloudFormation would reject only at deploy time.

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// template sections, decoded as plain maps.
type tmpl struct {
	Parameters map[string]map[string]any
	Conditions map[string]any
	Rules      map[string]any
	Resources  map[string]map[string]any
	Outputs    map[string]map[string]any
	Metadata   map[string]any
	raw        map[string]any
}

// parseTemplate decodes the embedded template's sections.
func parseTemplate() (*tmpl, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(Template(), &raw); err != nil {
		return nil, fmt.Errorf("template does not parse: %w", err)
	}
	tp := &tmpl{raw: raw,
		Parameters: map[string]map[string]any{},
		Resources:  map[string]map[string]any{},
		Outputs:    map[string]map[string]any{},
	}
	var err error
	sectionMaps := func(name string) map[string]map[string]any {
		out := map[string]map[string]any{}
		sec, _ := raw[name].(map[string]any)
		for k, v := range sec {
			m, ok := v.(map[string]any)
			if !ok && err == nil {
				err = fmt.Errorf("%s.%s is %T, want a mapping", name, k, v)
			}
			out[k] = m
		}
		return out
	}
	tp.Parameters = sectionMaps("Parameters")
	tp.Resources = sectionMaps("Resources")
	tp.Outputs = sectionMaps("Outputs")
	tp.Conditions, _ = raw["Conditions"].(map[string]any)
	tp.Rules, _ = raw["Rules"].(map[string]any)
	tp.Metadata, _ = raw["Metadata"].(map[string]any)
	return tp, err
}

// Values of pseudo parameters when a deployment names none.
const (
	paperAccount = "111122223333"
	paperStack   = "costlake-acme"
)

var pseudoParams = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

// noValue is what Ref AWS::NoValue evaluates to; maps and lists drop it.
type noValueT struct{}

var noValue = noValueT{}

// stack is the template deployed with given parameters in a region.
type stack struct {
	t         *tmpl
	region    string
	account   string // AWS::AccountId
	stackName string // AWS::StackName
	params    map[string]string
	conds     map[string]bool
}

// newStack resolves parameters as CloudFormation does: unknown keys and
// missing required values fail, defaults fill the rest, and every value
// must meet its AllowedValues, AllowedPattern and MaxLength.
func newStack(t *tmpl, given map[string]string, region string) (*stack, error) {
	return newStackIn(t, given, region, paperAccount, paperStack)
}

// newStackIn is newStack in an account, under a stack name.
func newStackIn(t *tmpl, given map[string]string, region, account, stackName string) (*stack, error) {
	s := &stack{t: t, region: region, account: account, stackName: stackName, params: map[string]string{}, conds: map[string]bool{}}
	for k := range given {
		if _, ok := t.Parameters[k]; !ok {
			return nil, fmt.Errorf("parameter %s is not declared by the template", k)
		}
	}
	for name, decl := range t.Parameters {
		v, ok := given[name]
		if !ok {
			d, has := decl["Default"]
			if !has {
				return nil, fmt.Errorf("parameter %s has no default and was not given", name)
			}
			v = fmt.Sprint(d)
		}
		if av, ok := decl["AllowedValues"].([]any); ok {
			if !slices.ContainsFunc(av, func(a any) bool { return fmt.Sprint(a) == v }) {
				return nil, fmt.Errorf("parameter %s=%q is not one of %v", name, v, av)
			}
		}
		if p, ok := decl["AllowedPattern"].(string); ok {
			if !regexp.MustCompile(p).MatchString(v) {
				return nil, fmt.Errorf("parameter %s=%q does not match %s", name, v, p)
			}
		}
		if ml, ok := decl["MaxLength"].(int); ok && len(v) > ml {
			return nil, fmt.Errorf("parameter %s is longer than %d", name, ml)
		}
		s.params[name] = v
	}
	for name := range t.Conditions {
		if _, err := s.cond(name, nil); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *stack) cond(name string, seen []string) (bool, error) {
	if v, ok := s.conds[name]; ok {
		return v, nil
	}
	def, ok := s.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not defined", name)
	}
	if slices.Contains(seen, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	v, err := s.truth(def, append(seen, name))
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	s.conds[name] = v
	return v, nil
}

// truth evaluates a condition or rule function.
func (s *stack) truth(v any, seen []string) (bool, error) {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return false, fmt.Errorf("not a condition function: %v", v)
	}
	list, _ := arg.([]any)
	switch fn {
	case "Condition":
		name, _ := arg.(string)
		return s.cond(name, seen)
	case "Fn::Equals":
		if len(list) != 2 {
			return false, fmt.Errorf("Fn::Equals needs 2 values")
		}
		a, err := s.evalString(list[0])
		if err != nil {
			return false, err
		}
		b, err := s.evalString(list[1])
		return a == b, err
	case "Fn::Not":
		if len(list) != 1 {
			return false, fmt.Errorf("Fn::Not needs 1 condition")
		}
		b, err := s.truth(list[0], seen)
		return !b, err
	case "Fn::And", "Fn::Or":
		if len(list) < 2 || len(list) > 10 {
			return false, fmt.Errorf("%s needs 2 to 10 conditions", fn)
		}
		all, anyTrue := true, false
		for _, c := range list {
			b, err := s.truth(c, seen)
			if err != nil {
				return false, err
			}
			all, anyTrue = all && b, anyTrue || b
		}
		if fn == "Fn::And" {
			return all, nil
		}
		return anyTrue, nil
	}
	return false, fmt.Errorf("%s is not a condition function", fn)
}

// failedRules returns the AssertDescription of every failed assertion.
func (s *stack) failedRules() ([]string, error) {
	var failed []string
	for _, name := range slices.Sorted(maps.Keys(s.t.Rules)) {
		rule, _ := s.t.Rules[name].(map[string]any)
		if rc, ok := rule["RuleCondition"]; ok {
			b, err := s.truth(rc, nil)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if !b {
				continue
			}
		}
		asserts, _ := rule["Assertions"].([]any)
		for _, a := range asserts {
			am, _ := a.(map[string]any)
			b, err := s.truth(am["Assert"], nil)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if !b {
				failed = append(failed, fmt.Sprint(am["AssertDescription"]))
			}
		}
	}
	return failed, nil
}

// exists reports whether the scenario creates the resource.
func (s *stack) exists(name string) bool {
	r, ok := s.t.Resources[name]
	if !ok {
		return false
	}
	c, has := r["Condition"].(string)
	return !has || s.conds[c]
}

// ref is what Ref of a resource returns: its name for the types whose Ref
// is a name we set, a placeholder otherwise.
func (s *stack) ref(name string) (string, error) {
	if !s.exists(name) {
		//lint:ignore ST1005 Ref is CloudFormation's function, named as templates write it
		return "", fmt.Errorf("Ref %s: the resource is not created in this scenario", name)
	}
	r := s.t.Resources[name]
	props, _ := r["Properties"].(map[string]any)
	switch r["Type"] {
	case "AWS::S3::Bucket":
		return s.evalString(props["BucketName"])
	case "AWS::CUR::ReportDefinition":
		return s.evalString(props["ReportName"])
	}
	return "ref:" + name, nil
}

func (s *stack) lookup(name string) (string, error) {
	if v, ok := s.params[name]; ok {
		return v, nil
	}
	switch name {
	case "AWS::AccountId":
		return s.account, nil
	case "AWS::Region":
		return s.region, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::StackName":
		return s.stackName, nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	}
	if _, ok := s.t.Resources[name]; ok {
		return s.ref(name)
	}
	//lint:ignore ST1005 Ref is CloudFormation's function, named as templates write it
	return "", fmt.Errorf("Ref %s: no such parameter, pseudo parameter or resource", name)
}

func (s *stack) getAtt(res, attr string) (string, error) {
	if _, ok := s.t.Resources[res]; !ok {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: no such resource", res, attr)
	}
	if !s.exists(res) {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: the resource is not created in this scenario", res, attr)
	}
	return "getatt:" + res + "." + attr, nil
}

func (s *stack) evalString(v any) (string, error) {
	out, err := s.eval(v)
	if err != nil {
		return "", err
	}
	str, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("want a string, got %T %v", out, out)
	}
	return str, nil
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// eval resolves every intrinsic function in v.
func (s *stack) eval(v any) (any, error) {
	if fn, arg, ok := intrinsic(v); ok && fn != "Condition" {
		return s.call(fn, arg)
	}
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			ev, err := s.eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if ev != noValue {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for i, e := range x {
			ev, err := s.eval(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if ev != noValue {
				out = append(out, ev)
			}
		}
		return out, nil
	case int, bool, float64:
		return fmt.Sprint(x), nil
	}
	return v, nil
}

func (s *stack) call(fn string, arg any) (any, error) {
	list, _ := arg.([]any)
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		if name == "AWS::NoValue" {
			return noValue, nil
		}
		return s.lookup(name)
	case "Fn::GetAtt":
		res, attr, err := getAttArgs(arg)
		if err != nil {
			return nil, err
		}
		return s.getAtt(res, attr)
	case "Fn::If":
		if len(list) != 3 {
			return nil, fmt.Errorf("Fn::If needs 3 values")
		}
		name, _ := list[0].(string)
		b, err := s.cond(name, nil)
		if err != nil {
			return nil, err
		}
		if b {
			return s.eval(list[1])
		}
		return s.eval(list[2])
	case "Fn::Sub":
		str, vars, err := subArgs(arg)
		if err != nil {
			return nil, err
		}
		var firstErr error
		out := subVar.ReplaceAllStringFunc(str, func(m string) string {
			name := m[2 : len(m)-1]
			if strings.HasPrefix(name, "!") {
				return "${" + name[1:] + "}"
			}
			var val string
			var err error
			if vv, ok := vars[name]; ok {
				val, err = s.evalString(vv)
			} else if res, attr, dot := strings.Cut(name, "."); dot {
				val, err = s.getAtt(res, attr)
			} else {
				val, err = s.lookup(name)
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			return val
		})
		return out, firstErr
	case "Fn::Select":
		if len(list) != 2 {
			return nil, fmt.Errorf("Fn::Select needs 2 values")
		}
		idx, err := strconv.Atoi(fmt.Sprint(list[0]))
		if err != nil {
			return nil, err
		}
		l, err := s.eval(list[1])
		if err != nil {
			return nil, err
		}
		items, _ := l.([]any)
		if idx < 0 || idx >= len(items) {
			return nil, fmt.Errorf("Fn::Select index %d out of range of %v", idx, items)
		}
		return items[idx], nil
	case "Fn::Split":
		if len(list) != 2 {
			return nil, fmt.Errorf("Fn::Split needs 2 values")
		}
		str, err := s.evalString(list[1])
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(str, fmt.Sprint(list[0])) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Join":
		if len(list) != 2 {
			return nil, fmt.Errorf("Fn::Join needs 2 values")
		}
		l, err := s.eval(list[1])
		if err != nil {
			return nil, err
		}
		items, _ := l.([]any)
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = fmt.Sprint(it)
		}
		return strings.Join(parts, fmt.Sprint(list[0])), nil
	}
	return nil, fmt.Errorf("the evaluator does not know %s", fn)
}

// intrinsic reports whether v is a one-key mapping naming an intrinsic
// function (or a condition reference).
func intrinsic(v any) (fn string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
		if _, str := a.(string); k == "Condition" && str {
			return k, a, true
		}
	}
	return "", nil, false
}

func getAttArgs(arg any) (res, attr string, err error) {
	switch a := arg.(type) {
	case string:
		res, attr, ok := strings.Cut(a, ".")
		if !ok {
			return "", "", fmt.Errorf("Fn::GetAtt %q: want Resource.Attribute", a)
		}
		return res, attr, nil
	case []any:
		if len(a) == 2 {
			return fmt.Sprint(a[0]), fmt.Sprint(a[1]), nil
		}
	}
	return "", "", fmt.Errorf("Fn::GetAtt %v: want [Resource, Attribute]", arg)
}

func subArgs(arg any) (string, map[string]any, error) {
	switch a := arg.(type) {
	case string:
		return a, nil, nil
	case []any:
		if len(a) == 2 {
			str, ok1 := a[0].(string)
			vars, ok2 := a[1].(map[string]any)
			if ok1 && ok2 {
				return str, vars, nil
			}
		}
	}
	return "", nil, fmt.Errorf("Fn::Sub %v: want a string or [string, {variables}]", arg)
}

// rendered is one scenario's resources and outputs, fully evaluated.
type rendered struct {
	resources map[string]map[string]any // Properties, Metadata, Type, DeletionPolicy
	outputs   map[string]string
}

func (s *stack) render() (*rendered, error) {
	r := &rendered{resources: map[string]map[string]any{}, outputs: map[string]string{}}
	for name, res := range s.t.Resources {
		if !s.exists(name) {
			continue
		}
		out := map[string]any{}
		for _, k := range []string{"Type", "DeletionPolicy", "UpdateReplacePolicy"} {
			if v, ok := res[k]; ok {
				out[k] = v
			}
		}
		if deps, ok := res["DependsOn"]; ok {
			for _, d := range asList(deps) {
				if !s.exists(fmt.Sprint(d)) {
					return nil, fmt.Errorf("%s DependsOn %v, which this scenario does not create", name, d)
				}
			}
		}
		for _, k := range []string{"Properties", "Metadata"} {
			if v, ok := res[k]; ok {
				ev, err := s.eval(v)
				if err != nil {
					return nil, fmt.Errorf("resource %s %s: %w", name, k, err)
				}
				out[k] = ev
			}
		}
		r.resources[name] = out
	}
	for name, o := range s.t.Outputs {
		if c, ok := o["Condition"].(string); ok && !s.conds[c] {
			continue
		}
		v, err := s.evalString(o["Value"])
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		r.outputs[name] = v
	}
	return r, nil
}

// asList returns v as a list: a list as is, anything else as one item.
func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// strs returns v (a string or list of strings) as strings.
func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// dig walks nested maps by key.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
