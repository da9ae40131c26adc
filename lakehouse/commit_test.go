package lakehouse_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/lakehouse"
)

func openTestLake(t testing.TB) *lakehouse.Lake {
	t.Helper()
	dir := t.TempDir()
	lake, err := lakehouse.Open(context.Background(), lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	return lake
}

// atOnce runs n calls of fn released together and returns their errors.
func atOnce(n int, fn func(i int) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// TestConcurrentPeriodCommits: payers committing their periods at the same
// moment all land, each once. Every commit but the first of a round loses
// the race to the table's newest metadata and is redone on it.
func TestConcurrentPeriodCommits(t *testing.T) {
	ctx := context.Background()
	lake := openTestLake(t)
	const payers = 12
	inputs := make([]lakehouse.PeriodReplacement, payers)
	for i := range inputs {
		payer := fmt.Sprintf("%012d", 100000000000+i)
		r := writeReport(t, lake, payer, "2026-09", "", "part-0", [2]string{"111111111111", fmt.Sprintf("%d.25", i+1)}, [2]string{"222222222222", "0.000001"})
		inputs[i] = lakehouse.PeriodReplacement{Payer: payer, Period: billingPeriod("2026-09"), RunID: "run-" + payer, Reports: []lakehouse.ReportFiles{{AssemblyID: "a1", DataFiles: r.DataFiles, Rows: r.Rows}}}
	}
	errs := atOnce(payers, func(i int) error {
		_, err := lake.ReplacePeriod(ctx, billing.LineItems, inputs[i])
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("payer %s: %v", inputs[i].Payer, err)
		}
	}
	for i, in := range inputs {
		want := fmt.Sprintf(": 111111111111=%d.25/1 222222222222=0.000001/1", i+1)
		if got := reportSums(t, lake, in.Payer, in.Period.String()); got != want {
			t.Errorf("payer %s holds %q, want %q", in.Payer, got, want)
		}
	}
}

// TestConcurrentAccountsCommits: crawls refreshing their payers' accounts
// at the same moment all land in billing.accounts.
func TestConcurrentAccountsCommits(t *testing.T) {
	ctx := context.Background()
	lake := openTestLake(t)
	const payers = 8
	payer := func(i int) string { return fmt.Sprintf("%012d", 300000000000+i) }
	errs := atOnce(payers, func(i int) error {
		return lake.ReplaceAccounts(ctx, payer(i), []lakehouse.Account{{AccountID: fmt.Sprintf("%012d", 400000000000+i), Name: "member", Status: "ACTIVE"}})
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("payer %s: %v", payer(i), err)
		}
	}
	for i := range payers {
		got, err := lake.Accounts(ctx, payer(i))
		if err != nil || len(got) != 1 || got[0].AccountID != fmt.Sprintf("%012d", 400000000000+i) {
			t.Errorf("payer %s holds %+v (%v), want its one account", payer(i), got, err)
		}
	}
}
