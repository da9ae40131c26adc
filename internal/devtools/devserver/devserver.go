// Package devserver runs an embedded, SQLite-backed Temporal development
// server (frontend, history, matching and worker services in one process)
// plus the Temporal Web UI, comparable to
// `temporal server start-dev --db-filename`. It exists so `costlake dev`
// needs no separately installed Temporal CLI or Docker.
//
// It is not meant for production: one history shard, no auth, no TLS.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/primitives/timestamp"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/costlake/costlake/internal/searchattr"
)

// Defaults applied by Start to zero-valued Config fields.
const (
	DefaultIP           = "127.0.0.1"
	DefaultFrontendPort = 7233
	DefaultUIPort       = 8233
	DefaultNamespace    = "default"
	DefaultLogLevel     = "warn"
)

const (
	// dbFileName is the SQLite database inside Config.DataDir.
	dbFileName = "temporal.db"
	// namespaceRetention is how long closed workflow histories are kept. A
	// week leaves room to inspect last week's runs in the UI while keeping
	// the dev database small.
	namespaceRetention = 7 * 24 * time.Hour
	// readyTimeout bounds how long Start waits for the frontend (and UI) to
	// answer after the services were started.
	readyTimeout = 60 * time.Second
	clusterName  = "active"
)

// Config configures Start. Only DataDir is required; every other zero value
// is replaced by the documented default.
type Config struct {
	// DataDir holds the SQLite file DataDir/temporal.db. It is created if
	// missing; reusing it keeps namespaces and workflow histories.
	DataDir string
	// IP is the address the frontend and the UI bind to. Default "127.0.0.1".
	IP string
	// FrontendPort is the gRPC port SDK clients and workers dial. Default 7233.
	FrontendPort int
	// UIPort is the Web UI's HTTP port. 0 means 8233; negative disables the UI.
	UIPort int
	// Namespace is registered on first start (and left untouched on later
	// starts). Default "default".
	Namespace string
	// LogLevel of the server's logs on stderr: debug, info, warn, error or
	// fatal. Default "warn" because the server is chatty at info.
	LogLevel string
}

// Server is a running development server. Create it with Start and release
// its ports with Stop.
type Server struct {
	frontendHostPort string
	uiURL            string
	namespace        string

	temporal temporal.Server
	ui       *uiserver.Server
	logs     *serverLogger
	uiDone   chan struct{} // closed when the UI's Start goroutine returns

	stopOnce sync.Once
	stopErr  error
}

// Start registers the namespace if needed, starts the Temporal services and
// the UI, adds costlake's search attributes to the namespace, and returns
// once the frontend answers gRPC health checks and the namespace is usable
// (and the UI accepts connections). If the frontend or
// UI port is taken it fails before touching DataDir, with an error naming
// the port and the flag to change it.
func Start(cfg Config) (*Server, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	uiEnabled := cfg.UIPort > 0

	// The ports are checked first: the UI server calls Logger.Fatal (os.Exit)
	// when its bind fails, so a clear error has to come from here.
	if err := checkPortFree(cfg.IP, cfg.FrontendPort); err != nil {
		return nil, fmt.Errorf("temporal frontend port %d on %s is not available (use --temporal-port to pick another): %w",
			cfg.FrontendPort, cfg.IP, err)
	}
	if uiEnabled {
		if cfg.UIPort == cfg.FrontendPort {
			return nil, fmt.Errorf("temporal UI port %d equals the frontend port (use --ui-port to pick another)", cfg.UIPort)
		}
		if err := checkPortFree(cfg.IP, cfg.UIPort); err != nil {
			return nil, fmt.Errorf("temporal UI port %d on %s is not available (use --ui-port to pick another): %w",
				cfg.UIPort, cfg.IP, err)
		}
	}

	logger, err := newLogger(cfg.LogLevel)
	if err != nil {
		return nil, err
	}

	sqlCfg, err := prepareDatabase(cfg)
	if err != nil {
		return nil, err
	}

	// A wildcard bind address cannot be dialled portably; loopback reaches it.
	dialIP := cfg.IP
	if ip := net.ParseIP(cfg.IP); ip.IsUnspecified() {
		dialIP = DefaultIP
	}
	s := &Server{
		frontendHostPort: net.JoinHostPort(dialIP, strconv.Itoa(cfg.FrontendPort)),
		namespace:        cfg.Namespace,
		logs:             logger,
	}
	// The embedded services log transient connection errors while they come
	// up in sequence; at the configured level those would read as problems.
	logger.quiet(zapcore.ErrorLevel)

	// The internal ports are picked free and bound a moment later; another
	// process can take one in between (as the local port of an outgoing
	// connection, say). A fresh pick then binds.
	for attempt := 1; ; attempt++ {
		s.temporal, err = newTemporal(cfg, sqlCfg, dialIP, logger)
		if err == nil {
			break
		}
		if attempt == maxBindAttempts || !addressInUse(err) {
			return nil, err
		}
		logger.Logger.Warn("a port picked for the embedded server was taken; picking again", tag.Error(err))
	}

	if uiEnabled {
		// Started before the Temporal services to keep the window between the
		// port check and the bind short.
		s.startUI(cfg, dialIP)
	}
	if err := s.temporal.Start(); err != nil {
		s.stopUI()
		_ = s.temporal.Stop()
		return nil, fmt.Errorf("devserver: starting temporal server: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.waitReady(ctx, logger.Logger); err != nil {
		_ = s.Stop()
		return nil, err
	}
	if err := s.addSearchAttributes(ctx, logger.Logger); err != nil {
		_ = s.Stop()
		return nil, err
	}
	logger.restore()
	return s, nil
}

// maxBindAttempts bounds how often Start picks fresh internal ports.
const maxBindAttempts = 3

// addressInUse tells a bind that lost its port to another process.
func addressInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// newTemporal builds the Temporal server on cfg's frontend port and fresh
// internal ports.
func newTemporal(cfg Config, sqlCfg *config.SQL, dialIP string, logger *serverLogger) (temporal.Server, error) {
	srvCfg, hosts, err := serverConfig(cfg, sqlCfg, dialIP)
	if err != nil {
		return nil, err
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&srvCfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("devserver: authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&srvCfg.Global.Authorization, logger.Logger)
	if err != nil {
		return nil, fmt.Errorf("devserver: claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(srvCfg),
		temporal.ForServices(temporal.DefaultServices),
		// Static membership instead of ringpop: nothing to gossip with in one
		// process, and ringpop would try to rejoin the dead peers of the
		// previous run that it finds in the database.
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger.Logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// The default (128k entries) is sized for production hosts.
			dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
			// The UI lists and counts workflows a lot; the default 10 RPS
			// makes it show rate-limit errors.
			dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
			// costlake's search attributes are added right after start;
			// without this the first runs after it find no mapping for
			// them until the cache refreshes (as `temporal server
			// start-dev` sets it).
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("devserver: creating temporal server: %w", err)
	}
	return srv, nil

}

// FrontendHostPort returns the gRPC address clients and workers should dial,
// e.g. "127.0.0.1:7233" (loopback when bound to a wildcard IP).
func (s *Server) FrontendHostPort() string { return s.frontendHostPort }

// UIURL returns the Web UI's base URL, e.g. "http://127.0.0.1:8233", or ""
// when the UI is disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace returns the namespace that Start registered and checked.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and then the Temporal services, releasing their ports.
// It is safe to call more than once; later calls return the first result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// Shutting down makes every service log cancelled operations and
		// lost connections; none of it is actionable, and errors from
		// stopping are returned.
		s.logs.quiet(zapcore.FatalLevel)
		s.stopUI()
		// temporal's Stop closes a channel, so a second call would panic.
		s.stopErr = s.temporal.Stop()
	})
	return s.stopErr
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.DataDir == "" {
		return cfg, errors.New("devserver: Config.DataDir is required")
	}
	if cfg.IP == "" {
		cfg.IP = DefaultIP
	}
	if net.ParseIP(cfg.IP) == nil {
		return cfg, fmt.Errorf("devserver: IP %q is not an IP address", cfg.IP)
	}
	if cfg.FrontendPort == 0 {
		cfg.FrontendPort = DefaultFrontendPort
	}
	if cfg.FrontendPort < 0 || cfg.FrontendPort > 65535 {
		return cfg, fmt.Errorf("devserver: frontend port %d out of range (--temporal-port)", cfg.FrontendPort)
	}
	if cfg.UIPort == 0 {
		cfg.UIPort = DefaultUIPort
	}
	if cfg.UIPort > 65535 {
		return cfg, fmt.Errorf("devserver: UI port %d out of range (--ui-port)", cfg.UIPort)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = DefaultLogLevel
	}
	// The server's parser silently maps unknown levels to info.
	switch strings.ToLower(cfg.LogLevel) {
	case "debug", "info", "warn", "error", "fatal":
	default:
		return cfg, fmt.Errorf("devserver: unknown log level %q (want debug, info, warn, error or fatal)", cfg.LogLevel)
	}
	return cfg, nil
}

// serverLogger is the server's zap logger with a level that Start and Stop
// can raise temporarily.
type serverLogger struct {
	log.Logger
	level      zap.AtomicLevel
	configured zapcore.Level
}

func newLogger(level string) (*serverLogger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("devserver: log level: %w", err)
	}
	atomic := zap.NewAtomicLevelAt(lvl)
	zl, err := zap.Config{
		Level:            atomic,
		Encoding:         "console",
		EncoderConfig:    log.DefaultZapEncoderConfig,
		OutputPaths:      []string{"stderr"},
		ErrorOutputPaths: []string{"stderr"},
		DisableCaller:    true, // the server logs its own "logging-call-at"
		// Stack traces of server internals only bury the message.
		DisableStacktrace: true,
	}.Build()
	if err != nil {
		return nil, fmt.Errorf("devserver: building logger: %w", err)
	}
	return &serverLogger{Logger: log.NewZapLogger(zl), level: atomic, configured: lvl}, nil
}

// quiet raises the level to at least lvl, unless debug or info logging was
// asked for: then the noise is presumably wanted.
func (l *serverLogger) quiet(lvl zapcore.Level) {
	if l.configured >= zapcore.WarnLevel && lvl > l.configured {
		l.level.SetLevel(lvl)
	}
}

func (l *serverLogger) restore() { l.level.SetLevel(l.configured) }

// checkPortFree reports whether something already listens on ip:port.
func checkPortFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// freePort asks the kernel for an unused port on ip for a port nobody needs
// to know in advance. Another process could grab it before the server binds,
// which is acceptable for a dev server (Start then fails with the bind error).
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("devserver: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// prepareDatabase creates DataDir and, on first use, the schema, then makes
// sure the namespace exists.
func prepareDatabase(cfg Config) (*config.SQL, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("devserver: creating data dir: %w", err)
	}
	dbPath := filepath.Join(cfg.DataDir, dbFileName)
	sqlCfg := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: dbPath,
		ConnectAttributes: map[string]string{
			"mode": "rwc",
			// WAL keeps committed transactions across a crash or kill -9
			// (the plugin never closes its connection, so an unclean exit is
			// the normal case); synchronous=FULL makes them survive power
			// loss too, at a cost a dev server does not notice.
			"journal_mode": "wal",
			"synchronous":  "full",
			// Lets e.g. a sqlite3 shell read the file without the server
			// failing with "database is locked".
			"busy_timeout": "10000",
		},
	}

	if _, err := os.Stat(dbPath); errors.Is(err, os.ErrNotExist) {
		if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
			// A half-initialised file would be taken as ready next time.
			for _, suffix := range []string{"", "-wal", "-shm"} {
				_ = os.Remove(dbPath + suffix)
			}
			return nil, fmt.Errorf("devserver: creating schema in %s: %w", dbPath, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("devserver: %w", err)
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, cfg.Namespace, false, nil)
	if err != nil {
		return nil, fmt.Errorf("devserver: namespace config: %w", err)
	}
	ns.Detail.Config.Retention = timestamp.DurationPtr(namespaceRetention)
	// CreateNamespaces looks the name up first and skips existing ones, so a
	// restart keeps the namespace's ID, retention and any edits made since.
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("devserver: registering namespace %q: %w", cfg.Namespace, err)
	}
	return sqlCfg, nil
}

// serverConfig builds the static server configuration: the frontend on the
// configured address, the other services on free loopback ports.
func serverConfig(cfg Config, sqlCfg *config.SQL, dialIP string) (*config.Config, map[primitives.ServiceName]static.Hosts, error) {
	frontendHostPort := net.JoinHostPort(dialIP, strconv.Itoa(cfg.FrontendPort))
	// The frontend's HTTP API is what Nexus callbacks use; without it the
	// server warns on every start.
	httpPort, err := freePort(cfg.IP)
	if err != nil {
		return nil, nil, err
	}
	services := map[string]config.Service{
		string(primitives.FrontendService): {RPC: config.RPC{GRPCPort: cfg.FrontendPort, HTTPPort: httpPort, BindOnIP: cfg.IP}},
	}
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(frontendHostPort),
	}
	for _, svc := range []primitives.ServiceName{primitives.HistoryService, primitives.MatchingService, primitives.WorkerService} {
		port, err := freePort("127.0.0.1")
		if err != nil {
			return nil, nil, err
		}
		services[string(svc)] = config.Service{RPC: config.RPC{GRPCPort: port, BindOnIP: "127.0.0.1"}}
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	}

	var c config.Config
	// Unused for gossip with static hosts, but the server derives its service
	// start timeout from it (twice this), which slow laptops need.
	c.Global.Membership.MaxJoinDuration = 30 * time.Second
	c.Persistence = config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1, // fixed forever by the first start; 1 is plenty locally
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
	}
	c.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendHostPort,
				HTTPAddress:            net.JoinHostPort(dialIP, strconv.Itoa(httpPort)),
			},
		},
	}
	c.DCRedirectionPolicy.Policy = "noop"
	c.Services = services
	c.Archival.History.State = "disabled"
	c.Archival.Visibility.State = "disabled"
	c.NamespaceDefaults.Archival.History.State = "disabled"
	c.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The worker service's SDK client dials this.
	c.PublicClient.HostPort = frontendHostPort
	return &c, hosts, nil
}

func (s *Server) startUI(cfg Config, dialIP string) {
	host := cfg.IP
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // ui-server formats "%s:%d"
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                cfg.UIPort,
		TemporalGRPCAddress: s.frontendHostPort,
		EnableUI:            true,
		DefaultNamespace:    cfg.Namespace,
		// Plain http on localhost: a Secure CSRF cookie would never be sent.
		CORS:     uiconfig.CORS{CookieInsecure: true},
		HideLogs: true,
	}))
	s.uiURL = "http://" + net.JoinHostPort(dialIP, strconv.Itoa(cfg.UIPort))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		// Blocks until stopUI; returns nil on a clean close and exits the
		// process on any other error.
		_ = s.ui.Start()
	}()
}

func (s *Server) stopUI() {
	if s.ui == nil {
		return
	}
	s.ui.Stop()
	<-s.uiDone // so the port is free once Stop returns
}

// waitReady polls until the frontend passes a health check and serves the
// namespace, and the UI accepts HTTP requests.
func (s *Server) waitReady(ctx context.Context, logger log.Logger) error {
	var lastErr error
	for {
		lastErr = s.probe(ctx, logger)
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: not ready after %s: %w", readyTimeout, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// addSearchAttributes registers costlake's search attributes on the
// namespace, as `costlake setup` does on a production one.
func (s *Server) addSearchAttributes(ctx context.Context, logger log.Logger) error {
	c, err := client.DialContext(ctx, client.Options{HostPort: s.frontendHostPort, Namespace: s.namespace, Logger: log.NewSdkLogger(logger)})
	if err != nil {
		return fmt.Errorf("devserver: dialing frontend %s: %w", s.frontendHostPort, err)
	}
	defer c.Close()
	if _, err := searchattr.Ensure(ctx, c, s.namespace); err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	return nil
}

func (s *Server) probe(ctx context.Context, logger log.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{
		HostPort:  s.frontendHostPort,
		Namespace: s.namespace,
		Logger:    log.NewSdkLogger(logger),
	})
	if err != nil {
		return fmt.Errorf("dialing frontend %s: %w", s.frontendHostPort, err)
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("frontend health check: %w", err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace}); err != nil {
		return fmt.Errorf("describing namespace %q: %w", s.namespace, err)
	}
	if s.uiURL != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.uiURL+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("UI %s: %w", s.uiURL, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("UI %s/healthz: %s", s.uiURL, resp.Status)
		}
	}
	return nil
}
