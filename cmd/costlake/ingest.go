package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/workflows"
)

func runIngest(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var tc config.Temporal
	config.AddTemporalFlags(fs, &tc)
	var in workflows.IngestBillingPeriodInput
	fs.StringVar(&in.Source, "source", "", "the CUR report: s3://bucket/prefix/report or file:///path/prefix/report (required)")
	fs.TextVar(&in.Period, "period", period.Period{}, "billing period, YYYY-MM (required)")
	fs.StringVar(&in.PayerAccountID, "payer", "", "expected payer account ID (optional)")
	fs.IntVar(&in.Concurrency, "concurrency", 0, "chunks converted at once (default 2)")
	connected := fs.String("connected-accounts", "", "comma-separated usage accounts to keep; others are counted, not ingested (default: all)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	noWait := fs.Bool("no-wait", false, "start the ingestion and return")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if in.Source == "" || in.Period.IsZero() {
		fs.Usage()
		return errors.New("--source and --period are required")
	}
	if *connected != "" {
		in.Accounts = payer.AccountPolicy{ConnectedOnly: true, Connected: strings.Split(*connected, ",")}
	}
	c, err := dial(tc, nil, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := workflows.StartIngestion(ctx, c, in)
	if err != nil {
		return err
	}
	if *noWait {
		fmt.Fprintf(stdout, "started %s (run %s)\n", run.GetID(), run.GetRunID())
		return nil
	}
	if !*asJSON {
		fmt.Fprintf(os.Stderr, "ingesting %s %s as workflow %s\n", in.Source, in.Period, run.GetID())
	}
	res, err := waitIngestion(ctx, c, run, !*asJSON)
	if err != nil {
		return describeFailure(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printSummary(stdout, res)
	return nil
}

// waitIngestion waits for the run, reporting progress on stderr.
func waitIngestion(ctx context.Context, c client.Client, run client.WorkflowRun, showProgress bool) (*workflows.IngestBillingPeriodResult, error) {
	done := make(chan struct{})
	defer close(done)
	if showProgress {
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			last := ""
			for {
				select {
				case <-done:
					return
				case <-t.C:
					v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.IngestProgressQuery)
					var p workflows.IngestProgress
					if err != nil || v.Get(&p) != nil {
						continue
					}
					line := fmt.Sprintf("  %s: %d/%d chunks, %d rows", p.Stage, p.ChunksDone, p.ChunksTotal, p.Rows)
					if line != last {
						fmt.Fprintln(os.Stderr, line)
						last = line
					}
				}
			}
		}()
	}
	var res workflows.IngestBillingPeriodResult
	if err := run.Get(ctx, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// describeFailure turns a workflow failure into the activity's own words:
// its failure type and message, which name the file and line.
func describeFailure(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return fmt.Errorf("ingestion failed: %s: %s", app.Type(), app.Message())
	}
	return err
}

func printSummary(w io.Writer, r *workflows.IngestBillingPeriodResult) {
	verb := "Ingested"
	switch {
	case r.Unchanged:
		verb = "Already up to date:"
	case r.Superseded:
		verb = "Skipped (a newer assembly is already in the table):"
	}
	fmt.Fprintf(w, "%s %s of payer %s, assembly %s: %d rows from %d chunks (snapshot %d)\n\n",
		verb, r.Period, r.PayerAccountID, r.AssemblyID, r.Rows, r.Chunks, r.SnapshotID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "USAGE ACCOUNT\tROWS\tUNBLENDED COST\t")
	for _, a := range r.Accounts {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", a.Account, a.Rows, a.UnblendedCost)
	}
	fmt.Fprintf(tw, "TOTAL\t%d\t%s\t\n", r.Rows, r.UnblendedCost)
	tw.Flush()
	if r.ExcludedRows > 0 {
		fmt.Fprintf(w, "\nLeft out by the linked-account policy (not connected):\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, a := range r.Excluded {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", a.Account, a.Rows, a.UnblendedCost)
		}
		fmt.Fprintf(tw, "EXCLUDED\t%d\t%s\t\n", r.ExcludedRows, r.ExcludedCost)
		tw.Flush()
	}
	if r.RoundedValues > 0 {
		fmt.Fprintf(w, "\n%d Parquet doubles had more than 18 fractional digits and were rounded half-even to 18.\n", r.RoundedValues)
	}
	if r.DeliveryChanges > 0 {
		fmt.Fprintf(w, "\nThe delivery was rewritten while it was read; the ingestion started over %d time(s) and holds only the newest.\n", r.DeliveryChanges)
	}
}
