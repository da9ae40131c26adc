package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/devtools/synth"
)

// icebirdVersion is the JavaScript Iceberg reader the test installs from npm.
const icebirdVersion = "0.3.1"

// icebirdDir installs icebird once into the user cache and returns the
// folder to run tests/icebird/read.mjs from.
func icebirdDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is required for the independent-reader test (Debian package nodejs)")
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "costlake-icebird-"+icebirdVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "icebird", "package.json")); err != nil {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644))
		install := exec.Command("npm", "install", "--no-package-lock", "--no-audit", "--no-fund", "icebird@"+icebirdVersion)
		install.Dir = dir
		out, err := install.CombinedOutput()
		require.NoErrorf(t, err, "npm install icebird: %s", out)
	}
	// The scripts and the modules they share.
	scripts, err := filepath.Glob("icebird/*.mjs")
	require.NoError(t, err)
	for _, name := range scripts {
		script, err := os.ReadFile(name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(name)), script, 0o644))
	}
	return dir
}

// TestIndependentReader reads billing.line_items with icebird (JavaScript,
// run with Node), which shares no code with iceberg-go, after an ingestion
// and a restatement, and gets the generator's totals to the last digit.
func TestIndependentReader(t *testing.T) {
	dir := icebirdDir(t)
	s := newStack(t, false)
	root := filepath.Join(t.TempDir(), "bucket")
	ctx := context.Background()
	source := "file://" + filepath.Join(root, "cur", "indep")
	_, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "indep", Period: "2026-10", Rows: 2000, Files: 2, Seed: 21, AssemblyID: "20261102T000000Z"})
	require.NoError(t, err)
	_, err = s.ingest(source, "2026-10")
	require.NoError(t, err)
	gen, err := synth.Generate(ctx, blob.NewLocal(root), synth.Options{Prefix: "cur", Report: "indep", Period: "2026-10", Rows: 2500, Files: 3, Seed: 22, AssemblyID: "20261103T000000Z"})
	require.NoError(t, err)
	res, err := s.ingest(source, "2026-10")
	require.NoError(t, err)

	tbl, err := s.lake.LineItems(ctx)
	require.NoError(t, err)
	read := exec.Command("node", "read.mjs", strings.TrimPrefix(tbl.Location(), "file://"), path.Base(tbl.MetadataLocation()))
	read.Dir = dir
	read.Stderr = os.Stderr
	out, err := read.Output()
	require.NoError(t, err)
	var got map[string]struct {
		Rows          int    `json:"rows"`
		UnblendedCost string `json:"unblended_cost"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, got, len(gen.Accounts), "icebird saw other accounts: %s", out)
	for account, want := range gen.Accounts {
		g, ok := got[fmt.Sprintf("%s/2026-10/%s", res.PayerAccountID, account)]
		require.True(t, ok, "icebird did not see account %s", account)
		require.Equal(t, want.Rows, g.Rows, "rows of %s", account)
		require.Truef(t, decimal.RequireFromString(want.UnblendedCost).Equal(decimal.RequireFromString(g.UnblendedCost)),
			"account %s: icebird %s, source %s", account, g.UnblendedCost, want.UnblendedCost)
	}
}
