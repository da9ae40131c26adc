package main

import (
	"flag"
	"runtime/debug"
	"testing"

	"github.com/costlake/costlake/internal/cur"
)

// TestWorkerBounds: a worker sets a soft memory limit by default (auto:
// 3/4 of the memory it has), unless GOMEMLIMIT is set or it is turned
// off; the size flags take units, and no file:// folder is allowed
// unless one is given.
func TestWorkerBounds(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	const unset = int64(^uint64(0) >> 1) // the runtime's "no limit"

	parse := func(args ...string) ([]string, cur.Limits) {
		t.Helper()
		debug.SetMemoryLimit(unset)
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		var b workerBounds
		addBoundsFlags(fs, &b, "")
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		roots, lim, err := b.apply()
		if err != nil {
			t.Fatal(err)
		}
		return roots, lim
	}

	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("COSTLAKE_FILE_ROOTS", "")
	roots, lim := parse()
	if roots != nil {
		t.Errorf("file roots %v by default, want none", roots)
	}
	if lim != cur.DefaultLimits {
		t.Errorf("limits %+v by default, want %+v", lim, cur.DefaultLimits)
	}
	if total := availableMemory(); total > 0 {
		if got := debug.SetMemoryLimit(-1); got != total/4*3 {
			t.Errorf("memory limit %d by default, want %d", got, total/4*3)
		}
	}

	roots, lim = parse("--memory-limit", "1GiB", "--max-object-bytes", "2GiB", "--max-record-bytes", "512KiB", "--file-roots", "/srv/a, /srv/b")
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want 1 GiB", got)
	}
	if lim.MaxObjectBytes != 2<<30 || lim.MaxRecordBytes != 512<<10 {
		t.Errorf("limits %+v", lim)
	}
	if len(roots) != 2 || roots[0] != "/srv/a" || roots[1] != "/srv/b" {
		t.Errorf("file roots %v", roots)
	}

	parse("--memory-limit", "off")
	if got := debug.SetMemoryLimit(-1); got != unset {
		t.Errorf("memory limit %d with off, want none", got)
	}
	t.Setenv("GOMEMLIMIT", "3GiB")
	parse()
	if got := debug.SetMemoryLimit(-1); got != unset {
		t.Errorf("memory limit %d set over GOMEMLIMIT, want it left to the runtime", got)
	}
}
