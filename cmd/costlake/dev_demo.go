//go:build !nodev

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/workflows"
)

// The demo reseller: one customer, one payer whose bucket is a folder.
const (
	demoCustomer = "demo"
	demoPayer    = "111122223333" // synth's default payer
	demoBucket   = "costlake-demo-billing"
	demoPrefix   = "cur"
	demoReport   = "costlake-demo"
)

// demo is `costlake dev --demo`: the platform end to end, through the
// gateway's API as an operator would drive it, on data that needs no AWS.
type demoRun struct {
	c        client.Client
	out      io.Writer
	dir      string // the data folder
	gateway  string // http://host:port
	key      string // the operator key
	keyFile  string
	uiURL    string
	ns       string
	rows     int
	today    time.Time
	closeP   period.Period // last month: invoiced, closed by the demo
	currentP period.Period // this month: month to date
}

// DemoBuckets is where a dev worker finds local payers' buckets.
func demoBuckets(dir string) string { return filepath.Join(dir, "source") }

// demoExports is the customer's export folder.
func demoExports(dir string) string { return filepath.Join(dir, "exports") }

// run writes the payer's deliveries once, then registers the customer and
// the payer, onboards it, runs its crawl schedule once and closes last
// month's cycle; each step is skipped when an earlier run did it, so the
// demo can run again on the same data folder.
func (d *demoRun) run(ctx context.Context) error {
	if err := d.waitGateway(ctx); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\ndemo: business date %s: closing %s (invoiced), %s is month to date\n", d.today.Format(time.DateOnly), d.closeP, d.currentP)
	for _, dl := range []struct {
		p        period.Period
		rows     int
		invoiced bool
	}{{d.closeP, d.rows, true}, {d.currentP, max(d.rows/4, 1), false}} {
		if err := d.writeDelivery(ctx, dl.p, dl.rows, dl.invoiced); err != nil {
			return err
		}
	}
	if err := d.setUpCustomer(ctx); err != nil {
		return err
	}
	st, err := d.onboard(ctx)
	if err != nil {
		return err
	}
	if err := d.crawlOnce(ctx); err != nil {
		return err
	}
	res, err := d.closeCycle(ctx)
	if err != nil {
		return err
	}
	d.printWhereToLook(st, res)
	return nil
}

// writeDelivery writes one period's legacy CUR delivery into the local
// bucket, unless its manifest is there. An invoiced delivery carries
// bill/InvoiceId on every row, as AWS writes once the month is invoiced,
// so its period is final at once; the manifests go last, as AWS writes
// them, so a half-written delivery is never seen.
func (d *demoRun) writeDelivery(ctx context.Context, p period.Period, rows int, invoiced bool) error {
	bucket := blob.NewLocal(filepath.Join(demoBuckets(d.dir), demoBucket))
	folder, err := cur.PeriodFolder(p.String())
	if err != nil {
		return err
	}
	if _, err := bucket.Stat(ctx, demoPrefix+"/"+demoReport+"/"+folder+"/"+demoReport+"-Manifest.json"); !errors.Is(err, blob.ErrNotFound) {
		return err // written by an earlier run (or unreadable)
	}
	fmt.Fprintf(d.out, "demo: writing a %d-row legacy CUR delivery for %s into bucket %s …\n", rows, p, demoBucket)
	tmp, err := os.MkdirTemp(d.dir, "demo-delivery-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	staged := blob.NewLocal(tmp)
	gen, err := synth.Generate(ctx, staged, synth.Options{Prefix: demoPrefix, Report: demoReport, Bucket: demoBucket,
		Period: p.String(), Rows: rows, Files: 4, Seed: int64(p.Start().Year()*100 + int(p.Start().Month()))})
	if err != nil {
		return fmt.Errorf("demo delivery: %w", err)
	}
	for _, key := range gen.ReportKeys {
		if err := copyObject(ctx, staged, bucket, key, invoiced, "EUINDEMO-"+p.String()); err != nil {
			return fmt.Errorf("demo delivery %s: %w", key, err)
		}
	}
	for _, key := range []string{gen.AssemblyManifestKey, gen.ManifestKey} {
		if err := copyObject(ctx, staged, bucket, key, false, ""); err != nil {
			return fmt.Errorf("demo delivery %s: %w", key, err)
		}
	}
	return nil
}

// copyObject copies key between stores; with invoice set, a gzip CSV
// chunk gets it as every row's bill/InvoiceId (costs untouched).
func copyObject(ctx context.Context, from, to blob.Store, key string, invoiced bool, invoice string) error {
	rc, err := from.Open(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if !invoiced {
		return to.Put(ctx, key, rc)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(synth.WithInvoiceID(rc, pw, invoice)) }()
	return to.Put(ctx, key, pr)
}

// setUpCustomer records the customer (exports to a local folder), gives
// it the payer's every account and a pricebook, from last month on.
// Assignments and pricebooks of a closed cycle cannot change, so each is
// set only when missing.
func (d *demoRun) setUpCustomer(ctx context.Context) error {
	var view struct {
		Name     string `json:"name"`
		Accounts []any  `json:"accounts"`
	}
	status, err := d.call(ctx, http.MethodGet, "/v1/customers/"+demoCustomer+"?period="+d.closeP.String(), nil, &view)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound || view.Name == "" {
		fmt.Fprintf(d.out, "demo: customer %s, exporting at resale to %s\n", demoCustomer, demoExports(d.dir))
		body := map[string]any{"name": "Demo Customer", "export": map[string]any{
			// A folder on the worker: only an unscoped operator may vouch for it.
			"url": "file://" + demoExports(d.dir), "mode": "at_resale", "operator_override": true,
		}}
		if err := d.expect(ctx, http.MethodPut, "/v1/customers/"+demoCustomer, body, nil, http.StatusOK); err != nil {
			return err
		}
	}
	if len(view.Accounts) == 0 {
		fmt.Fprintf(d.out, "demo: customer %s owns every account of payer %s from %s\n", demoCustomer, demoPayer, d.closeP)
		body := map[string]any{"effective_from": d.closeP.String(), "payers": []map[string]any{{"payer_account_id": demoPayer, "accounts": []string{"*"}}}}
		if err := d.expect(ctx, http.MethodPut, "/v1/customers/"+demoCustomer+"/accounts", body, nil, http.StatusOK); err != nil {
			return err
		}
	}
	status, err = d.call(ctx, http.MethodGet, "/v1/customers/"+demoCustomer+"/pricebook?period="+d.closeP.String(), nil, nil)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		fmt.Fprintf(d.out, "demo: pricebook of %s: 8%% over cost, EC2 at cost, Business support, 20%% VAT\n", demoCustomer)
		body := map[string]any{
			"effective_from": d.closeP.String(),
			"global_percent": "8",
			"rules":          []map[string]any{{"service": "AmazonEC2", "percent": "0", "description": "EC2 at cost"}},
			"support":        map[string]any{"name": "Business", "tiers": []map[string]any{{"from": "0", "percent": "3"}}, "minimum_fee": "100"},
			"taxes":          []map[string]any{{"name": "VAT", "percent": "20"}},
		}
		if err := d.expect(ctx, http.MethodPut, "/v1/customers/"+demoCustomer+"/pricebook", body, nil, http.StatusOK); err != nil {
			return err
		}
	}
	return nil
}

// onboard registers the payer (access mode local) and drives its
// onboarding as an operator does: the stack is reported deployed (a
// local payer has none), the checks run on its folder, the payer is
// approved; approval starts its first ingestion and crawl schedule.
func (d *demoRun) onboard(ctx context.Context) (gateway.PayerResponse, error) {
	var st gateway.PayerResponse
	status, err := d.call(ctx, http.MethodGet, "/v1/payers/"+demoPayer, nil, &st)
	if err != nil {
		return st, err
	}
	if status == http.StatusNotFound {
		fmt.Fprintf(d.out, "demo: registering payer %s (access mode local: its bucket %s is the folder %s)\n",
			demoPayer, demoBucket, filepath.Join(demoBuckets(d.dir), demoBucket))
		reg := map[string]any{
			"customer_id": demoCustomer, "payer_account_id": demoPayer, "name": "Demo payer",
			"access": map[string]any{"mode": "local"},
			"export": map[string]any{"type": "legacy_cur", "bucket": demoBucket, "prefix": demoPrefix, "name": demoReport},
		}
		if err := d.expect(ctx, http.MethodPost, "/v1/payers", reg, nil, http.StatusCreated, http.StatusAccepted, http.StatusOK); err != nil {
			return st, err
		}
	}
	for {
		if _, err := d.call(ctx, http.MethodGet, "/v1/payers/"+demoPayer, nil, &st); err != nil {
			return st, err
		}
		switch st.Status {
		case workflows.StatusAwaitingStack:
			fmt.Fprintln(d.out, "demo: onboarding: stack-deployed (a local payer has no stack), the checks run on its folder")
			if err := d.expect(ctx, http.MethodPost, "/v1/payers/"+demoPayer+"/stack-deployed", nil, nil, http.StatusAccepted, http.StatusOK); err != nil {
				return st, err
			}
		case workflows.StatusAwaitingApproval:
			fmt.Fprintln(d.out, "demo: onboarding: every check passed; approving")
			if err := d.expect(ctx, http.MethodPost, "/v1/payers/"+demoPayer+"/approve", nil, nil, http.StatusAccepted, http.StatusOK); err != nil {
				return st, err
			}
		case workflows.StatusActive:
			if st.ScheduleError != "" {
				return st, fmt.Errorf("payer %s is active without its crawl schedule: %s", demoPayer, st.ScheduleError)
			}
			if st.CrawlSchedule == "" || st.FirstIngestion == nil {
				break // approval is being applied
			}
			if id := st.FirstIngestion.WorkflowID; id != "" {
				var res workflows.IngestBillingPeriodResult
				err := d.c.GetWorkflow(ctx, id, "").Get(ctx, &res)
				switch {
				case runGone(err):
					fmt.Fprintf(d.out, "demo: onboarding: active; first ingestion %s is past the namespace's retention\n", id)
				case err != nil:
					return st, fmt.Errorf("the first ingestion %s: %w", id, describeFailure(err))
				default:
					fmt.Fprintf(d.out, "demo: onboarding: active; first ingestion %s: %d rows\n", id, res.Rows)
				}
			}
			return st, nil
		case workflows.StatusValidating, workflows.StatusRegistered, "":
		default:
			var checks []string
			for _, c := range st.Checks {
				checks = append(checks, c.Name+" "+c.Result+": "+c.Message)
			}
			return st, fmt.Errorf("demo payer %s is %s (%s); to start the demo afresh, remove %s", demoPayer, st.Status, strings.Join(checks, "; "), d.dir)
		}
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// crawlOnce triggers the payer's crawl schedule, unless it has run, and
// waits for that crawl: it finds last month's delivery, which the first
// ingestion (the newest period) left, and ingests it.
func (d *demoRun) crawlOnce(ctx context.Context) error {
	h := d.c.ScheduleClient().GetHandle(ctx, workflows.CrawlScheduleID(demoPayer))
	desc, err := h.Describe(ctx)
	if err != nil {
		return err
	}
	if len(desc.Info.RecentActions) == 0 {
		fmt.Fprintf(d.out, "demo: running crawl schedule %s once\n", workflows.CrawlScheduleID(demoPayer))
		if err := d.expect(ctx, http.MethodPost, "/v1/payers/"+demoPayer+"/crawl", nil, nil, http.StatusAccepted); err != nil {
			return err
		}
	}
	for len(desc.Info.RecentActions) == 0 {
		if err := sleep(ctx, 300*time.Millisecond); err != nil {
			return err
		}
		if desc, err = h.Describe(ctx); err != nil {
			return err
		}
	}
	// The newest crawl: the one triggered above, or on a later run of the
	// demo the schedule's last.
	run := desc.Info.RecentActions[len(desc.Info.RecentActions)-1].StartWorkflowResult
	var res workflows.CrawlPayerResult
	err = d.c.GetWorkflow(ctx, run.WorkflowID, run.FirstExecutionRunID).Get(ctx, &res)
	if runGone(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("crawl %s: %w", run.WorkflowID, describeFailure(err))
	}
	for _, p := range res.Periods {
		fmt.Fprintf(d.out, "demo: crawl %s: %s %s", run.WorkflowID, p.Period, p.Action)
		if p.Rows > 0 {
			fmt.Fprintf(d.out, " (%d rows)", p.Rows)
		}
		fmt.Fprintln(d.out)
	}
	return nil
}

// closeCycle closes last month's cycle through the gateway (it is final:
// every line item is invoiced) and waits for its exports; a cycle an
// earlier run closed is read, not closed again.
func (d *demoRun) closeCycle(ctx context.Context) (*workflows.CloseBillingCycleResult, error) {
	id := workflows.CycleWorkflowID(demoCustomer, d.closeP)
	// Closed (or closing) already: its result is read below.
	_, err := d.c.DescribeWorkflowExecution(ctx, id, "")
	switch {
	case runGone(err):
		fmt.Fprintf(d.out, "demo: closing the %s cycle of %s\n", d.closeP, demoCustomer)
		if err := d.expect(ctx, http.MethodPost, "/v1/customers/"+demoCustomer+"/cycles/"+d.closeP.String()+"/close", map[string]any{}, nil, http.StatusAccepted); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	var res workflows.CloseBillingCycleResult
	if err := d.c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		return nil, fmt.Errorf("cycle %s: %w", id, describeFailure(err))
	}
	return &res, nil
}

func (d *demoRun) printWhereToLook(st gateway.PayerResponse, res *workflows.CloseBillingCycleResult) {
	ui := func(query string) string {
		return fmt.Sprintf("%s/namespaces/%s/workflows?query=%s", d.uiURL, d.ns, url.QueryEscape(query))
	}
	fmt.Fprintf(d.out, `
demo: done. Customer %s, payer %s (local: no AWS), cycle %s closed with pricebook v%d:
  %d line items, cost %s, due %s %s

Where to look:
  Temporal UI, the demo's runs:  %s
    onboarding:  %s
    crawls:      %s
    ingestions:  %s
    cycles:      %s
  Schedules:      %s/namespaces/%s/schedules (%s, %s, %s)
  Console:        %s/
  Gateway API:    %s/v1/payers/%s, /v1/customers/%s, /v1/customers/%s/cycles/%s
  Operator key:   %s (curl -H "Authorization: Bearer $(cat %s)" ...)
  Exports:        %s (invoice.json and invoice.csv beside the line items)
  Local bucket:   %s
`, demoCustomer, demoPayer, res.Period, res.PricebookVersion, res.Rows, res.Bill.Cost, res.Bill.Due, res.Bill.Currency,
		ui(fmt.Sprintf("CostlakePayer=%q OR CostlakeCustomer=%q", demoPayer, demoCustomer)),
		ui(`CostlakeKind="onboarding"`), ui(`CostlakeKind="crawl"`), ui(`CostlakeKind="ingestion"`), ui(`CostlakeKind="cycle"`),
		d.uiURL, d.ns, st.CrawlSchedule, monthend.ScheduleID, maintain.ScheduleID,
		d.gateway, d.gateway, demoPayer, demoCustomer, demoCustomer, res.Period,
		d.keyFile, d.keyFile, demoExports(d.dir), filepath.Join(demoBuckets(d.dir), demoBucket))
	for _, inv := range res.Invoices {
		fmt.Fprintf(d.out, "  Invoice:        %s\n", inv)
	}
}

// waitGateway waits until the gateway in this process answers.
func (d *demoRun) waitGateway(ctx context.Context) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.gateway+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// call sends an API request with the operator key; out, when set, gets
// a 2xx answer's body. It returns the status; an error is a transport
// failure or a status other than 2xx and 404.
func (d *demoRun) call(ctx context.Context, method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.gateway+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+d.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return resp.StatusCode, nil
	case resp.StatusCode/100 != 2:
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	case out != nil:
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// expect is call, failing on a status not in want.
func (d *demoRun) expect(ctx context.Context, method, path string, body, out any, want ...int) error {
	status, err := d.call(ctx, method, path, body, out)
	if err != nil {
		return err
	}
	if !slices.Contains(want, status) {
		return fmt.Errorf("%s %s: status %d", method, path, status)
	}
	return nil
}

// runGone: Temporal holds no such run: it never started, or it closed
// longer ago than the dev namespace keeps runs (days, not forever).
func runGone(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
