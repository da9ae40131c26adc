package activities

import "go.temporal.io/sdk/temporal"

// A local payer (payer.Local) is costlake dev's demo payer: its bucket is
// a folder on the worker and no AWS account stands behind it. Reading the
// folder is in local_dev.go, which a production build (-tags nodev) leaves
// out; what is here only refuses or says there is nothing to call.

// errTypeLocalPayer fails an activity a local payer cannot have.
const errTypeLocalPayer = "LocalPayer"

// errLocalNoAWS: a local payer has no AWS account to call (no STS,
// Organizations, CloudFormation or Cost Explorer).
var errLocalNoAWS = temporal.NewNonRetryableApplicationError(
	"a local payer (costlake dev) has no AWS account to call: only its folder is read", errTypeLocalPayer, nil)

// localRefusal says why this worker cannot onboard a local payer, or "".
func (w AWS) localRefusal() string {
	switch {
	case !localPayersBuilt:
		return `mode "local" is for costlake dev only: this production build (-tags nodev) reaches payers through AWS; use assume_role, web_identity or access_keys`
	case w.LocalBuckets == "":
		return `mode "local" is for costlake dev only: this worker has no local buckets folder (` + "`costlake dev`" + ` runs the worker that has one); use assume_role, web_identity or access_keys`
	}
	return ""
}

// localStackNote is what a local payer has instead of a customer stack.
const localStackNote = "a local payer (costlake dev) has no customer stack: its bucket is a folder on the worker; post stack-deployed once the folder holds the delivery, and the checks run"
