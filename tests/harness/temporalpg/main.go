// Command temporalpg runs a Temporal server (frontend, history, matching
// and worker services) as its own process on PostgreSQL persistence and
// PostgreSQL (SQL) visibility, the shape Temporal runs in production, for
// the tests that start costlake's production processes against it. It
// creates its two databases and their schemas (from the server module's
// embedded schema files) when they are missing, registers the namespace,
// prints "ready" on stdout once the frontend serves it, and stops on
// SIGTERM or SIGINT.
//
// It is a test tool: no TLS, no authorization, static membership.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path"
	"strconv"
	"syscall"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/persistence"
	"go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	"go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/resolver"
	dbschemas "go.temporal.io/server/schema"
	postgresqlschema "go.temporal.io/server/schema/postgresql/v12"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

const clusterName = "active"

// ErrNotReady: the frontend did not serve the namespace in time.
var ErrNotReady = errors.New("temporalpg: the frontend is not ready")

type options struct {
	pgAddr, pgUser, pgPassword string
	db, visibilityDB           string
	port                       int
	namespace, logLevel        string
	shards                     int
}

func main() {
	var o options
	flag.StringVar(&o.pgAddr, "pg-addr", "127.0.0.1:5432", "PostgreSQL host:port")
	flag.StringVar(&o.pgUser, "pg-user", "postgres", "PostgreSQL user (must be able to create databases)")
	flag.StringVar(&o.pgPassword, "pg-password", "", "PostgreSQL password")
	flag.StringVar(&o.db, "db", "temporal", "database of the persistence store")
	flag.StringVar(&o.visibilityDB, "visibility-db", "temporal_visibility", "database of the visibility store")
	flag.IntVar(&o.port, "port", 7233, "frontend gRPC port on 127.0.0.1")
	flag.StringVar(&o.namespace, "namespace", "default", "namespace to register")
	flag.StringVar(&o.logLevel, "log-level", "warn", "server log level")
	flag.IntVar(&o.shards, "shards", 4, "history shards (fixed by the first start)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "temporalpg:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: o.logLevel, Format: "console"}))
	store := o.sqlConfig(o.db)
	visibility := o.sqlConfig(o.visibilityDB)
	if err := setupSchema(store, "postgresql/v12/temporal", postgresqlschema.Version, logger); err != nil {
		return err
	}
	if err := setupSchema(visibility, "postgresql/v12/visibility", postgresqlschema.VisibilityVersion, logger); err != nil {
		return err
	}
	// The namespace is written before the services start, so every
	// service's namespace registry holds it from its first load (one
	// registered through the frontend later is unknown to them until
	// their next refresh). The helper is the SQLite schema package's but
	// works on any SQL plugin's database.
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, o.namespace, false, nil)
	if err != nil {
		return err
	}
	ns.Detail.Config.Retention = durationpb.New(24 * time.Hour)
	if err := sqliteschema.CreateNamespaces(store, ns); err != nil {
		return fmt.Errorf("register namespace %s: %w", o.namespace, err)
	}
	cfg, hosts, err := serverConfig(o, store, visibility)
	if err != nil {
		return err
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
			// `costlake setup` adds search attributes just before the
			// workers start; read them fresh rather than after a refresh.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		}),
	)
	if err != nil {
		return fmt.Errorf("create the server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start the server: %w", err)
	}
	defer func() { _ = srv.Stop() }()
	frontend := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	if err := waitNamespace(frontend, o.namespace); err != nil {
		return err
	}
	fmt.Println("ready", frontend, o.namespace)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return nil
}

func (o options) sqlConfig(db string) *config.SQL {
	return &config.SQL{
		PluginName:      postgresql.PluginNamePGX,
		DatabaseName:    db,
		ConnectAddr:     o.pgAddr,
		ConnectProtocol: "tcp",
		User:            o.pgUser,
		Password:        o.pgPassword,
		MaxConns:        20,
		MaxIdleConns:    20,
		MaxConnLifetime: time.Hour,
		ConnectAttributes: map[string]string{
			"sslmode": "disable",
		},
	}
}

// setupSchema creates cfg's database when it is missing and, on a database
// without a schema version, applies the embedded schema (the latest, in
// one file) and records its version, as `temporal-sql-tool create-database`
// and `setup-schema` do.
func setupSchema(cfg *config.SQL, schemaDir, version string, logger log.Logger) error {
	admin := *cfg
	admin.DatabaseName = "postgres"
	adb, err := sql.NewSQLAdminDB(sqlplugin.DbKindUnknown, &admin, resolver.NewNoopResolver(), logger, metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.ConnectAddr, err)
	}
	err = adb.CreateDatabase(cfg.DatabaseName)
	_ = adb.Close()
	if err != nil {
		return fmt.Errorf("create database %s: %w", cfg.DatabaseName, err)
	}

	db, err := sql.NewSQLAdminDB(sqlplugin.DbKindUnknown, cfg, resolver.NewNoopResolver(), logger, metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("connect to database %s: %w", cfg.DatabaseName, err)
	}
	defer db.Close()
	if v, err := db.ReadSchemaVersion(cfg.DatabaseName); err == nil && v != "" {
		if v != version {
			return fmt.Errorf("database %s has schema %s; this server needs %s", cfg.DatabaseName, v, version)
		}
		return nil
	}
	if err := db.CreateSchemaVersionTables(); err != nil {
		return fmt.Errorf("schema version tables of %s: %w", cfg.DatabaseName, err)
	}
	file := path.Join(schemaDir, "schema.sql")
	text, err := fs.ReadFile(dbschemas.Assets(), file)
	if err != nil {
		return fmt.Errorf("embedded schema %s: %w", file, err)
	}
	stmts, err := persistence.LoadAndSplitQueryFromReaders([]io.Reader{bytes.NewReader(text)})
	if err != nil {
		return fmt.Errorf("parse %s: %w", file, err)
	}
	for _, stmt := range stmts {
		if err := db.Exec(stmt); err != nil {
			return fmt.Errorf("apply %s to %s: %w", file, cfg.DatabaseName, err)
		}
	}
	if err := db.UpdateSchemaVersion(cfg.DatabaseName, version, version); err != nil {
		return fmt.Errorf("record the schema version of %s: %w", cfg.DatabaseName, err)
	}
	return db.WriteSchemaUpdateLog("0", version, "", "initial version")
}

// serverConfig is the static configuration: the frontend on o.port, the
// other services on free loopback ports.
func serverConfig(o options, store, visibility *config.SQL) (*config.Config, map[primitives.ServiceName]static.Hosts, error) {
	frontend := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	httpPort, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	services := map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{GRPCPort: o.port, HTTPPort: httpPort, BindOnIP: "127.0.0.1"}},
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(frontend),
	}
	for _, svc := range []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		port, err := freePort()
		if err != nil {
			return nil, nil, err
		}
		services[string(svc)] = config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: "127.0.0.1"}}
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}
	var c config.Config
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Persistence = config.Persistence{
		DefaultStore:     "default",
		VisibilityStore:  "visibility",
		NumHistoryShards: int32(o.shards),
		DataStores: map[string]config.DataStore{
			"default":    {SQL: store},
			"visibility": {SQL: visibility},
		},
	}
	c.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
			},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	c.Services = services
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	c.PublicClient.HostPort = frontend
	return &c, hosts, nil
}

// waitNamespace waits until the frontend answers and describes ns.
func waitNamespace(frontend, ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var last error
	for {
		last = describe(ctx, frontend, ns)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: namespace %s on %s: %v", ErrNotReady, ns, frontend, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func describe(ctx context.Context, frontend, ns string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: frontend, Namespace: ns, Logger: quiet{}})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	return err
}

// quiet drops the SDK client's own logs; errors come back as values.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
