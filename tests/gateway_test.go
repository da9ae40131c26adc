package tests

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
)

// apiClient calls the gateway with one API key.
type apiClient struct {
	t    *testing.T
	base string
	key  string
}

func (a apiClient) do(method, path, body string, out any) int {
	a.t.Helper()
	return doJSON(a.t, method, a.base+path, a.key, body, out)
}

// testKeys returns gateway keys for the tests: an operator and a viewer of
// every customer, and an operator scoped to customer "globex".
func testKeys() (keys []gateway.APIKey, operator, viewer, globex string) {
	operator, op := gateway.NewAPIKey("test-operator", gateway.RoleOperator, "")
	viewer, vw := gateway.NewAPIKey("test-viewer", gateway.RoleViewer, "")
	globex, gx := gateway.NewAPIKey("globex-operator", gateway.RoleOperator, "globex")
	return []gateway.APIKey{op, vw, gx}, operator, viewer, globex
}

func doJSON(t *testing.T, method, url, key, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoErrorf(t, json.Unmarshal(data, out), "body %s", data)
	}
	return resp.StatusCode
}

// TestGatewayIngestion drives an ingestion through the HTTP API against the
// real Temporal server and worker: start, poll, read the result; and
// checks the error shape of bad requests.
func TestGatewayIngestion(t *testing.T) {
	s := newStack(t, false)
	keys, operator, viewer, globex := testKeys()
	srv := httptest.NewServer(validatingGateway(t, gateway.New(s.client, slog.New(slog.NewTextHandler(io.Discard, nil)), gateway.Config{Keys: keys})))
	t.Cleanup(srv.Close)
	op := apiClient{t: t, base: srv.URL, key: operator}

	var health map[string]string
	require.Equal(t, http.StatusOK, doJSON(t, "GET", srv.URL+"/healthz", "", "", &health))
	require.Equal(t, "ok", health["status"])
	require.Equal(t, http.StatusOK, doJSON(t, "GET", srv.URL+"/readyz", "", "", &health), "ready: Temporal answers")

	// A gateway whose Temporal does not answer is alive but not ready.
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	t.Cleanup(dead.Close)
	cut := httptest.NewServer(validatingGateway(t, gateway.New(dead, slog.New(slog.NewTextHandler(io.Discard, nil)), gateway.Config{Keys: keys})))
	t.Cleanup(cut.Close)
	require.Equal(t, http.StatusOK, doJSON(t, "GET", cut.URL+"/healthz", "", "", nil))
	var notReady struct {
		Error gateway.Error `json:"error"`
	}
	require.Equal(t, http.StatusServiceUnavailable, doJSON(t, "GET", cut.URL+"/readyz", "", "", &notReady))
	require.Equal(t, "unavailable", notReady.Error.Code)
	require.Contains(t, notReady.Error.Message, "Temporal does not answer")

	var denied struct {
		Error gateway.Error `json:"error"`
	}
	require.Equal(t, http.StatusUnauthorized, doJSON(t, "GET", srv.URL+"/v1/ingestions/ingest/x/2026-01", "", "", &denied))
	require.Equal(t, "unauthorized", denied.Error.Code)
	require.Equal(t, http.StatusUnauthorized, doJSON(t, "GET", srv.URL+"/v1/ingestions/ingest/x/2026-01", "clk_not-a-key", "", &denied))
	require.Equal(t, http.StatusForbidden, doJSON(t, "POST", srv.URL+"/v1/ingestions", viewer, `{}`, &denied))
	require.Contains(t, denied.Error.Message, "operator")
	require.Equal(t, http.StatusForbidden, doJSON(t, "POST", srv.URL+"/v1/ingestions", globex, `{}`, &denied))
	require.Contains(t, denied.Error.Message, "scoped to customer globex")

	root := filepath.Join(t.TempDir(), "bucket")
	gen, err := synth.Generate(context.Background(), blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "gw", Period: "2026-09", Rows: 1500, Files: 2, Seed: 7})
	require.NoError(t, err)
	source := "file://" + filepath.Join(root, "cur", "gw")

	var started gateway.IngestionResponse
	code := op.do("POST", "/v1/ingestions", `{"source":"`+source+`","period":"2026-09"}`, &started)
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "ingest/"+source+"/2026-09", started.ID)

	var got gateway.IngestionResponse
	require.Eventually(t, func() bool {
		doJSON(t, "GET", srv.URL+"/v1/ingestions/"+started.ID, viewer, "", &got)
		return got.Status != "running"
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, "completed", got.Status, got.Failure)
	require.NotNil(t, got.Result)
	require.Equal(t, int64(1500), got.Result.Rows)
	for _, a := range got.Result.Accounts {
		require.Equal(t, gen.Accounts[a.Account].UnblendedCost, a.UnblendedCost.String(), "account %s", a.Account)
	}

	var bad struct {
		Error gateway.Error `json:"error"`
	}
	code = op.do("POST", "/v1/ingestions", `{"source":"ftp://x/y","period":"2026-13","payer_account_id":"42"}`, &bad)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "invalid_request", bad.Error.Code)
	require.Contains(t, bad.Error.Fields, "source")
	require.Contains(t, bad.Error.Fields, "period")
	require.Contains(t, bad.Error.Fields, "payer_account_id")

	bad = struct {
		Error gateway.Error `json:"error"`
	}{}
	code = op.do("POST", "/v1/ingestions", `{"source":"s3://b/p/r","period":"2026-09","bill_payer_account_id":"830987654321"}`, &bad)
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, []string{"bill_payer_account_id"}, slices.Collect(maps.Keys(bad.Error.Fields)), "a bill payer needs the member it bills")

	code = op.do("POST", "/v1/ingestions", `{"source":`, &bad)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, bad.Error.Fields, "body")

	code = op.do("GET", "/v1/ingestions/ingest/nobody/2020-01", "", &bad)
	require.Equal(t, http.StatusNotFound, code)
	require.Equal(t, "not_found", bad.Error.Code)
}
