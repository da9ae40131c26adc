package main

import (
	"os/exec"
	"strings"
	"testing"
)

// A production build (-tags nodev) links neither the Temporal server nor
// its UI; the default build does, for `dev` and `bench`.
func TestProductionBuildLeavesOutTheTemporalServer(t *testing.T) {
	devServerPackages := func(tags ...string) []string {
		args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, tags...)
		out, err := exec.Command("go", append(args, ".")...).Output()
		if err != nil {
			t.Fatalf("go list %v: %v", tags, err)
		}
		var found []string
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, "go.temporal.io/server/") || strings.HasPrefix(p, "github.com/temporalio/ui-server/") ||
				p == "github.com/costlake/costlake/internal/devtools/devserver" {
				found = append(found, p)
			}
		}
		return found
	}
	if got := devServerPackages("-tags", "nodev"); len(got) > 0 {
		t.Errorf("the production build links %d packages of the dev server, such as %s", len(got), got[0])
	}
	if got := devServerPackages(); len(got) == 0 {
		t.Error("the default build links no dev server packages: is `dev` still in it?")
	}
}
