package config

import (
	"flag"
	"testing"

	"github.com/costlake/costlake/internal/blob"
)

// The defaults must be usable as they are: `costlake worker` with no flags
// once failed on a relative warehouse path.
func TestDefaultLocationsParse(t *testing.T) {
	t.Setenv("COSTLAKE_WAREHOUSE", "")
	t.Setenv("COSTLAKE_TEMPLATES", "")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var s Storage
	var o Onboarding
	AddStorageFlags(fs, &s, ".costlake")
	AddOnboardingFlags(fs, &o, ".costlake")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"warehouse": s.Warehouse, "templates": o.Templates} {
		if _, err := blob.ParseLocation(v); err != nil {
			t.Errorf("default --%s %q: %v", name, v, err)
		}
	}
}
