// Package payer is the domain of a customer's AWS payer (management)
// account: how it is registered, how costlake reaches it, and where its
// billing export lands. It holds references only (role ARNs, external IDs,
// secret names), never keys or tokens, so its types can travel in
// workflow inputs and history.
package payer

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Mode is how costlake authenticates to a payer's account.
type Mode string

const (
	// AssumeRole assumes the customer's role with costlake's own
	// credentials and the external ID costlake generated.
	AssumeRole Mode = "assume_role"
	// WebIdentity assumes the role with an OIDC token (federation), so
	// costlake holds no AWS keys at all.
	WebIdentity Mode = "web_identity"
	// AccessKeys uses static keys of an IAM user, read from a secret
	// reference on the worker.
	AccessKeys Mode = "access_keys"
	// Local reaches no AWS account at all: the export's bucket is a
	// folder of the same name on the worker. Only `costlake dev` runs
	// such a worker (its demo payer); every other worker refuses it.
	Local Mode = "local"
)

// Access says how to reach one payer's account.
type Access struct {
	Mode    Mode   `json:"mode"`
	RoleARN string `json:"role_arn,omitempty"`
	// ExternalID guards against the confused deputy; AWS documents it as
	// not secret, so it may appear in history.
	ExternalID string `json:"external_id,omitempty"`
	// TokenFile is the web identity token source: a file on the worker that
	// an identity provider keeps fresh (e.g. a Kubernetes projected token).
	TokenFile string `json:"token_file,omitempty"`
	// SecretRef names where the worker finds static keys:
	// "env:PREFIX" reads PREFIX_AWS_ACCESS_KEY_ID and
	// PREFIX_AWS_SECRET_ACCESS_KEY (and optional PREFIX_AWS_SESSION_TOKEN).
	SecretRef string `json:"secret_ref,omitempty"`
	// Region for regional calls; billing APIs live in us-east-1.
	Region string `json:"region,omitempty"`
}

var (
	roleARNPattern    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]{2,1000}$`) // Go regexp caps repeats at 1000; AWS allows 1224, ours are short
	secretRefPattern  = regexp.MustCompile(`^env:[A-Z_][A-Z0-9_]*$`)
)

// FieldErrors checks the access settings and returns a message per JSON field
// name; an empty map means they are usable.
func (a Access) FieldErrors() map[string]string {
	f := map[string]string{}
	switch a.Mode {
	case AssumeRole:
		if !roleARNPattern.MatchString(a.RoleARN) {
			f["role_arn"] = "required: an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>"
		}
		if a.ExternalID != "" && !externalIDPattern.MatchString(a.ExternalID) {
			f["external_id"] = "2 to 1000 characters of letters, digits and +=,.@:/-"
		}
	case WebIdentity:
		if !roleARNPattern.MatchString(a.RoleARN) {
			f["role_arn"] = "required: an IAM role ARN, arn:aws:iam::<12 digits>:role/<name>"
		}
		if a.TokenFile == "" {
			f["token_file"] = "required: the path of the OIDC token file on the worker"
		}
	case AccessKeys:
		if !secretRefPattern.MatchString(a.SecretRef) {
			f["secret_ref"] = `required: a secret reference "env:PREFIX" (the worker reads PREFIX_AWS_ACCESS_KEY_ID and PREFIX_AWS_SECRET_ACCESS_KEY); never the keys themselves`
		}
	case Local:
		for field, set := range map[string]bool{"role_arn": a.RoleARN != "", "external_id": a.ExternalID != "", "token_file": a.TokenFile != "", "secret_ref": a.SecretRef != ""} {
			if set {
				f[field] = "not used in local mode: there is no AWS account to reach"
			}
		}
	default:
		f["mode"] = `one of "assume_role", "web_identity", "access_keys" (or "local", in costlake dev only)`
	}
	return f
}

// Validate returns an ErrInvalid error naming every bad field.
func (a Access) Validate() error { return fieldsError(a.FieldErrors()) }

// ErrInvalid reports a registration costlake cannot use.
var ErrInvalid = errors.New("invalid payer registration")

// ExportType is the kind of billing export a payer delivers.
type ExportType string

// The export types costlake ingests.
const (
	LegacyCUR ExportType = "legacy_cur" // Cost and Usage Report (csv.gz + manifests)
	CUR2      ExportType = "cur2"       // Data Exports, CUR 2.0
	FOCUS     ExportType = "focus"      // Data Exports, FOCUS 1.x
	Partner   ExportType = "partner"    // a partner generator's RawCURReports layout
	// CostExplorer is no export at all: for payers that grant only
	// ce:GetCostAndUsage, daily costs come from the Cost Explorer API.
	CostExplorer ExportType = "cost_explorer"
)

// Export says where a payer's billing export lands and whether costlake
// should look for an existing one or create it.
type Export struct {
	Type   ExportType `json:"type"`
	Bucket string     `json:"bucket"`
	Prefix string     `json:"prefix,omitempty"` // without leading or trailing slash; empty: the bucket's root
	Name   string     `json:"name,omitempty"`   // report or export name; not used by the partner layout
	Region string     `json:"region,omitempty"` // the bucket's region; default us-east-1
	// DetectExisting looks the export up through the CUR or Data Exports
	// API; otherwise only a manifest under the prefix counts.
	DetectExisting bool `json:"detect_existing"`
	// Create asks the stack (and, failing that, the validation step) to
	// create the export.
	Create bool `json:"create"`
	// CreateBucket asks the stack to create the bucket and its policy.
	CreateBucket bool `json:"create_bucket"`
}

// FieldErrors checks an export and returns a message per JSON field name
// ("bucket"); an empty map means it is usable.
func (e Export) FieldErrors() map[string]string {
	f := map[string]string{}
	switch e.Type {
	case LegacyCUR, CUR2, FOCUS:
		if !namePattern.MatchString(e.Name) {
			f["name"] = "required: the report or export name"
		}
	case Partner:
		if e.Create {
			f["create"] = "the partner layout is written by the partner, costlake cannot create it"
		}
		if e.DetectExisting {
			f["detect_existing"] = "the partner layout has no AWS export to look up; costlake looks for its manifests"
		}
	case CostExplorer:
		for field, set := range map[string]bool{"bucket": e.Bucket != "", "prefix": e.Prefix != "", "name": e.Name != "",
			"create": e.Create, "create_bucket": e.CreateBucket, "detect_existing": e.DetectExisting} {
			if set {
				f[field] = "not used with cost_explorer: costlake reads the Cost Explorer API, not a bucket"
			}
		}
	default:
		f["type"] = `one of "legacy_cur", "cur2", "focus", "partner", "cost_explorer"`
	}
	if e.Type != CostExplorer && (!bucketPattern.MatchString(e.Bucket) || strings.Contains(e.Bucket, "..")) {
		f["bucket"] = "required: an S3 bucket name (3-63 lowercase letters, digits, dots, dashes)"
	}
	if e.Type == LegacyCUR && e.Create && e.Prefix == "" {
		// AWS::CUR::ReportDefinition refuses an empty S3Prefix.
		f["prefix"] = "required when the stack creates a legacy CUR report; an existing report (detect_existing) may deliver at the bucket's root"
	}
	if strings.Contains(e.Prefix, "//") {
		f["prefix"] = "must not contain empty path segments"
	}
	if e.Create && e.DetectExisting {
		f["create"] = "choose either create or detect_existing"
	}
	return f
}

// Source is the report or export folder that ingestion reads:
// s3://bucket/prefix/name, or s3://bucket/prefix for the partner layout.
func (e Export) Source() string {
	if e.Type == CostExplorer {
		return ""
	}
	parts := []string{}
	if e.Prefix != "" {
		parts = append(parts, e.Prefix)
	}
	if e.Type != Partner && e.Name != "" {
		parts = append(parts, e.Name)
	}
	return "s3://" + e.Bucket + "/" + strings.Join(parts, "/")
}

// OIDC describes the identity provider whose tokens costlake presents in
// web_identity mode; the customer's stack trusts it.
type OIDC struct {
	ProviderURL    string `json:"provider_url"` // https://issuer, as in the token's iss claim
	Audience       string `json:"audience"`
	Subject        string `json:"subject"`
	CreateProvider bool   `json:"create_provider"` // false when the account already has this provider
}

// Registration is what an operator submits to onboard a payer account.
type Registration struct {
	CustomerID     string `json:"customer_id"`
	PayerAccountID string `json:"payer_account_id"`
	Name           string `json:"name,omitempty"`
	Access         Access `json:"access"`
	OIDC           *OIDC  `json:"oidc,omitempty"` // web_identity only
	Export         Export `json:"export"`
	// Cutover, set by a change of the export (PATCH), is the export the
	// payer delivered before Export and the first period Export counts
	// for; nil when every period comes from Export.
	Cutover *Cutover `json:"cutover,omitempty"`
	// LinkedAccounts is "all" (the default) or "connected": ingest only
	// ConnectedAccounts, counting the others in each ingestion's summary.
	LinkedAccounts    string   `json:"linked_accounts,omitempty"`
	ConnectedAccounts []string `json:"connected_accounts,omitempty"`
	// Schedule says when the payer is crawled once active; empty means
	// daily at 00:00 UTC with up to 30 minutes of jitter.
	Schedule Schedule `json:"schedule,omitzero"`
}

// Schedule says when a payer is crawled. Durations are Go durations
// ("6h", "30m").
type Schedule struct {
	Cron          string `json:"cron,omitempty"`     // in UTC, 5 fields
	Interval      string `json:"interval,omitempty"` // instead of Cron
	Jitter        string `json:"jitter,omitempty"`
	CatchupWindow string `json:"catchup_window,omitempty"` // how late a missed crawl still runs
}

// FieldErrors checks the schedule; keys are JSON field names.
func (s Schedule) FieldErrors() map[string]string {
	f := map[string]string{}
	if s.Cron != "" && s.Interval != "" {
		f["interval"] = "choose either cron or interval"
	}
	if s.Cron != "" {
		if sched, err := cron.ParseStandard(s.Cron); err != nil || len(strings.Fields(s.Cron)) != 5 {
			f["cron"] = `5 fields in UTC: minute hour day-of-month month day-of-week, e.g. "0 0 * * *"`
		} else if gap := shortestGap(sched); gap < MinCrawlInterval {
			f["cron"] = fmt.Sprintf("fires every %s; crawls are at least %s apart", gap, MinCrawlInterval)
		}
	}
	bounds := map[string][2]time.Duration{
		"interval": {MinCrawlInterval, MaxCrawlInterval}, "jitter": {0, MaxCrawlJitter}, "catchup_window": {time.Minute, MaxCatchupWindow},
	}
	for name, v := range map[string]string{"interval": s.Interval, "jitter": s.Jitter, "catchup_window": s.CatchupWindow} {
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		b := bounds[name]
		switch {
		case err != nil:
			f[name] = "a duration such as 6h or 30m"
		case d <= 0 || d < b[0] || d > b[1]:
			f[name] = fmt.Sprintf("must be positive and at most %s", b[1])
			if b[0] > 0 {
				f[name] = fmt.Sprintf("must be between %s and %s", b[0], b[1])
			}
		}
	}
	return f
}

// Bounds of a crawl schedule: a payer's crawls cost the customer's S3
// requests and the worker's time, so they are at least an hour apart, and
// at most a week (AWS restates the month several times a day).
const (
	MinCrawlInterval = time.Hour
	MaxCrawlInterval = 7 * 24 * time.Hour
	MaxCrawlJitter   = 6 * time.Hour
	MaxCatchupWindow = 7 * 24 * time.Hour
)

// shortestGap is the shortest time between two firings of a cron schedule
// over eight days from a fixed date (a week covers day-of-week fields; the
// result does not depend on when it is checked).
func shortestGap(s cron.Schedule) time.Duration {
	t := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	end := t.Add(8 * 24 * time.Hour)
	shortest := MaxCrawlInterval
	for n := 0; n < 2000 && t.Before(end); n++ {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		shortest = min(shortest, next.Sub(t))
		t = next
	}
	return shortest
}

// DefaultRoleName is the role the customer stack creates.
const DefaultRoleName = "costlake-billing-read"

var (
	accountIDPattern  = regexp.MustCompile(`^[0-9]{12}$`)
	customerIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	bucketPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	namePattern       = regexp.MustCompile(`^[0-9A-Za-z!\-_.*'()]{1,256}$`)
)

// ValidAccountID reports whether s is a 12-digit AWS account ID.
func ValidAccountID(s string) bool { return accountIDPattern.MatchString(s) }

// ValidCustomerID reports whether s is a customer ID: lowercase letters,
// digits and dashes, at most 63; it names folders of exports.
func ValidCustomerID(s string) bool { return customerIDPattern.MatchString(s) }

// Normalize fills defaults: the role ARN from the payer account and the
// default role name, the export region, the linked-account policy.
func (r *Registration) Normalize() {
	if r.Access.Mode == AssumeRole || r.Access.Mode == WebIdentity {
		if r.Access.RoleARN == "" && accountIDPattern.MatchString(r.PayerAccountID) {
			r.Access.RoleARN = "arn:aws:iam::" + r.PayerAccountID + ":role/" + DefaultRoleName
		}
	}
	if r.Export.Region == "" {
		r.Export.Region = "us-east-1"
	}
	r.Export.Prefix = strings.Trim(r.Export.Prefix, "/")
	if r.LinkedAccounts == "" {
		r.LinkedAccounts = "all"
	}
}

// FieldErrors checks a normalized registration and returns a message per
// field, keyed by its JSON path ("access.role_arn").
func (r Registration) FieldErrors() map[string]string {
	f := map[string]string{}
	if !customerIDPattern.MatchString(r.CustomerID) {
		f["customer_id"] = "required: lowercase letters, digits and dashes, at most 63"
	}
	if !accountIDPattern.MatchString(r.PayerAccountID) {
		f["payer_account_id"] = "required: a 12-digit AWS account ID"
	}
	for k, v := range r.Access.FieldErrors() {
		f["access."+k] = v
	}
	if r.Access.RoleARN != "" && accountIDPattern.MatchString(r.PayerAccountID) &&
		!strings.Contains(r.Access.RoleARN, ":"+r.PayerAccountID+":") {
		f["access.role_arn"] = "the role must be in the payer account " + r.PayerAccountID
	}
	if r.Access.Mode == WebIdentity {
		switch {
		case r.OIDC == nil:
			f["oidc"] = "required in web_identity mode: provider_url, audience, subject"
		default:
			if !strings.HasPrefix(r.OIDC.ProviderURL, "https://") {
				f["oidc.provider_url"] = "required: the issuer's https:// URL"
			}
			if r.OIDC.Audience == "" {
				f["oidc.audience"] = "required"
			}
			if r.OIDC.Subject == "" {
				f["oidc.subject"] = "required: the sub claim of costlake's tokens"
			}
		}
	} else if r.OIDC != nil {
		f["oidc"] = "only in web_identity mode"
	}
	for k, v := range r.Export.FieldErrors() {
		f["export."+k] = v
	}
	if r.Access.Mode == Local {
		// No AWS to ask: only the manifests in the folder count.
		for field, set := range map[string]bool{"create": r.Export.Create, "create_bucket": r.Export.CreateBucket, "detect_existing": r.Export.DetectExisting} {
			if set {
				f["export."+field] = "not in local mode: the bucket is a folder on the worker, with no AWS export to create or look up"
			}
		}
		if r.Export.Type == CostExplorer {
			f["export.type"] = "a local payer has no Cost Explorer; its export is a folder"
		}
	}
	for k, v := range r.Cutover.FieldErrors(r.Export) {
		f["cutover."+k] = v
	}
	maps.Copy(f, LinkedAccountsFieldErrors(r.LinkedAccounts, r.ConnectedAccounts))
	for k, v := range r.Schedule.FieldErrors() {
		f["schedule."+k] = v
	}
	return f
}

// LinkedAccountsFieldErrors checks a linked-account policy: "all" (or
// empty) keeps every usage account, "connected" only the accounts listed.
func LinkedAccountsFieldErrors(policy string, connected []string) map[string]string {
	f := map[string]string{}
	switch policy {
	case "", "all":
		if len(connected) > 0 {
			f["connected_accounts"] = `only with "linked_accounts": "connected"`
		}
	case "connected":
		if len(connected) == 0 {
			f["connected_accounts"] = "required when linked_accounts is connected"
		}
		for _, a := range connected {
			if !accountIDPattern.MatchString(a) {
				f["connected_accounts"] = fmt.Sprintf("%q is not a 12-digit AWS account ID", a)
				break
			}
		}
	default:
		f["linked_accounts"] = `must be "all" or "connected"`
	}
	return f
}

// Validate returns an ErrInvalid error naming every bad field, in a
// stable order.
func (r Registration) Validate() error { return fieldsError(r.FieldErrors()) }

func fieldsError(f map[string]string) error {
	if len(f) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + f[k]
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(parts, "; "))
}
