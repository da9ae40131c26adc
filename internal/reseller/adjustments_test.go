package reseller

import (
	"context"
	"errors"
	"testing"

	"github.com/costlake/costlake/internal/money"
)

func TestAdjustmentsGoToTheNextOpenCycleOncePerAssembly(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	adj := Adjustment{CustomerID: "acme", OriginPeriod: "2026-09", PayerAccountID: payerID, Amount: money.MustParse("12.345"), AssemblyID: "a2", SnapshotID: 7}

	// A cycle that is not closed needs no adjustment.
	if _, _, err := s.RecordAdjustment(ctx, adj); !errors.Is(err, ErrNotFound) {
		t.Fatalf("adjusting an open cycle: %v, want ErrNotFound", err)
	}
	must(s.CloseCycle(ctx, Cycle{CustomerID: "acme", Period: "2026-09", PricebookVersion: 1, Snapshots: map[string]int64{payerID: 5}}))

	got, created, err := s.RecordAdjustment(ctx, adj)
	must(err)
	if !created || got.AppliesToPeriod != "2026-10" || got.Amount.String() != "12.345" {
		t.Fatalf("first record = %+v (created %v), want 12.345 for 2026-10", got, created)
	}
	// The same assembly again (a retried activity) changes nothing, even
	// with another amount.
	again := adj
	again.Amount = money.MustParse("99")
	got, created, err = s.RecordAdjustment(ctx, again)
	must(err)
	if created || got.Amount.String() != "12.345" {
		t.Fatalf("second record = %+v (created %v), want the first one back", got, created)
	}

	// Once October closes, a later restatement of September goes to November.
	must(s.CloseCycle(ctx, Cycle{CustomerID: "acme", Period: "2026-10", PricebookVersion: 1, Snapshots: map[string]int64{payerID: 9}}))
	later := adj
	later.AssemblyID, later.Amount = "a3", money.MustParse("-2")
	got, _, err = s.RecordAdjustment(ctx, later)
	must(err)
	if got.AppliesToPeriod != "2026-11" {
		t.Fatalf("after October closed the adjustment applies to %s, want 2026-11", got.AppliesToPeriod)
	}

	oct, err := s.Adjustments(ctx, "acme", "2026-10")
	must(err)
	nov, err := s.Adjustments(ctx, "acme", "2026-11")
	must(err)
	if len(oct) != 1 || oct[0].AssemblyID != "a2" || len(nov) != 1 || nov[0].AssemblyID != "a3" {
		t.Fatalf("October %+v, November %+v", oct, nov)
	}
	all, err := s.AdjustmentsOf(ctx, "acme", "2026-09", payerID)
	must(err)
	if len(all) != 2 {
		t.Fatalf("adjustments of September: %+v", all)
	}
	// The closed cycle itself never changed.
	c, err := s.CycleOf(ctx, "acme", "2026-09")
	must(err)
	if c.Snapshots[payerID] != 5 || c.PricebookVersion != 1 {
		t.Fatalf("closed cycle changed: %+v", c)
	}
	cycles, err := s.ClosedCycles(ctx, "2026-09")
	must(err)
	if len(cycles) != 1 || cycles[0].CustomerID != "acme" {
		t.Fatalf("closed cycles of September: %+v", cycles)
	}
}
