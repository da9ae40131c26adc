package customerops

import (
	"testing"

	"github.com/costlake/costlake/internal/period"
)

// A request names exactly one operation; none or two is no operation, so
// the activity refuses it instead of guessing.
func TestRequestOp(t *testing.T) {
	read := &PeriodRead{Period: period.MustParse("2026-10")}
	for _, tc := range []struct {
		r      Request
		op     string
		change bool
	}{
		{Request{}, "", false},
		{Request{GetCustomer: read}, "get_customer", false},
		{Request{SetAccounts: &AccountsChange{}}, "set_accounts", true},
		{Request{PutPricebook: &PricebookChange{}}, "put_pricebook", true},
		{Request{ClaimPayer: &PayerClaim{}}, "claim_payer", false},
		{Request{GetCustomer: read, GetPricebook: read}, "", false},
	} {
		if got := tc.r.Op(); got != tc.op {
			t.Errorf("%+v: Op() = %q, want %q", tc.r, got, tc.op)
		}
		if got := tc.r.Change(); got != tc.change {
			t.Errorf("%+v: Change() = %v, want %v", tc.r, got, tc.change)
		}
	}
}
