package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/tests/harness"
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
	if os.Getenv("COSTLAKE_TEST_CATALOG") == "postgres" {
		pg, err := harness.StartPostgres()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		testPostgres = pg
	}
	code := m.Run()
	if testPostgres != nil {
		testPostgres.Stop()
	}
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

// testPostgres is the package's PostgreSQL cluster when the tests run
// with COSTLAKE_TEST_CATALOG=postgres.
var testPostgres *harness.PostgresServer

// postgresCluster is the package's PostgreSQL cluster, or, when the tests
// run on SQLite, one started for this test alone.
func postgresCluster(t *testing.T) *harness.PostgresServer {
	t.Helper()
	if testPostgres != nil {
		return testPostgres
	}
	pg, err := harness.StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Stop)
	return pg
}

var (
	catalogsMu sync.Mutex
	catalogs   = map[string]string{}
)

// testCatalog is the catalog of the stand whose files are in dir: a
// SQLite file there, or with COSTLAKE_TEST_CATALOG=postgres a fresh
// database of the package's cluster. The same dir gets the same catalog,
// so a stand that reopens its lake finds its tables.
func testCatalog(t testing.TB, dir string) string {
	t.Helper()
	if testPostgres == nil {
		return filepath.Join(dir, "catalog.db")
	}
	catalogsMu.Lock()
	defer catalogsMu.Unlock()
	if uri, ok := catalogs[dir]; ok {
		return uri
	}
	uri := testPostgres.NewDatabase(t)
	catalogs[dir] = uri
	return uri
}
