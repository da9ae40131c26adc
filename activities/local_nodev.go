//go:build nodev

package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/onboard"
)

// localPayersBuilt: a production build reaches payers through AWS only.
const localPayersBuilt = false

func (w AWS) openLocalBucket(string) (blob.Store, string, error) {
	return nil, "", temporal.NewNonRetryableApplicationError(w.localRefusal(), errTypeLocalPayer, nil)
}

func (a *Onboard) validateLocal(_ context.Context, in onboard.ValidateAccessInput) onboard.ValidateAccessResult {
	res := onboard.ValidateAccessResult{Source: in.Registration.Export.Source()}
	res.Checks = append(res.Checks, onboard.Check{Name: onboard.CheckCredentials, Result: onboard.Failed, Message: a.localRefusal()})
	for _, n := range []string{onboard.CheckOrganization, onboard.CheckBucket, onboard.CheckExport, onboard.CheckDelivery} {
		res.Checks = append(res.Checks, onboard.Check{Name: n, Result: onboard.Skipped, Message: "not run: an earlier check failed"})
	}
	return res
}
