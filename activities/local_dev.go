//go:build !nodev

package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/onboard"
)

// localPayersBuilt: this build reaches local payers when its worker has
// a local buckets folder (only `costlake dev` gives it one).
const localPayersBuilt = true

// openLocalBucket opens the folder standing for a local payer's bucket;
// keys are the bucket's, as in S3. The bucket name is a validated S3
// name (no slash, no ".."), so the folder stays under LocalBuckets.
func (w AWS) openLocalBucket(bucket string) (blob.Store, string, error) {
	if msg := w.localRefusal(); msg != "" {
		return nil, "", temporal.NewNonRetryableApplicationError(msg, errTypeLocalPayer, nil)
	}
	dir := filepath.Join(w.LocalBuckets, bucket)
	return blob.NewLocal(dir), dir, nil
}

// validateLocal runs the access checks of a local payer against its
// folder: no credentials or organization to check, the bucket is the
// folder, the delivery its manifests.
func (a *Onboard) validateLocal(ctx context.Context, in onboard.ValidateAccessInput) onboard.ValidateAccessResult {
	reg := in.Registration
	res := onboard.ValidateAccessResult{Source: reg.Export.Source()}
	add := func(name, result, msg string) {
		res.Checks = append(res.Checks, onboard.Check{Name: name, Result: result, Message: msg})
		activity.RecordHeartbeat(ctx, name)
	}
	skipRest := func(names ...string) {
		for _, n := range names {
			add(n, onboard.Skipped, "not run: an earlier check failed")
		}
	}
	store, dir, err := a.openLocalBucket(reg.Export.Bucket)
	if err != nil {
		add(onboard.CheckCredentials, onboard.Failed, rootMessageOf(err))
		skipRest(onboard.CheckOrganization, onboard.CheckBucket, onboard.CheckExport, onboard.CheckDelivery)
		return res
	}
	add(onboard.CheckCredentials, onboard.Passed, fmt.Sprintf("local payer (costlake dev): no AWS credentials; bucket %s is the folder %s", reg.Export.Bucket, dir))
	res.Accounts = []string{reg.PayerAccountID}
	add(onboard.CheckOrganization, onboard.NotApplicable, "not applicable: a local payer has no AWS Organization; connected accounts: "+reg.PayerAccountID)
	folder := filepath.Join(dir, filepath.FromSlash(reg.Export.Prefix))
	if st, err := os.Stat(folder); err != nil || !st.IsDir() {
		add(onboard.CheckBucket, onboard.Failed, fmt.Sprintf("folder %s does not exist: write the delivery under it (bucket %s, prefix %q)", folder, reg.Export.Bucket, reg.Export.Prefix))
		store = nil
	} else {
		add(onboard.CheckBucket, onboard.Passed, "can list "+folder)
	}
	add(onboard.CheckExport, onboard.Passed, "not looked up: a local payer has no AWS export definition; the delivery check looks for manifests under the prefix")
	if store == nil {
		skipRest(onboard.CheckDelivery)
		return res
	}
	latest, msg, ok := findLatestDelivery(ctx, store, reg.Export, in.AsOf, false)
	res.LatestPeriod = latest
	result := onboard.Passed
	if !ok {
		result = onboard.Failed
	}
	add(onboard.CheckDelivery, result, msg)
	return res
}

// rootMessageOf is an activity error's own message.
func rootMessageOf(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
