// Package config reads costlake's settings from command-line flags, with
// environment variables as defaults, once in main; everything below
// receives plain structs.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/costlake/costlake/internal/blob"
)

// ErrInvalid reports a setting costlake cannot use.
var ErrInvalid = errors.New("invalid configuration")

// Temporal says how to reach the Temporal frontend.
type Temporal struct {
	Address   string
	Namespace string
	TLSCert   string // client certificate (mTLS), PEM file
	TLSKey    string
	TLSCA     string // server CA, PEM file; empty uses the system pool
	TLS       bool   // TLS without a client certificate (e.g. API-key auth)
}

// Storage says where the lakehouse lives and how to reach object stores.
type Storage struct {
	Catalog     string
	Warehouse   string
	S3Endpoint  string
	S3Region    string
	GCSEndpoint string
	// WarehouseS3Endpoint and WarehouseS3Region reach an s3:// warehouse
	// when it is not where customers' buckets are (a warehouse on MinIO,
	// customers on AWS); empty means S3Endpoint and S3Region.
	WarehouseS3Endpoint string
	WarehouseS3Region   string
}

// Env returns the environment variable name, or def when it is unset.
func Env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// List splits a comma-separated setting, dropping blanks.
func List(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// AddTemporalFlags registers --temporal-address, --namespace and the TLS flags.
func AddTemporalFlags(fs *flag.FlagSet, t *Temporal) {
	fs.StringVar(&t.Address, "temporal-address", Env("COSTLAKE_TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port [COSTLAKE_TEMPORAL_ADDRESS]")
	fs.StringVar(&t.Namespace, "namespace", Env("COSTLAKE_TEMPORAL_NAMESPACE", "default"), "Temporal namespace [COSTLAKE_TEMPORAL_NAMESPACE]")
	fs.BoolVar(&t.TLS, "temporal-tls", Env("COSTLAKE_TEMPORAL_TLS", "") == "true", "connect to Temporal over TLS [COSTLAKE_TEMPORAL_TLS=true]")
	fs.StringVar(&t.TLSCert, "temporal-tls-cert", Env("COSTLAKE_TEMPORAL_TLS_CERT", ""), "client certificate PEM for mTLS [COSTLAKE_TEMPORAL_TLS_CERT]")
	fs.StringVar(&t.TLSKey, "temporal-tls-key", Env("COSTLAKE_TEMPORAL_TLS_KEY", ""), "client key PEM for mTLS [COSTLAKE_TEMPORAL_TLS_KEY]")
	fs.StringVar(&t.TLSCA, "temporal-tls-ca", Env("COSTLAKE_TEMPORAL_TLS_CA", ""), "server CA PEM [COSTLAKE_TEMPORAL_TLS_CA]")
}

// AddStorageFlags registers --catalog, --warehouse and the object-store flags.
func AddStorageFlags(fs *flag.FlagSet, s *Storage, dataDir string) {
	// Locations must be absolute (file:///path); a relative data folder is
	// taken from where the command runs.
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	fs.StringVar(&s.Catalog, "catalog", Env("COSTLAKE_CATALOG", filepath.Join(dataDir, "catalog.db")), "Iceberg SQL catalog: SQLite file or postgres:// URI [COSTLAKE_CATALOG]")
	fs.StringVar(&s.Warehouse, "warehouse", Env("COSTLAKE_WAREHOUSE", "file://"+filepath.Join(dataDir, "warehouse")), "warehouse root: path, file://, s3:// or gs:// [COSTLAKE_WAREHOUSE]")
	fs.StringVar(&s.S3Endpoint, "s3-endpoint", Env("COSTLAKE_S3_ENDPOINT", ""), "S3-compatible endpoint, e.g. http://127.0.0.1:9000 for MinIO [COSTLAKE_S3_ENDPOINT]")
	fs.StringVar(&s.S3Region, "s3-region", Env("COSTLAKE_S3_REGION", Env("AWS_REGION", "us-east-1")), "S3 region [COSTLAKE_S3_REGION, AWS_REGION]")
	fs.StringVar(&s.GCSEndpoint, "gcs-endpoint", Env("COSTLAKE_GCS_ENDPOINT", ""), "GCS endpoint of an emulator [COSTLAKE_GCS_ENDPOINT]")
	fs.StringVar(&s.WarehouseS3Endpoint, "warehouse-s3-endpoint", Env("COSTLAKE_WAREHOUSE_S3_ENDPOINT", ""),
		"S3-compatible endpoint of the warehouse alone, when it differs from customers' buckets'; default --s3-endpoint [COSTLAKE_WAREHOUSE_S3_ENDPOINT]")
	fs.StringVar(&s.WarehouseS3Region, "warehouse-s3-region", Env("COSTLAKE_WAREHOUSE_S3_REGION", ""),
		"region of the warehouse's S3; default --s3-region [COSTLAKE_WAREHOUSE_S3_REGION]")
}

// ClientOptions turns the Temporal settings into SDK client options.
func (t Temporal) ClientOptions() (client.Options, error) {
	o := client.Options{HostPort: t.Address, Namespace: t.Namespace}
	if !t.TLS && t.TLSCert == "" && t.TLSCA == "" {
		return o, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.TLSCert != "" || t.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSCert, t.TLSKey)
		if err != nil {
			return o, fmt.Errorf("%w: --temporal-tls-cert/--temporal-tls-key: %v", ErrInvalid, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if t.TLSCA != "" {
		pem, err := os.ReadFile(t.TLSCA)
		if err != nil {
			return o, fmt.Errorf("%w: --temporal-tls-ca: %v", ErrInvalid, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("%w: --temporal-tls-ca %s holds no PEM certificate", ErrInvalid, t.TLSCA)
		}
		tc.RootCAs = pool
	}
	o.ConnectionOptions.TLS = tc
	return o, nil
}

// S3Options returns the object-store options for S3 sources and
// warehouses. Keys come from the environment (AWS_ACCESS_KEY_ID …), never
// from flags, so they stay out of shell history and process lists; when
// unset the SDK's default chain applies.
func (s Storage) S3Options() blob.S3Options {
	return blob.S3Options{
		Endpoint:        s.S3Endpoint,
		Region:          s.S3Region,
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
}

// WarehouseS3Options returns the object-store options of an s3://
// warehouse: its own endpoint and region when set, and its own keys from
// COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID / _SECRET_ACCESS_KEY / _SESSION_TOKEN
// when set; otherwise those of S3Options.
func (s Storage) WarehouseS3Options() blob.S3Options {
	o := s.S3Options()
	if s.WarehouseS3Endpoint != "" {
		o.Endpoint = s.WarehouseS3Endpoint
	}
	if s.WarehouseS3Region != "" {
		o.Region = s.WarehouseS3Region
	}
	if id := os.Getenv("COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID"); id != "" {
		o.AccessKeyID = id
		o.SecretAccessKey = os.Getenv("COSTLAKE_WAREHOUSE_AWS_SECRET_ACCESS_KEY")
		o.SessionToken = os.Getenv("COSTLAKE_WAREHOUSE_AWS_SESSION_TOKEN")
	}
	return o
}

// Opener returns the blob opener for sources.
func (s Storage) Opener() blob.Opener {
	return blob.Opener{S3: s.S3Options(), GCS: blob.GCSOptions{Endpoint: s.GCSEndpoint}}
}

// Onboarding configures how the worker onboards payers.
type Onboarding struct {
	PrincipalARN    string // costlake's AWS principal that customers' roles trust
	Templates       string // where customer stack templates are published
	ReminderWebhook string
	// OwnAccountIDs are costlake's own AWS accounts besides the principal's
	// (comma-separated): never onboarded as a payer.
	OwnAccountIDs string
}

// AddOnboardingFlags registers --aws-principal-arn, --templates,
// --reminder-webhook and --own-account-ids.
func AddOnboardingFlags(fs *flag.FlagSet, o *Onboarding, dataDir string) {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	fs.StringVar(&o.PrincipalARN, "aws-principal-arn", Env("COSTLAKE_AWS_PRINCIPAL_ARN", ""), "costlake's AWS principal (role or account ARN) that customers' roles trust [COSTLAKE_AWS_PRINCIPAL_ARN]")
	fs.StringVar(&o.Templates, "templates", Env("COSTLAKE_TEMPLATES", filepath.Join(dataDir, "templates")), "where customer stack templates are published: s3://bucket/prefix (the AWS console needs S3) or a local folder [COSTLAKE_TEMPLATES]")
	fs.StringVar(&o.ReminderWebhook, "reminder-webhook", Env("COSTLAKE_REMINDER_WEBHOOK", ""), "URL that receives a JSON POST when a customer's stack is overdue [COSTLAKE_REMINDER_WEBHOOK]")
	fs.StringVar(&o.OwnAccountIDs, "own-account-ids", Env("COSTLAKE_OWN_ACCOUNT_IDS", ""), "costlake's own AWS account IDs besides --aws-principal-arn's, comma-separated: never onboarded as payers [COSTLAKE_OWN_ACCOUNT_IDS]")
}
