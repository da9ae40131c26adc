package cloudformation

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// billingReadActions is the complete, billing-only action list of the
// managed policy, with the resources each may touch. Changing the policy
// means changing this list on purpose.
func billingReadActions(bucket, prefix string) map[string]string {
	return map[string]string{
		// No resource-level permissions: "*" only.
		"organizations:ListAccounts":         "*",
		"organizations:DescribeOrganization": "*",
		"ce:GetCostAndUsage":                 "*",
		"cur:DescribeReportDefinitions":      "*",
		"bcm-data-exports:ListExports":       "*",
		// Resource-level: this organization's accounts, this account's exports.
		"organizations:DescribeAccount": "arn:aws:organizations::" + testAccount + ":account/o-*/*",
		"bcm-data-exports:GetExport":    "arn:aws:bcm-data-exports:us-east-1:" + testAccount + ":export/*",
		// Onboarding watches the stack itself.
		"cloudformation:DescribeStacks":      "arn:aws:cloudformation:us-east-1:" + testAccount + ":stack/" + testStack + "/*",
		"cloudformation:DescribeStackEvents": "arn:aws:cloudformation:us-east-1:" + testAccount + ":stack/" + testStack + "/*",
		// S3: the export's prefix of the export's bucket.
		"s3:GetObject":         "arn:aws:s3:::" + bucket + "/" + prefixed(prefix, "*"),
		"s3:ListBucket":        "arn:aws:s3:::" + bucket,
		"s3:GetBucketLocation": "arn:aws:s3:::" + bucket,
	}
}

// prefixed is key under prefix, or key itself at the bucket's root.
func prefixed(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "/" + key
}

// costExplorerReadActions is billingReadActions without the S3 actions:
// with ExportType cost_explorer there is no bucket to read.
func costExplorerReadActions() map[string]string {
	m := billingReadActions(testBucket, testPrefix)
	maps.DeleteFunc(m, func(action, _ string) bool { return strings.HasPrefix(action, "s3:") })
	return m
}

// exportTypes are all of the template's ExportType values.
var exportTypes = []string{ExportLegacyCUR, ExportCUR2, ExportFOCUS, ExportCostExplorer}

// writeVerbs start the names of IAM actions that change something.
var writeVerbs = []string{"Put", "Create", "Delete", "Update", "Modify", "Tag", "Untag", "Attach",
	"Detach", "Set", "Start", "Stop", "Enable", "Disable", "Accept", "Invite", "Leave", "Remove",
	"Register", "Deregister", "Restore", "Replicate", "Abort", "Upload", "Copy"}

func TestTemplateIsPlainYAML(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Template(), &doc); err != nil {
		t.Fatalf("template does not parse: %v", err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		// Short tags (!Ref, !Sub, ...) need a CloudFormation-aware parser.
		if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
			t.Errorf("line %d: short-form tag %s; write the long form (Ref:, Fn::Sub:, ...)", n.Line, n.Tag)
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)

	tp := loadTemplate(t)
	for k := range tp.raw {
		if !slices.Contains([]string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Conditions", "Resources", "Outputs"}, k) {
			t.Errorf("unexpected top-level section %s", k)
		}
	}
	if d, _ := tp.raw["Description"].(string); len(d) > 1024 || !strings.Contains(d, "us-east-1") {
		t.Errorf("Description must be at most 1024 characters and say the export needs us-east-1, got %d characters", len(d))
	}
	if len(Template()) > 51200 {
		t.Errorf("template is %d bytes, over CloudFormation's 51,200-byte TemplateBody limit", len(Template()))
	}
}

// knownAttributes are the Fn::GetAtt attributes of the resource types the
// template uses.
var knownAttributes = map[string][]string{
	"AWS::IAM::Role":              {"Arn", "RoleId"},
	"AWS::IAM::ManagedPolicy":     {"PolicyArn", "PolicyId"},
	"AWS::IAM::OIDCProvider":      {"Arn"},
	"AWS::S3::Bucket":             {"Arn", "DomainName", "RegionalDomainName"},
	"AWS::BCMDataExports::Export": {"ExportArn"},
}

// TestReferencesResolve checks, without deploying anything, that every
// Ref, Fn::GetAtt, Fn::Sub variable and condition name points at something
// the template declares, and that nothing declared goes unused.
func TestReferencesResolve(t *testing.T) {
	tp := loadTemplate(t)
	usedParams, usedConds := map[string]bool{}, map[string]bool{}

	isPseudo := func(n string) bool { return slices.Contains(pseudoParams, n) }
	checkName := func(where, name string, resourcesOK bool) {
		_, isParam := tp.Parameters[name]
		_, isRes := tp.Resources[name]
		switch {
		case isParam:
			usedParams[name] = true
		case isPseudo(name):
		case isRes && resourcesOK:
		default:
			t.Errorf("%s: %q is not a parameter, pseudo parameter%s", where, name, map[bool]string{true: " or resource", false: ""}[resourcesOK])
		}
	}
	checkGetAtt := func(where, res, attr string) {
		r, ok := tp.Resources[res]
		if !ok {
			t.Errorf("%s: Fn::GetAtt %s.%s: no such resource", where, res, attr)
			return
		}
		typ := fmt.Sprint(r["Type"])
		if attrs, known := knownAttributes[typ]; !known || !slices.Contains(attrs, attr) {
			t.Errorf("%s: Fn::GetAtt %s.%s: %s has no attribute %s known to this test", where, res, attr, typ, attr)
		}
	}
	checkCond := func(where, name string) {
		if _, ok := tp.Conditions[name]; !ok {
			t.Errorf("%s: condition %q is not defined", where, name)
		}
		usedConds[name] = true
	}

	var walk func(where string, v any, resourcesOK bool)
	walk = func(where string, v any, resourcesOK bool) {
		if fn, arg, ok := intrinsic(v); ok {
			switch fn {
			case "Ref":
				checkName(where, fmt.Sprint(arg), resourcesOK)
			case "Condition":
				checkCond(where, fmt.Sprint(arg))
			case "Fn::GetAtt":
				res, attr, err := getAttArgs(arg)
				if err != nil {
					t.Errorf("%s: %v", where, err)
				} else {
					checkGetAtt(where, res, attr)
				}
			case "Fn::If":
				if l, _ := arg.([]any); len(l) == 3 {
					checkCond(where, fmt.Sprint(l[0]))
					walk(where, l[1], resourcesOK)
					walk(where, l[2], resourcesOK)
				} else {
					t.Errorf("%s: Fn::If needs [condition, then, else]", where)
				}
				return
			case "Fn::Sub":
				str, vars, err := subArgs(arg)
				if err != nil {
					t.Errorf("%s: %v", where, err)
					return
				}
				for _, m := range subVar.FindAllStringSubmatch(str, -1) {
					name := m[1]
					if strings.HasPrefix(name, "!") {
						continue
					}
					if _, local := vars[name]; local {
						continue
					}
					if res, attr, dot := strings.Cut(name, "."); dot {
						checkGetAtt(where, res, attr)
					} else {
						checkName(where, name, resourcesOK)
					}
				}
				for k, vv := range vars {
					if !strings.Contains(str, "${"+k+"}") {
						t.Errorf("%s: Fn::Sub variable %s is never used in its string", where, k)
					}
					walk(where, vv, resourcesOK)
				}
				return
			case "Fn::Select", "Fn::Split", "Fn::Join", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
			default:
				t.Errorf("%s: intrinsic %s is not one this test understands", where, fn)
			}
			walk(where, arg, resourcesOK)
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(where+"."+k, e, resourcesOK)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", where, i), e, resourcesOK)
			}
		}
	}

	for name, c := range tp.Conditions {
		walk("Conditions."+name, c, false)
	}
	for name, res := range tp.Resources {
		where := "Resources." + name
		if c, ok := res["Condition"]; ok {
			checkCond(where, fmt.Sprint(c))
		}
		for _, d := range asList(res["DependsOn"]) {
			if _, ok := tp.Resources[fmt.Sprint(d)]; !ok {
				t.Errorf("%s: DependsOn %v: no such resource", where, d)
			}
		}
		walk(where+".Properties", res["Properties"], true)
		walk(where+".Metadata", res["Metadata"], true)
	}
	for name, o := range tp.Outputs {
		where := "Outputs." + name
		if c, ok := o["Condition"]; ok {
			checkCond(where, fmt.Sprint(c))
		}
		walk(where, o["Value"], true)
	}
	// Rules may only look at parameters; their use does not count as use.
	before := maps.Clone(usedParams)
	for name, r := range tp.Rules {
		walk("Rules."+name, r, false)
	}
	usedParams = before

	for name := range tp.Parameters {
		if !usedParams[name] {
			t.Errorf("parameter %s is declared but no resource, condition or output uses it", name)
		}
	}
	for name := range tp.Conditions {
		if !usedConds[name] {
			t.Errorf("condition %s is defined but never used", name)
		}
	}

	// The console's parameter groups list each parameter exactly once.
	var grouped []string
	for _, g := range asList(dig(tp.Metadata, "AWS::CloudFormation::Interface", "ParameterGroups")) {
		grouped = append(grouped, strs(dig(g, "Parameters"))...)
	}
	slices.Sort(grouped)
	if want := slices.Sorted(maps.Keys(tp.Parameters)); !slices.Equal(grouped, want) {
		t.Errorf("ParameterGroups list %v, want every parameter once: %v", grouped, want)
	}
}

func TestParameterContract(t *testing.T) {
	tp := loadTemplate(t)
	want := []string{"AuthMode", "CostlakePrincipalArn", "CreateBucket", "CreateExport", "CreateOIDCProvider",
		"ExportBucket", "ExportName", "ExportPrefix", "ExportType", "ExternalId", "OIDCAudience",
		"OIDCProviderUrl", "OIDCSubject", "RoleName"}
	if got := slices.Sorted(maps.Keys(tp.Parameters)); !slices.Equal(got, want) {
		t.Errorf("parameters = %v, want %v (their names are a contract)", got, want)
	}
	allowed := func(p string) []string { return strs(tp.Parameters[p]["AllowedValues"]) }
	if got := allowed("AuthMode"); !slices.Equal(got, []string{AuthAssumeRole, AuthWebIdentity, AuthAccessKeys}) {
		t.Errorf("AuthMode AllowedValues = %v", got)
	}
	if got := allowed("ExportType"); !slices.Equal(got, exportTypes) {
		t.Errorf("ExportType AllowedValues = %v, want %v", got, exportTypes)
	}
	// cost_explorer leaves the bucket and prefix out; their defaults must
	// then be empty or harmless, and the Rules require them otherwise.
	if d, ok := tp.Parameters["ExportBucket"]["Default"]; !ok || d != "" {
		t.Errorf("ExportBucket Default = %v (set %v), want \"\" so cost_explorer may leave it out", d, ok)
	}
	for _, p := range []string{"CreateBucket", "CreateExport", "CreateOIDCProvider"} {
		if got := allowed(p); !slices.Equal(got, []string{"true", "false"}) {
			t.Errorf("%s AllowedValues = %v, want [true false]", p, got)
		}
	}
	if d := fmt.Sprint(tp.Parameters["RoleName"]["Default"]); d != DefaultRoleName {
		t.Errorf("RoleName default = %q, want %q", d, DefaultRoleName)
	}

	// Validate uses the template's own patterns, so it accepts and rejects
	// exactly what CloudFormation would.
	for name, decl := range tp.Parameters {
		p, has := decl["AllowedPattern"].(string)
		if has != (paramPatterns[name] != "") || p != paramPatterns[name] {
			t.Errorf("%s: template AllowedPattern %q, Go pattern %q: keep them identical", name, p, paramPatterns[name])
		}
	}
	for name := range paramPatterns {
		if _, ok := tp.Parameters[name]; !ok {
			t.Errorf("Go pattern for %s, which the template does not declare", name)
		}
	}
	// A stack that creates the export is pinned to us-east-1.
	rule, _ := json.Marshal(tp.Rules["BillingExportsInUsEast1"])
	if !strings.Contains(string(rule), `"AWS::Region"`) || !strings.Contains(string(rule), `"us-east-1"`) {
		t.Errorf("rule BillingExportsInUsEast1 must assert AWS::Region is us-east-1, got %s", rule)
	}

	outs := slices.Sorted(maps.Keys(tp.Outputs))
	wantOuts := []string{OutputAuthMode, OutputExportArn, OutputExportBucket, OutputExportName, OutputExportPrefix, OutputExportType, OutputPolicyArn, OutputRoleArn}
	slices.Sort(wantOuts)
	if !slices.Equal(outs, wantOuts) {
		t.Errorf("outputs = %v, want %v", outs, wantOuts)
	}
}

// TestTrustPolicyJSONCannotBeInjected: the web-identity trust policy is a
// JSON string built by Fn::Sub, so the parameters substituted into it must
// not admit characters that end a JSON string.
func TestTrustPolicyJSONCannotBeInjected(t *testing.T) {
	tp := loadTemplate(t)
	doc := dig(tp.Resources["BillingReadRole"], "Properties", "AssumeRolePolicyDocument", "Fn::If")
	l, _ := doc.([]any)
	if len(l) != 3 {
		t.Fatalf("AssumeRolePolicyDocument is not Fn::If [IsAssumeRole, object, Fn::Sub JSON]: %v", doc)
	}
	str, vars, err := subArgs(dig(l[2], "Fn::Sub"))
	if err != nil {
		t.Fatal(err)
	}
	substituted := []string{"OIDCProviderUrl"} // through ProviderHost and ProviderArn
	for _, m := range subVar.FindAllStringSubmatch(str, -1) {
		if _, local := vars[m[1]]; !local {
			substituted = append(substituted, m[1])
		}
	}
	for _, name := range substituted {
		p, ok := tp.Parameters[name]["AllowedPattern"].(string)
		if !ok {
			t.Errorf("%s is substituted into the JSON trust policy but has no AllowedPattern", name)
			continue
		}
		re := regexp.MustCompile(p)
		for _, bad := range []string{`x"y`, `x\y`, "x\ny", "x y", `x","y`} {
			if re.MatchString("https://"+bad) || re.MatchString(bad) {
				t.Errorf("%s's pattern admits %q, which could break out of the JSON trust policy", name, bad)
			}
		}
	}
}

// Scenario inputs.
const (
	testPrincipal = "arn:aws:iam::999988887777:role/costlake-worker"
	testExternal  = "costlake-3f9a1c7e-acme"
	testOIDCURL   = "https://id.costlake.example/tenants/acme"
	testOIDCHost  = "id.costlake.example/tenants/acme"
	testAudience  = "sts.amazonaws.com"
	testSubject   = "system:serviceaccount:costlake:worker"
	testBucket    = "acme-billing"
	testPrefix    = "costlake/exports"
	testExport    = "costlake-acme"
)

func baseParams(mode string) Params {
	p := Params{
		StackName: testStack, AuthMode: mode,
		ExportBucket: testBucket, ExportPrefix: testPrefix, ExportType: ExportCUR2, ExportName: testExport,
		CreateBucket: true, CreateExport: true,
	}
	switch mode {
	case AuthAssumeRole:
		p.CostlakePrincipalArn, p.ExternalID = testPrincipal, testExternal
	case AuthWebIdentity:
		p.OIDCProviderURL, p.OIDCAudience, p.OIDCSubject, p.CreateOIDCProvider = testOIDCURL, testAudience, testSubject, true
	}
	return p
}

// costExplorerParams is baseParams for a payer that grants only Cost
// Explorer, as onboarding renders it: no bucket, prefix or export name,
// nothing to create.
func costExplorerParams(mode string) Params {
	p := baseParams(mode)
	toCostExplorer(&p)
	return p
}

func toCostExplorer(p *Params) {
	p.ExportType = ExportCostExplorer
	p.ExportBucket, p.ExportPrefix, p.ExportName = "", "", ""
	p.CreateBucket, p.CreateExport = false, false
}

// TestScenarios deploys the template on paper for every valid combination
// of mode, switches and export type, with the parameters StackParameters
// produces, and checks what each would create.
func TestScenarios(t *testing.T) {
	tp := loadTemplate(t)
	for _, mode := range []string{AuthAssumeRole, AuthWebIdentity, AuthAccessKeys} {
		for _, createOIDC := range []bool{true, false} {
			if mode != AuthWebIdentity && !createOIDC {
				continue
			}
			for _, createBucket := range []bool{true, false} {
				for _, createExport := range []bool{true, false} {
					for _, typ := range exportTypes {
						p := baseParams(mode)
						if typ == ExportCostExplorer {
							if createBucket || createExport {
								continue // rejected: TestValidate and TestRulesRejectWhatValidateRejects
							}
							toCostExplorer(&p)
						}
						p.CreateOIDCProvider = mode == AuthWebIdentity && createOIDC
						p.CreateBucket, p.CreateExport, p.ExportType = createBucket, createExport, typ
						name := fmt.Sprintf("%s/oidc=%v/bucket=%v/export=%v/%s", mode, p.CreateOIDCProvider, createBucket, createExport, typ)
						t.Run(name, func(t *testing.T) { checkScenario(t, tp, p) })
						// AWS::CUR::ReportDefinition needs a prefix (Validate says so).
						if typ != ExportCostExplorer && !(typ == ExportLegacyCUR && createExport) {
							root := p
							root.ExportPrefix = "" // delivered at the bucket's root
							t.Run(name+"/root", func(t *testing.T) { checkScenario(t, tp, root) })
						}
					}
				}
			}
		}
	}
}

func checkScenario(t *testing.T, tp *tmpl, p Params) {
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	s, err := newStack(tp, p.StackParameters(), p.region())
	if err != nil {
		t.Fatalf("CloudFormation would reject the parameters: %v", err)
	}
	if failed, err := s.failedRules(); err != nil || len(failed) > 0 {
		t.Fatalf("rules: %v %v", failed, err)
	}
	r, err := s.render()
	if err != nil {
		t.Fatalf("render: %v", err)
	}

	checkRole(t, r, p)
	checkManagedPolicy(t, r, p)
	checkBucket(t, r, p)
	checkExport(t, r, p)
	if p.ExportType == ExportCostExplorer {
		checkNoBucket(t, tp, p, r)
	}

	wantOut := map[string]string{
		OutputAuthMode: p.AuthMode, OutputPolicyArn: "ref:BillingReadPolicy",
		OutputExportBucket: p.ExportBucket, OutputExportPrefix: p.ExportPrefix,
		OutputExportName: p.ExportName, OutputExportType: p.ExportType,
	}
	if p.ExportType == ExportCostExplorer { // no bucket, prefix or export to name
		delete(wantOut, OutputExportBucket)
		delete(wantOut, OutputExportPrefix)
		delete(wantOut, OutputExportName)
	}
	if p.AuthMode != AuthAccessKeys {
		wantOut[OutputRoleArn] = "getatt:BillingReadRole.Arn"
	}
	if p.CreateExport {
		wantOut[OutputExportArn] = map[string]string{
			ExportLegacyCUR: "arn:aws:cur:us-east-1:" + testAccount + ":definition/" + p.ExportName,
			ExportCUR2:      "getatt:Cur2Export.ExportArn",
			ExportFOCUS:     "getatt:FocusExport.ExportArn",
		}[p.ExportType]
	}
	if !maps.Equal(r.outputs, wantOut) {
		t.Errorf("outputs = %v\nwant      %v", r.outputs, wantOut)
	}
}

// checkNoBucket: with cost_explorer nothing the stack creates or outputs
// refers to a bucket, not even one an admin typed into the console's
// ExportBucket and ExportPrefix fields anyway.
func checkNoBucket(t *testing.T, tp *tmpl, p Params, r *rendered) {
	t.Helper()
	m := p.StackParameters()
	m["ExportBucket"], m["ExportPrefix"], m["ExportName"] = testBucket, testPrefix, testExport
	s, err := newStack(tp, m, p.region())
	if err != nil {
		t.Fatalf("console values: %v", err)
	}
	if failed, err := s.failedRules(); err != nil || len(failed) > 0 {
		t.Fatalf("console values: rules %v %v", failed, err)
	}
	typed, err := s.render()
	if err != nil {
		t.Fatalf("console values: render: %v", err)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(typed.resources)), slices.Sorted(maps.Keys(r.resources))) {
		t.Errorf("a bucket typed into the console changes the resources: %v, want %v",
			slices.Sorted(maps.Keys(typed.resources)), slices.Sorted(maps.Keys(r.resources)))
	}
	for _, rr := range []*rendered{r, typed} {
		for name, res := range rr.resources {
			switch typ := fmt.Sprint(res["Type"]); {
			case strings.HasPrefix(typ, "AWS::S3::"), typ == "AWS::CUR::ReportDefinition", typ == "AWS::BCMDataExports::Export":
				t.Errorf("cost_explorer creates %s (%s)", name, typ)
			}
			for _, bad := range []string{testBucket, testPrefix, "arn:aws:s3:", "s3:"} {
				if str := mustJSON(res); strings.Contains(str, bad) {
					t.Errorf("cost_explorer: resource %s mentions %q: %s", name, bad, str)
				}
			}
		}
		for name, v := range rr.outputs {
			if v == "" || strings.Contains(v, testBucket) || strings.Contains(v, testPrefix) || strings.Contains(v, testExport) {
				t.Errorf("cost_explorer: output %s = %q", name, v)
			}
		}
	}
}

func checkRole(t *testing.T, r *rendered, p Params) {
	role, hasRole := r.resources["BillingReadRole"]
	if hasRole != (p.AuthMode != AuthAccessKeys) {
		t.Fatalf("role created = %v in %s mode", hasRole, p.AuthMode)
	}
	provider, hasProvider := r.resources["OIDCProvider"]
	if want := p.AuthMode == AuthWebIdentity && p.CreateOIDCProvider; hasProvider != want {
		t.Errorf("OIDC provider created = %v, want %v", hasProvider, want)
	}
	if hasProvider {
		if u := dig(provider, "Properties", "Url"); u != testOIDCURL {
			t.Errorf("OIDC provider Url = %v", u)
		}
		if ids := strs(dig(provider, "Properties", "ClientIdList")); !slices.Equal(ids, []string{testAudience}) {
			t.Errorf("OIDC provider ClientIdList = %v", ids)
		}
	}
	if !hasRole {
		return
	}
	if n := dig(role, "Properties", "RoleName"); n != DefaultRoleName {
		t.Errorf("RoleName = %v, want the default %s", n, DefaultRoleName)
	}
	if arns := strs(dig(role, "Properties", "ManagedPolicyArns")); !slices.Equal(arns, []string{"ref:BillingReadPolicy"}) {
		t.Errorf("role policies = %v, want only the billing read policy", arns)
	}
	if dig(role, "Properties", "Policies") != nil {
		t.Errorf("role has inline policies; all permissions belong in the managed policy")
	}

	doc := dig(role, "Properties", "AssumeRolePolicyDocument")
	if s, ok := doc.(string); ok { // the web-identity policy is JSON text
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("trust policy is not valid JSON: %v\n%s", err, s)
		}
		doc = m
	}
	stmts := asList(dig(doc, "Statement"))
	if len(stmts) != 1 {
		t.Fatalf("trust policy has %d statements, want 1: %v", len(stmts), doc)
	}
	st := stmts[0]
	if dig(st, "Effect") != "Allow" {
		t.Errorf("trust statement Effect = %v", dig(st, "Effect"))
	}
	switch p.AuthMode {
	case AuthAssumeRole:
		want := map[string]any{
			"Principal": map[string]any{"AWS": testPrincipal},
			"Action":    []any{"sts:AssumeRole", "sts:SetSourceIdentity"},
			"Condition": map[string]any{"StringEquals": map[string]any{"sts:ExternalId": testExternal}},
		}
		for k, v := range want {
			if got, _ := json.Marshal(dig(st, k)); string(got) != mustJSON(v) {
				t.Errorf("assume_role trust %s = %s, want %s", k, got, mustJSON(v))
			}
		}
	case AuthWebIdentity:
		provider := "arn:aws:iam::" + testAccount + ":oidc-provider/" + testOIDCHost
		if p.CreateOIDCProvider {
			provider = "ref:OIDCProvider" // Ref of AWS::IAM::OIDCProvider is its ARN
		}
		want := map[string]any{
			"Principal": map[string]any{"Federated": provider},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]any{
				testOIDCHost + ":aud": testAudience,
				testOIDCHost + ":sub": testSubject,
			}},
		}
		for k, v := range want {
			if got, _ := json.Marshal(dig(st, k)); string(got) != mustJSON(v) {
				t.Errorf("web_identity trust %s = %s, want %s", k, got, mustJSON(v))
			}
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func checkManagedPolicy(t *testing.T, r *rendered, p Params) {
	pol, ok := r.resources["BillingReadPolicy"]
	if !ok {
		t.Fatalf("the managed policy is not created in %s mode", p.AuthMode)
	}
	if n := dig(pol, "Properties", "ManagedPolicyName"); n != DefaultRoleName+"-policy" {
		t.Errorf("ManagedPolicyName = %v", n)
	}
	want := billingReadActions(p.ExportBucket, p.ExportPrefix)
	if p.ExportType == ExportCostExplorer {
		want = costExplorerReadActions()
	}
	got := map[string]string{}
	for _, st := range asList(dig(pol, "Properties", "PolicyDocument", "Statement")) {
		if dig(st, "Effect") != "Allow" {
			t.Errorf("statement %v: only Allow statements are expected", dig(st, "Sid"))
		}
		for _, k := range []string{"NotAction", "NotResource", "Principal"} {
			if dig(st, k) != nil {
				t.Errorf("statement %v uses %s", dig(st, "Sid"), k)
			}
		}
		resources := strs(dig(st, "Resource"))
		for _, a := range strs(dig(st, "Action")) {
			if strings.Contains(a, "*") {
				t.Errorf("action %q has a wildcard", a)
			}
			_, verb, _ := strings.Cut(a, ":")
			for _, w := range writeVerbs {
				if strings.HasPrefix(verb, w) {
					t.Errorf("action %q writes", a)
				}
			}
			if _, dup := got[a]; dup {
				t.Errorf("action %q is granted twice", a)
			}
			if len(resources) != 1 {
				t.Errorf("action %s: resources %v, want exactly one", a, resources)
				continue
			}
			got[a] = resources[0]
			if strings.HasPrefix(a, "s3:") && !strings.HasPrefix(resources[0], "arn:aws:s3:::"+p.ExportBucket) {
				t.Errorf("S3 action %s is not scoped to the export bucket: %v", a, resources[0])
			}
		}
		if slices.Contains(strs(dig(st, "Action")), "s3:ListBucket") && p.ExportPrefix == "" {
			if c := dig(st, "Condition"); c != nil {
				t.Errorf("ListBucket at the bucket's root has condition %v, want none", c)
			}
		} else if slices.Contains(strs(dig(st, "Action")), "s3:ListBucket") {
			checkListPrefix(t, dig(st, "Condition"), p.ExportPrefix)
		} else if c := dig(st, "Condition"); c != nil {
			t.Errorf("statement %v has an unexpected condition %v", dig(st, "Sid"), c)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("managed policy grants\n%v\nwant exactly\n%v", got, want)
	}
}

// checkListPrefix evaluates the s3:ListBucket condition against listings
// costlake makes and ones it must not.
func checkListPrefix(t *testing.T, cond any, prefix string) {
	if c, _ := cond.(map[string]any); len(c) != 1 || len(c["StringLike"].(map[string]any)) != 1 {
		t.Errorf("ListBucket condition = %v, want only StringLike s3:prefix", cond)
		return
	}
	patterns := strs(dig(cond, "StringLike", "s3:prefix"))
	allowed := func(listPrefix string) bool {
		for _, p := range patterns {
			if globMatch(p, listPrefix) {
				return true
			}
		}
		return false
	}
	for _, ok := range []string{prefix, prefix + "/", prefix + "/costlake-acme/", prefix + "/costlake-acme/metadata/BILLING_PERIOD=2026-10/"} {
		if !allowed(ok) {
			t.Errorf("ListBucket with prefix %q is denied by %v; costlake lists there", ok, patterns)
		}
	}
	for _, bad := range []string{"", "other/", prefix + "-other/", strings.Split(prefix, "/")[0] + "/"} {
		if bad == prefix || strings.HasPrefix(bad, prefix+"/") {
			continue
		}
		if allowed(bad) {
			t.Errorf("ListBucket with prefix %q is allowed by %v; it is outside the export", bad, patterns)
		}
	}
}

// globMatch matches IAM's StringLike: * is any run of characters, ? one.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// Service principals of AWS's billing exports and the source ARNs each
// writes for.
var billingServices = map[string]string{
	"billingreports.amazonaws.com":   "arn:aws:cur:us-east-1:" + testAccount + ":definition/*",
	"bcm-data-exports.amazonaws.com": "arn:aws:bcm-data-exports:us-east-1:" + testAccount + ":export/*",
}

func checkBucket(t *testing.T, r *rendered, p Params) {
	bucket, hasBucket := r.resources["BillingBucket"]
	policy, hasPolicy := r.resources["BillingBucketPolicy"]
	if hasBucket != p.CreateBucket || hasPolicy != p.CreateBucket {
		t.Fatalf("bucket created = %v, policy = %v; CreateBucket = %v", hasBucket, hasPolicy, p.CreateBucket)
	}
	if !hasBucket {
		return
	}
	props := dig(bucket, "Properties")
	if dig(props, "BucketName") != p.ExportBucket {
		t.Errorf("BucketName = %v", dig(props, "BucketName"))
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if v := dig(props, "PublicAccessBlockConfiguration", k); v != "true" {
			t.Errorf("PublicAccessBlockConfiguration.%s = %v", k, v)
		}
	}
	enc := asList(dig(props, "BucketEncryption", "ServerSideEncryptionConfiguration"))
	if len(enc) != 1 || dig(enc[0], "ServerSideEncryptionByDefault", "SSEAlgorithm") != "AES256" {
		t.Errorf("bucket encryption = %v, want SSE-S3 (AES256)", enc)
	}
	if bucket["DeletionPolicy"] != "Retain" {
		t.Errorf("bucket DeletionPolicy = %v, want Retain (billing history outlives the stack)", bucket["DeletionPolicy"])
	}
	if dig(policy, "Properties", "Bucket") != p.ExportBucket {
		t.Errorf("bucket policy is on %v", dig(policy, "Properties", "Bucket"))
	}

	bucketArn := "arn:aws:s3:::" + p.ExportBucket
	// granted[service][action] = resources
	granted := map[string]map[string][]string{}
	for _, st := range asList(dig(policy, "Properties", "PolicyDocument", "Statement")) {
		if dig(st, "Effect") == "Deny" {
			continue
		}
		services := strs(dig(st, "Principal", "Service"))
		if len(services) == 0 || dig(st, "Principal", "AWS") != nil {
			t.Errorf("statement %v allows %v; only AWS's billing services may be allowed", dig(st, "Sid"), dig(st, "Principal"))
			continue
		}
		for _, svc := range services {
			sourceArn, known := billingServices[svc]
			if !known {
				t.Errorf("statement %v allows unexpected service %s", dig(st, "Sid"), svc)
				continue
			}
			if got := conditionValues(dig(st, "Condition"), "aws:SourceAccount", "StringEquals"); !slices.Equal(got, []string{testAccount}) {
				t.Errorf("statement %v for %s: aws:SourceAccount = %v, want StringEquals %s", dig(st, "Sid"), svc, got, testAccount)
			}
			if got := conditionValues(dig(st, "Condition"), "aws:SourceArn", "ArnLike"); !slices.Contains(got, sourceArn) {
				t.Errorf("statement %v for %s: aws:SourceArn (ArnLike) = %v, want it to include %s", dig(st, "Sid"), svc, got, sourceArn)
			}
			if granted[svc] == nil {
				granted[svc] = map[string][]string{}
			}
			for _, a := range strs(dig(st, "Action")) {
				granted[svc][a] = append(granted[svc][a], strs(dig(st, "Resource"))...)
			}
		}
	}
	// What AWS documents for each: CUR checks the ACL and policy, Data
	// Exports the policy; both write objects.
	need := map[string]map[string]string{
		"billingreports.amazonaws.com":   {"s3:GetBucketAcl": bucketArn, "s3:GetBucketPolicy": bucketArn, "s3:PutObject": bucketArn + "/*"},
		"bcm-data-exports.amazonaws.com": {"s3:GetBucketPolicy": bucketArn, "s3:PutObject": bucketArn + "/*"},
	}
	for svc, actions := range need {
		for a, res := range actions {
			if !slices.Contains(granted[svc][a], res) {
				t.Errorf("bucket policy does not grant %s %s on %s (granted %v)", svc, a, res, granted[svc])
			}
		}
		for a := range granted[svc] {
			if !slices.Contains([]string{"s3:GetBucketAcl", "s3:GetBucketPolicy", "s3:PutObject"}, a) {
				t.Errorf("bucket policy grants %s the undocumented action %s", svc, a)
			}
		}
	}
}

// conditionValues returns the values of key under the given operator.
func conditionValues(cond any, key, operator string) []string {
	return strs(dig(cond, operator, key))
}

func checkExport(t *testing.T, r *rendered, p Params) {
	want := map[string]string{ExportLegacyCUR: "LegacyCurReport", ExportCUR2: "Cur2Export", ExportFOCUS: "FocusExport"}
	for typ, name := range want {
		_, has := r.resources[name]
		if wantHas := p.CreateExport && p.ExportType == typ; has != wantHas {
			t.Errorf("%s created = %v, want %v", name, has, wantHas)
		}
	}
	if !p.CreateExport {
		return
	}
	res := r.resources[want[p.ExportType]]
	// The export must wait for the bucket policy the stack creates.
	if dep := dig(res, "Metadata", "WaitsForBucketPolicy"); p.CreateBucket && dep != "ref:BillingBucketPolicy" {
		t.Errorf("%s does not wait for the bucket policy: %v", want[p.ExportType], dep)
	}
	props := dig(res, "Properties")
	if p.ExportType == ExportLegacyCUR {
		wantProps := map[string]string{
			"ReportName": p.ExportName, "TimeUnit": "HOURLY", "Format": "textORcsv", "Compression": "GZIP",
			"S3Bucket": p.ExportBucket, "S3Prefix": p.ExportPrefix, "S3Region": BillingRegion,
			"ReportVersioning": "OVERWRITE_REPORT", "RefreshClosedReports": "true",
		}
		for k, v := range wantProps {
			if got := dig(props, k); got != v {
				t.Errorf("LegacyCurReport %s = %v, want %s", k, got, v)
			}
		}
		if el := strs(dig(props, "AdditionalSchemaElements")); !slices.Contains(el, "RESOURCES") {
			t.Errorf("LegacyCurReport AdditionalSchemaElements = %v, want RESOURCES", el)
		}
		return
	}

	ex := dig(props, "Export")
	table := map[string]string{ExportCUR2: "COST_AND_USAGE_REPORT", ExportFOCUS: "FOCUS_1_0_AWS"}[p.ExportType]
	dest := dig(ex, "DestinationConfigurations", "S3Destination")
	got := map[string]any{
		"Name":                          dig(ex, "Name"),
		"S3Bucket":                      dig(dest, "S3Bucket"),
		"S3Prefix":                      dig(dest, "S3Prefix"),
		"S3Region":                      dig(dest, "S3Region"),
		"OutputType":                    dig(dest, "S3OutputConfigurations", "OutputType"),
		"Format":                        dig(dest, "S3OutputConfigurations", "Format"),
		"Compression":                   dig(dest, "S3OutputConfigurations", "Compression"),
		"Overwrite":                     dig(dest, "S3OutputConfigurations", "Overwrite"),
		"RefreshCadence":                dig(ex, "RefreshCadence", "Frequency"),
		"table configured (CUR 2 only)": fmt.Sprint(slices.Sorted(maps.Keys(asMap(dig(ex, "DataQuery", "TableConfigurations"))))),
	}
	expect := map[string]any{
		"Name": p.ExportName, "S3Bucket": p.ExportBucket, "S3Prefix": p.ExportPrefix, "S3Region": BillingRegion,
		"OutputType": "CUSTOM", "Format": "PARQUET", "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT",
		"RefreshCadence":                "SYNCHRONOUS",
		"table configured (CUR 2 only)": map[string]string{ExportCUR2: "[COST_AND_USAGE_REPORT]", ExportFOCUS: "[]"}[p.ExportType],
	}
	for k, v := range expect {
		if got[k] != v {
			t.Errorf("%s export %s = %v, want %v", p.ExportType, k, got[k], v)
		}
	}
	if p.ExportType == ExportCUR2 {
		tc := asMap(dig(ex, "DataQuery", "TableConfigurations", table))
		wantTC := map[string]any{"TIME_GRANULARITY": "HOURLY", "INCLUDE_RESOURCES": "TRUE",
			"INCLUDE_SPLIT_COST_ALLOCATION_DATA": "FALSE", "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY": "FALSE"}
		if !maps.Equal(tc, wantTC) {
			t.Errorf("CUR 2.0 table configuration = %v, want %v", tc, wantTC)
		}
	}
	cols, from, err := parseQuery(fmt.Sprint(dig(ex, "DataQuery", "QueryStatement")))
	if err != nil || from != table {
		t.Errorf("query reads %q (%v), want FROM %s", from, err, table)
	}
	checkColumns(t, p.ExportType, cols)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

var queryPattern = regexp.MustCompile(`^SELECT\s+(.+?)\s+FROM\s+([A-Z0-9_]+)$`)

// parseQuery splits "SELECT a, b FROM T" into its columns and table.
func parseQuery(q string) ([]string, string, error) {
	m := queryPattern.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return nil, "", fmt.Errorf("not SELECT <columns> FROM <table>: %.80q", q)
	}
	var cols []string
	for _, c := range strings.Split(m[1], ",") {
		cols = append(cols, strings.TrimSpace(c))
	}
	return cols, m[2], nil
}

// checkColumns compares the query's columns with the list AWS's own
// dashboards request, kept in shared/data/column-lists when it is there.
func checkColumns(t *testing.T, typ string, cols []string) {
	seen := map[string]bool{}
	for _, c := range cols {
		if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(c) || seen[c] {
			t.Errorf("%s query: bad or repeated column %q", typ, c)
		}
		seen[c] = true
	}
	file := map[string]string{ExportCUR2: "cur2_COST_AND_USAGE_REPORT_columns.txt", ExportFOCUS: "focus_1_0_aws_FOCUS_1_0_AWS_columns.txt"}[typ]
	path := findShared(filepath.Join("data", "column-lists", file))
	if path == "" {
		t.Logf("shared/data/column-lists/%s not found; column names checked for shape only", file)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.Contains(line, "SCAD only") {
			continue // split cost allocation columns need INCLUDE_SPLIT_COST_ALLOCATION_DATA
		}
		want = append(want, line)
	}
	if !slices.Equal(cols, want) {
		t.Errorf("%s query columns differ from %s:\n got %v\nwant %v", typ, path, cols, want)
	}
}

// findShared looks for shared/<rel> beside the repository (or above it).
func findShared(rel string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for range 6 {
		p := filepath.Join(dir, "shared", rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		dir = filepath.Dir(dir)
	}
	return ""
}

// TestRulesRejectWhatValidateRejects: the template's own checks (for an
// admin who edits the parameters in the console) agree with Validate.
func TestRulesRejectWhatValidateRejects(t *testing.T) {
	tp := loadTemplate(t)
	cases := []struct {
		name   string
		typ    string // export type; empty: baseParams' cur2
		edit   func(p *Params, params map[string]string)
		field  string // named by Validate
		region string
	}{
		{"export outside us-east-1", "", func(p *Params, m map[string]string) { p.Region = "eu-west-1" }, "Region", "eu-west-1"},
		{"assume_role without external ID", "", func(p *Params, m map[string]string) { p.ExternalID = ""; m["ExternalId"] = "" }, "ExternalID", ""},
		{"assume_role without principal", "", func(p *Params, m map[string]string) { p.CostlakePrincipalArn = ""; m["CostlakePrincipalArn"] = "" }, "CostlakePrincipalArn", ""},
		{"cur2 with an empty bucket", "", func(p *Params, m map[string]string) { p.ExportBucket = ""; m["ExportBucket"] = "" }, "ExportBucket", ""},
		{"cur2 leaving the bucket to its default", "", func(p *Params, m map[string]string) { p.ExportBucket = ""; delete(m, "ExportBucket") }, "ExportBucket", ""},
		{"legacy_cur created at the bucket's root", ExportLegacyCUR, func(p *Params, m map[string]string) { p.ExportPrefix = ""; m["ExportPrefix"] = "" }, "ExportPrefix", ""},
		{"legacy_cur without bucket, nothing created", ExportLegacyCUR, func(p *Params, m map[string]string) {
			p.ExportBucket, p.CreateBucket, p.CreateExport = "", false, false
			m["ExportBucket"], m["CreateBucket"], m["CreateExport"] = "", "false", "false"
		}, "ExportBucket", ""},
		{"focus without bucket in eu-west-1", ExportFOCUS, func(p *Params, m map[string]string) {
			p.ExportBucket, p.CreateBucket, p.CreateExport, p.Region = "", false, false, "eu-west-1"
			m["ExportBucket"], m["CreateBucket"], m["CreateExport"] = "", "false", "false"
		}, "ExportBucket", "eu-west-1"},
		{"cost_explorer creating the bucket", ExportCostExplorer, func(p *Params, m map[string]string) { p.CreateBucket = true; m["CreateBucket"] = "true" }, "CreateBucket", ""},
		{"cost_explorer creating the export", ExportCostExplorer, func(p *Params, m map[string]string) { p.CreateExport = true; m["CreateExport"] = "true" }, "CreateExport", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := baseParams(AuthAssumeRole)
			switch c.typ {
			case ExportCostExplorer:
				toCostExplorer(&p)
			case "":
			default:
				p.ExportType = c.typ
			}
			m := p.StackParameters()
			c.edit(&p, m)
			assertFields(t, p.Validate(), c.field)
			s, err := newStack(tp, m, cmp.Or(c.region, BillingRegion))
			if err != nil {
				t.Fatalf("parameters rejected before the rules ran: %v", err)
			}
			if failed, err := s.failedRules(); err != nil || len(failed) == 0 {
				t.Errorf("the template's rules accept it (%v)", err)
			}
		})
	}
	// web_identity without its inputs.
	p := baseParams(AuthWebIdentity)
	m := p.StackParameters()
	m["OIDCSubject"], p.OIDCSubject = "", ""
	assertFields(t, p.Validate(), "OIDCSubject")
	s, err := newStack(tp, m, BillingRegion)
	if err != nil {
		t.Fatal(err)
	}
	if failed, _ := s.failedRules(); len(failed) != 1 || !strings.Contains(failed[0], "OIDCSubject") {
		t.Errorf("rules failed with %v, want the OIDCSubject assertion", failed)
	}
	// Without the export, any region will do.
	p = baseParams(AuthAccessKeys)
	p.CreateExport, p.Region = false, "eu-west-1"
	if err := p.Validate(); err != nil {
		t.Errorf("no export in eu-west-1: %v", err)
	}
	s, _ = newStack(tp, p.StackParameters(), "eu-west-1")
	if failed, _ := s.failedRules(); len(failed) > 0 {
		t.Errorf("rules reject a stack without export in eu-west-1: %v", failed)
	}
	p = costExplorerParams(AuthAccessKeys)
	p.Region = "eu-west-1"
	if err := p.Validate(); err != nil {
		t.Errorf("cost_explorer in eu-west-1: %v", err)
	}
	s, err = newStack(tp, p.StackParameters(), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	if failed, _ := s.failedRules(); len(failed) > 0 {
		t.Errorf("rules reject cost_explorer in eu-west-1: %v", failed)
	}
	// cost_explorer with the template's defaults for the switches ("true")
	// fails the rules: why StackParameters always sends them.
	m = costExplorerParams(AuthAccessKeys).StackParameters()
	delete(m, "CreateBucket")
	delete(m, "CreateExport")
	s, err = newStack(tp, m, BillingRegion)
	if err != nil {
		t.Fatal(err)
	}
	if failed, _ := s.failedRules(); len(failed) != 2 {
		t.Errorf("cost_explorer with CreateBucket and CreateExport defaulted: rules failed %v, want both switch assertions", failed)
	}
}

// assertFields checks err is a *ValidationError naming exactly fields.
func assertFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	if !errors.Is(err, ErrInvalidParams) {
		t.Fatalf("err = %v, want ErrInvalidParams", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err is %T, want *ValidationError", err)
	}
	got := ve.Fields()
	if !slices.Equal(got, fields) {
		t.Errorf("fields = %v, want %v (%v)", got, fields, err)
	}
	for _, f := range fields {
		if !strings.Contains(err.Error(), f+": ") {
			t.Errorf("message %q does not name %s", err, f)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, mode := range []string{AuthAssumeRole, AuthWebIdentity, AuthAccessKeys} {
		if err := baseParams(mode).Validate(); err != nil {
			t.Errorf("%s: %v", mode, err)
		}
		if err := costExplorerParams(mode).Validate(); err != nil {
			t.Errorf("%s cost_explorer: %v", mode, err)
		}
	}
	cases := []struct {
		name   string
		mode   string
		edit   func(*Params)
		fields []string
	}{
		{"no stack name", AuthAssumeRole, func(p *Params) { p.StackName = "" }, []string{"StackName"}},
		{"stack name with underscore", AuthAssumeRole, func(p *Params) { p.StackName = "costlake_acme" }, []string{"StackName"}},
		{"stack name starting with digit", AuthAssumeRole, func(p *Params) { p.StackName = "1costlake" }, []string{"StackName"}},
		{"stack name too long", AuthAssumeRole, func(p *Params) { p.StackName = "a" + strings.Repeat("b", 128) }, []string{"StackName"}},
		{"bad region", AuthAssumeRole, func(p *Params) { p.Region = "useast1" }, []string{"Region"}},
		{"china region", AuthAccessKeys, func(p *Params) { p.Region, p.CreateExport = "cn-north-1", false }, []string{"Region"}},
		{"export outside us-east-1", AuthAssumeRole, func(p *Params) { p.Region = "eu-west-1" }, []string{"Region"}},
		{"unknown mode", AuthAssumeRole, func(p *Params) { p.AuthMode = "keys" }, []string{"AuthMode"}},
		{"principal not an ARN", AuthAssumeRole, func(p *Params) { p.CostlakePrincipalArn = "999988887777" }, []string{"CostlakePrincipalArn"}},
		{"principal is an assumed-role session", AuthAssumeRole, func(p *Params) {
			p.CostlakePrincipalArn = "arn:aws:sts::999988887777:assumed-role/costlake/worker"
		}, []string{"CostlakePrincipalArn"}},
		{"principal with short account", AuthAssumeRole, func(p *Params) { p.CostlakePrincipalArn = "arn:aws:iam::9999:role/x" }, []string{"CostlakePrincipalArn"}},
		{"external ID too short", AuthAssumeRole, func(p *Params) { p.ExternalID = "x" }, []string{"ExternalID"}},
		{"external ID with space", AuthAssumeRole, func(p *Params) { p.ExternalID = "costlake acme" }, []string{"ExternalID"}},
		{"external ID too long", AuthAssumeRole, func(p *Params) { p.ExternalID = strings.Repeat("x", 1225) }, []string{"ExternalID"}},
		{"both assume_role inputs missing", AuthAssumeRole, func(p *Params) { p.CostlakePrincipalArn, p.ExternalID = "", "" }, []string{"CostlakePrincipalArn", "ExternalID"}},
		{"OIDC over http", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL = "http://id.costlake.example" }, []string{"OIDCProviderURL"}},
		{"OIDC with trailing slash", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL = "https://id.costlake.example/" }, []string{"OIDCProviderURL"}},
		{"OIDC with port", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL = "https://id.costlake.example:8443" }, []string{"OIDCProviderURL"}},
		{"OIDC with query", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL = "https://id.costlake.example?x=1" }, []string{"OIDCProviderURL"}},
		{"OIDC with quote", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL = `https://id.costlake.example/a"b` }, []string{"OIDCProviderURL"}},
		{"OIDC inputs missing", AuthWebIdentity, func(p *Params) { p.OIDCProviderURL, p.OIDCAudience, p.OIDCSubject = "", "", "" },
			[]string{"OIDCProviderURL", "OIDCAudience", "OIDCSubject"}},
		{"subject breaking JSON", AuthWebIdentity, func(p *Params) { p.OIDCSubject = `x","y` }, []string{"OIDCSubject"}},
		{"audience with space", AuthWebIdentity, func(p *Params) { p.OIDCAudience = "sts amazonaws" }, []string{"OIDCAudience"}},
		{"role name too long", AuthAssumeRole, func(p *Params) { p.RoleName = strings.Repeat("r", 65) }, []string{"RoleName"}},
		{"role name with slash", AuthAssumeRole, func(p *Params) { p.RoleName = "costlake/read" }, []string{"RoleName"}},
		{"no bucket", AuthAssumeRole, func(p *Params) { p.ExportBucket = "" }, []string{"ExportBucket"}},
		{"bucket uppercase", AuthAssumeRole, func(p *Params) { p.ExportBucket = "Acme-Billing" }, []string{"ExportBucket"}},
		{"bucket too short", AuthAssumeRole, func(p *Params) { p.ExportBucket = "ab" }, []string{"ExportBucket"}},
		{"bucket too long", AuthAssumeRole, func(p *Params) { p.ExportBucket = strings.Repeat("a", 64) }, []string{"ExportBucket"}},
		{"bucket ending in hyphen", AuthAssumeRole, func(p *Params) { p.ExportBucket = "acme-" }, []string{"ExportBucket"}},
		{"bucket with double dot", AuthAssumeRole, func(p *Params) { p.ExportBucket = "acme..billing" }, []string{"ExportBucket"}},
		{"bucket as IP", AuthAssumeRole, func(p *Params) { p.ExportBucket = "192.168.5.4" }, []string{"ExportBucket"}},
		{"bucket reserved prefix", AuthAssumeRole, func(p *Params) { p.ExportBucket = "xn--acme" }, []string{"ExportBucket"}},
		{"bucket reserved suffix", AuthAssumeRole, func(p *Params) { p.ExportBucket = "acme-s3alias" }, []string{"ExportBucket"}},
		{"bucket with underscore", AuthAssumeRole, func(p *Params) { p.ExportBucket = "acme_billing" }, []string{"ExportBucket"}},
		{"prefix with leading slash", AuthAssumeRole, func(p *Params) { p.ExportPrefix = "/costlake" }, []string{"ExportPrefix"}},
		{"prefix with trailing slash", AuthAssumeRole, func(p *Params) { p.ExportPrefix = "costlake/" }, []string{"ExportPrefix"}},
		{"prefix with double slash", AuthAssumeRole, func(p *Params) { p.ExportPrefix = "a//b" }, []string{"ExportPrefix"}},
		{"prefix with wildcard", AuthAssumeRole, func(p *Params) { p.ExportPrefix = "cost*" }, []string{"ExportPrefix"}},
		{"unknown export type", AuthAssumeRole, func(p *Params) { p.ExportType = "cur3" }, []string{"ExportType"}},
		{"no export name", AuthAssumeRole, func(p *Params) { p.ExportName = "" }, []string{"ExportName"}},
		{"export name with space", AuthAssumeRole, func(p *Params) { p.ExportName = "my export" }, []string{"ExportName"}},
		{"everything wrong at once", AuthAssumeRole, func(p *Params) { *p = Params{AuthMode: "x"} },
			[]string{"StackName", "AuthMode", "ExportBucket", "ExportType", "ExportName"}},
		{"legacy_cur without bucket", AuthAccessKeys, func(p *Params) {
			p.ExportType, p.ExportBucket, p.CreateBucket, p.CreateExport = ExportLegacyCUR, "", false, false
		}, []string{"ExportBucket"}},
		{"focus without bucket or prefix", AuthWebIdentity, func(p *Params) {
			p.ExportType, p.ExportBucket, p.ExportPrefix = ExportFOCUS, "", ""
		}, []string{"ExportBucket"}},
		{"cur2 without bucket, prefix or name", AuthAssumeRole, func(p *Params) {
			p.ExportBucket, p.ExportPrefix, p.ExportName, p.CreateBucket, p.CreateExport = "", "", "", false, false
		}, []string{"ExportBucket", "ExportName"}},
		{"cost_explorer creating the bucket", AuthAssumeRole, func(p *Params) { toCostExplorer(p); p.CreateBucket = true }, []string{"CreateBucket"}},
		{"cost_explorer creating the export", AuthWebIdentity, func(p *Params) { toCostExplorer(p); p.CreateExport = true }, []string{"CreateExport"}},
		{"cost_explorer creating both, outside us-east-1", AuthAccessKeys, func(p *Params) {
			toCostExplorer(p)
			p.CreateBucket, p.CreateExport, p.Region = true, true, "eu-west-1"
		}, []string{"CreateBucket", "CreateExport"}},
		{"cost_explorer switched on from a cur2 registration", AuthAccessKeys, func(p *Params) { p.ExportType = ExportCostExplorer },
			[]string{"CreateBucket", "CreateExport"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := baseParams(c.mode)
			c.edit(&p)
			assertFields(t, p.Validate(), c.fields...)
		})
	}
	// Fields another mode uses are ignored, not rejected.
	p := baseParams(AuthAccessKeys)
	p.ExternalID, p.OIDCSubject = "!", `"`
	if err := p.Validate(); err != nil {
		t.Errorf("access_keys with stray fields: %v", err)
	}
	// So are the bucket, prefix and name with cost_explorer.
	p = costExplorerParams(AuthAssumeRole)
	p.ExportBucket, p.ExportPrefix, p.ExportName = "Not_A_Bucket", "/x/", "bad name"
	if err := p.Validate(); err != nil {
		t.Errorf("cost_explorer with stray export fields: %v", err)
	}
}

func TestStackParameters(t *testing.T) {
	tp := loadTemplate(t)
	var required []string
	for name, decl := range tp.Parameters {
		if _, ok := decl["Default"]; !ok {
			required = append(required, name)
		}
	}
	for _, mode := range []string{AuthAssumeRole, AuthWebIdentity, AuthAccessKeys} {
		p := baseParams(mode)
		m := p.StackParameters()
		for k := range m {
			if _, ok := tp.Parameters[k]; !ok {
				t.Errorf("%s: key %s is not a template parameter", mode, k)
			}
		}
		for _, k := range required {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: parameter %s has no default and is not set", mode, k)
			}
		}
		// Only the chosen mode's inputs are sent.
		for k, modes := range map[string][]string{
			"ExternalId": {AuthAssumeRole}, "CostlakePrincipalArn": {AuthAssumeRole},
			"OIDCProviderUrl": {AuthWebIdentity}, "OIDCAudience": {AuthWebIdentity}, "OIDCSubject": {AuthWebIdentity}, "CreateOIDCProvider": {AuthWebIdentity},
		} {
			if _, ok := m[k]; ok != slices.Contains(modes, mode) {
				t.Errorf("%s: %s sent = %v", mode, k, ok)
			}
		}
		if _, ok := m["RoleName"]; ok {
			t.Errorf("%s: empty RoleName sent instead of leaving the default", mode)
		}
	}
	p := baseParams(AuthAssumeRole)
	p.RoleName, p.CreateBucket = "acme-costlake", false
	m := p.StackParameters()
	if m["RoleName"] != "acme-costlake" || m["CreateBucket"] != "false" || m["CreateExport"] != "true" || m["ExternalId"] != testExternal {
		t.Errorf("StackParameters = %v", m)
	}

	// cost_explorer sends no bucket, prefix or export name (stray values
	// included), and switches off what the template would create by
	// default.
	p = costExplorerParams(AuthAccessKeys)
	p.ExportBucket, p.ExportPrefix, p.ExportName = testBucket, testPrefix, testExport
	want := map[string]string{"AuthMode": AuthAccessKeys, "ExportType": ExportCostExplorer, "CreateBucket": "false", "CreateExport": "false"}
	if m := p.StackParameters(); !maps.Equal(m, want) {
		t.Errorf("cost_explorer StackParameters = %v, want %v", m, want)
	}
	for _, mode := range []string{AuthAssumeRole, AuthWebIdentity} {
		m := costExplorerParams(mode).StackParameters()
		for _, k := range []string{"ExportBucket", "ExportPrefix", "ExportName"} {
			if _, ok := m[k]; ok {
				t.Errorf("%s cost_explorer: %s sent", mode, k)
			}
		}
		if m["CreateBucket"] != "false" || m["CreateExport"] != "false" || m["ExportType"] != ExportCostExplorer {
			t.Errorf("%s cost_explorer StackParameters = %v", mode, m)
		}
	}
}

func TestQuickCreateURL(t *testing.T) {
	const templateURL = "https://costlake-templates.s3.us-east-1.amazonaws.com/customer/v1.yaml?versionId=a+b/c&x=1"
	for _, mode := range []string{AuthAssumeRole, AuthWebIdentity, AuthAccessKeys} {
		p := baseParams(mode)
		link, err := QuickCreateURL(templateURL, p)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		u, err := url.Parse(link)
		if err != nil {
			t.Fatalf("%s: %q does not parse: %v", mode, link, err)
		}
		if u.Scheme != "https" || u.Host != "us-east-1.console.aws.amazon.com" || u.Path != "/cloudformation/home" || u.Query().Get("region") != "us-east-1" {
			t.Errorf("%s: link %s does not open the us-east-1 CloudFormation console", mode, link)
		}
		route, rawQuery, ok := strings.Cut(u.EscapedFragment(), "?") // Fragment is unescaped
		if !ok || route != "/stacks/quickcreate" {
			t.Fatalf("%s: fragment %q is not /stacks/quickcreate?…", mode, u.Fragment)
		}
		if strings.Contains(rawQuery, "+") {
			t.Errorf("%s: %q encodes with '+', which the console does not decode", mode, rawQuery)
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if q.Get("templateURL") != templateURL || q.Get("stackName") != p.StackName {
			t.Errorf("%s: templateURL %q, stackName %q", mode, q.Get("templateURL"), q.Get("stackName"))
		}
		got := map[string]string{}
		for k, v := range q {
			if name, ok := strings.CutPrefix(k, "param_"); ok {
				if len(v) != 1 {
					t.Errorf("%s: %s given %d times", mode, k, len(v))
				}
				got[name] = v[0]
			} else if k != "templateURL" && k != "stackName" {
				t.Errorf("%s: unexpected key %s", mode, k)
			}
		}
		if !maps.Equal(got, p.StackParameters()) {
			t.Errorf("%s: param_ values %v, want %v", mode, got, p.StackParameters())
		}
		again, _ := QuickCreateURL(templateURL, p)
		if again != link {
			t.Errorf("%s: the link is not stable", mode)
		}
	}

	p := baseParams(AuthAccessKeys)
	p.CreateExport, p.Region = false, "eu-central-1"
	link, err := QuickCreateURL("https://b.s3.amazonaws.com/t.yaml", p)
	if err != nil || !strings.HasPrefix(link, "https://eu-central-1.console.aws.amazon.com/cloudformation/home?region=eu-central-1#") {
		t.Errorf("eu-central-1 link = %q, %v", link, err)
	}

	p = costExplorerParams(AuthAssumeRole)
	p.Region = "eu-central-1"
	link, err = QuickCreateURL("https://b.s3.amazonaws.com/t.yaml", p)
	if err != nil || !strings.HasPrefix(link, "https://eu-central-1.console.aws.amazon.com/") ||
		!strings.Contains(link, "&param_ExportType=cost_explorer") || strings.Contains(link, "param_ExportBucket") ||
		!strings.Contains(link, "&param_CreateBucket=false") || !strings.Contains(link, "&param_CreateExport=false") {
		t.Errorf("cost_explorer link = %q, %v", link, err)
	}
	p.CreateExport = true
	_, err = QuickCreateURL("https://b.s3.amazonaws.com/t.yaml", p)
	assertFields(t, err, "CreateExport")

	_, err = QuickCreateURL("http://b.s3.amazonaws.com/t.yaml", baseParams(AuthAssumeRole))
	assertFields(t, err, "TemplateURL")
	bad := baseParams(AuthAssumeRole)
	bad.ExternalID = ""
	_, err = QuickCreateURL("", bad)
	assertFields(t, err, "ExternalID", "TemplateURL")
}

func TestTemplateReturnsACopy(t *testing.T) {
	a := Template()
	a[0] = 'X'
	if Template()[0] == 'X' {
		t.Error("Template shares its bytes with callers")
	}
}

// TestCfnLint runs AWS's CloudFormation linter when it is installed
// (pip install cfn-lint; not packaged for Debian or npm). It knows every
// resource schema and IAM action, which the tests above do not; the
// template is clean under cfn-lint 1.51.0, warnings included.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint is not installed (pip install cfn-lint); the template's own checks ran above")
	}
	out, err := exec.Command(bin, "--format", "parseable", "--", "costlake-customer.yaml").CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode()&(2|4) == 0:
		t.Logf("cfn-lint notes:\n%s", out) // 8: informational
	default: // 2: errors, 4: warnings (e.g. a misspelt IAM action)
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}
