package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/contract/ingest"
)

// TestFileLocationsNeedARoot: a worker with no file roots refuses every
// file:// source (InvalidSource) and export destination
// (InvalidDestination), permanently; one with a root opens under it.
func TestFileLocationsNeedARoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := &Destinations{}
	requireType := func(err error, want string) {
		t.Helper()
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != want || !app.NonRetryable() {
			t.Fatalf("want a non-retryable %s, got %v", want, err)
		}
	}
	_, _, err := a.openSource(ctx, "file://"+dir, nil, awsauth.Session{}) // through the shared AWS
	requireType(err, ingest.ErrTypeInvalidSource)
	_, err = a.openDestination(ctx, "file://"+dir, nil, "")
	requireType(err, cycle.ErrTypeDestination)

	a.Blobs = blob.Opener{FileRoots: []string{dir}}
	if _, _, err := a.openSource(ctx, "file://"+dir+"/cur/report", nil, awsauth.Session{}); err != nil {
		t.Fatalf("a source under the root: %v", err)
	}
	if _, err := a.openDestination(ctx, "file://"+dir+"/exports", nil, ""); err != nil {
		t.Fatalf("a destination under the root: %v", err)
	}
	_, err = a.openDestination(ctx, "file://"+dir+"/../elsewhere", nil, "")
	requireType(err, cycle.ErrTypeDestination)
}
