package awsemu_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/costlake/costlake/deploy/cloudformation"
	"github.com/costlake/costlake/tests/awsemu"
)

const (
	stsPayer     = "210987654321"
	stsPrincipal = "arn:aws:iam::999999999999:role/costlake-worker"
)

// templateRole puts the role the customer template creates for p.
func templateRole(t *testing.T, emu *awsemu.Server, p cloudformation.Params) string {
	t.Helper()
	p.StackName, p.RoleName = "costlake", "costlake-billing-read"
	p.ExportBucket, p.ExportPrefix, p.ExportType, p.ExportName = "acme-cur", "cur", cloudformation.ExportLegacyCUR, "billing"
	roles, err := cloudformation.RenderRoles(p.StackParameters(), stsPayer, awsemu.Region, p.StackName)
	if err != nil || len(roles) != 1 {
		t.Fatalf("render: %v %v", roles, err)
	}
	emu.PutRole(awsemu.Role{ARN: roles[0].ARN, TrustPolicy: roles[0].TrustPolicy, Policies: roles[0].Policies})
	return roles[0].ARN
}

// TestSTSAssumeRoleEnforcesTrust: the template's assume_role trust admits
// costlake's principal with the external ID only; a source identity
// needs sts:SetSourceIdentity, which the template grants.
func TestSTSAssumeRoleEnforcesTrust(t *testing.T) {
	emu := awsemu.Start(t)
	emu.SetCaller(awsemu.AccessKeyID, stsPrincipal)
	arn := templateRole(t, emu, cloudformation.Params{AuthMode: cloudformation.AuthAssumeRole, CostlakePrincipalArn: stsPrincipal, ExternalID: "costlake-right"})
	client := sts.NewFromConfig(emu.Config())
	ctx := context.Background()
	assume := func(externalID *string, source string) error {
		in := &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("costlake-onboarding-" + stsPayer), ExternalId: externalID}
		if source != "" {
			in.SourceIdentity = aws.String(source)
		}
		_, err := client.AssumeRole(ctx, in)
		return err
	}
	if err := assume(aws.String("costlake-right"), "costlake-"+stsPayer+"-acme"); err != nil {
		t.Fatalf("the right external ID: %v", err)
	}
	for name, id := range map[string]*string{"none": nil, "wrong": aws.String("costlake-wrong"), "empty": aws.String("")} {
		if code := apiCode(t, assume(id, "")); code != "AccessDenied" {
			t.Errorf("external ID %s: %s, want AccessDenied", name, code)
		}
	}
	if code := apiCode(t, func() error {
		_, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + stsPayer + ":role/other"), RoleSessionName: aws.String("s1"), ExternalId: aws.String("costlake-right")})
		return err
	}()); code != "AccessDenied" {
		t.Errorf("a role that does not exist: %s", code)
	}

	// Another principal, and a trust without sts:SetSourceIdentity.
	emu.SetCaller(awsemu.AccessKeyID, "arn:aws:iam::444455556666:role/intruder")
	if code := apiCode(t, assume(aws.String("costlake-right"), "")); code != "AccessDenied" {
		t.Errorf("another principal: %s", code)
	}
	emu.SetCaller(awsemu.AccessKeyID, stsPrincipal)
	emu.PutRole(awsemu.Role{ARN: arn, TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + stsPrincipal +
		`"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"costlake-right"}}}]}`})
	if err := assume(aws.String("costlake-right"), ""); err != nil {
		t.Errorf("without a source identity: %v", err)
	}
	if code := apiCode(t, assume(aws.String("costlake-right"), "costlake-x")); code != "AccessDenied" {
		t.Errorf("a source identity the trust does not allow: %s", code)
	}
	if n := len(emu.Sessions()); n != 2 {
		t.Errorf("%d sessions issued, want 2", n)
	}
}

// token is an unsigned JWT with the claims (the emulator reads, not
// verifies, tokens).
func token(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

// TestSTSWebIdentityEnforcesAudAndSub: the template's web_identity trust
// admits tokens of its provider with its aud and sub only.
func TestSTSWebIdentityEnforcesAudAndSub(t *testing.T) {
	emu := awsemu.Start(t)
	const issuer, aud, sub = "https://id.costlake.example/tenants/acme", "sts.amazonaws.com", "system:serviceaccount:costlake:worker"
	arn := templateRole(t, emu, cloudformation.Params{AuthMode: cloudformation.AuthWebIdentity, OIDCProviderURL: issuer, OIDCAudience: aud, OIDCSubject: sub})
	client := sts.NewFromConfig(emu.Config())
	assume := func(claims map[string]any) error {
		_, err := client.AssumeRoleWithWebIdentity(context.Background(), &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(arn), RoleSessionName: aws.String("costlake-crawl-" + stsPayer), WebIdentityToken: aws.String(token(t, claims)),
		})
		return err
	}
	if err := assume(map[string]any{"iss": issuer, "aud": aud, "sub": sub}); err != nil {
		t.Fatalf("the right token: %v", err)
	}
	for name, claims := range map[string]map[string]any{
		"wrong sub":    {"iss": issuer, "aud": aud, "sub": "system:serviceaccount:other:worker"},
		"wrong aud":    {"iss": issuer, "aud": "someone-else", "sub": sub},
		"no sub":       {"iss": issuer, "aud": aud},
		"other issuer": {"iss": "https://evil.example", "aud": aud, "sub": sub},
	} {
		if code := apiCode(t, assume(claims)); code != "AccessDenied" {
			t.Errorf("%s: %s, want AccessDenied", name, code)
		}
	}
}
