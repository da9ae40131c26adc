// Package cloudformation holds the customer stack: the CloudFormation
// template a customer's cloud admin deploys in an AWS payer (management)
// account so costlake can read its billing data, and what onboarding needs
// around it: the stack parameters for a registration, their validation,
// and the console quick-create link.
//
// The template (costlake-customer.yaml beside this file) is embedded; its
// parameter and output names are a contract with this package, which the
// tests check.
package cloudformation

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

//go:embed costlake-customer.yaml
var template []byte

// Template returns the customer stack template (YAML), a fresh copy the
// caller may keep or upload (quick-create links need it in S3).
func Template() []byte { return bytes.Clone(template) }

// Auth modes: how costlake signs in to the payer account (the template's
// AuthMode values).
const (
	AuthAssumeRole  = "assume_role"  // costlake's principal assumes the role with an external ID
	AuthWebIdentity = "web_identity" // costlake assumes the role with an OIDC token
	AuthAccessKeys  = "access_keys"  // no role: the admin attaches the policy to an IAM user
)

// Export types: which billing export costlake reads (the template's
// ExportType values).
const (
	ExportLegacyCUR = "legacy_cur" // Cost and Usage Report, hourly csv.gz
	ExportCUR2      = "cur2"       // Data Exports, CUR 2.0, Parquet
	ExportFOCUS     = "focus"      // Data Exports, FOCUS 1.0 with AWS columns, Parquet
	// ExportCostExplorer is no export at all, for payers that grant only
	// Cost Explorer: no bucket, no export, and no S3 access in the policy.
	ExportCostExplorer = "cost_explorer"
)

// readsBucket reports whether the export type delivers files to a bucket
// (every type but ExportCostExplorer, including unknown ones, which
// Validate rejects).
func readsBucket(exportType string) bool { return exportType != ExportCostExplorer }

// BillingRegion is where AWS's billing APIs live; a stack that creates a
// billing export must be deployed there (the template's Rules enforce it).
const BillingRegion = "us-east-1"

// DefaultRoleName is the template's default RoleName.
const DefaultRoleName = "costlake-billing-read"

// Output keys of the stack, for reading DescribeStacks results.
// OutputRoleArn is absent in access_keys mode, OutputExportArn when the
// stack did not create the export; OutputExportBucket, OutputExportPrefix
// and OutputExportName are absent with ExportCostExplorer.
const (
	OutputAuthMode     = "AuthMode"
	OutputRoleArn      = "RoleArn"
	OutputPolicyArn    = "PolicyArn"
	OutputExportBucket = "ExportBucket"
	OutputExportPrefix = "ExportPrefix"
	OutputExportName   = "ExportName"
	OutputExportType   = "ExportType"
	OutputExportArn    = "ExportArn"
)

// Params are the onboarding choices for one payer's stack.
type Params struct {
	StackName string
	// Region is where the console link opens and so where the stack is
	// deployed; empty means BillingRegion, which CreateExport requires.
	Region string

	AuthMode string // AuthAssumeRole, AuthWebIdentity or AuthAccessKeys

	// assume_role mode.
	CostlakePrincipalArn string
	ExternalID           string

	// web_identity mode.
	OIDCProviderURL    string
	OIDCAudience       string
	OIDCSubject        string
	CreateOIDCProvider bool

	RoleName string // empty means DefaultRoleName

	// ExportBucket and ExportName are required for every ExportType but
	// ExportCostExplorer, which ignores them (and ExportPrefix); it
	// requires CreateBucket and CreateExport false.
	ExportBucket string
	ExportPrefix string // no leading or trailing slash; empty: the bucket's root
	CreateBucket bool
	CreateExport bool
	ExportType   string // ExportLegacyCUR, ExportCUR2, ExportFOCUS or ExportCostExplorer
	ExportName   string
}

// ErrInvalidParams is what every Validate error wraps.
var ErrInvalidParams = errors.New("invalid customer stack parameters")

// FieldError is one problem with one Params field (named as in Go).
type FieldError struct {
	Field   string
	Problem string
}

// ValidationError lists every problem Validate found, in field order; it
// unwraps to ErrInvalidParams.
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Problem
	}
	return ErrInvalidParams.Error() + ": " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrInvalidParams }

// Fields returns the names of the fields with a problem.
func (e *ValidationError) Fields() []string {
	out := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		out = append(out, p.Field)
	}
	return out
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// paramPatterns are the template's AllowedPattern values, character for
// character (a test compares them), so Validate rejects what CloudFormation
// would and nothing reaches the console only to fail there.
var paramPatterns = map[string]string{
	"RoleName":             `^[A-Za-z0-9+=,.@_-]{1,64}$`,
	"CostlakePrincipalArn": `^$|^arn:aws:iam::[0-9]{12}:(root|role/[A-Za-z0-9+=,.@_/-]{1,512}|user/[A-Za-z0-9+=,.@_/-]{1,512})$`,
	"ExternalId":           `^$|^[A-Za-z0-9+=,.@:/_-]{2,}$`,
	"OIDCProviderUrl":      `^$|^https://[A-Za-z0-9.-]+(/[A-Za-z0-9._~-]+)*$`,
	"OIDCAudience":         `^$|^[A-Za-z0-9._:/@+=,~-]{1,255}$`,
	"OIDCSubject":          `^$|^[A-Za-z0-9._:/@+=,~-]{1,255}$`,
	"ExportName":           `^[A-Za-z0-9!_.*'()-]{1,128}$`,
	"ExportBucket":         `^$|^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`,
	"ExportPrefix":         `^$|^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`,
}

var compiled = func() map[string]*regexp.Regexp {
	m := make(map[string]*regexp.Regexp, len(paramPatterns))
	for k, p := range paramPatterns {
		m[k] = regexp.MustCompile(p)
	}
	return m
}()

func matches(param, v string) bool { return compiled[param].MatchString(v) }

// ValidPrincipalARN reports whether arn is a CostlakePrincipalArn the
// template accepts.
func ValidPrincipalARN(arn string) bool { return arn != "" && matches("CostlakePrincipalArn", arn) }

var (
	// CloudFormation stack names: a letter, then letters, digits and
	// hyphens, 128 characters at most.
	stackNamePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,127}$`)
	regionPattern    = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// Validate checks every field and returns a *ValidationError naming each
// bad one, or nil. Fields the chosen AuthMode or ExportType does not use
// are ignored (StackParameters leaves them out); with ExportCostExplorer,
// CreateBucket and CreateExport must be false.
func (p Params) Validate() error {
	e := &ValidationError{}

	if !stackNamePattern.MatchString(p.StackName) {
		e.add("StackName", "required: a letter, then letters, digits and hyphens, 128 characters at most")
	}
	region := p.region()
	switch {
	case !regionPattern.MatchString(region):
		e.add("Region", "%q is not an AWS region name such as us-east-1", region)
	case strings.HasPrefix(region, "cn-") || strings.HasPrefix(region, "us-gov-") || strings.HasPrefix(region, "us-iso"):
		e.add("Region", "%s is outside the aws partition, whose console the link opens", region)
	case p.CreateExport && readsBucket(p.ExportType) && region != BillingRegion:
		e.add("Region", "creating the billing export needs the stack in %s (the CUR and Data Exports APIs live there), not %s", BillingRegion, region)
	}

	switch p.AuthMode {
	case AuthAssumeRole:
		if p.CostlakePrincipalArn == "" || !matches("CostlakePrincipalArn", p.CostlakePrincipalArn) {
			e.add("CostlakePrincipalArn", "required in assume_role mode: an IAM ARN arn:aws:iam::<12 digits>:root, :role/<name> or :user/<name>")
		}
		if p.ExternalID == "" || len(p.ExternalID) > 1224 || !matches("ExternalId", p.ExternalID) {
			e.add("ExternalID", "required in assume_role mode: 2 to 1224 letters, digits and +=,.@:/_-")
		}
	case AuthWebIdentity:
		p.validateOIDC(e)
	case AuthAccessKeys:
	default:
		e.add("AuthMode", "one of %q, %q, %q", AuthAssumeRole, AuthWebIdentity, AuthAccessKeys)
	}
	if p.RoleName != "" && !matches("RoleName", p.RoleName) {
		e.add("RoleName", "1 to 64 letters, digits and +=,.@_-")
	}

	if readsBucket(p.ExportType) {
		if msg := bucketNameProblem(p.ExportBucket); msg != "" {
			e.add("ExportBucket", "%s", msg)
		}
		switch {
		case p.ExportPrefix == "" && p.CreateExport && p.ExportType == ExportLegacyCUR:
			e.add("ExportPrefix", "required when the stack creates a legacy CUR (a report definition needs a prefix); a cur2 or focus export, or an existing report, may deliver at the bucket's root")
		case p.ExportPrefix == "":
			// The bucket's root: allowed, the policy then covers the bucket.
		case strings.HasPrefix(p.ExportPrefix, "/") || strings.HasSuffix(p.ExportPrefix, "/"):
			e.add("ExportPrefix", "no leading or trailing slash")
		case len(p.ExportPrefix) > 256 || !matches("ExportPrefix", p.ExportPrefix):
			e.add("ExportPrefix", "at most 256 characters: path segments of letters, digits and _.- separated by single slashes")
		}
	} else {
		if p.CreateBucket {
			e.add("CreateBucket", "must be false with %s: there is no bucket, costlake reads the Cost Explorer API", ExportCostExplorer)
		}
		if p.CreateExport {
			e.add("CreateExport", "must be false with %s: there is no billing export, costlake reads the Cost Explorer API", ExportCostExplorer)
		}
	}
	switch p.ExportType {
	case ExportLegacyCUR, ExportCUR2, ExportFOCUS, ExportCostExplorer:
	default:
		e.add("ExportType", "one of %q, %q, %q, %q", ExportLegacyCUR, ExportCUR2, ExportFOCUS, ExportCostExplorer)
	}
	if readsBucket(p.ExportType) && !matches("ExportName", p.ExportName) {
		e.add("ExportName", "required: 1 to 128 letters, digits and !_.*'()-")
	}
	return e.orNil()
}

func (p Params) validateOIDC(e *ValidationError) {
	u, err := url.Parse(p.OIDCProviderURL)
	switch {
	case p.OIDCProviderURL == "":
		e.add("OIDCProviderURL", "required in web_identity mode: costlake's OIDC issuer, https://host[/path]")
	case err != nil || u.Scheme != "https" || u.Host == "":
		e.add("OIDCProviderURL", "must be an https URL (the token's iss claim)")
	case u.Port() != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/"):
		e.add("OIDCProviderURL", "no port, user, query, fragment or trailing slash: IAM names the provider after host and path")
	case len(p.OIDCProviderURL) > 255 || !matches("OIDCProviderUrl", p.OIDCProviderURL):
		e.add("OIDCProviderURL", "at most 255 characters; host of letters, digits, dots and hyphens, path segments of letters, digits and ._~-")
	}
	if p.OIDCAudience == "" || !matches("OIDCAudience", p.OIDCAudience) {
		e.add("OIDCAudience", "required in web_identity mode: 1 to 255 letters, digits and ._:/@+=,~-")
	}
	if p.OIDCSubject == "" || !matches("OIDCSubject", p.OIDCSubject) {
		e.add("OIDCSubject", "required in web_identity mode: 1 to 255 letters, digits and ._:/@+=,~-")
	}
}

// bucketNameProblem applies S3's general purpose bucket naming rules; it
// returns "" for a good name.
func bucketNameProblem(b string) string {
	switch {
	case b == "":
		return "required: the S3 bucket of the export"
	case len(b) < 3 || len(b) > 63:
		return "3 to 63 characters"
	case !matches("ExportBucket", b):
		return "lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit"
	case strings.Contains(b, ".."):
		return "no two adjacent dots"
	case net.ParseIP(b) != nil:
		return "not formatted as an IP address"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return "must not begin with " + strconv.Quote(p) + " (reserved by S3)"
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return "must not end with " + strconv.Quote(s) + " (reserved by S3)"
		}
	}
	return ""
}

func (p Params) region() string {
	if p.Region == "" {
		return BillingRegion
	}
	return p.Region
}

// StackParameters returns the template parameters for p, keyed by their
// CloudFormation names. It sets only parameters the template declares and
// leaves out those the chosen AuthMode or ExportType does not use
// (ExportBucket, ExportPrefix and ExportName with ExportCostExplorer), and
// an empty RoleName, so the template's defaults apply. CreateBucket and
// CreateExport are always sent: their defaults are "true", which
// ExportCostExplorer does not allow. Call Validate first.
func (p Params) StackParameters() map[string]string {
	m := map[string]string{
		"AuthMode":     p.AuthMode,
		"CreateBucket": strconv.FormatBool(p.CreateBucket),
		"CreateExport": strconv.FormatBool(p.CreateExport),
		"ExportType":   p.ExportType,
	}
	if readsBucket(p.ExportType) {
		m["ExportBucket"] = p.ExportBucket
		m["ExportPrefix"] = p.ExportPrefix
		m["ExportName"] = p.ExportName
	}
	if p.RoleName != "" {
		m["RoleName"] = p.RoleName
	}
	switch p.AuthMode {
	case AuthAssumeRole:
		m["CostlakePrincipalArn"] = p.CostlakePrincipalArn
		m["ExternalId"] = p.ExternalID
	case AuthWebIdentity:
		m["OIDCProviderUrl"] = p.OIDCProviderURL
		m["OIDCAudience"] = p.OIDCAudience
		m["OIDCSubject"] = p.OIDCSubject
		m["CreateOIDCProvider"] = strconv.FormatBool(p.CreateOIDCProvider)
	}
	return m
}

// QuickCreateURL returns the AWS console link that opens the stack's
// quick-create page with every parameter filled in:
//
//	https://<region>.console.aws.amazon.com/cloudformation/home?region=<region>#/stacks/quickcreate?templateURL=…&stackName=…&param_<Key>=…
//
// templateURL is where the template is published; the console loads only
// https URLs of S3 objects. The admin still has to acknowledge that the
// stack creates named IAM resources. The error is a *ValidationError
// (field "TemplateURL" for a bad templateURL).
func QuickCreateURL(templateURL string, p Params) (string, error) {
	e := &ValidationError{}
	if err := p.Validate(); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return "", err
		}
		e.Problems = append(e.Problems, ve.Problems...)
	}
	if u, err := url.Parse(templateURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Fragment != "" {
		e.add("TemplateURL", "must be an https URL without a fragment (the template's S3 object URL)")
	}
	if err := e.orNil(); err != nil {
		return "", err
	}

	params := p.StackParameters()
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable link for the same inputs

	var b strings.Builder
	region := p.region()
	fmt.Fprintf(&b, "https://%s.console.aws.amazon.com/cloudformation/home?region=%s#/stacks/quickcreate", region, region)
	b.WriteString("?templateURL=" + escape(templateURL))
	b.WriteString("&stackName=" + escape(p.StackName))
	for _, k := range keys {
		b.WriteString("&param_" + k + "=" + escape(params[k]))
	}
	return b.String(), nil
}

// escape query-escapes v for the console's fragment, with %20 rather than
// "+" for spaces: the console's router does not turn "+" back into a space.
func escape(v string) string {
	return strings.ReplaceAll(url.QueryEscape(v), "+", "%20")
}
