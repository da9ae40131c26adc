package activities

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
)

// TestLocalPayersOnlyInDev: a local payer is refused at registration by a
// worker without a local buckets folder, and by a production build
// (go test -tags nodev) whatever its settings; a dev worker with the
// folder reads the bucket from it and never calls AWS for it.
func TestLocalPayersOnlyInDev(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	reg := payer.Registration{CustomerID: "demo", PayerAccountID: "111122223333", Access: payer.Access{Mode: payer.Local},
		Export: payer.Export{Type: payer.LegacyCUR, Bucket: "demo-billing", Prefix: "cur", Name: "report"}}
	reg.Normalize()
	if err := reg.Validate(); err != nil {
		t.Fatalf("a local registration is valid: %v", err)
	}
	for _, buckets := range []string{"", root} {
		a := &Onboard{AWS: AWS{LocalBuckets: buckets}}
		res, err := a.CheckOnboardingSetup(ctx, onboard.CheckSetupInput{Registration: reg})
		if err != nil {
			t.Fatal(err)
		}
		wantRefused := buckets == "" || !localPayersBuilt
		if got := res.Refused["access.mode"] != ""; got != wantRefused {
			t.Errorf("local buckets %q, dev build %v: refused = %v (%v), want %v", buckets, localPayersBuilt, got, res.Refused, wantRefused)
		}
	}

	w := AWS{LocalBuckets: root}
	if _, err := w.payerConfig(ctx, reg.Access, awsauth.Session{}); !isLocalPayerError(err) {
		t.Errorf("AWS credentials for a local payer: want a non-retryable LocalPayer error, got %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "demo-billing", "cur", "report"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "demo-billing", "cur", "report", "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, _, err := w.openSource(ctx, reg.Export.Source(), &reg.Access, awsauth.Session{})
	switch {
	case !localPayersBuilt:
		if !isLocalPayerError(err) {
			t.Errorf("a production build opened a local bucket: %v", err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if _, err := store.Stat(ctx, "cur/report/x"); err != nil {
			t.Errorf("the local bucket's keys are the bucket's: %v", err)
		}
	}
}

func isLocalPayerError(err error) bool {
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.Type() == errTypeLocalPayer && app.NonRetryable()
}
