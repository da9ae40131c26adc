// Package harness starts the real servers that costlake's integration tests
// run against: MinIO as a separate process (or, where a Docker engine is
// reachable, as a container) for S3, and fake-gcs-server in-process for GCS.
//
// Every helper takes a testing.TB, fails the test on setup errors, and
// registers its own teardown with t.Cleanup, so callers never stop servers.
package harness

import (
	"bytes"
	"net"
	"os"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. The
// port is released before returning, so another process can take it first;
// callers that bind it later should retry on "address already in use".
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("harness: find a free port: %v", err)
	}
	return port
}

// freePort is FreePort for callers without a test (a TestMain).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailFile returns at most the last n lines of a log file, for failure
// messages; a server's last words usually say why it did not start.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return "(empty)"
	}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
