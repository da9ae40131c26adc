//go:build !nodev

package main

import (
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/workflows"
)

// The bench fails when DuckDB reads anything else from costlake's files
// than the ingestion committed.
func TestReadBackCheck(t *testing.T) {
	res := &workflows.IngestBillingPeriodResult{Rows: 3, UnblendedCost: money.MustParse("1.5"), Accounts: []billing.AccountTotal{
		{Account: "111111111111", Rows: 2, UnblendedCost: money.MustParse("1")},
		{Account: "222222222222", Rows: 1, UnblendedCost: money.MustParse("0.5")},
	}}
	good := func() *duckdbReadBack {
		return &duckdbReadBack{Files: 1, Rows: 3, UnblendedCost: money.MustParse("1.500000"), Accounts: []billing.AccountTotal{
			{Account: "111111111111", Rows: 2, UnblendedCost: money.MustParse("1.000")},
			{Account: "222222222222", Rows: 1, UnblendedCost: money.MustParse("0.5")},
		}}
	}
	if err := good().check(res); err != nil {
		t.Fatalf("equal reading refused: %v", err)
	}
	for name, spoil := range map[string]func(*duckdbReadBack){
		"rows":          func(rb *duckdbReadBack) { rb.Rows = 2 },
		"cost":          func(rb *duckdbReadBack) { rb.UnblendedCost = money.MustParse("1.500000000000000001") },
		"account rows":  func(rb *duckdbReadBack) { rb.Accounts[1].Rows = 0 },
		"account cost":  func(rb *duckdbReadBack) { rb.Accounts[0].UnblendedCost = money.MustParse("0.99") },
		"account count": func(rb *duckdbReadBack) { rb.Accounts = rb.Accounts[:1] },
	} {
		rb := good()
		spoil(rb)
		if err := rb.check(res); err == nil || !strings.Contains(err.Error(), "DuckDB read") {
			t.Errorf("%s: got %v, want an error naming what DuckDB read", name, err)
		}
	}
}
