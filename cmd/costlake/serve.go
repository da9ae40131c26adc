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
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/costlake/costlake/activities"
	"github.com/costlake/costlake/gateway"
	"github.com/costlake/costlake/internal/config"
	"github.com/costlake/costlake/internal/contract/maintain"
	"github.com/costlake/costlake/internal/contract/monthend"
	"github.com/costlake/costlake/internal/cur"
	"github.com/costlake/costlake/internal/reseller"
	"github.com/costlake/costlake/internal/restcatalog"
	"github.com/costlake/costlake/internal/searchattr"
	"github.com/costlake/costlake/internal/telemetry"
	"github.com/costlake/costlake/lakehouse"
	"github.com/costlake/costlake/worker"
)

// observeFlags are the production commands' logs and metrics settings.
type observeFlags struct {
	metricsAddress, logFormat, logLevel *string
}

func addObserveFlags(fs *flag.FlagSet) observeFlags {
	metrics := telemetry.DefaultAddress
	if v, ok := os.LookupEnv("COSTLAKE_METRICS_ADDRESS"); ok {
		metrics = v // empty disables, like the flag
	}
	return observeFlags{
		metricsAddress: fs.String("metrics-address", metrics, "address of the metrics listener (GET /metrics; a worker's also /healthz and /readyz); empty disables it [COSTLAKE_METRICS_ADDRESS]"),
		logFormat:      fs.String("log-format", config.Env("COSTLAKE_LOG_FORMAT", telemetry.FormatJSON), "log format: json or text [COSTLAKE_LOG_FORMAT]"),
		logLevel:       fs.String("log-level", config.Env("COSTLAKE_LOG_LEVEL", "info"), "lowest level logged: debug, info, warn or error [COSTLAKE_LOG_LEVEL]"),
	}
}

// setup makes the process's logger and metrics registry.
func (o observeFlags) setup() (*slog.Logger, *telemetry.Metrics, error) {
	log, err := telemetry.NewLogger(os.Stderr, *o.logFormat, *o.logLevel)
	if err != nil {
		return nil, nil, err
	}
	m, err := telemetry.New()
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	return log, m, nil
}

// quietLogger keeps the SDK's per-task chatter out of the terminal.
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func lakeConfig(s config.Storage) lakehouse.Config {
	return lakehouse.Config{Catalog: s.Catalog, Warehouse: s.Warehouse, S3: s.WarehouseS3Options(), GCSEndpoint: s.GCSEndpoint}
}

// dial connects to Temporal; log, when set, is the SDK's logger (the
// activities' loggers are it, with the workflow's and activity's IDs), and
// the SDK reports its metrics into m.
func dial(t config.Temporal, log *slog.Logger, m *telemetry.Metrics) (client.Client, error) {
	opts, err := t.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = quietLogger()
	if log != nil {
		opts.Logger = tlog.NewStructuredLogger(log)
	}
	opts.MetricsHandler = m.SDKHandler()
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
	stopTimeout := fs.Duration("stop-timeout", envDuration("COSTLAKE_WORKER_STOP_TIMEOUT", worker.DefaultStopTimeout), "on SIGTERM, how long running activities may take to finish before they are cancelled (and retried on another worker) [COSTLAKE_WORKER_STOP_TIMEOUT]")
	maintHour := fs.Int("maintenance-hour", envInt("COSTLAKE_MAINTENANCE_HOUR", worker.DefaultMaintenanceHour), "UTC hour of the daily MaintainTables schedule this worker creates when it is missing (-1: create none) [COSTLAKE_MAINTENANCE_HOUR]")
	retention := fs.Duration("snapshot-retention", envDuration("COSTLAKE_SNAPSHOT_RETENTION", 30*24*time.Hour), "how long table snapshots stay readable by time travel; closed cycles' pins stay longer; set when the schedule is created [COSTLAKE_SNAPSHOT_RETENTION]")
	monthEnd := addMonthEndFlags(fs)
	var bounds workerBounds
	addBoundsFlags(fs, &bounds, "") // no local folders unless configured
	observe := addObserveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	roots, limits, err := bounds.apply()
	if err != nil {
		return err
	}
	log, metrics, err := observe.setup()
	if err != nil {
		return err
	}
	// The catalog first: a worker that cannot keep its tables must not
	// take activities from the queue.
	lake, err := lakehouse.Open(ctx, lakeConfig(sc))
	if err != nil {
		return fmt.Errorf("refusing to start: %w (check --catalog, COSTLAKE_CATALOG)", err)
	}
	defer lake.Close()
	c, err := dial(tc, log, metrics)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := checkSearchAttributes(ctx, c, tc.Namespace, log); err != nil {
		return err
	}
	acts, err := newActivities(ctx, lake, sc, oc, roots, limits)
	if err != nil {
		return err
	}
	acts.Metrics = metrics
	monthEnd.apply(&acts)
	if _, err := monthEnd.input(); err != nil {
		return err
	}
	var polling atomic.Bool
	addr, err := telemetry.Start(ctx, *observe.metricsAddress, metrics.Mux(workerReady(c, &polling)), log)
	if err != nil {
		return err
	}
	w := worker.New(c, acts, worker.Options{MaxConcurrentActivities: *maxActs, StopTimeout: *stopTimeout})
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	if *maintHour >= 0 {
		if err := worker.EnsureMaintenanceSchedule(ctx, c, *maintHour, maintain.Input{Retention: *retention}); err != nil {
			return err
		}
	}
	if err := monthEnd.ensure(ctx, c); err != nil {
		return err
	}
	polling.Store(true)
	log.Info("worker started", "temporal", tc.Address, "namespace", tc.Namespace, "catalog", config.RedactDSN(sc.Catalog), "warehouse", sc.Warehouse, "metrics", addr)
	<-ctx.Done()
	log.Info("worker stopping")
	return nil
}

// workerReady is a worker's readiness: polling, and Temporal answers.
func workerReady(c client.Client, polling *atomic.Bool) telemetry.Probe {
	return func(ctx context.Context) error {
		if !polling.Load() {
			return errors.New("the worker has not started polling")
		}
		if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
			return fmt.Errorf("no answer to the Temporal health check: %w", err)
		}
		return nil
	}
}

// checkSearchAttributes refuses to start when the namespace lacks
// costlake's search attributes (every run is started with them, and a
// start naming one the namespace lacks fails); when they cannot be listed
// (an account without operator rights), it says so and goes on.
func checkSearchAttributes(ctx context.Context, c client.Client, namespace string, log *slog.Logger) error {
	err := searchattr.Check(ctx, c, namespace)
	if errors.Is(err, searchattr.ErrMissing) || errors.Is(err, searchattr.ErrWrongType) {
		return fmt.Errorf("refusing to start: %w", err)
	}
	if err != nil {
		log.Warn("could not check the namespace's search attributes; runs fail to start if `costlake setup` did not add them", "namespace", namespace, "error", err)
	}
	return nil
}

func runGateway(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	var tc config.Temporal
	config.AddTemporalFlags(fs, &tc)
	addr := fs.String("http", config.Env("COSTLAKE_HTTP_ADDRESS", ":8080"), "gateway listen address [COSTLAKE_HTTP_ADDRESS]")
	keysFile := fs.String("api-keys", config.Env("COSTLAKE_API_KEYS_FILE", ""), "API keys file (JSON; create keys with `costlake apikey`), read again when it changes or on SIGHUP [COSTLAKE_API_KEYS_FILE]")
	tlsCert := fs.String("tls-cert", config.Env("COSTLAKE_TLS_CERT", ""), "serve HTTPS with this certificate (PEM; with --tls-key) [COSTLAKE_TLS_CERT]")
	tlsKey := fs.String("tls-key", config.Env("COSTLAKE_TLS_KEY", ""), "private key of --tls-cert (PEM) [COSTLAKE_TLS_KEY]")
	readTimeout := fs.Duration("read-timeout", envDuration("COSTLAKE_HTTP_READ_TIMEOUT", gateway.DefaultReadTimeout), "longest time to read a request, body included [COSTLAKE_HTTP_READ_TIMEOUT]")
	writeTimeout := fs.Duration("write-timeout", envDuration("COSTLAKE_HTTP_WRITE_TIMEOUT", gateway.DefaultWriteTimeout), "longest time to answer a request [COSTLAKE_HTTP_WRITE_TIMEOUT]")
	idleTimeout := fs.Duration("idle-timeout", envDuration("COSTLAKE_HTTP_IDLE_TIMEOUT", gateway.DefaultIdleTimeout), "how long an idle keep-alive connection stays open [COSTLAKE_HTTP_IDLE_TIMEOUT]")
	rateLimit := fs.Float64("rate-limit", envFloat("COSTLAKE_RATE_LIMIT", 10), "requests per second one API key may make on average; 0 for no limit [COSTLAKE_RATE_LIMIT]")
	rateBurst := fs.Int("rate-burst", envInt("COSTLAKE_RATE_BURST", 0), "requests one API key may make at once (0: twice --rate-limit) [COSTLAKE_RATE_BURST]")
	catalog := fs.String("catalog", config.Env("COSTLAKE_CATALOG", ""), "the workers' catalog database (SQLite file or postgres:// URI), read through a read-only connection so reads of customers and pricebooks start no workflow, the lists of payers, customers and cycles are served, and it is served as a read-only Iceberg REST catalog under /iceberg; empty: those reads run on a worker, the lists answer 503 and no Iceberg catalog is served [COSTLAKE_CATALOG]")
	maxCrawlAge := fs.Duration("max-crawl-age", envDuration("COSTLAKE_MAX_CRAWL_AGE", monthend.DefaultMaxCrawlAge),
		"the payer list calls an active payer stale when its last successful crawl is older than this; give it the workers' month-end setting [COSTLAKE_MAX_CRAWL_AGE]")
	temporalUI := fs.String("temporal-ui-url", config.Env("COSTLAKE_TEMPORAL_UI_URL", ""), "the Temporal Web UI's base URL the console links to, filtered to a payer (e.g. http://127.0.0.1:8233); empty: no links [COSTLAKE_TEMPORAL_UI_URL]")
	secureCookies := fs.Bool("secure-cookies", config.Env("COSTLAKE_SECURE_COOKIES", "") == "true", "mark the console's cookies Secure on plain HTTP too, when TLS ends in front of the gateway (over --tls-cert they always are) [COSTLAKE_SECURE_COOKIES]")
	whS3Endpoint := fs.String("warehouse-s3-endpoint", config.Env("COSTLAKE_WAREHOUSE_S3_ENDPOINT", config.Env("COSTLAKE_S3_ENDPOINT", "")),
		"S3-compatible endpoint of an s3:// warehouse, where the Iceberg catalog (with --catalog) reads table metadata; clients are told it too [COSTLAKE_WAREHOUSE_S3_ENDPOINT, COSTLAKE_S3_ENDPOINT]")
	whS3Region := fs.String("warehouse-s3-region", config.Env("COSTLAKE_WAREHOUSE_S3_REGION", config.Env("COSTLAKE_S3_REGION", config.Env("AWS_REGION", "us-east-1"))),
		"region of an s3:// warehouse [COSTLAKE_WAREHOUSE_S3_REGION, COSTLAKE_S3_REGION, AWS_REGION]")
	auditFile := fs.String("audit-log", config.Env("COSTLAKE_AUDIT_LOG", ""), "append the audit records of mutating calls to this file as JSON lines (empty: the gateway log) [COSTLAKE_AUDIT_LOG]")
	observe := addObserveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keysFile == "" {
		return errors.New("no API keys: set --api-keys (COSTLAKE_API_KEYS_FILE) to a keys file; `costlake apikey --file keys.json` creates one")
	}
	if *rateLimit < 0 || *rateBurst < 0 {
		return errors.New("--rate-limit and --rate-burst must not be negative")
	}
	log, metrics, err := observe.setup()
	if err != nil {
		return err
	}
	keys, err := gateway.OpenKeyRing(*keysFile, func(err error) { log.Error("API keys file not reloaded; the keys read before stay", "error", err) })
	if err != nil {
		return err
	}
	audit := log
	if *auditFile != "" {
		f, err := os.OpenFile(*auditFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		defer f.Close()
		audit = slog.New(slog.NewJSONHandler(f, nil))
	}
	if *maxCrawlAge <= 0 {
		return errors.New("--max-crawl-age must be positive")
	}
	cfg := gateway.Config{KeyRing: keys, RateLimit: *rateLimit, RateBurst: *rateBurst, Audit: audit, Metrics: metrics, MaxCrawlAge: *maxCrawlAge,
		TemporalUI: *temporalUI, TemporalNamespace: tc.Namespace, SecureCookies: *secureCookies}
	if *catalog != "" {
		records, closeRecords, err := openRecords(*catalog)
		if err != nil {
			return err
		}
		defer closeRecords()
		cfg.Records = records
		sc := config.Storage{Catalog: *catalog, S3Endpoint: *whS3Endpoint, S3Region: *whS3Region}
		iceberg, closeIceberg, err := openIcebergCatalog(sc)
		if err != nil {
			return err
		}
		defer closeIceberg()
		cfg.Iceberg = iceberg
		log.Info("serving a read-only Iceberg REST catalog", "path", gateway.IcebergPrefix)
	} else {
		log.Warn("no --catalog: reads of customers and pricebooks run as workflows on a worker, the lists of payers, customers and cycles answer 503, and no Iceberg REST catalog is served")
	}
	c, err := dial(tc, log, metrics)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := checkSearchAttributes(ctx, c, tc.Namespace, log); err != nil {
		return err
	}
	metricsAddr, err := telemetry.Start(ctx, *observe.metricsAddress, metrics.Mux(nil), log)
	if err != nil {
		return err
	}
	go reloadOnHangup(ctx, keys, log)
	h := gateway.New(c, log, cfg)
	srv, err := gateway.HTTPServer(h, gateway.ServeOptions{Addr: *addr, ReadTimeout: *readTimeout, WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout, TLSCert: *tlsCert, TLSKey: *tlsKey})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("gateway on %s: %w", *addr, err)
	}
	log.Info("gateway listening", "address", ln.Addr().String(), "tls", srv.TLSConfig != nil, "temporal", tc.Address, "rate_limit", *rateLimit, "metrics", metricsAddr)
	err = gateway.ServeOn(ctx, srv, ln)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// openRecords opens the reseller's records for the gateway over a
// connection the database keeps read-only.
func openRecords(catalog string) (*reseller.Store, func() error, error) {
	db, postgres, err := lakehouse.OpenCatalogReadOnly(catalog)
	if err != nil {
		return nil, nil, err
	}
	return reseller.ReadOnly(db, postgres), db.Close, nil
}

// openIcebergCatalog opens the Iceberg REST catalog the gateway serves
// under /iceberg: the SQL catalog on a read-only connection, reading
// metadata with the warehouse's keys (COSTLAKE_WAREHOUSE_AWS_*, else
// AWS_*). Clients are told the endpoint and region, never the keys:
// they read the files with access of their own.
func openIcebergCatalog(sc config.Storage) (*restcatalog.Server, func() error, error) {
	cat, closeCat, err := lakehouse.OpenReadOnlyCatalog(lakehouse.Config{Catalog: sc.Catalog, S3: sc.WarehouseS3Options()})
	if err != nil {
		return nil, nil, err
	}
	tableConfig := map[string]string{}
	if sc.S3Endpoint != "" {
		tableConfig["s3.endpoint"] = sc.S3Endpoint
		tableConfig["s3.path-style-access"] = "true" // MinIO and most S3-compatible stores
		tableConfig["s3.region"] = sc.S3Region
	}
	return restcatalog.New(cat, tableConfig), closeCat, nil
}

// reloadOnHangup reads the API keys file again on each SIGHUP.
func reloadOnHangup(ctx context.Context, keys *gateway.KeyRing, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := keys.Reload(); err != nil {
				log.Error("API keys file not reloaded; the keys read before stay", "error", err)
			} else {
				log.Info("API keys reloaded", "keys", len(keys.Keys()))
			}
		}
	}
}

// newActivities wires the activities of a worker: file:// locations
// only under fileRoots, each data file within limits.
func newActivities(ctx context.Context, lake *lakehouse.Lake, s config.Storage, o config.Onboarding, fileRoots []string, limits cur.Limits) (activities.Config, error) {
	db, postgres := lake.DB()
	store, err := reseller.Open(ctx, db, postgres)
	if err != nil {
		return activities.Config{}, err
	}
	opener := s.Opener()
	opener.FileRoots = fileRoots
	return activities.Config{Lake: lake, Blobs: opener, Limits: limits, Onboarding: onboardingConfig(o), Reseller: store}, nil
}

func onboardingConfig(o config.Onboarding) activities.OnboardingConfig {
	return activities.OnboardingConfig{PrincipalARN: o.PrincipalARN, Templates: o.Templates, ReminderWebhook: o.ReminderWebhook, OwnAccountIDs: config.List(o.OwnAccountIDs)}
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(config.Env(name, "")); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(config.Env(name, ""), 64); err == nil {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(config.Env(name, "")); err == nil {
		return v
	}
	return def
}
