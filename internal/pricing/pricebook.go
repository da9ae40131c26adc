package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/costlake/costlake/internal/money"

	"github.com/costlake/costlake/internal/period"
)

// Pricebook is how a customer is charged, from EffectiveFrom on. It is
// stored as JSON (snake_case); numbers are decimal strings so that no JSON
// reader turns them into floats. See the package doc for how each part
// applies.
type Pricebook struct {
	// CustomerID is the customer it prices; informative (the store keys
	// pricebooks by customer), copied to the Bill.
	CustomerID string `json:"customer_id,omitempty"`
	// Version is set by the store when saving a new version; 0 before.
	Version int `json:"version,omitempty"`
	// EffectiveFrom is the first billing period priced, "YYYY-MM".
	EffectiveFrom string `json:"effective_from"`
	// CostBasis is the cost percents apply to: CostUnblended (the
	// default, what AWS invoices), CostAmortized (amortized_cost: Savings
	// Plans and RIs spread over the usage they cover) or
	// CostPublicOnDemand (pricing_public_on_demand_cost: list price).
	// Tax, Credit and Refund lines at cost stay at their unblended cost.
	CostBasis string `json:"cost_basis,omitempty"`
	// GlobalPercent applies to line items no rule matches; "" is 0.
	GlobalPercent string `json:"global_percent,omitempty"`
	// Rules are the specific adjustments; the most specific match wins.
	Rules []Rule `json:"rules,omitempty"`
	// Support is the reseller's support plan fee; nil for none.
	Support *SupportPlan `json:"support,omitempty"`
	// Credits are fixed amounts off the invoice.
	Credits []Credit `json:"credits,omitempty"`
	// MarkupTax, MarkupCredits and MarkupRefunds price line items of type
	// Tax, Credit and Refund by the rules; false (the default) passes them
	// at cost.
	MarkupTax     bool `json:"markup_tax,omitempty"`
	MarkupCredits bool `json:"markup_credits,omitempty"`
	MarkupRefunds bool `json:"markup_refunds,omitempty"`
	// Taxes the reseller charges on the invoice (e.g. VAT), each a
	// percent of the invoice before taxes (AWS's own Tax line items are
	// not part of the base).
	Taxes []TaxRate `json:"taxes,omitempty"`
	// AdjustmentsAtCost carries restatements of this version's closed
	// cycles to the next cycle at cost; false (the default) prices them
	// like the lines they adjust, with this version.
	AdjustmentsAtCost bool `json:"adjustments_at_cost,omitempty"`
	// PassThrough names the reseller discounts passed on to the customer:
	// line item types of WithheldTypes, or PartnerCredit for the credits
	// PartnerCredits marks. Everything else of those is withheld: it stays
	// with the reseller, off the customer's invoice and export.
	PassThrough []string `json:"pass_through,omitempty"`
	// PartnerCredits marks the Credit line items funded by the reseller's
	// partner programs, by line_item_line_item_description: exactly, or as
	// a prefix when it ends in "*". They are withheld unless PassThrough
	// names PartnerCredit.
	PartnerCredits []string `json:"partner_credits,omitempty"`
	// Currency is the bill's ISO 4217 code (e.g. "USD"); "" bills in the
	// line items' own currency, which must then be one.
	Currency string `json:"currency,omitempty"`
	// Conversions convert line items billed in another currency than
	// Currency, at a rate pinned with this version when a cycle closes.
	Conversions []Conversion `json:"conversions,omitempty"`
}

// TaxRate is one tax the reseller charges on its invoices.
type TaxRate struct {
	Name    string `json:"name"`    // on the invoice, e.g. "VAT"
	Percent string `json:"percent"` // between 0 and 100, at most 6 decimal places
}

// Conversion converts line items billed in From into the pricebook's
// Currency: amount × Rate.
type Conversion struct {
	From string `json:"from"`
	// Rate is units of Currency per unit of From, a positive decimal.
	Rate string `json:"rate"`
}

// Cost bases of a pricebook (CostBasis).
const (
	CostUnblended      = "unblended"
	CostAmortized      = "amortized"
	CostPublicOnDemand = "public_on_demand"
)

// PartnerCredit is the PassThrough entry of the credits PartnerCredits marks.
const PartnerCredit = "PartnerCredit"

// WithheldTypes are the line item types of the payer's own program
// discounts: under a reseller they are its margin or contract, so they
// are withheld from customers unless a pricebook passes them through.
var WithheldTypes = []string{"SppDiscount", "EdpDiscount", "PrivateRateDiscount", "DistributorDiscount", "BundledDiscount", "RiVolumeDiscount"}

// Rule adjusts the line items matching every field it names (at least
// one).
type Rule struct {
	// Account is a 12-digit line_item_usage_account_id.
	Account string `json:"account,omitempty"`
	// Service matches product_servicecode or line_item_product_code
	// (e.g. "AmazonEC2", "AWSDataTransfer").
	Service string `json:"service,omitempty"`
	// UsageType matches line_item_usage_type exactly, or as a prefix when
	// it ends in "*" ("USE1-DataTransfer-Out-*").
	UsageType string `json:"usage_type,omitempty"`
	// Operation matches line_item_operation exactly; with UsageType it
	// names a SKU (e.g. "RunInstances:0002").
	Operation string `json:"operation,omitempty"`
	// Region matches product_region_code exactly (e.g. "eu-west-1").
	Region string `json:"region,omitempty"`
	// LineItemType matches line_item_line_item_type exactly (e.g. "Fee").
	LineItemType string `json:"line_item_type,omitempty"`
	// BillingEntity matches bill_billing_entity exactly ("AWS",
	// "AWS Marketplace").
	BillingEntity string `json:"billing_entity,omitempty"`
	// Percent is the adjustment, e.g. "-12.5" or "8".
	Percent string `json:"percent"`
	// Description is for people.
	Description string `json:"description,omitempty"`
}

// SupportPlan is a support fee: a tiered percent of the month's AWS
// charges, at least MinimumFee.
type SupportPlan struct {
	// Name appears on the invoice, e.g. "Business".
	Name string `json:"name,omitempty"`
	// Tiers are marginal bands; the first starts at 0, each next one at a
	// higher amount, and the last has no upper bound.
	Tiers []SupportTier `json:"tiers,omitempty"`
	// MinimumFee is the least charged per cycle; "" is 0.
	MinimumFee string `json:"minimum_fee,omitempty"`
}

// SupportTier charges Percent of the part of the base from From up to the
// next tier's From.
type SupportTier struct {
	From    string `json:"from"`
	Percent string `json:"percent"`
}

// Credit is a fixed amount off the invoice.
type Credit struct {
	// Description appears on the invoice.
	Description string `json:"description"`
	// Amount is positive: what is taken off.
	Amount string `json:"amount"`
	// Recurring applies it every cycle from Period (default the
	// pricebook's EffectiveFrom) until Until; otherwise it applies once,
	// in Period.
	Recurring bool `json:"recurring,omitempty"`
	// Period is "YYYY-MM": the cycle of a one-off credit (required), the
	// first cycle of a recurring one (optional).
	Period string `json:"period,omitempty"`
	// Until is the last cycle of a recurring credit, inclusive; "" for no
	// end. Not allowed on a one-off credit.
	Until string `json:"until,omitempty"`
}

// Limits of a rule's or the global percent, and the decimal places any
// percent may have. A support tier's percent is between 0 and 100.
const (
	MinPercent    = -100
	MaxPercent    = 1000
	PercentPlaces = 6
)

const (
	maxSupportPercent = 100
	accountIDDigits   = 12
	wildcard          = "*"
)

// ErrInvalid is matched (errors.Is) by every error saying a pricebook is
// invalid: a *ValidationError, or JSON that Decode could not read.
var ErrInvalid = errors.New("invalid pricebook")

// FieldError is one problem, at a JSON field path such as
// "rules[2].percent" ("" for the whole document).
type FieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// String formats the problem as "field: problem".
func (e FieldError) String() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}

// ValidationError lists every problem of a pricebook, in field order.
type ValidationError struct {
	Problems []FieldError `json:"problems"`
}

// Error lists every problem: "invalid pricebook: 2 problems: a; b".
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	noun := "problems"
	if len(parts) == 1 {
		noun = "problem"
	}
	return fmt.Sprintf("%s: %d %s: %s", ErrInvalid, len(parts), noun, strings.Join(parts, "; "))
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Decode reads a pricebook's JSON strictly (an unknown field is an error,
// so a typo like "markup_taxes" is not silently ignored) and validates it.
// Errors match ErrInvalid; a validation failure is a *ValidationError.
func Decode(body []byte) (Pricebook, error) {
	var p Pricebook
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Pricebook{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Pricebook{}, fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	if err := p.Validate(); err != nil {
		return Pricebook{}, err
	}
	return p, nil
}

// Validate returns nil, or a *ValidationError listing every problem by
// JSON field path: bad periods, percents out of range or too precise,
// rules naming nothing, malformed accounts or usage types, duplicate
// rules, support tiers not starting at 0 or not ascending, negative
// minimum fees, credits without amount, description or period.
func (p Pricebook) Validate() error {
	_, err := compile(p)
	return err
}

// checker collects problems.
type checker struct{ problems []FieldError }

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: c.problems}
}

// period checks a "YYYY-MM" billing period.
func (c *checker) period(field, s string) bool {
	if validPeriod(s) {
		return true
	}
	if s == "" {
		c.add(field, "required: a billing period YYYY-MM")
	} else {
		c.add(field, "must be a billing period YYYY-MM, got %q", s)
	}
	return false
}

func validPeriod(s string) bool { return period.Valid(s) }

// percent parses a percent in [lo, hi] with at most PercentPlaces
// decimals; empty is 0 when optional. It returns the unscaled value.
func (c *checker) percent(field, s string, lo, hi int, optional bool) (*big.Int, bool) {
	if s == "" {
		if optional {
			return new(big.Int), true
		}
		c.add(field, "required: a decimal between %d and %d", lo, hi)
		return nil, false
	}
	a, err := money.Parse(s)
	if errors.Is(err, money.ErrTooPrecise) {
		c.add(field, "at most %d decimal places, got %q", PercentPlaces, s)
		return nil, false
	}
	if err != nil {
		c.add(field, "must be a decimal between %d and %d, got %q", lo, hi, s)
		return nil, false
	}
	if a.Cmp(money.MustParse(fmt.Sprint(lo))) < 0 || a.Cmp(money.MustParse(fmt.Sprint(hi))) > 0 {
		c.add(field, "must be a decimal between %d and %d", lo, hi)
		return nil, false
	}
	u := unscaled(a)
	if new(big.Int).Rem(u, pow10(money.Scale-PercentPlaces)).Sign() != 0 {
		c.add(field, "at most %d decimal places, got %q", PercentPlaces, s)
		return nil, false
	}
	return u, true
}

// amount parses a non-negative (or, if positive, strictly positive)
// decimal amount; empty is 0 when optional.
func (c *checker) amount(field, s string, positive, optional bool) (money.Amount, bool) {
	what := "a decimal ≥ 0"
	if positive {
		what = "a decimal > 0"
	}
	if s == "" {
		if optional {
			return money.Amount{}, true
		}
		c.add(field, "required: %s", what)
		return money.Amount{}, false
	}
	a, err := money.Parse(s)
	if err != nil {
		c.add(field, "must be %s, got %q (%v)", what, s, err)
		return money.Amount{}, false
	}
	if a.Cmp(money.Amount{}) < 0 || (positive && a.IsZero()) {
		c.add(field, "must be %s, got %q", what, s)
		return money.Amount{}, false
	}
	return a, true
}

func validAccount(s string) bool {
	if len(s) != accountIDDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hasSpace(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}
