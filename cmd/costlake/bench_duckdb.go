//go:build !nodev

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/workflows"
)

// duckdbNodeAPIVersion is the @duckdb/node-api release `costlake bench
// --duckdb` installs from npm (it bundles DuckDB 1.5.6).
const duckdbNodeAPIVersion = "1.5.6-r.1"

//go:embed duckdb/bench.mjs
var duckdbScript []byte

// duckdbResult is DuckDB's side of `costlake bench --duckdb`: the same
// csv.gz chunks converted to one zstd Parquet file by DuckDB run from Node.
type duckdbResult struct {
	Version        string `json:"duckdb_version"`
	NodeAPIVersion string `json:"node_api_version"`
	Threads        int    `json:"threads"`
	// AllVarchar is whether DuckDB read every column as text; by default
	// it sniffs types, its normal behaviour (costlake types values too).
	AllVarchar     bool  `json:"all_varchar"`
	Files          int   `json:"files"`
	OutputFiles    int   `json:"output_files"`
	Rows           int64 `json:"rows"` // read back from the Parquet file
	Columns        int   `json:"columns"`
	VarcharColumns int   `json:"varchar_columns"`
	ParquetBytes   int64 `json:"parquet_bytes"`
	// WallSeconds times the COPY statement alone; ProcessWallSeconds adds
	// Node's and DuckDB's start-up and the read-back of the row count.
	WallSeconds        float64 `json:"wall_seconds"`
	ProcessWallSeconds float64 `json:"process_wall_seconds"`
	RowsPerSecond      float64 `json:"rows_per_second"`
	CPU                float64 `json:"cpu_seconds"`
	PeakRSS            int64   `json:"peak_rss_bytes"`
	// ReadBack is DuckDB reading the Parquet files costlake committed,
	// untimed, after the conversion.
	ReadBack *duckdbReadBack `json:"read_back,omitempty"`
}

// duckdbReadBack is what DuckDB found in costlake's data files: it must
// equal what the ingestion committed, or the bench fails.
type duckdbReadBack struct {
	Files         int                    `json:"files"`
	Rows          int64                  `json:"rows"`
	Columns       int                    `json:"columns"`
	UnblendedCost money.Amount           `json:"unblended_cost"`
	Accounts      []billing.AccountTotal `json:"accounts"` // each read with a filter on the account
}

// check compares DuckDB's reading with the ingestion's reconciled result.
func (rb *duckdbReadBack) check(res *workflows.IngestBillingPeriodResult) error {
	if rb.Rows != res.Rows || rb.UnblendedCost.Cmp(res.UnblendedCost) != 0 {
		return fmt.Errorf("DuckDB read %d rows costing %s from costlake's %d data files; the ingestion committed %d rows costing %s",
			rb.Rows, rb.UnblendedCost, rb.Files, res.Rows, res.UnblendedCost)
	}
	if len(rb.Accounts) != len(res.Accounts) {
		return fmt.Errorf("DuckDB read %d accounts, the ingestion committed %d", len(rb.Accounts), len(res.Accounts))
	}
	for i, a := range res.Accounts {
		if got := rb.Accounts[i]; got.Account != a.Account || got.Rows != a.Rows || got.UnblendedCost.Cmp(a.UnblendedCost) != 0 {
			return fmt.Errorf("DuckDB read %d rows costing %s for account %s (filtered on it); the ingestion committed %d rows costing %s",
				got.Rows, got.UnblendedCost, got.Account, a.Rows, a.UnblendedCost)
		}
	}
	return nil
}

// duckdbRunner is a Node installation with @duckdb/node-api, ready to run
// the embedded bench script (conversion and read-back).
type duckdbRunner struct {
	node string
	dir  string // where node_modules/@duckdb/node-api is
	path string // of the script
}

// duckdbManualInstall says how to install @duckdb/node-api by hand into dir.
func duckdbManualInstall(dir string) string {
	return fmt.Sprintf("install it by hand and run the bench again:\n"+
		"  mkdir -p %[1]s && cd %[1]s && echo '{\"private\":true,\"type\":\"module\"}' > package.json && \\\n"+
		"  npm install --no-package-lock --no-audit --no-fund @duckdb/node-api@%[2]s\n"+
		"or point COSTLAKE_DUCKDB_DIR at a folder whose node_modules has @duckdb/node-api",
		dir, duckdbNodeAPIVersion)
}

// prepareDuckDB finds node and installs @duckdb/node-api once into the user
// cache (or uses COSTLAKE_DUCKDB_DIR), under a file lock so that parallel
// runs neither install twice nor see a half-made install.
func prepareDuckDB(ctx context.Context, log io.Writer) (*duckdbRunner, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("--duckdb runs DuckDB from Node.js, and node is not on PATH: install Node.js (Debian package nodejs) first")
	}
	r := &duckdbRunner{node: node}
	if dir := os.Getenv("COSTLAKE_DUCKDB_DIR"); dir != "" {
		r.dir = dir
		if !duckdbInstalled(dir) {
			return nil, fmt.Errorf("COSTLAKE_DUCKDB_DIR=%s has no node_modules/@duckdb/node-api; %s", dir, duckdbManualInstall(dir))
		}
	} else {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("--duckdb: no user cache folder for @duckdb/node-api: %w", err)
		}
		r.dir = filepath.Join(cache, "costlake-duckdb-"+duckdbNodeAPIVersion)
		unlock, err := lockFile(r.dir + ".lock")
		if err != nil {
			return nil, fmt.Errorf("--duckdb: %w", err)
		}
		defer unlock()
		if !duckdbInstalled(r.dir) {
			if err := installDuckDB(ctx, cache, r.dir, log); err != nil {
				return nil, fmt.Errorf("--duckdb: %w\n%s", err, duckdbManualInstall(r.dir))
			}
		}
	}
	// The script sits beside node_modules so that Node resolves the
	// package from it; its name carries its hash, so runs of different
	// costlake builds never overwrite each other's.
	sum := sha256.Sum256(duckdbScript)
	r.path = filepath.Join(r.dir, "costlake-bench-"+hex.EncodeToString(sum[:6])+".mjs")
	if err := writeFileAtomic(r.path, duckdbScript); err != nil {
		return nil, fmt.Errorf("--duckdb: %w", err)
	}
	return r, nil
}

func duckdbInstalled(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api", "package.json"))
	return err == nil
}

// installDuckDB runs npm install in a scratch folder beside dir and renames
// it into place, so an interrupted install leaves nothing that looks done.
func installDuckDB(ctx context.Context, cache, dir string, log io.Writer) error {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("npm is not on PATH, so @duckdb/node-api cannot be installed")
	}
	fmt.Fprintf(log, "installing @duckdb/node-api@%s into %s (once) …\n", duckdbNodeAPIVersion, dir)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(cache, ".costlake-duckdb-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private":true,"type":"module"}`+"\n"), 0o644); err != nil {
		return err
	}
	install := exec.CommandContext(ctx, npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "@duckdb/node-api@"+duckdbNodeAPIVersion)
	install.Dir = tmp
	out, err := install.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm install @duckdb/node-api@%s failed: %w\n%s", duckdbNodeAPIVersion, err, bytes.TrimSpace(out))
	}
	if !duckdbInstalled(tmp) {
		return fmt.Errorf("npm install @duckdb/node-api@%s left no node_modules/@duckdb/node-api\n%s", duckdbNodeAPIVersion, bytes.TrimSpace(out))
	}
	// A folder left by a broken manual install would block the rename.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// lockFile takes an exclusive flock on name, creating it; the returned
// function releases it.
func lockFile(name string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

func writeFileAtomic(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(name), ".script-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// duckdbInputs returns local paths of the delivery's csv.gz chunks: the
// files themselves for a local delivery, or copies downloaded into dir
// first when it is in a bucket (the download is not timed).
func duckdbInputs(ctx context.Context, store blob.Store, local bool, keys []string, dir string, log io.Writer) ([]string, error) {
	paths := make([]string, len(keys))
	if local {
		for i, key := range keys {
			paths[i] = "/" + key
		}
		return paths, nil
	}
	fmt.Fprintf(log, "downloading %d chunks to %s for DuckDB …\n", len(keys), dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i, key := range keys {
		paths[i] = filepath.Join(dir, path.Base(key))
		if err := download(ctx, store, key, paths[i]); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

func download(ctx context.Context, store blob.Store, key, dst string) error {
	r, err := store.Open(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("download %s: %w", key, err)
	}
	return f.Close()
}

// run converts files to output with DuckDB in a Node child process, whose
// CPU time and peak RSS are read from the kernel when it exits.
func (r *duckdbRunner) run(ctx context.Context, files []string, output string, allVarchar bool, log io.Writer) (*duckdbResult, error) {
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return nil, err
	}
	_ = os.Remove(output)
	var got struct {
		Version        string  `json:"duckdb_version"`
		Threads        int     `json:"threads"`
		Rows           int64   `json:"rows"`
		Columns        int     `json:"columns"`
		VarcharColumns int     `json:"varchar_columns"`
		Seconds        float64 `json:"seconds"`
	}
	spec := map[string]any{"convert": map[string]any{"files": files, "output": output, "all_varchar": allVarchar}}
	cmd, wall, err := r.script(ctx, spec, &got, log)
	if err != nil {
		return nil, err
	}
	out := &duckdbResult{Version: got.Version, NodeAPIVersion: duckdbNodeAPIVersion, Threads: got.Threads,
		AllVarchar: allVarchar, Files: len(files), OutputFiles: 1, Rows: got.Rows, Columns: got.Columns,
		VarcharColumns: got.VarcharColumns, WallSeconds: got.Seconds, ProcessWallSeconds: wall.Seconds()}
	if got.Seconds > 0 {
		out.RowsPerSecond = float64(got.Rows) / got.Seconds
	}
	if st, err := os.Stat(output); err == nil {
		out.ParquetBytes = st.Size()
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		out.PeakRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	return out, nil
}

// readBack has DuckDB read costlake's data files: all of them, then each
// account's rows with a filter on the account.
func (r *duckdbRunner) readBack(ctx context.Context, files, accounts []string, log io.Writer) (*duckdbReadBack, error) {
	var got duckdbReadBack
	spec := map[string]any{"read_back": map[string]any{"files": files, "accounts": accounts}}
	if _, _, err := r.script(ctx, spec, &got, log); err != nil {
		return nil, err
	}
	return &got, nil
}

// script runs the DuckDB script with spec (and as many threads as CPUs)
// in a Node child process and decodes the JSON line it prints into out.
func (r *duckdbRunner) script(ctx context.Context, spec map[string]any, out any, log io.Writer) (*exec.Cmd, time.Duration, error) {
	spec["threads"] = runtime.NumCPU()
	arg, err := json.Marshal(spec)
	if err != nil {
		return nil, 0, err
	}
	cmd := exec.CommandContext(ctx, r.node, r.path, string(arg))
	cmd.Dir = r.dir
	cmd.Stderr = log
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return nil, 0, fmt.Errorf("DuckDB (node %s): %w", r.path, err)
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return nil, 0, fmt.Errorf("DuckDB script printed %q: %w", stdout.String(), err)
	}
	return cmd, wall, nil
}
