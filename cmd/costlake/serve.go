package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/worker"
)

func logger() *slog.Logger {
	level := slog.LevelInfo
	if config.Env("COSTLAKE_LOG_LEVEL", "") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// quietLogger keeps the SDK's per-task chatter out of the terminal.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func lakeConfig(s config.Storage) lakehouse.Config {
	return lakehouse.Config{Catalog: s.Catalog, Warehouse: s.Warehouse, S3: s.S3Options(), GCSEndpoint: s.GCSEndpoint}
}

func dial(t config.Temporal) (client.Client, error) {
	opts, err := t.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = quietLogger()
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", t.Address, t.Namespace, err)
	}
	return c, nil
}

func runWorker(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var (
		tc config.Temporal
		sc config.Storage
		oc config.Onboarding
	)
	config.AddTemporalFlags(fs, &tc)
	config.AddStorageFlags(fs, &sc, ".costlake")
	config.AddOnboardingFlags(fs, &oc, ".costlake")
	maxActs := fs.Int("max-concurrent-activities", envInt("COSTLAKE_MAX_CONCURRENT_ACTIVITIES", 4), "activities this worker runs at once [COSTLAKE_MAX_CONCURRENT_ACTIVITIES]")
	var bounds workerBounds
	addBoundsFlags(fs, &bounds, "") // no local folders unless configured
	if err := fs.Parse(args); err != nil {
		return err
	}
	roots, limits, err := bounds.apply()
	if err != nil {
		return err
	}
	c, err := dial(tc)
	if err != nil {
		return err
	}
	defer c.Close()
	lake, err := lakehouse.Open(ctx, lakeConfig(sc))
	if err != nil {
		return err
	}
	defer lake.Close()
	acts, err := newActivities(ctx, lake, sc, oc, roots, limits)
	if err != nil {
		return err
	}
	w := worker.New(c, acts, worker.Options{MaxConcurrentActivities: *maxActs})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	logger().Info("worker started", "temporal", tc.Address, "namespace", tc.Namespace, "catalog", sc.Catalog, "warehouse", sc.Warehouse)
	<-ctx.Done()
	logger().Info("worker stopping")
	return nil
}

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var tc config.Temporal
	config.AddTemporalFlags(fs, &tc)
	addr := fs.String("http", config.Env("COSTLAKE_HTTP_ADDRESS", ":8080"), "gateway listen address [COSTLAKE_HTTP_ADDRESS]")
	keysFile := fs.String("api-keys", config.Env("COSTLAKE_API_KEYS_FILE", ""), "API keys file (JSON; create keys with `costlake apikey`) [COSTLAKE_API_KEYS_FILE]")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keysFile == "" {
		return errors.New("no API keys: set --api-keys (COSTLAKE_API_KEYS_FILE) to a keys file; `costlake apikey --file keys.json` creates one")
	}
	keys, err := gateway.LoadAPIKeys(*keysFile)
	if err != nil {
		return err
	}
	c, err := dial(tc)
	if err != nil {
		return err
	}
	defer c.Close()
	log := logger()
	log.Info("gateway listening", "address", *addr, "temporal", tc.Address)
	err = gateway.Serve(ctx, gateway.New(c, log, gateway.Config{Keys: keys}), *addr)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// newActivities wires the activities of a worker: file:// locations
// only under fileRoots, each data file within limits.
func newActivities(ctx context.Context, lake *lakehouse.Lake, s config.Storage, o config.Onboarding, fileRoots []string, limits cur.Limits) (*activities.Activities, error) {
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	if err != nil {
		return nil, err
	}
	opener := s.Opener()
	opener.FileRoots = fileRoots
	return &activities.Activities{Lake: lake, Blobs: opener, Limits: limits, Onboarding: onboardingConfig(o), Reseller: store}, nil
}

func onboardingConfig(o config.Onboarding) activities.OnboardingConfig {
	return activities.OnboardingConfig{PrincipalARN: o.PrincipalARN, Templates: o.Templates, ReminderWebhook: o.ReminderWebhook, OwnAccountIDs: config.List(o.OwnAccountIDs)}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(config.Env(name, "")); err == nil {
		return v
	}
	return def
}
