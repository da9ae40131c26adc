package activities

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/deploy/cloudformation"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/onboard"
	"github.com/costlake/costlake/internal/payer"
)

// stackParams renders a registration into the customer stack's parameters.
func (a *Onboard) stackParams(reg payer.Registration, stackName string) cloudformation.Params {
	p := cloudformation.Params{
		StackName:            stackName,
		Region:               billingRegion,
		AuthMode:             string(reg.Access.Mode),
		CostlakePrincipalArn: a.Settings.PrincipalARN,
		ExternalID:           reg.Access.ExternalID,
		ExportBucket:         reg.Export.Bucket,
		ExportPrefix:         reg.Export.Prefix,
		CreateBucket:         reg.Export.CreateBucket,
		CreateExport:         reg.Export.Create,
		ExportType:           string(reg.Export.Type),
		ExportName:           reg.Export.Name,
	}
	if reg.Export.Type == payer.Partner {
		// A partner writes the files; the stack creates no export, and the
		// template's ExportType only matters when it does.
		p.ExportType, p.CreateExport = string(payer.LegacyCUR), false
		// Nor is there an export name; the template wants one for its
		// outputs only, since it creates nothing.
		p.ExportName = cmp.Or(p.ExportName, "partner")
	}
	if _, name, ok := strings.Cut(reg.Access.RoleARN, ":role/"); ok {
		p.RoleName = name
	}
	if reg.OIDC != nil {
		p.OIDCProviderURL, p.OIDCAudience, p.OIDCSubject = reg.OIDC.ProviderURL, reg.OIDC.Audience, reg.OIDC.Subject
		p.CreateOIDCProvider = reg.OIDC.CreateProvider
	}
	return p
}

// Worker settings an onboarding needs, as the setup check names them.
const (
	settingPrincipal   = "--aws-principal-arn"
	envPrincipal       = "COSTLAKE_AWS_PRINCIPAL_ARN"
	settingTemplates   = "--templates"
	envTemplates       = "COSTLAKE_TEMPLATES"
	settingOwnAccounts = "--own-account-ids"
	envOwnAccounts     = "COSTLAKE_OWN_ACCOUNT_IDS"
)

// CheckOnboardingSetup reports the worker settings a registration needs
// and this worker lacks. It reads only the worker's own configuration, so
// the gateway can refuse a registration that cannot go on right away.
func (a *Onboard) CheckOnboardingSetup(_ context.Context, in onboard.CheckSetupInput) (onboard.CheckSetupResult, error) {
	var res onboard.CheckSetupResult
	add := func(setting, env, msg string) {
		res.Problems = append(res.Problems, onboard.SetupProblem{Setting: setting, Env: env, Message: msg})
	}
	if in.Registration.Access.Mode == payer.Local {
		// No stack and no AWS: only whether this worker has local buckets.
		if msg := a.localRefusal(); msg != "" {
			res.Refused = map[string]string{"access.mode": msg}
		}
		return res, nil
	}
	if in.Registration.Access.Mode == payer.AssumeRole {
		p := a.stackParams(in.Registration, "costlake-setup-check")
		switch {
		case p.CostlakePrincipalArn == "":
			add(settingPrincipal, envPrincipal, "costlake's AWS principal is not configured: set "+settingPrincipal+" ("+envPrincipal+
				") on the worker to the role or account ARN that customers' roles trust, e.g. arn:aws:iam::123456789012:role/costlake-worker")
		case !cloudformation.ValidPrincipalARN(p.CostlakePrincipalArn):
			add(settingPrincipal, envPrincipal, fmt.Sprintf("%s is %q, not an IAM ARN arn:aws:iam::<12 digits>:root, :role/<name> or :user/<name>",
				settingPrincipal, p.CostlakePrincipalArn))
		}
	}
	for _, id := range a.Settings.OwnAccountIDs {
		if !payer.ValidAccountID(id) {
			add(settingOwnAccounts, envOwnAccounts, fmt.Sprintf("%s holds %q, not a 12-digit AWS account ID", settingOwnAccounts, id))
		}
	}
	if id := in.Registration.PayerAccountID; slices.Contains(a.Settings.ownAccounts(), id) {
		res.Refused = map[string]string{"payer_account_id": fmt.Sprintf(
			"%s is costlake's own AWS account (of %s or %s): costlake onboards its customers' payer accounts, never its own", id, settingPrincipal, settingOwnAccounts)}
	}
	if a.Settings.Templates == "" {
		add(settingTemplates, envTemplates, "no place to publish the customer stack's template: set "+settingTemplates+" ("+envTemplates+
			") on the worker to s3://bucket/prefix (or a local folder for development)")
	} else if _, err := blob.ParseLocation(a.Settings.Templates); err != nil {
		add(settingTemplates, envTemplates, fmt.Sprintf("%s is not a usable location: %v", settingTemplates, err))
	}
	return res, nil
}

// PublishStackTemplate uploads the customer stack's template (named by its
// content, so republishing is idempotent) and renders the quick-create
// link with the payer's parameters.
func (a *Onboard) PublishStackTemplate(ctx context.Context, in onboard.PublishStackTemplateInput) (onboard.PublishStackTemplateResult, error) {
	var res onboard.PublishStackTemplateResult
	if in.Registration.Access.Mode == payer.Local {
		res.Note = localStackNote
		return res, nil
	}
	p := a.stackParams(in.Registration, in.StackName)
	if in.Registration.Access.Mode == payer.AssumeRole && p.CostlakePrincipalArn == "" {
		return res, temporal.NewNonRetryableApplicationError(
			"costlake's AWS principal is not configured: set --aws-principal-arn (COSTLAKE_AWS_PRINCIPAL_ARN) on the worker to the role or account customers' roles trust",
			onboard.ErrTypeInvalidSetup, nil)
	}
	if err := p.Validate(); err != nil {
		return res, temporal.NewNonRetryableApplicationError("customer stack parameters: "+err.Error(), onboard.ErrTypeInvalidSetup, err)
	}
	if a.Settings.Templates == "" {
		return res, temporal.NewNonRetryableApplicationError("no place to publish templates: set --templates (COSTLAKE_TEMPLATES) to s3://bucket/prefix", onboard.ErrTypeInvalidSetup, nil)
	}
	loc, err := blob.ParseLocation(a.Settings.Templates)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError("--templates: "+err.Error(), onboard.ErrTypeInvalidSetup, err)
	}
	opener := a.Blobs
	if loc.Scheme == "file" {
		// The operator's own folder, not a customer's input.
		opener.FileRoots = []string{"/" + loc.Prefix}
	}
	store, err := opener.Open(ctx, loc)
	if err != nil {
		return res, err
	}
	body := cloudformation.Template()
	sum := sha256.Sum256(body)
	key := loc.Key("costlake-customer-" + hex.EncodeToString(sum[:6]) + ".yaml")
	if err := store.Put(ctx, key, bytes.NewReader(body)); err != nil {
		code, msg := awsError(err)
		switch code {
		case "NoSuchBucket", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId":
			// Retrying will not create the bucket or grant the permission.
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cannot publish the template to %s (%s: %s): make %s (%s) a location the worker may write",
				loc.URLOf(key), code, msg, settingTemplates, envTemplates), onboard.ErrTypeInvalidSetup, err)
		}
		return res, fmt.Errorf("publish template to %s: %w", loc.URLOf(key), err)
	}
	switch loc.Scheme {
	case "s3":
		res.TemplateURL = fmt.Sprintf("https://%s.s3.amazonaws.com/%s", loc.Bucket, key)
	default:
		res.TemplateURL = loc.URLOf(key)
		res.Note = "the AWS console opens templates from S3 only: set --templates to an s3:// location, or send the customer the template file"
	}
	res.QuickCreateURL, err = cloudformation.QuickCreateURL(res.TemplateURL, p)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError("quick-create link: "+err.Error(), onboard.ErrTypeInvalidSetup, err)
	}
	res.Parameters = p.StackParameters()
	return res, nil
}
