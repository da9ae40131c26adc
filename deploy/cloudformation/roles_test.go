package cloudformation

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRenderRoles: the roles the emulator enforces are the template's,
// rendered for the deployment's account and parameters.
func TestRenderRoles(t *testing.T) {
	p := Params{StackName: "costlake", AuthMode: AuthAssumeRole, CostlakePrincipalArn: "arn:aws:iam::999999999999:role/costlake-worker", ExternalID: "costlake-abc",
		ExportBucket: "acme-cur", ExportPrefix: "cur", ExportType: ExportLegacyCUR, ExportName: "billing", RoleName: "costlake-billing-read"}
	roles, err := RenderRoles(p.StackParameters(), "210987654321", "us-east-1", "costlake")
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 1 || roles[0].ARN != "arn:aws:iam::210987654321:role/costlake-billing-read" {
		t.Fatalf("roles = %+v", roles)
	}
	if !strings.Contains(roles[0].TrustPolicy, `"sts:ExternalId":"costlake-abc"`) {
		t.Errorf("trust policy without the external ID: %s", roles[0].TrustPolicy)
	}
	if len(roles[0].Policies) != 1 || !strings.Contains(roles[0].Policies[0], "arn:aws:s3:::acme-cur/cur/*") {
		t.Errorf("policies = %v", roles[0].Policies)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(roles[0].Policies[0]), &doc); err != nil {
		t.Fatal(err)
	}
	p.ExternalID = ""
	if _, err := RenderRoles(p.StackParameters(), "210987654321", "us-east-1", "costlake"); err == nil {
		t.Error("a stack whose rules fail rendered")
	}
}
