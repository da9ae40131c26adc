package tests

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/costlake/costlake/tests/harness"
)

// TestBenchCommandFromMinIO runs `costlake bench` the way the README says
// the figures are measured, small, with the delivery on MinIO, and checks
// it reports what it measured.
func TestBenchCommandFromMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the costlake binary")
	}
	m := harness.MinIO(t)
	m.CreateBucket(t, "bench")
	cmd := exec.Command(costlakeBinary(t), "bench", "--rows", "20000", "--files", "2", "--bucket", "bench", "--s3-endpoint", m.Endpoint, "--json")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+m.AccessKey, "AWS_SECRET_ACCESS_KEY="+m.SecretKey)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	var res struct {
		Rows          int64   `json:"rows"`
		Source        string  `json:"source"`
		RowsPerSecond float64 `json:"rows_per_second"`
		WorkerPeakRSS int64   `json:"worker_peak_rss_bytes"`
	}
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	require.Equal(t, int64(20000), res.Rows)
	require.Equal(t, "s3://bench/bench/cur/bench", res.Source)
	require.Positive(t, res.RowsPerSecond)
	require.Positive(t, res.WorkerPeakRSS)
}
