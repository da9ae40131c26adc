//go:build !nodev

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/clock"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/devtools/devserver"
	billingperiod "github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/worker"
)

// hasDevServer says whether this build embeds the Temporal server.
const hasDevServer = true

func runDev(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data-dir", config.Env("COSTLAKE_DATA_DIR", ".costlake"), "folder for Temporal's SQLite file, the catalog, the warehouse and demo sources [COSTLAKE_DATA_DIR]")
	ip := fs.String("ip", "127.0.0.1", "address Temporal and its UI listen on")
	temporalPort := fs.Int("temporal-port", 7233, "Temporal gRPC frontend port")
	uiPort := fs.Int("ui-port", 8233, "Temporal Web UI port")
	httpAddr := fs.String("http", "127.0.0.1:8080", "gateway listen address")
	demo := fs.Bool("demo", false, "run the whole platform once on generated data, no AWS needed: a customer with a pricebook, a local payer onboarded, crawled and ingested, last month's cycle closed with its export in <data-dir>/exports")
	demoRows := fs.Int("demo-rows", 20000, "rows of the demo's last month (this month gets a quarter)")
	demoPeriod := fs.String("demo-period", "", "the month (YYYY-MM) the demo closes; sets --today to the 3rd of the month after, unless --today is given; empty: last month")
	todayFlag := fs.String("today", "", "the business date (YYYY-MM-DD) the worker judges periods by, fixed; empty: the system clock")
	runWorker := fs.Bool("worker", true, "run a worker in this process (false to attach `costlake worker` processes yourself)")
	var oc config.Onboarding
	config.AddOnboardingFlags(fs, &oc, config.Env("COSTLAKE_DATA_DIR", ".costlake"))
	var bounds workerBounds
	addBoundsFlags(fs, &bounds, "") // the data folder is added below
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	businessClock, err := devClock(*todayFlag, *demoPeriod)
	if err != nil {
		return err
	}
	// The demo sources, templates and exports: always readable by dev.
	bounds.fileRoots = strings.Trim(dir+","+bounds.fileRoots, ",")
	roots, limits, err := bounds.apply()
	if err != nil {
		return err
	}
	templatesSet := false
	fs.Visit(func(f *flag.Flag) { templatesSet = templatesSet || f.Name == "templates" })
	if !templatesSet && config.Env("COSTLAKE_TEMPLATES", "") == "" {
		oc.Templates = filepath.Join(dir, "templates") // follow --data-dir
	}
	// Check the gateway port first: failing after Temporal started is slower.
	if l, err := net.Listen("tcp", *httpAddr); err != nil {
		return fmt.Errorf("gateway address %s is taken (use --http): %w", *httpAddr, err)
	} else {
		l.Close()
	}

	fmt.Fprintf(stdout, "starting costlake dev in %s …\n", dir)
	srv, err := devserver.Start(devserver.Config{DataDir: filepath.Join(dir, "temporal"), IP: *ip, FrontendPort: *temporalPort, UIPort: *uiPort})
	if err != nil {
		return err
	}
	defer srv.Stop()

	c, err := client.Dial(client.Options{HostPort: srv.FrontendHostPort(), Namespace: srv.Namespace(), Logger: quietLogger()})
	if err != nil {
		return fmt.Errorf("connect to the embedded Temporal: %w", err)
	}
	defer c.Close()

	storage := config.Storage{Catalog: filepath.Join(dir, "catalog.db"), Warehouse: "file://" + filepath.Join(dir, "warehouse")}
	lake, err := lakehouse.Open(ctx, lakeConfig(storage))
	if err != nil {
		return err
	}
	defer lake.Close()

	if *runWorker {
		acts, err := newActivities(ctx, lake, storage, oc, roots, limits)
		if err != nil {
			return err
		}
		// A developer's webhook receiver is on this machine.
		acts.Webhooks.AllowPrivate = true
		// The demo's payer is local: its bucket is a folder (dev only).
		acts.LocalBuckets = demoBuckets(dir)
		acts.Clock = businessClock
		w := worker.New(c, acts, worker.Options{})
		if err := w.Start(); err != nil {
			return err
		}
		defer w.Stop()
		if err := worker.EnsureMaintenanceSchedule(ctx, c, worker.DefaultMaintenanceHour, maintain.Input{}); err != nil {
			return err
		}
		if err := worker.EnsureMonthEndSchedule(ctx, c, worker.DefaultMonthEndHour, monthend.Input{}); err != nil {
			return err
		}
	}

	log := logger()
	keyFile, keys, err := devAPIKeys(dir, log)
	if err != nil {
		return err
	}
	// The gateway reads customers and pricebooks itself, read-only; the
	// tables exist even when this process runs no worker.
	db, postgres := lake.DB()
	if _, err := reseller.Open(ctx, db, postgres); err != nil {
		return err
	}
	records, closeRecords, err := openRecords(storage.Catalog)
	if err != nil {
		return err
	}
	defer closeRecords()
	// The lake is served as a read-only Iceberg REST catalog too, as
	// `costlake gateway --catalog` serves it.
	iceberg, closeIceberg, err := openIcebergCatalog(storage)
	if err != nil {
		return err
	}
	defer closeIceberg()
	gwErr := make(chan error, 1)
	go func() {
		gwErr <- gateway.Serve(ctx, gateway.New(c, log, gateway.Config{KeyRing: keys, Records: records, Clock: businessClock,
			TemporalUI: srv.UIURL(), TemporalNamespace: srv.Namespace(), Iceberg: iceberg}), gateway.ServeOptions{Addr: *httpAddr})
	}()

	tbl, err := lake.LineItems(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
costlake is running.
  Temporal UI:      %s
  Temporal gRPC:    %s (namespace %s)
  Gateway:          http://%s  (GET /healthz, /v1/payers, /v1/ingestions)
  Console:          http://%s/ (sign in with the operator key)
  Operator API key: in %s (send it as Authorization: Bearer <key>)
  Iceberg catalog:  %s (SQL catalog, SQLite); REST: http://%s/iceberg (the key as bearer token or OAuth2 secret)
  Table:            billing.line_items at %s
Press Ctrl-C to stop; workflows and tables are kept in %s.
`, orNone(srv.UIURL()), srv.FrontendHostPort(), srv.Namespace(), *httpAddr, *httpAddr, keyFile, storage.Catalog, *httpAddr, tbl.Location(), dir)

	if *demo {
		key, err := os.ReadFile(keyFile)
		if err != nil {
			return fmt.Errorf("the demo needs the operator key: %w", err)
		}
		today := businessClock.Now()
		d := &demoRun{c: c, out: stdout, dir: dir, gateway: "http://" + *httpAddr, key: strings.TrimSpace(string(key)), keyFile: keyFile,
			uiURL: srv.UIURL(), ns: srv.Namespace(), rows: *demoRows, today: today,
			closeP: billingperiod.Of(today).Prev(), currentP: billingperiod.Of(today)}
		// Ctrl-C during the demo stops the stack as it would after it.
		if err := d.run(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nstopping …")
		select {
		case err := <-gwErr:
			return ignoreCanceled(err)
		case <-time.After(10 * time.Second):
			return nil
		}
	case err := <-gwErr:
		return err
	}
}

// devClock is the dev stack's business date: fixed at today
// (YYYY-MM-DD), or the 3rd of the month after demoPeriod, or the system
// clock. A fixed date makes the demo the same whatever day it runs.
func devClock(today, demoPeriod string) (clock.Clock, error) {
	switch {
	case today != "":
		t, err := time.Parse(time.DateOnly, today)
		if err != nil {
			return nil, fmt.Errorf("--today %q: want YYYY-MM-DD", today)
		}
		return clock.Fixed(t.Add(12 * time.Hour)), nil
	case demoPeriod != "":
		p, err := billingperiod.Parse(demoPeriod)
		if err != nil {
			return nil, fmt.Errorf("--demo-period %q: want YYYY-MM", demoPeriod)
		}
		return clock.Fixed(p.End().AddDate(0, 0, 2).Add(12 * time.Hour)), nil
	}
	return nil, nil
}

func orNone(s string) string {
	if s == "" {
		return "(disabled)"
	}
	return s
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// freePort asks the kernel for a free loopback port.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// devAPIKeys returns the dev stack's keys file, creating it with one
// operator key on the first run; the key itself is kept beside it (0600)
// so the developer can read it again.
func devAPIKeys(dir string, log *slog.Logger) (keyFile string, keys *gateway.KeyRing, err error) {
	keyFile = filepath.Join(dir, "operator.key")
	keysPath := filepath.Join(dir, "api-keys.json")
	if _, err := os.Stat(keysPath); errors.Is(err, os.ErrNotExist) {
		key, entry := gateway.NewAPIKey("dev-operator", gateway.RoleOperator, "")
		if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
			return "", nil, err
		}
		if err := addKey(keysPath, entry); err != nil {
			return "", nil, err
		}
	}
	keys, err = gateway.OpenKeyRing(keysPath, func(err error) { log.Error("API keys file not reloaded; the keys read before stay", "error", err) })
	return keyFile, keys, err
}

// logger is the text log of `costlake dev`.
func logger() *slog.Logger {
	log, err := telemetry.NewLogger(os.Stderr, telemetry.FormatText, config.Env("COSTLAKE_LOG_LEVEL", ""))
	if err != nil {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return log
}
