package tests

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/restcatalog"
	"github.com/costlake/costlake/lakehouse"
)

// TestIcebergRESTCatalog closes two customers' cycles on real servers and
// reads the lake through the gateway's Iceberg REST catalog with
// iceberg-go's REST client: an operator key lists and loads
// billing.line_items, whose scan sums to the source exactly; a key scoped
// to acme, exchanged for a token by OAuth2 client credentials, sees only
// customer_acme, whose resale table sums to acme's export exactly (through
// iceberg-go and through icebird, an independent reader given the
// metadata file the catalog names) and references acme's files only;
// billing.* is forbidden to it and globex's namespace does not exist for
// it. Writes are refused in the protocol's error model.
func TestIcebergRESTCatalog(t *testing.T) {
	dir := icebirdDir(t)
	s := newCycleStack(t)
	ctx := context.Background()
	const (
		payerID = "555566667777"
		period  = "2026-09"
	)
	src := s.minio.CreateBucket(t, "rest-cur")
	gen, err := synth.Generate(ctx, src, synth.Options{Prefix: "cur", Report: "billing", Bucket: "rest-cur", Period: period,
		Rows: 1500, Files: 1, Seed: 41, Payer: payerID, LinkedAccounts: 4, AssemblyID: "20261003T000000Z"})
	require.NoError(t, err)
	_, err = s.ingest("s3://rest-cur/cur/billing", period)
	require.NoError(t, err)
	var linked []string
	for a := range gen.Accounts {
		if a != payerID {
			linked = append(linked, a)
		}
	}
	slices.Sort(linked)
	require.GreaterOrEqual(t, len(linked), 2)
	exports := map[string]string{"acme": t.TempDir(), "globex": t.TempDir()}
	owned := map[string][]string{"acme": {linked[0]}, "globex": {linked[1]}}
	for c, accts := range owned {
		require.NoError(t, s.reseller.PutCustomer(ctx, reseller.Customer{ID: c,
			Export: &reseller.Destination{URL: "file://" + exports[c], Mode: "at_resale", OperatorOverride: true}}, "test"))
		require.NoError(t, s.reseller.SetAccounts(ctx, c, period, []reseller.Assignment{{PayerAccountID: payerID, Accounts: accts}}, "test"))
		_, err := s.reseller.PutPricebook(ctx, c, period, json.RawMessage(`{"effective_from":"`+period+`","global_percent":"7.125"}`), "test")
		require.NoError(t, err)
	}
	acme := s.close("acme", period)
	s.close("globex", period)
	require.Len(t, acme.Exports, 1)
	exportRows, exportSum, _ := exportSum(t, blob.NewLocal("/"), acme.Exports[0].ManifestKey)
	require.Positive(t, exportRows)

	// The gateway, with the catalog on a read-only connection.
	cat, closeCat, err := lakehouse.OpenReadOnlyCatalog(lakehouse.Config{Catalog: testCatalog(t, s.dir)})
	require.NoError(t, err)
	t.Cleanup(func() { closeCat() })
	operator, op := gateway.NewAPIKey("op", gateway.RoleOperator, "")
	acmeKey, ak := gateway.NewAPIKey("acme-reader", gateway.RoleViewer, "acme")
	srv := httptest.NewServer(gateway.New(s.client, slog.New(slog.NewTextHandler(io.Discard, nil)),
		gateway.Config{Keys: []gateway.APIKey{op, ak}, Records: s.reseller, Iceberg: restcatalog.New(cat, nil)}))
	t.Cleanup(srv.Close)
	uri := srv.URL + "/iceberg"

	// The operator, its key as the bearer token.
	opCat, err := rest.NewCatalog(ctx, "costlake", uri, rest.WithOAuthToken(operator))
	require.NoError(t, err)
	nss, err := opCat.ListNamespaces(ctx, nil)
	require.NoError(t, err)
	require.ElementsMatch(t, []table.Identifier{{"billing"}, {"customer_acme"}, {"customer_globex"}}, nss)
	var billingTables []string
	for id, err := range opCat.ListTables(ctx, table.Identifier{"billing"}) {
		require.NoError(t, err)
		billingTables = append(billingTables, id[1])
	}
	require.Subset(t, billingTables, []string{"line_items", "resale_line_items", "invoices"})
	lineItems, err := opCat.LoadTable(ctx, table.Identifier{"billing", "line_items"})
	require.NoError(t, err)
	rows, sums := scanSums(t, lineItems, billing.ColUnblendedCost)
	wantRows, wantCost := 0, decimal.Zero
	for _, a := range gen.Accounts {
		wantRows += a.Rows
		wantCost = wantCost.Add(decimal.RequireFromString(a.UnblendedCost))
	}
	require.Equal(t, wantRows, rows)
	require.Truef(t, sums[0].Equal(wantCost), "billing.line_items through the REST catalog: %s, source %s", sums[0], wantCost)

	// acme's key, exchanged for a token (OAuth2 client credentials).
	acmeCat, err := rest.NewCatalog(ctx, "costlake", uri, rest.WithCredential("acme-reader:"+acmeKey))
	require.NoError(t, err)
	nss, err = acmeCat.ListNamespaces(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, []table.Identifier{{"customer_acme"}}, nss)
	resale, err := acmeCat.LoadTable(ctx, table.Identifier{"customer_acme", "resale_line_items"})
	require.NoError(t, err)
	rows, sums = scanSums(t, resale, lakehouse.ColResaleResale, lakehouse.ColResaleCost)
	require.Equal(t, exportRows, rows)
	require.Truef(t, sums[0].Equal(exportSum), "customer_acme.resale_line_items: %s, acme's export %s", sums[0], exportSum)
	require.True(t, decimal.RequireFromString(acme.Bill.Total.String()).Equal(sums[0]))
	invoices, err := acmeCat.LoadTable(ctx, table.Identifier{"customer_acme", "invoices"})
	require.NoError(t, err)
	_, amounts := scanSums(t, invoices, "amount")
	require.Truef(t, decimal.RequireFromString(acme.Bill.Total.String()).Equal(amounts[0]), "acme's invoice lines %s, bill %s", amounts[0], acme.Bill.Total)

	ok, err := acmeCat.CheckTableExists(ctx, table.Identifier{"customer_acme", "resale_line_items"})
	require.NoError(t, err)
	require.True(t, ok)

	// Every file acme's metadata names lies under acme's tables.
	for _, tbl := range []*table.Table{resale, invoices} {
		tasks, err := tbl.Scan().PlanFiles(ctx)
		require.NoError(t, err)
		require.NotEmpty(t, tasks)
		for _, task := range tasks {
			require.Truef(t, strings.HasPrefix(task.File.FilePath(), tbl.Location()+"/"), "%s outside %s", task.File.FilePath(), tbl.Location())
		}
		require.NotContains(t, tbl.Location(), "billing")
		require.True(t, strings.HasPrefix(tbl.MetadataLocation(), tbl.Location()+"/"))
	}

	// icebird, given the metadata file the catalog returned.
	read := exec.Command("node", "sum.mjs", strings.TrimPrefix(resale.Location(), "file://"), path.Base(resale.MetadataLocation()),
		lakehouse.ColResaleCustomer, lakehouse.ColResaleResale, lakehouse.ColResaleCost)
	read.Dir = dir
	read.Stderr = os.Stderr
	out, err := read.Output()
	require.NoError(t, err)
	var got map[string]map[string]any
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, 1, "icebird saw other customers: %s", out)
	require.EqualValues(t, exportRows, got["acme"]["rows"])
	require.Truef(t, decimal.RequireFromString(got["acme"][lakehouse.ColResaleResale].(string)).Equal(exportSum),
		"icebird: %s, acme's export %s", got["acme"][lakehouse.ColResaleResale], exportSum)
	require.True(t, decimal.RequireFromString(got["acme"][lakehouse.ColResaleCost].(string)).Equal(sums[1]))

	// What acme may not see.
	_, err = acmeCat.LoadTable(ctx, table.Identifier{"billing", "line_items"})
	require.ErrorIs(t, err, rest.ErrForbidden)
	_, err = acmeCat.LoadTable(ctx, table.Identifier{"billing", "resale_line_items"})
	require.ErrorIs(t, err, rest.ErrForbidden)
	_, err = acmeCat.LoadTable(ctx, table.Identifier{"customer_globex", "resale_line_items"})
	require.ErrorIs(t, err, catalog.ErrNoSuchTable)
	ok, err = acmeCat.CheckNamespaceExists(ctx, table.Identifier{"customer_globex"})
	require.NoError(t, err)
	require.False(t, ok, "globex's namespace exists for acme's key")

	// The error model, and secrets never echoed.
	var iceErr restcatalog.ErrorBody
	status := icebergCall(t, http.MethodGet, uri+"/v1/namespaces", "clk_nope", "", &iceErr)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, restcatalog.TypeNotAuthorized, iceErr.Error.Type)
	require.Equal(t, 401, iceErr.Error.Code)
	var oauthErr gateway.OAuthError
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"acme-reader"}, "client_secret": {"clk_wrong-secret"}}.Encode()
	raw := icebergRaw(t, http.MethodPost, uri+"/v1/oauth/tokens", "", form)
	require.Equal(t, http.StatusUnauthorized, raw.status)
	require.NoError(t, json.Unmarshal(raw.body, &oauthErr))
	require.Equal(t, "invalid_client", oauthErr.Error)
	require.NotContains(t, string(raw.body), "clk_wrong-secret")
	_, err = rest.NewCatalog(ctx, "costlake", uri, rest.WithCredential("acme-reader:clk_wrong-secret"))
	require.Error(t, err)
	var tok gateway.TokenResponse
	form = url.Values{"grant_type": {"client_credentials"}, "client_secret": {acmeKey}}.Encode()
	raw = icebergRaw(t, http.MethodPost, uri+"/v1/oauth/tokens", "", form)
	require.Equal(t, http.StatusOK, raw.status, "%s", raw.body)
	require.NoError(t, json.Unmarshal(raw.body, &tok))
	require.Equal(t, "bearer", tok.TokenType)
	require.NotContains(t, tok.AccessToken, acmeKey)
	require.Equal(t, http.StatusOK, icebergCall(t, http.MethodGet, uri+"/v1/namespaces/customer_acme/tables", tok.AccessToken, "", nil))
	// A catalog token opens the catalog only.
	require.Equal(t, http.StatusUnauthorized, icebergCall(t, http.MethodGet, srv.URL+"/v1/customers/acme", tok.AccessToken, "", nil))

	// Read-only: writes are refused in the error model.
	for _, w := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/namespaces", `{"namespace":["x"]}`},
		{http.MethodPost, "/v1/namespaces/billing/tables", `{"name":"x"}`},
		{http.MethodPost, "/v1/namespaces/billing/tables/line_items", `{}`},
		{http.MethodDelete, "/v1/namespaces/billing/tables/line_items", ""},
		{http.MethodPost, "/v1/tables/rename", `{}`},
	} {
		iceErr = restcatalog.ErrorBody{}
		status := icebergCall(t, w.method, uri+w.path, operator, w.body, &iceErr)
		require.Equalf(t, http.StatusMethodNotAllowed, status, "%s %s", w.method, w.path)
		require.Equal(t, restcatalog.TypeUnsupported, iceErr.Error.Type, "%s %s", w.method, w.path)
	}
	require.Error(t, opCat.CreateNamespace(ctx, table.Identifier{"intruder"}, nil))
	require.Error(t, opCat.DropTable(ctx, table.Identifier{"billing", "line_items"}))
}

// scanSums scans a table through its iceberg-go handle and sums decimal
// columns exactly.
func scanSums(t *testing.T, tbl *table.Table, columns ...string) (rows int, sums []decimal.Decimal) {
	t.Helper()
	at, err := tbl.Scan(table.WithSelectedFields(columns...)).ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	sums = make([]decimal.Decimal, len(columns))
	tr := array.NewTableReader(at, 4096)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		rows += int(rec.NumRows())
		for i, c := range columns {
			col := rec.Column(rec.Schema().FieldIndices(c)[0]).(*array.Decimal128)
			for r := 0; r < col.Len(); r++ {
				if col.IsValid(r) {
					sums[i] = sums[i].Add(decimal.NewFromBigInt(col.Value(r).BigInt(), -18))
				}
			}
		}
	}
	require.NoError(t, tr.Err())
	return rows, sums
}

type rawAnswer struct {
	status int
	body   []byte
}

func icebergRaw(t *testing.T, method, u, bearer, form string) rawAnswer {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return rawAnswer{resp.StatusCode, b}
}

func icebergCall(t *testing.T, method, u, bearer, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}
