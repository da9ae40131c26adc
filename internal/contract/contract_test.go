package contract

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrongTypesDoNotCompile builds two small programs against the
// handles: one calls and registers an activity with its declared types
// and builds; the other passes a wrong input, a wrong result pointer and
// an implementation of the wrong signature, and each is a compile error.
func TestWrongTypesDoNotCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	gobin, err := exec.LookPath("go") // the toolchain running the tests
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	build := func(dir string) (string, error) {
		out, err := exec.Command(gobin, "build", "-o", filepath.Join(t.TempDir(), "bin"), "./testdata/"+dir).CombinedOutput()
		return string(out), err
	}
	if out, err := build("right"); err != nil {
		t.Fatalf("the well-typed program does not build: %v\n%s", err, out)
	}
	out, err := build("wrong")
	if err == nil {
		t.Fatal("the ill-typed program builds")
	}
	for _, want := range []string{
		`cannot use "2026-09"`, // the input
		`cannot use &res.Rows`, // the result
		`cannot use impl`,      // the implementation
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no compile error %q in:\n%s", want, out)
		}
	}
}
