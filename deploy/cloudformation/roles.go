package cloudformation

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Role is an IAM role the template creates, with its policies, as
// deploying it would make them.
type Role struct {
	Name        string
	ARN         string
	TrustPolicy string   // the AssumeRolePolicyDocument, JSON
	Policies    []string // its managed and inline policy documents, JSON
}

// RenderRoles deploys the template on paper with the stack parameters
// (as [Params.StackParameters] gives them) in an account, region and
// stack name: parameters with their constraints, rules, conditions and
// intrinsic functions resolved as CloudFormation would. It returns the
// IAM roles the stack creates, which the test stand's AWS emulator
// enforces, so that tests run against what the template grants and not
// against a copy of it.
func RenderRoles(parameters map[string]string, account, region, stackName string) ([]Role, error) {
	tp, err := parseTemplate()
	if err != nil {
		return nil, err
	}
	s, err := newStackIn(tp, parameters, region, account, stackName)
	if err != nil {
		return nil, err
	}
	failed, err := s.failedRules()
	if err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("the stack's rules fail: %s", strings.Join(failed, "; "))
	}
	r, err := s.render()
	if err != nil {
		return nil, err
	}
	var roles []Role
	for _, name := range slices.Sorted(maps.Keys(r.resources)) {
		res := r.resources[name]
		if res["Type"] != "AWS::IAM::Role" {
			continue
		}
		props, _ := res["Properties"].(map[string]any)
		role := Role{Name: fmt.Sprint(props["RoleName"])}
		role.ARN = "arn:aws:iam::" + account + ":role/" + role.Name
		if role.TrustPolicy, err = policyJSON(props["AssumeRolePolicyDocument"]); err != nil {
			return nil, fmt.Errorf("role %s trust policy: %w", name, err)
		}
		for _, ref := range strs(props["ManagedPolicyArns"]) {
			// Ref of a policy this stack creates; AWS-managed policies
			// (by ARN) are not part of the template.
			policy, ok := strings.CutPrefix(ref, "ref:")
			if !ok {
				continue
			}
			doc, err := policyJSON(dig(r.resources[policy], "Properties", "PolicyDocument"))
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", policy, err)
			}
			role.Policies = append(role.Policies, doc)
		}
		for _, p := range asList(props["Policies"]) {
			doc, err := policyJSON(dig(p, "PolicyDocument"))
			if err != nil {
				return nil, fmt.Errorf("role %s inline policy: %w", name, err)
			}
			role.Policies = append(role.Policies, doc)
		}
		roles = append(roles, role)
	}
	return roles, nil
}

// policyJSON is a policy document as JSON: the template writes some as
// mappings and some (whose keys it computes) as JSON text.
func policyJSON(v any) (string, error) {
	switch d := v.(type) {
	case string:
		if !json.Valid([]byte(d)) {
			return "", fmt.Errorf("not valid JSON")
		}
		return d, nil
	case map[string]any:
		b, err := json.Marshal(d)
		return string(b), err
	}
	return "", fmt.Errorf("want a policy document, got %T", v)
}
