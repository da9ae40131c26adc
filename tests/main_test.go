package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/costlake/costlake/internal/period"
)

// A costlake binary built once per test run, for the tests that run it as
// a separate process, the way users and operators do.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var (
	binDir string
	// devBinary is the default build: every command, `dev` and `bench`
	// with their embedded Temporal server included.
	devBinary builtBinary
	// prodBinary is the production build (-tags nodev): what runs workers.
	prodBinary builtBinary
)

// costlakeBinary builds cmd/costlake, the default build.
func costlakeBinary(t *testing.T) string { return build(t, &devBinary, "costlake") }

// productionBinary builds cmd/costlake with -tags nodev.
func productionBinary(t *testing.T) string {
	return build(t, &prodBinary, "costlake-production", "-tags", "nodev")
}

var (
	binDirOnce sync.Once
	binDirErr  error
)

func build(t *testing.T, b *builtBinary, name string, flags ...string) string {
	t.Helper()
	b.once.Do(func() {
		binDirOnce.Do(func() { binDir, binDirErr = os.MkdirTemp("", "costlake-bin-") })
		if b.err = binDirErr; b.err != nil {
			return
		}
		b.path = filepath.Join(binDir, name)
		args := append(append([]string{"build"}, flags...), "-o", b.path, "../cmd/costlake")
		cmd := exec.Command("go", args...)
		cmd.Stderr = os.Stderr
		b.err = cmd.Run()
	})
	if b.err != nil {
		t.Fatalf("build %s: %v", name, b.err)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// billingPeriod is period.MustParse under a name that test variables
// called period do not shadow.
func billingPeriod(s string) period.Period { return period.MustParse(s) }

// billingPeriods is billingPeriod of each name.
func billingPeriods(names ...string) []period.Period {
	out := make([]period.Period, 0, len(names))
	for _, n := range names {
		out = append(out, billingPeriod(n))
	}
	return out
}
