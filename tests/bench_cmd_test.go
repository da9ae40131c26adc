package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/tests/harness"
)

// TestBenchCommandFromMinIO runs `costlake bench` the way the README says
// the figures are measured, small, with the delivery on MinIO and a
// production build as the worker, and checks it reports what it measured.
func TestBenchCommandFromMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the costlake binary")
	}
	m := harness.MinIO(t)
	m.CreateBucket(t, "bench")
	worker := productionBinary(t)
	cmd := exec.Command(costlakeBinary(t), "bench", "--rows", "20000", "--files", "2", "--bucket", "bench", "--s3-endpoint", m.Endpoint,
		"--worker-binary", worker, "--json")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	var res struct {
		Rows          int64   `json:"rows"`
		Source        string  `json:"source"`
		RowsPerSecond float64 `json:"rows_per_second"`
		WorkerPeakRSS int64   `json:"worker_peak_rss_bytes"`
		WorkerBinary  string  `json:"worker_binary"`
		Production    bool    `json:"worker_production_build"`
	}
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	require.Equal(t, int64(20000), res.Rows)
	require.Equal(t, "s3://bench/bench/cur/bench", res.Source)
	require.Positive(t, res.RowsPerSecond)
	require.Positive(t, res.WorkerPeakRSS)
	require.Equal(t, worker, res.WorkerBinary)
	require.True(t, res.Production, "the worker binary was built with -tags nodev")
}

// TestBenchCommandWithDuckDB runs `costlake bench --duckdb`, from a local
// folder and from MinIO, and checks that DuckDB converted the same rows
// (the count is read back from the Parquet file DuckDB wrote) and read
// costlake's data files back to the ingestion's totals.
func TestBenchCommandWithDuckDB(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the costlake binary")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not on PATH: costlake bench --duckdb runs DuckDB from Node.js (Debian package nodejs)")
	}
	const rows = 12000
	run := func(t *testing.T, env []string, args ...string) {
		dir := t.TempDir()
		args = append([]string{"bench", "--rows", strconv.Itoa(rows), "--files", "2", "--duckdb", "--json", "--dir", dir}, args...)
		cmd := exec.Command(costlakeBinary(t), args...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		require.NoError(t, err)
		var res struct {
			Rows          int64  `json:"rows"`
			UnblendedCost string `json:"unblended_cost"`
			Production    bool   `json:"worker_production_build"`
			DuckDB        *struct {
				Version       string  `json:"duckdb_version"`
				Threads       int     `json:"threads"`
				Files         int     `json:"files"`
				OutputFiles   int     `json:"output_files"`
				Rows          int64   `json:"rows"`
				Columns       int     `json:"columns"`
				ParquetBytes  int64   `json:"parquet_bytes"`
				WallSeconds   float64 `json:"wall_seconds"`
				RowsPerSecond float64 `json:"rows_per_second"`
				CPU           float64 `json:"cpu_seconds"`
				PeakRSS       int64   `json:"peak_rss_bytes"`
				ReadBack      *struct {
					Files         int    `json:"files"`
					Rows          int64  `json:"rows"`
					Columns       int    `json:"columns"`
					UnblendedCost string `json:"unblended_cost"`
					Accounts      []struct {
						Rows int64 `json:"rows"`
					} `json:"accounts"`
				} `json:"read_back"`
			} `json:"duckdb"`
		}
		require.NoError(t, json.Unmarshal(out, &res), "%s", out)
		require.Equal(t, int64(rows), res.Rows)
		require.NotNil(t, res.DuckDB, "no duckdb figures: %s", out)
		d := res.DuckDB
		require.Equal(t, int64(rows), d.Rows, "rows DuckDB wrote, read back from its Parquet file")
		require.Equal(t, 2, d.Files)
		require.Equal(t, 1, d.OutputFiles)
		require.Equal(t, 141, d.Columns)
		require.Equal(t, "v1.5.6", d.Version)
		require.Positive(t, d.Threads)
		require.Positive(t, d.WallSeconds)
		require.Positive(t, d.RowsPerSecond)
		require.Positive(t, d.CPU)
		require.Positive(t, d.PeakRSS)
		st, err := os.Stat(filepath.Join(dir, "duckdb", "bench.parquet"))
		require.NoError(t, err)
		require.Equal(t, st.Size(), d.ParquetBytes)
		require.False(t, res.Production, "the default build worked as the worker")

		// The bench itself fails when DuckDB's reading differs; this checks
		// the reading happened, and is the same as the ingestion's.
		rb := d.ReadBack
		require.NotNil(t, rb, "DuckDB did not read costlake's files back: %s", out)
		require.Equal(t, 2, rb.Files, "a data file per chunk")
		require.Equal(t, int64(rows), rb.Rows)
		require.Equal(t, len(billing.LineItems.Columns), rb.Columns, "every column of billing.line_items")
		require.Equal(t, res.UnblendedCost, rb.UnblendedCost)
		require.Len(t, rb.Accounts, 4)
		var accountRows int64
		for _, a := range rb.Accounts {
			accountRows += a.Rows
		}
		require.Equal(t, int64(rows), accountRows, "rows read account by account, through filters")
	}
	t.Run("local", func(t *testing.T) {
		run(t, nil)
	})
	t.Run("minio", func(t *testing.T) {
		m := harness.MinIO(t)
		m.CreateBucket(t, "benchduck")
		run(t, []string{"AWS_ACCESS_KEY_ID=" + m.AccessKey, "AWS_SECRET_ACCESS_KEY=" + m.SecretKey},
			"--bucket", "benchduck", "--s3-endpoint", m.Endpoint)
	})
}
