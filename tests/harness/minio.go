package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/costlake/costlake/internal/blob"
)

// MinIO root credentials. They are fixed because the servers are throwaway
// and only listen on loopback; MinIO wants a password of 8+ characters.
const (
	minioUser     = "costlake"
	minioPassword = "costlake-secret"
)

// minioModule is what gets built when no MinIO binary is found. It is pinned so a fresh machine builds the same server the
// tests were written against (the latest release at the time).
const minioModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIOServer is a running MinIO reachable over plain HTTP.
type MinIOServer struct {
	// Endpoint is the S3 API base URL, e.g. "http://127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
}

// S3Options points blob.NewS3 at this server.
func (m *MinIOServer) S3Options() blob.S3Options {
	return blob.S3Options{
		Endpoint:        m.Endpoint,
		Region:          "us-east-1",
		AccessKeyID:     m.AccessKey,
		SecretAccessKey: m.SecretKey,
	}
}

// CreateBucket creates an empty bucket through the S3 API and returns a
// store on it.
func (m *MinIOServer) CreateBucket(t testing.TB, name string) *blob.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := blob.NewS3(ctx, name, m.S3Options())
	if err != nil {
		t.Fatalf("harness: S3 client for %s: %v", m.Endpoint, err)
	}
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("harness: create bucket %q on %s: %v", name, m.Endpoint, err)
	}
	return s
}

// MinIO starts a MinIO server as a child process on a free loopback port,
// with its data in a fresh temporary folder, and waits until it is ready.
// It is stopped when the test ends. The binary is found (or built) as
// described at minioBinary; the first build takes about five minutes.
func MinIO(t testing.TB) *MinIOServer {
	t.Helper()
	return minioWithEnv(t, nil)
}

// minioWithEnv is MinIO with extra KEY=value settings in the server's
// environment, e.g. an identity provider (see MinIOWithOIDC).
func minioWithEnv(t testing.TB, env []string) *MinIOServer {
	t.Helper()
	bin := minioBinary(t)
	dir := t.TempDir()
	// The ports come from FreePort and are bound later by MinIO, so another
	// process may take one in between; a couple of retries absorb that.
	const attempts = 3
	for i := 1; ; i++ {
		srv, err := startMinIO(t, bin, dir, i, env)
		if err == nil {
			return srv
		}
		if i == attempts || !errors.Is(err, errPortTaken) {
			t.Fatalf("harness: %v", err)
		}
		t.Logf("harness: attempt %d failed, retrying with other ports: %v", i, err)
	}
}

var errPortTaken = errors.New("port already in use")

func startMinIO(t testing.TB, bin, dir string, attempt int, env []string) (*MinIOServer, error) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	consoleAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	data := filepath.Join(dir, "data")
	certs := filepath.Join(dir, "certs")
	logPath := filepath.Join(dir, fmt.Sprintf("minio-%d.log", attempt))
	for _, d := range []string{data, certs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child keeps its own descriptor

	// --certs-dir keeps MinIO from creating ~/.minio; the console cannot be
	// switched off, so it gets its own loopback port.
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", addr, "--console-address", consoleAddr,
		"--certs-dir", certs, data)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser,
		"MINIO_ROOT_PASSWORD="+minioPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// No new process group: an interrupted `go test` (Ctrl-C) then signals
	// MinIO too, instead of leaving it running.
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()

	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)

	endpoint := "http://" + addr
	if err := waitReady(endpoint+"/minio/health/ready", done, 2*time.Minute); err != nil {
		stop()
		tail := tailFile(logPath, 40)
		if strings.Contains(tail, "address already in use") {
			err = fmt.Errorf("%w: %v", errPortTaken, err)
		}
		return nil, fmt.Errorf("MinIO at %s: %w\n--- %s (last lines) ---\n%s", endpoint, err, logPath, tail)
	}
	// A test that fails later may have failed because of the server.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("harness: MinIO log (%s), last lines:\n%s", logPath, tailFile(logPath, 40))
		}
	})
	return &MinIOServer{Endpoint: endpoint, AccessKey: minioUser, SecretKey: minioPassword}, nil
}

// waitReady polls url until it answers 200, the process exits, or the
// timeout passes.
func waitReady(url string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
	}
}

// minioBinary finds a MinIO server binary, in this order:
//
//  1. $COSTLAKE_MINIO_BIN, which must then exist;
//  2. $(os.UserCacheDir)/costlake-bin/minio;
//  3. minio on $PATH;
//  4. otherwise it builds (2) with `go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c`.
//
// The build runs under an exclusive lock on a file in the cache folder, so
// test binaries of several packages running at once build it only once.
func minioBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("COSTLAKE_MINIO_BIN"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("harness: COSTLAKE_MINIO_BIN=%s is not an executable file", p)
		}
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("harness: no user cache folder for the MinIO binary (set COSTLAKE_MINIO_BIN): %v", err)
	}
	dir := filepath.Join(cache, "costlake-bin")
	cached := filepath.Join(dir, "minio")
	if isExecutable(cached) {
		return cached
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	return buildMinIO(t, dir)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func buildMinIO(t testing.TB, dir string) string {
	t.Helper()
	target := filepath.Join(dir, "minio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("harness: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "minio.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer lock.Close() // closing releases the lock
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		t.Fatalf("harness: lock %s: %v", lock.Name(), err)
	}
	// Another test binary may have built it while this one waited.
	if isExecutable(target) {
		return target
	}

	msg := fmt.Sprintf("harness: no MinIO binary; building %s into %s (the first build takes ~5 minutes; set COSTLAKE_MINIO_BIN to use another binary)", minioModule, dir)
	t.Log(msg)
	if !testing.Verbose() {
		// Without -v, t.Log only shows if the test fails; say it now too,
		// since the test will sit silent for minutes.
		fmt.Fprintln(os.Stderr, msg)
	}

	// Install into a scratch GOBIN beside the target and rename, so nobody
	// ever runs a half-copied binary.
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer os.RemoveAll(tmp)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("harness: building MinIO needs the go command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", minioModule)
	// Run outside this module so its go.mod and any go.work do not apply.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("harness: go install %s: %v\n%s", minioModule, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "minio"), target); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: built %s in %v", target, time.Since(start).Round(time.Second))
	return target
}

// MinIOContainer starts MinIO in a Docker container through testcontainers
// and waits until it is ready; it is removed when the test ends. Without a
// reachable Docker engine the test is skipped, never failed or hung.
func MinIOContainer(t testing.TB) *MinIOServer {
	t.Helper()
	if err := dockerReachable(); err != nil {
		t.Skipf("harness: no Docker engine reachable, skipping the container variant: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        "minio/minio",
			Cmd:          []string{"server", "/data"},
			ExposedPorts: []string{"9000/tcp"},
			Env: map[string]string{
				"MINIO_ROOT_USER":     minioUser,
				"MINIO_ROOT_PASSWORD": minioPassword,
				"MINIO_BROWSER":       "off",
			},
			WaitingFor: wait.ForHTTP("/minio/health/ready").
				WithPort("9000/tcp").
				WithStartupTimeout(2 * time.Minute),
		},
		Started: true,
	})
	// Registered before the error check: a container that started but never
	// became ready must still be removed.
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("harness: start MinIO container: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logContainerTail(t, ctr)
		}
	})
	endpoint, err := ctr.PortEndpoint(ctx, "9000/tcp", "http")
	if err != nil {
		t.Fatalf("harness: MinIO container endpoint: %v", err)
	}
	return &MinIOServer{Endpoint: endpoint, AccessKey: minioUser, SecretKey: minioPassword}
}

func logContainerTail(t testing.TB, ctr testcontainers.Container) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Logf("harness: MinIO container logs: %v", err)
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("harness: MinIO container log, last lines:\n%s", strings.Join(lines, "\n"))
}

var (
	dockerOnce sync.Once
	dockerErr  error
)

// dockerReachable reports whether a Docker engine answers, asking once per
// test binary. The probe runs under its own deadline because the Docker
// client can block on an unresponsive DOCKER_HOST, and testcontainers panics
// when it finds no Docker host at all.
func dockerReachable() error {
	dockerOnce.Do(func() {
		res := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil {
					res <- fmt.Errorf("docker host discovery: %v", r)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := testcontainers.NewDockerProvider()
			if err != nil {
				res <- err
				return
			}
			res <- p.Health(ctx) // Health also closes the provider
		}()
		select {
		case dockerErr = <-res:
		case <-time.After(15 * time.Second):
			dockerErr = errors.New("docker engine did not answer within 15s")
		}
	})
	return dockerErr
}
