package config

import (
	"flag"
	"strings"
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

func TestRedactDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://costlake:s3cr3t-pw@db.internal:5432/catalog?sslmode=require": "postgres://costlake:xxxxx@db.internal:5432/catalog?sslmode=require",
		"postgresql://costlake@db/catalog?password=s3cr3t-pw":                    "postgresql://costlake@db/catalog?password=xxxxx",
		"postgres://costlake:s3cr3t-pw@db:bad-port/catalog":                      "postgres://(unparseable; hidden)",
		"/var/lib/costlake/catalog.db":                                           "/var/lib/costlake/catalog.db",
	} {
		got := RedactDSN(dsn)
		if got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", dsn, got, want)
		}
		if strings.Contains(got, "s3cr3t-pw") {
			t.Errorf("RedactDSN(%q) keeps the password", dsn)
		}
	}
}
