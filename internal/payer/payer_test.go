package payer

import (
	"errors"
	"testing"
)

func valid() Registration {
	return Registration{
		CustomerID: "acme", PayerAccountID: "210987654321",
		Access: Access{Mode: AssumeRole},
		Export: Export{Type: LegacyCUR, Bucket: "acme-cur", Prefix: "/cur/", Name: "billing", DetectExisting: true},
	}
}

func TestNormalizeFillsDefaults(t *testing.T) {
	r := valid()
	r.Normalize()
	if r.Access.RoleARN != "arn:aws:iam::210987654321:role/costlake-billing-read" {
		t.Errorf("role ARN = %q", r.Access.RoleARN)
	}
	if r.Export.Prefix != "cur" || r.Export.Region != "us-east-1" || r.LinkedAccounts != "all" {
		t.Errorf("normalized export %+v, policy %q", r.Export, r.LinkedAccounts)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := r.Export.Source(); got != "s3://acme-cur/cur/billing" {
		t.Errorf("source = %q", got)
	}
	r.Export.Type, r.Export.DetectExisting = Partner, false
	if got := r.Export.Source(); got != "s3://acme-cur/cur" {
		t.Errorf("partner source = %q", got)
	}
}

func TestFieldErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Registration)
		field string
	}{
		{"role in another account", func(r *Registration) { r.Access.RoleARN = "arn:aws:iam::111122223333:role/x" }, "access.role_arn"},
		{"web identity without token", func(r *Registration) {
			r.Access = Access{Mode: WebIdentity, RoleARN: "arn:aws:iam::210987654321:role/x"}
			r.OIDC = &OIDC{ProviderURL: "https://issuer", Audience: "a", Subject: "s"}
		}, "access.token_file"},
		{"web identity without oidc", func(r *Registration) {
			r.Access = Access{Mode: WebIdentity, RoleARN: "arn:aws:iam::210987654321:role/x", TokenFile: "/t"}
		}, "oidc"},
		{"oidc over http", func(r *Registration) {
			r.Access = Access{Mode: WebIdentity, RoleARN: "arn:aws:iam::210987654321:role/x", TokenFile: "/t"}
			r.OIDC = &OIDC{ProviderURL: "http://issuer", Audience: "a", Subject: "s"}
		}, "oidc.provider_url"},
		{"keys instead of a reference", func(r *Registration) { r.Access = Access{Mode: AccessKeys, SecretRef: "AKIAIOSFODNN7EXAMPLE"} }, "access.secret_ref"},
		{"partner export created", func(r *Registration) { r.Export.Type, r.Export.DetectExisting, r.Export.Create = Partner, false, true }, "export.create"},
		{"bad bucket", func(r *Registration) { r.Export.Bucket = "Acme_CUR" }, "export.bucket"},
		{"connected without accounts", func(r *Registration) { r.LinkedAccounts = "connected" }, "connected_accounts"},
		{"unknown policy", func(r *Registration) { r.LinkedAccounts = "some" }, "linked_accounts"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := valid()
			r.Normalize()
			c.edit(&r)
			f := r.FieldErrors()
			if _, ok := f[c.field]; !ok {
				t.Fatalf("no error for %s; got %v", c.field, f)
			}
			if err := r.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCostExplorerPayerNeedsNoBucket(t *testing.T) {
	r := Registration{CustomerID: "acme", PayerAccountID: "210987654321", Access: Access{Mode: AssumeRole}, Export: Export{Type: CostExplorer}}
	r.Normalize()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if r.Export.Source() != "" {
		t.Errorf("source = %q, want none", r.Export.Source())
	}
	r.Export.Bucket, r.Export.Create = "acme-cur", true
	f := r.FieldErrors()
	if f["export.bucket"] == "" || f["export.create"] == "" {
		t.Errorf("field errors %v", f)
	}
}

func TestScheduleFieldErrors(t *testing.T) {
	for _, c := range []struct {
		s     Schedule
		field string
	}{
		{Schedule{Cron: "61 * * * *"}, "cron"},
		{Schedule{Cron: "0 0 * *"}, "cron"},
		{Schedule{Cron: "0 0 * * *", Interval: "6h"}, "interval"},
		{Schedule{Interval: "30s"}, "interval"},
		{Schedule{Jitter: "soon"}, "jitter"},
		// Crawls are bounded: at least an hour apart, at most a week.
		{Schedule{Interval: "59m"}, "interval"},
		{Schedule{Interval: "169h"}, "interval"},
		{Schedule{Cron: "*/30 * * * *"}, "cron"},
		{Schedule{Cron: "0,5 9 * * 1"}, "cron"},
		{Schedule{Jitter: "7h"}, "jitter"},
		{Schedule{CatchupWindow: "200h"}, "catchup_window"},
	} {
		if _, ok := c.s.FieldErrors()[c.field]; !ok {
			t.Errorf("%+v: no error for %s", c.s, c.field)
		}
	}
	for _, s := range []Schedule{
		{Cron: "30 6 * * 1-5", Jitter: "10m", CatchupWindow: "12h"},
		{Cron: "0 * * * *"}, {Cron: "0 0 1 * *"}, {Interval: "1h"}, {Interval: "168h", Jitter: "6h"},
	} {
		if f := s.FieldErrors(); len(f) != 0 {
			t.Errorf("valid schedule %+v: %v", s, f)
		}
	}
}

// A local payer (costlake dev) names only its bucket: no AWS identity,
// and no export for AWS to create or look up.
func TestLocalRegistration(t *testing.T) {
	reg := Registration{CustomerID: "demo", PayerAccountID: "111122223333", Access: Access{Mode: Local},
		Export: Export{Type: LegacyCUR, Bucket: "demo-billing", Prefix: "cur", Name: "report"}}
	reg.Normalize()
	if err := reg.Validate(); err != nil {
		t.Fatalf("valid local registration refused: %v", err)
	}
	if reg.Access.RoleARN != "" {
		t.Errorf("a local payer got a role %s", reg.Access.RoleARN)
	}
	bad := reg
	bad.Access.RoleARN = "arn:aws:iam::111122223333:role/x"
	bad.Export.DetectExisting = true
	f := bad.FieldErrors()
	for _, field := range []string{"access.role_arn", "export.detect_existing"} {
		if f[field] == "" {
			t.Errorf("no error on %s: %v", field, f)
		}
	}
}
