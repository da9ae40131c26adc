package monthend

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/money"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/period"
	"github.com/costlake/costlake/internal/webhook"
)

// MaxReason bounds a hold's or an acceptance's reason.
const MaxReason = 500

// WithDefaults fills the zero settings.
func (s Settings) WithDefaults() Settings {
	if s.FinalAfterDays <= 0 {
		s.FinalAfterDays = cycle.DefaultFinalAfterDays
	}
	if s.MaxCrawlAge <= 0 {
		s.MaxCrawlAge = DefaultMaxCrawlAge
	}
	if s.Tolerance == nil {
		t := money.MustParse(DefaultTolerance)
		s.Tolerance = &t
	}
	return s
}

// FieldErrors checks the settings; keys are their JSON names.
func (s Settings) FieldErrors() map[string]string {
	f := map[string]string{}
	if s.FinalAfterDays < 0 || s.FinalAfterDays > 60 {
		f["final_after_days"] = "between 0 and 60 (0: the default, 10)"
	}
	if s.MaxCrawlAge < 0 {
		f["max_crawl_age"] = "a positive duration (0: the default, 48h)"
	}
	if s.Tolerance != nil && s.Tolerance.Cmp(money.Amount{}) < 0 {
		f["tolerance"] = "a decimal of 0 or more"
	}
	return f
}

// FieldErrors checks the request's one operation as sender would send;
// keys are JSON field names.
func (r Request) FieldErrors(sender webhook.Sender) map[string]string {
	f := map[string]string{}
	reason := func(key, text string) {
		switch {
		case strings.TrimSpace(text) == "":
			f[key] = "required: why, for the record"
		case len(text) > MaxReason:
			f[key] = fmt.Sprintf("at most %d characters", MaxReason)
		}
	}
	switch {
	case r.Op() == "":
		f["operation"] = "exactly one of hold, release, accept, put_webhook, delete_webhook"
	case r.Hold != nil:
		if !payer.ValidCustomerID(r.Hold.CustomerID) {
			f["customer_id"] = "a customer ID"
		}
		reason("reason", r.Hold.Reason)
	case r.Release != "":
		if !payer.ValidCustomerID(r.Release) {
			f["customer_id"] = "a customer ID"
		}
	case r.Accept != nil:
		if !payer.ValidCustomerID(r.Accept.CustomerID) {
			f["customer_id"] = "a customer ID"
		}
		if !period.Valid(r.Accept.Period) {
			f["period"] = "YYYY-MM"
		}
		if !payer.ValidAccountID(r.Accept.PayerAccountID) {
			f["payer_account_id"] = "a 12-digit AWS account ID"
		}
		reason("reason", r.Accept.Reason)
	case r.PutWebhook != nil:
		if _, err := sender.Check(r.PutWebhook.URL); err != nil {
			f["url"] = err.Error()
		}
		if err := webhook.CheckSecretRef(r.PutWebhook.SecretRef); err != nil {
			f["secret_ref"] = `required: "env:NAME", the variable on the workers that holds the signing secret (whsec_<base64> or 16 bytes or more); never the secret itself`
		}
		for _, e := range r.PutWebhook.Events {
			if !slices.Contains(webhook.Types, e) {
				f["events"] = fmt.Sprintf("%q is not an event type: %s", e, strings.Join(webhook.Types, ", "))
			}
		}
	}
	return f
}

// Describe joins field errors into one message, by field.
func Describe(f map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(f)) {
		parts = append(parts, k+": "+f[k])
	}
	return strings.Join(parts, "; ")
}
