package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// costlakeBinary builds cmd/costlake once per test run, for the tests that
// run it as a separate process, the way users and operators do.
func costlakeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "costlake-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "costlake")
		build := exec.Command("go", "build", "-o", binPath, "../cmd/costlake")
		build.Stderr = os.Stderr
		binErr = build.Run()
	})
	if binErr != nil {
		t.Fatalf("build costlake: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}
