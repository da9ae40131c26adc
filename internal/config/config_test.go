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

// A warehouse on MinIO and customers' buckets on AWS: the warehouse's
// endpoint, region and keys are its own, and customers' stay AWS's. Unset,
// the warehouse shares the customers' settings, as before.
func TestWarehouseS3IsSeparate(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIACUSTOMERS")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "customers-secret")
	t.Setenv("COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID", "")
	parse := func(args ...string) Storage {
		t.Helper()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		var s Storage
		AddStorageFlags(fs, &s, t.TempDir())
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return s
	}
	shared := parse("--s3-region", "eu-west-1")
	if w, c := shared.WarehouseS3Options(), shared.Opener().S3; w != c {
		t.Errorf("unset, the warehouse shares the customers' settings: %+v vs %+v", w, c)
	}

	t.Setenv("COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID", "minio-user")
	t.Setenv("COSTLAKE_WAREHOUSE_AWS_SECRET_ACCESS_KEY", "minio-secret")
	s := parse("--warehouse-s3-endpoint", "http://minio:9000", "--warehouse-s3-region", "us-east-1", "--s3-region", "eu-west-1")
	w, c := s.WarehouseS3Options(), s.Opener().S3
	if w.Endpoint != "http://minio:9000" || w.Region != "us-east-1" || w.AccessKeyID != "minio-user" || w.SecretAccessKey != "minio-secret" {
		t.Errorf("warehouse %+v", w)
	}
	if c.Endpoint != "" || c.Region != "eu-west-1" || c.AccessKeyID != "AKIACUSTOMERS" {
		t.Errorf("customers' buckets %+v", c)
	}
}
