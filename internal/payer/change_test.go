package payer

import (
	"testing"

	"github.com/costlake/costlake/internal/period"
)

func registered() Registration {
	r := valid()
	r.Normalize()
	return r
}

func cur2() *Export {
	return &Export{Type: CUR2, Bucket: "acme-cur", Prefix: "cur2", Name: "acme-cur2", DetectExisting: true}
}

func ptr[T any](v T) *T { return &v }

func TestApplyChange(t *testing.T) {
	nov := period.MustParse("2026-11")
	r := registered()
	next, f := r.Apply(Change{Export: cur2(), CutoverFrom: nov})
	if len(f) > 0 {
		t.Fatalf("fields: %v", f)
	}
	if next.Cutover == nil || next.Cutover.Previous.Source() != "s3://acme-cur/cur/billing" || next.Cutover.From != nov {
		t.Fatalf("cutover = %+v", next.Cutover)
	}
	if next.Export.Region != "us-east-1" {
		t.Errorf("the new export is not normalized: %+v", next.Export)
	}
	for p, want := range map[string]string{"2026-10": "s3://acme-cur/cur/billing", "2026-11": "s3://acme-cur/cur2/acme-cur2", "2027-01": "s3://acme-cur/cur2/acme-cur2"} {
		if got := next.ExportFor(period.MustParse(p)).Source(); got != want {
			t.Errorf("period %s from %s, want %s", p, got, want)
		}
	}
	if r.Cutover != nil || r.Export.Type != LegacyCUR {
		t.Error("Apply changed the registration it was called on")
	}

	// A change that does not name the export keeps the cut-over; a new
	// export without cutover_from ends it.
	kept, f := next.Apply(Change{Schedule: &Schedule{Interval: "6h"}})
	if len(f) > 0 || kept.Cutover == nil || kept.Schedule.Interval != "6h" {
		t.Errorf("schedule change: %v, %+v", f, kept)
	}
	moved := *cur2()
	moved.Bucket = "acme-cur-new"
	ended, f := next.Apply(Change{Export: &moved})
	if len(f) > 0 || ended.Cutover != nil || ended.ExportFor(period.MustParse("2020-01")).Bucket != "acme-cur-new" {
		t.Errorf("new bucket: %v, %+v", f, ended)
	}

	// "all" drops the connected list; "connected" needs one.
	conn, f := r.Apply(Change{LinkedAccounts: ptr("connected"), ConnectedAccounts: &[]string{"111122223333"}})
	if len(f) > 0 || conn.LinkedAccounts != "connected" || len(conn.ConnectedAccounts) != 1 {
		t.Errorf("connected: %v %+v", f, conn)
	}
	all, f := conn.Apply(Change{LinkedAccounts: ptr("all")})
	if len(f) > 0 || all.ConnectedAccounts != nil {
		t.Errorf("all: %v %+v", f, all)
	}
}

func TestApplyChangeFieldErrors(t *testing.T) {
	nov := period.MustParse("2026-11")
	ce := &Export{Type: CostExplorer}
	focus := &Export{Type: FOCUS, Bucket: "acme-cur", Prefix: "focus", Name: "acme-focus"}
	create := cur2()
	create.Create, create.DetectExisting = true, false
	createBucket := cur2()
	createBucket.CreateBucket = true
	same := registered().Export
	for _, tc := range []struct {
		name  string
		ch    Change
		field string
	}{
		{"nothing", Change{}, "body"},
		{"cutover without export", Change{CutoverFrom: nov}, "cutover_from"},
		{"cutover to the same export", Change{Export: &same, CutoverFrom: nov}, "cutover_from"},
		{"to cost explorer", Change{Export: ce}, "export.type"},
		{"to focus", Change{Export: focus}, "export.type"},
		{"create the export", Change{Export: create}, "export.create"},
		{"create the bucket", Change{Export: createBucket}, "export.create_bucket"},
		{"bad bucket", Change{Export: &Export{Type: CUR2, Bucket: "A", Name: "x"}}, "export.bucket"},
		{"bad type", Change{Export: &Export{Type: "cur3", Bucket: "acme-cur", Name: "x"}}, "export.type"},
		{"connected without accounts", Change{LinkedAccounts: ptr("connected")}, "connected_accounts"},
		{"bad account", Change{LinkedAccounts: ptr("connected"), ConnectedAccounts: &[]string{"12"}}, "connected_accounts"},
		{"accounts with all", Change{ConnectedAccounts: &[]string{"111122223333"}}, "connected_accounts"},
		{"bad policy", Change{LinkedAccounts: ptr("some")}, "linked_accounts"},
		{"cron too often", Change{Schedule: &Schedule{Cron: "*/5 * * * *"}}, "schedule.cron"},
		{"interval too short", Change{Schedule: &Schedule{Interval: "10m"}}, "schedule.interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, f := registered().Apply(tc.ch)
			if _, ok := f[tc.field]; !ok {
				t.Errorf("fields %v, want %q", f, tc.field)
			}
		})
	}
}

func TestCutoverInRegistration(t *testing.T) {
	r := registered()
	r.Cutover = &Cutover{Previous: r.Export}
	f := r.FieldErrors()
	if _, ok := f["cutover.from"]; !ok {
		t.Errorf("no from: %v", f)
	}
	if _, ok := f["cutover.previous"]; !ok {
		t.Errorf("previous is the current export: %v", f)
	}
}

func TestPolicyFingerprint(t *testing.T) {
	a := AccountPolicy{ConnectedOnly: true, Connected: []string{"111122223333", "444455556666"}}
	b := AccountPolicy{ConnectedOnly: true, Connected: []string{"444455556666", "111122223333", "111122223333"}}
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("order or repeats change the fingerprint: %s, %s", a.Fingerprint(), b.Fingerprint())
	}
	c := AccountPolicy{ConnectedOnly: true, Connected: []string{"111122223333"}}
	if a.Fingerprint() == c.Fingerprint() || (AccountPolicy{}).Fingerprint() != "all" {
		t.Errorf("fingerprints %s %s %s", a.Fingerprint(), c.Fingerprint(), AccountPolicy{}.Fingerprint())
	}
}
