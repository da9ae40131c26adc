//go:build !nodev

package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	billingperiod "github.com/costlake/costlake/internal/period"

	"github.com/apache/iceberg-go/table"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/devtools/devserver"
	"github.com/costlake/costlake/internal/devtools/synth"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/workflows"
)

// benchResult is what `costlake bench --json` prints.
type benchResult struct {
	Rows          int64   `json:"rows"`
	Files         int     `json:"files"`
	Source        string  `json:"source"`
	WallSeconds   float64 `json:"wall_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
	WorkerCPU     float64 `json:"worker_cpu_seconds"`
	WorkerPeakRSS int64   `json:"worker_peak_rss_bytes"`
	// WorkerBinary is the costlake binary that ran the worker, and
	// WorkerProduction whether it is a production build (-tags nodev),
	// without the embedded Temporal server whose code takes memory too.
	WorkerBinary     string `json:"worker_binary"`
	WorkerProduction bool   `json:"worker_production_build"`
	UnblendedCost    string `json:"unblended_cost"`
	// Activities is the summed run time of each activity type, in seconds.
	Activities map[string]float64 `json:"activity_seconds"`
	// DuckDB is, with --duckdb, DuckDB converting the same chunks in the
	// same run, after the ingestion has finished.
	DuckDB *duckdbResult `json:"duckdb,omitempty"`
}

// runBench measures an ingestion end to end: an embedded Temporal, a
// generated delivery (in a local folder, or uploaded to S3/MinIO with
// --bucket), and a `costlake worker` child process whose CPU time and
// peak RSS are read from the kernel when it exits.
func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	rows := fs.Int("rows", 1_000_000, "rows to generate and ingest")
	files := fs.Int("files", 8, "csv.gz chunks")
	concurrency := fs.Int("concurrency", 2, "chunks converted at once")
	bucket := fs.String("bucket", "", "S3 bucket to upload the delivery to first (with --s3-endpoint for MinIO); default a local folder")
	keep := fs.String("dir", "", "work folder (default a temporary one, removed afterwards)")
	asJSON := fs.Bool("json", false, "print the figures as JSON")
	withDuckDB := fs.Bool("duckdb", false, "afterwards, convert the same csv.gz chunks to one zstd Parquet file with DuckDB (npm @duckdb/node-api "+duckdbNodeAPIVersion+", run by node) and print both side by side")
	workerBinary := fs.String("worker-binary", "", "costlake binary to run as the worker, such as a production build (default this one)")
	allVarchar := fs.Bool("duckdb-all-varchar", false, "with --duckdb, read every column as text (all_varchar) instead of DuckDB's type sniffing")
	var sc config.Storage
	config.AddStorageFlags(fs, &sc, ".costlake")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := *keep
	if dir == "" {
		tmp, err := os.MkdirTemp("", "costlake-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	log := os.Stderr
	period := "2026-09"
	var duck *duckdbRunner
	if *withDuckDB {
		// Before the long part, so a missing node or npm fails fast.
		var err error
		if duck, err = prepareDuckDB(ctx, log); err != nil {
			return err
		}
	}

	fmt.Fprintf(log, "generating %d rows in %d chunks …\n", *rows, *files)
	// Local sources are keys under the root folder, as file:// URLs read them.
	var store blob.Store = blob.NewLocal("/")
	loc := blob.Location{Scheme: "file", Prefix: strings.TrimPrefix(filepath.Join(dir, "source", "cur"), "/")}
	if *bucket != "" {
		s3, err := blob.NewS3(ctx, *bucket, sc.S3Options())
		if err != nil {
			return err
		}
		store, loc = s3, blob.Location{Scheme: "s3", Bucket: *bucket, Prefix: "bench/cur"}
	}
	opts := synth.Options{Prefix: loc.Prefix, Report: "bench", Bucket: loc.Bucket, Period: period, Rows: *rows, Files: *files, Seed: 1}
	gen, err := synth.Generate(ctx, store, opts)
	if err != nil {
		return err
	}
	source := blob.Location{Scheme: loc.Scheme, Bucket: loc.Bucket, Prefix: loc.Prefix + "/bench"}.String()

	srv, err := devserver.Start(devserver.Config{DataDir: filepath.Join(dir, "temporal"), FrontendPort: freePort(), UIPort: -1})
	if err != nil {
		return err
	}
	defer srv.Stop()
	self := *workerBinary
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return err
		}
	}
	production, err := productionBuild(self)
	if err != nil {
		return err
	}
	worker := exec.CommandContext(ctx, self, "worker")
	worker.Env = append(os.Environ(),
		"COSTLAKE_TEMPORAL_ADDRESS="+srv.FrontendHostPort(),
		"COSTLAKE_TEMPORAL_NAMESPACE="+srv.Namespace(),
		"COSTLAKE_CATALOG="+filepath.Join(dir, "catalog.db"),
		"COSTLAKE_WAREHOUSE=file://"+filepath.Join(dir, "warehouse"),
		"COSTLAKE_FILE_ROOTS="+dir,             // the generated source
		"COSTLAKE_METRICS_ADDRESS=127.0.0.1:0", // any free port: never a clash with a worker already here
	)
	if sc.S3Endpoint != "" {
		worker.Env = append(worker.Env, "COSTLAKE_S3_ENDPOINT="+sc.S3Endpoint)
	}
	worker.Stderr = log
	if err := worker.Start(); err != nil {
		return err
	}
	defer worker.Process.Kill()

	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace(), Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(log, "ingesting %s %s …\n", source, period)
	start := time.Now()
	run, err := workflows.StartIngestion(ctx, c, workflows.IngestBillingPeriodInput{Source: source, Period: billingperiod.MustParse(period), Concurrency: *concurrency})
	if err != nil {
		return err
	}
	res, err := waitIngestion(ctx, c, run, !*asJSON)
	if err != nil {
		return describeFailure(err)
	}
	wall := time.Since(start)

	// SIGINT lets the worker stop cleanly; its rusage then has the peak.
	_ = worker.Process.Signal(syscall.SIGINT)
	_ = worker.Wait()
	out := benchResult{Rows: res.Rows, Files: res.Chunks, Source: source, WallSeconds: wall.Seconds(),
		RowsPerSecond: float64(res.Rows) / wall.Seconds(), UnblendedCost: res.UnblendedCost.String(),
		WorkerBinary: self, WorkerProduction: production}
	if ru, ok := worker.ProcessState.SysUsage().(*syscall.Rusage); ok {
		out.WorkerCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		out.WorkerPeakRSS = ru.Maxrss * 1024 // Linux reports KiB
	}
	if out.Activities, err = activityTimes(ctx, c, run); err != nil {
		return err
	}
	if duck != nil {
		// Nothing of costlake's runs while DuckDB does.
		_ = srv.Stop()
		files, err := duckdbInputs(ctx, store, *bucket == "", gen.ReportKeys, filepath.Join(dir, "duckdb", "source"), log)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "converting the same %d chunks with DuckDB …\n", len(files))
		if out.DuckDB, err = duck.run(ctx, files, filepath.Join(dir, "duckdb", "bench.parquet"), *allVarchar, log); err != nil {
			return err
		}
		fmt.Fprintf(log, "reading costlake's data files back with DuckDB …\n")
		committed, err := committedDataFiles(ctx, dir, res.SnapshotID)
		if err != nil {
			return err
		}
		accounts := make([]string, len(res.Accounts))
		for i, a := range res.Accounts {
			accounts[i] = a.Account
		}
		if out.DuckDB.ReadBack, err = duck.readBack(ctx, committed, accounts, log); err != nil {
			return err
		}
		if err := out.DuckDB.ReadBack.check(res); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(stdout, "ingested %d rows from %d chunks in %.2f s: %.0f rows/s; worker CPU %.1f s, peak RSS %d MiB\n",
		out.Rows, out.Files, out.WallSeconds, out.RowsPerSecond, out.WorkerCPU, out.WorkerPeakRSS>>20)
	if out.WorkerProduction {
		fmt.Fprintf(stdout, "  worker: %s, a production build (-tags nodev)\n", out.WorkerBinary)
	} else {
		fmt.Fprintf(stdout, "  worker: %s, a development build: its embedded Temporal server adds about 80 MiB to the RSS;\n"+
			"  measure a production build with --worker-binary (go tool task bench:e2e does)\n", out.WorkerBinary)
	}
	names := slices.Sorted(maps.Keys(out.Activities))
	for _, name := range names {
		fmt.Fprintf(stdout, "  %-16s %6.2f s\n", name, out.Activities[name])
	}
	if out.DuckDB != nil {
		printSideBySide(stdout, out)
	}
	return nil
}

// printSideBySide prints costlake's and DuckDB's figures as a table.
func printSideBySide(w io.Writer, r benchResult) {
	d := r.DuckDB
	typing := "types sniffed"
	if d.AllVarchar {
		typing = "all_varchar"
	}
	fmt.Fprintf(w, "\nside by side, same %d csv.gz chunks (single runs; noisy if the machine is busy):\n", r.Files)
	fmt.Fprintf(w, "  %-9s %10s %9s %10s %8s %9s\n", "", "rows", "wall", "rows/s", "CPU", "peak RSS")
	row := func(name string, rows int64, wall, rps, cpu float64, rss int64) {
		fmt.Fprintf(w, "  %-9s %10d %7.2f s %10.0f %6.1f s %5d MiB\n", name, rows, wall, rps, cpu, rss>>20)
	}
	row("costlake", r.Rows, r.WallSeconds, r.RowsPerSecond, r.WorkerCPU, r.WorkerPeakRSS)
	row("duckdb", d.Rows, d.WallSeconds, d.RowsPerSecond, d.CPU, d.PeakRSS)
	fmt.Fprintf(w, "  costlake: ingestion workflow (convert, commit, read back), worker process\n")
	fmt.Fprintf(w, "  duckdb:   DuckDB %s (@duckdb/node-api %s), %d threads, %s, %d columns (%d VARCHAR), one zstd Parquet file of %d MiB;\n",
		d.Version, d.NodeAPIVersion, d.Threads, typing, d.Columns, d.VarcharColumns, d.ParquetBytes>>20)
	fmt.Fprintf(w, "            wall is the COPY statement (%.2f s with node start-up and read-back); CPU and RSS are the node process's\n", d.ProcessWallSeconds)
	if rb := d.ReadBack; rb != nil {
		fmt.Fprintf(w, "DuckDB read costlake's %d data files back: %d rows, %d columns, unblended cost %s, and each of %d accounts through a filter: equal to the ingestion\n",
			rb.Files, rb.Rows, rb.Columns, rb.UnblendedCost, len(rb.Accounts))
	}
}

// activityTimes sums, per activity type, the time from start to completion
// of each activity in the run's history: where the wall time went.
func activityTimes(ctx context.Context, c client.Client, run client.WorkflowRun) (map[string]float64, error) {
	types := map[int64]string{}
	started := map[int64]time.Time{}
	out := map[string]float64{}
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, err
		}
		switch ev.GetEventType() {
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			types[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enums.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			started[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = ev.GetEventTime().AsTime()
		case enums.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			out[types[id]] += ev.GetEventTime().AsTime().Sub(started[id]).Seconds()
		}
	}
	return out, nil
}

// productionBuild says whether the costlake binary at path was built with
// -tags nodev.
func productionBuild(path string) (bool, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("worker binary %s: %w", path, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), "nodev") {
			return true, nil
		}
	}
	return false, nil
}

// committedDataFiles lists the local paths of the data files of
// billing.line_items at snapshot, in the bench's file:// warehouse.
func committedDataFiles(ctx context.Context, dir string, snapshot int64) ([]string, error) {
	lake, err := lakehouse.Open(ctx, lakehouse.Config{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")})
	if err != nil {
		return nil, err
	}
	defer lake.Close()
	tbl, err := lake.LineItems(ctx)
	if err != nil {
		return nil, err
	}
	tasks, err := tbl.Scan(table.WithSnapshotID(snapshot)).PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(tasks))
	for i, t := range tasks {
		files[i] = strings.TrimPrefix(t.File.FilePath(), "file://")
	}
	return files, nil
}
