package tests

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/export"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/workflows"
)

const (
	invoicePeriod = "2023-11" // the public sample's month: final by date on the stand's clock
	acmeAccount   = "111100001111"
	globexUSD     = "222200002222"
	globexEUR     = "333300003333"
	euroPayer     = "999988887777"
)

// sourceRow is one line item of the test's source CSV, read with
// shopspring/decimal.
type sourceRow struct {
	id, account, typ, desc, currency string
	cost                             decimal.Decimal
}

// invoiceSource is the public legacy CUR sample as a payer with linked
// accounts and the program discounts and credits real resellers get:
// rows move to acme's and globex's accounts, and acme's usage gets SPP
// and EDP discounts, a partner credit and a promotional credit.
func invoiceSource(t *testing.T) ([][]string, []sourceRow) {
	records := readCSV(t, sharedData(t, "aws-legacy-cur-sample/sample-anonymous-aws-export-dataset.csv"))
	h := records[0]
	col := func(name string) int { return column(t, h, name) }
	acct, typ, cost, id, desc, cur := col("lineItem/UsageAccountId"), col("lineItem/LineItemType"), col("lineItem/UnblendedCost"),
		col("identity/LineItemId"), col("lineItem/LineItemDescription"), col("lineItem/CurrencyCode")
	out := [][]string{h}
	extra := 0
	for i, r := range records[1:] {
		r = slices.Clone(r)
		switch i % 3 {
		case 1:
			r[acct] = acmeAccount
		case 2:
			r[acct] = globexUSD
		}
		out = append(out, r)
		if r[acct] != acmeAccount || r[typ] != "Usage" || extra >= 12 {
			continue
		}
		add := func(t, c, d string) {
			x := slices.Clone(r)
			x[typ], x[cost], x[desc] = t, c, d
			x[id] = r[id] + "-" + strings.ToLower(t) + "-" + d[:3]
			out = append(out, x)
		}
		extra++
		add("SppDiscount", "-0.0123456789", "SPP discount")
		add("EdpDiscount", "-1.5", "EDP discount")
		if extra == 1 {
			add("Credit", "-10", "AWS Partner Network credit: migration")
			add("Credit", "-2.25", "Promotional credit")
		}
	}
	var rows []sourceRow
	for _, r := range out[1:] {
		c := decimal.Zero
		if r[cost] != "" {
			c = decimal.RequireFromString(r[cost])
		}
		rows = append(rows, sourceRow{id: r[id], account: r[acct], typ: r[typ], desc: r[desc], currency: r[cur], cost: c})
	}
	return out, rows
}

// resaleOf prices one row as the test's pricebooks say, independently of
// costlake: SPP, EDP and partner credits are withheld (nil), Tax, Credit
// and Refund pass at cost, everything else gets percent; rate converts
// first.
func resaleOf(r sourceRow, percent, rate decimal.Decimal) *decimal.Decimal {
	if r.typ == "SppDiscount" || r.typ == "EdpDiscount" || r.typ == "Credit" && strings.HasPrefix(r.desc, "AWS Partner Network") {
		return nil
	}
	v := r.cost.Mul(rate)
	switch r.typ {
	case "Tax", "Credit", "Refund":
	default:
		v = v.Mul(decimal.NewFromInt(1).Add(percent.Div(decimal.NewFromInt(100))))
	}
	return &v
}

// TestInvoiceIsARecord closes a cycle on real servers and proves what a
// reseller's customer is charged: the program discounts stay with the
// reseller, the invoice is exported beside the line items and reconciles
// with them to the last digit, it is stored in the catalog database and
// billing.invoices, and GET …/cycles/{period} reads it back after the
// workflow's history is deleted. A customer under payers billed in two
// currencies is refused until its pricebook converts one of them.
func TestInvoiceIsARecord(t *testing.T) {
	s := newCycleStack(t)
	ctx := context.Background()
	src := s.minio.CreateBucket(t, "invoice-cur")
	records, rows := invoiceSource(t)
	d := delivery{prefix: "cur", report: "sample", period: invoicePeriod, assembly: "20231203T041213Z", payer: samplePayer,
		header: records[0], chunks: csvChunks(t, records, 2)}
	d.upload(t, src, "invoice-cur")
	_, err := s.ingest("s3://invoice-cur/cur/sample", invoicePeriod)
	require.NoError(t, err)

	acmeBills := s.minio.CreateBucket(t, "acme-invoices")
	require.NoError(t, s.reseller.PutCustomer(ctx, reseller.Customer{ID: "acme",
		Export: &reseller.Destination{URL: "s3://acme-invoices/aws", Mode: "at_resale", OperatorOverride: true}}, "test"))
	require.NoError(t, s.reseller.SetAccounts(ctx, "acme", invoicePeriod, []reseller.Assignment{{PayerAccountID: samplePayer, Accounts: []string{acmeAccount}}}, "test"))
	_, err = s.reseller.PutPricebook(ctx, "acme", invoicePeriod,
		[]byte(`{"effective_from":"`+invoicePeriod+`","global_percent":"10","partner_credits":["AWS Partner Network*"]}`), "test")
	require.NoError(t, err)

	res := s.close("acme", invoicePeriod)

	// Priced independently: the bill is the kept rows' resale, exactly.
	want, withheld, kept := decimal.Zero, 0, 0
	for _, r := range rows {
		if r.account != acmeAccount {
			continue
		}
		if v := resaleOf(r, decimal.NewFromInt(10), decimal.NewFromInt(1)); v != nil {
			want = want.Add(*v)
			kept++
		} else {
			withheld++
		}
	}
	require.Equal(t, 25, withheld, "12 SPP, 12 EDP and 1 partner credit are the reseller's, and nothing else")
	got := decimal.RequireFromString(res.Bill.Total.String())
	require.Truef(t, got.Equal(want), "bill total %s, priced independently %s", got, want)
	require.Equal(t, "USD", res.Bill.Currency)
	require.Len(t, res.Invoices, 1)

	// The export: line items without the reseller's discounts, and the
	// invoice beside them reconciling exactly.
	require.Len(t, res.Exports, 1)
	header, lines, _ := readExport(t, acmeBills, res.Exports[0].ManifestKey)
	idCol, costCol := column(t, header, "RecordId"), column(t, header, "UnBlendedCost")
	exported := decimal.Zero
	for _, l := range lines {
		require.NotContains(t, l[idCol], "discount", "the customer's export shows a reseller discount")
		require.NotContains(t, l[idCol], "-credit-AWS", "the customer's export shows the partner credit")
		exported = exported.Add(decimal.RequireFromString(l[costCol]))
	}
	require.Equal(t, kept, len(lines))
	jsonKey, csvKey := export.InvoiceKeys("aws/at-resale", "acme", invoicePeriod)
	require.Equal(t, "s3://acme-invoices/"+jsonKey, res.Invoices[0])
	inv, err := export.ReadInvoice(ctx, acmeBills, jsonKey)
	require.NoError(t, err)
	require.NoError(t, inv.Check())
	rec := inv.Reconciliation
	require.Truef(t, exported.Equal(decimal.RequireFromString(rec.Exported.String())), "exported %s, invoice says %s", exported, rec.Exported)
	require.Truef(t, exported.Equal(decimal.RequireFromString(rec.LineItems.String())), "the invoice's line items %s, the export's %s", rec.LineItems, exported)
	total := decimal.RequireFromString(rec.LineItems.String()).Add(decimal.RequireFromString(rec.SupportFee.String())).
		Add(decimal.RequireFromString(rec.Credits.String())).Add(decimal.RequireFromString(rec.Adjustments.String()))
	require.True(t, total.Equal(got), "line items + support + credits + adjustments = total")
	rc, err := acmeBills.Open(ctx, csvKey)
	require.NoError(t, err)
	invoiceCSV, err := csv.NewReader(rc).ReadAll()
	rc.Close()
	require.NoError(t, err)
	require.Len(t, invoiceCSV, 1+len(res.Bill.Lines)+2, "header, lines, total and due")
	last := invoiceCSV[len(invoiceCSV)-2]
	require.Equal(t, []string{"total", res.Bill.Total.String(), "USD"}, []string{last[1], last[6], last[7]})

	// billing.invoices holds the same lines.
	tableLines, err := s.lake.ScanInvoice(ctx, "acme", invoicePeriod)
	require.NoError(t, err)
	require.Len(t, tableLines, len(res.Bill.Lines))
	sum := decimal.Zero
	for _, l := range tableLines {
		sum = sum.Add(decimal.RequireFromString(l.Amount.String()))
	}
	require.True(t, sum.Equal(got), "billing.invoices sums to %s", sum)

	// The history goes; the invoice stays.
	keys, operator, _, _ := testKeys()
	srv := httptest.NewServer(validatingGateway(t, gateway.New(s.client, slog.New(slog.NewTextHandler(io.Discard, nil)),
		gateway.Config{Keys: keys, Records: s.reseller})))
	t.Cleanup(srv.Close)
	api := apiClient{t: t, base: srv.URL, key: operator}
	var before gateway.CycleResponse
	require.Equal(t, http.StatusOK, api.do(http.MethodGet, "/v1/customers/acme/cycles/"+invoicePeriod, "", &before))
	require.Equal(t, "workflow", before.Source)
	deleteHistory(t, s.client, workflows.CycleWorkflowID("acme", billingPeriod(invoicePeriod)))
	var after gateway.CycleResponse
	require.Equal(t, http.StatusOK, api.do(http.MethodGet, "/v1/customers/acme/cycles/"+invoicePeriod, "", &after))
	require.Equal(t, "records", after.Source)
	require.Equal(t, "completed", after.Status)
	require.Empty(t, after.Failure)
	require.NotNil(t, after.Result)
	require.Equal(t, res.Bill.Total, after.Result.Bill.Total)
	require.Equal(t, res.Bill.Due, after.Result.Bill.Due)
	require.Equal(t, len(res.Bill.Lines), len(after.Result.Bill.Lines))
	require.Equal(t, res.Snapshots, after.Result.Snapshots)
	var missing gateway.Error
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/v1/customers/acme/cycles/2023-10", "", &missing))

	// Mixed currencies: globex owns a USD account of this payer and an
	// account of a payer billed in EUR.
	eur := slices.Clone(records)
	acct, payer, cur := column(t, eur[0], "lineItem/UsageAccountId"), column(t, eur[0], "bill/PayerAccountId"), column(t, eur[0], "lineItem/CurrencyCode")
	var eurRows []sourceRow
	for i := 1; i < len(eur); i++ {
		eur[i] = slices.Clone(eur[i])
		eur[i][acct], eur[i][payer], eur[i][cur] = globexEUR, euroPayer, "EUR"
	}
	for _, r := range rows {
		r.account, r.currency = globexEUR, "EUR"
		eurRows = append(eurRows, r)
	}
	d2 := delivery{prefix: "eur", report: "sample", period: invoicePeriod, assembly: "20231203T041213Z", payer: euroPayer,
		header: eur[0], chunks: csvChunks(t, eur, 1)}
	d2.upload(t, src, "invoice-cur")
	_, err = s.ingest("s3://invoice-cur/eur/sample", invoicePeriod)
	require.NoError(t, err)
	require.NoError(t, s.reseller.SetAccounts(ctx, "globex", invoicePeriod, []reseller.Assignment{
		{PayerAccountID: samplePayer, Accounts: []string{globexUSD}}, {PayerAccountID: euroPayer, Accounts: []string{globexEUR}}}, "test"))
	_, err = s.reseller.PutPricebook(ctx, "globex", invoicePeriod, []byte(`{"effective_from":"`+invoicePeriod+`","global_percent":"5"}`), "test")
	require.NoError(t, err)
	_, err = s.tryClose("globex", invoicePeriod)
	require.ErrorContains(t, err, "EUR")
	require.ErrorContains(t, err, cycle.ErrTypeCurrency)
	_, err = s.reseller.CycleOf(ctx, "globex", invoicePeriod)
	require.ErrorIs(t, err, reseller.ErrNotFound, "a refused cycle pins nothing")

	// With a conversion at a rate the pricebook pins, it closes in USD.
	_, err = s.reseller.PutPricebook(ctx, "globex", invoicePeriod,
		[]byte(`{"effective_from":"`+invoicePeriod+`","global_percent":"5","currency":"USD","conversions":[{"from":"EUR","rate":"1.0825"}],"partner_credits":["AWS Partner Network*"]}`), "test")
	require.NoError(t, err)
	g := s.close("globex", invoicePeriod)
	want = decimal.Zero
	for _, r := range slices.Concat(rows, eurRows) {
		rate := decimal.NewFromInt(1)
		switch {
		case r.account == globexEUR:
			rate = decimal.RequireFromString("1.0825")
		case r.account != globexUSD:
			continue
		}
		if v := resaleOf(r, decimal.NewFromInt(5), rate); v != nil {
			want = want.Add(*v)
		}
	}
	require.Equal(t, "USD", g.Bill.Currency)
	require.Truef(t, decimal.RequireFromString(g.Bill.Total.String()).Equal(want), "globex bill %s, priced independently %s", g.Bill.Total, want)
}

// deleteHistory deletes a workflow's history, as Temporal's retention
// does, and waits until it is gone.
func deleteHistory(t *testing.T, c client.Client, wid string) {
	t.Helper()
	ctx := context.Background()
	// The stand's namespace is temporaltest's own (temporaltest-…).
	nss, err := c.WorkflowService().ListNamespaces(ctx, &workflowservice.ListNamespacesRequest{})
	require.NoError(t, err)
	ns := ""
	for _, n := range nss.GetNamespaces() {
		if name := n.GetNamespaceInfo().GetName(); strings.HasPrefix(name, "temporaltest-") {
			ns = name
		}
	}
	require.NotEmpty(t, ns)
	_, err = c.WorkflowService().DeleteWorkflowExecution(ctx, &workflowservice.DeleteWorkflowExecutionRequest{
		Namespace: ns, WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: wid}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := c.DescribeWorkflowExecution(ctx, wid, "")
		var nf *serviceerror.NotFound
		return errors.As(err, &nf)
	}, 3*time.Minute, 200*time.Millisecond, "the history is deleted (the server deletes in the background)")
}
