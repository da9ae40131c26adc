package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// LineItem is what pricing reads of one canonical line item.
type LineItem struct {
	AccountID     string       // line_item_usage_account_id
	LineItemType  string       // line_item_line_item_type: Usage, Tax, Credit, Refund, SavingsPlanNegation, …
	ProductCode   string       // line_item_product_code, e.g. AmazonS3
	ServiceCode   string       // product_servicecode, e.g. AWSDataTransfer
	UsageType     string       // line_item_usage_type, e.g. USE1-DataTransfer-Out-Bytes
	UnblendedCost money.Amount // line_item_unblended_cost
	Operation     string       // line_item_operation, e.g. RunInstances:0002
	Region        string       // product_region_code, e.g. us-east-1
	BillingEntity string       // bill_billing_entity: AWS, AWS Marketplace
	Description   string       // line_item_line_item_description (partner credits)
	Currency      string       // line_item_currency_code, e.g. USD
	// AmortizedCost (amortized_cost) and PublicOnDemandCost
	// (pricing_public_on_demand_cost) are the other cost bases; their
	// Has flags are false when the column is null.
	AmortizedCost         money.Amount
	HasAmortizedCost      bool
	PublicOnDemandCost    money.Amount
	HasPublicOnDemandCost bool
}

// Columns are the canonical CUR 2.0 columns a LineItem is read from, in
// the order of its fields.
var Columns = []string{
	billing.ColUsageAccountID,
	billing.ColLineItemType,
	billing.ColProductCode,
	billing.ColServiceCode,
	billing.ColUsageType,
	billing.ColUnblendedCost,
	billing.ColOperation,
	billing.ColRegion,
	billing.ColBillingEntity,
	billing.ColDescription,
	billing.ColCurrency,
	billing.ColAmortizedCost,
	billing.ColPublicOnDemandCost,
}

// Line item types with their own treatment (line_item_line_item_type).
const (
	TypeTax    = "Tax"
	TypeCredit = "Credit"
	TypeRefund = "Refund"
)

// Class is the invoice line a line item adds to.
type Class string

// The classes, in invoice order.
const (
	ClassUsage      Class = "usage"       // every type but Tax, Credit and Refund, except AWS support
	ClassAWSSupport Class = "aws_support" // AWS's own support plan charges
	ClassCredit     Class = "aws_credits" // type Credit
	ClassRefund     Class = "aws_refunds" // type Refund
	ClassTax        Class = "tax"         // type Tax
)

// ClassOf returns the class of a line item: by its type for Tax, Credit
// and Refund; AWS support for product codes AWSSupport… and
// AWSDeveloperSupport; usage otherwise.
func ClassOf(item LineItem) Class {
	switch item.LineItemType {
	case TypeTax:
		return ClassTax
	case TypeCredit:
		return ClassCredit
	case TypeRefund:
		return ClassRefund
	}
	if strings.HasPrefix(item.ProductCode, "AWSSupport") || item.ProductCode == "AWSDeveloperSupport" {
		return ClassAWSSupport
	}
	return ClassUsage
}

// RuleRef names what priced a line item, as a JSON field path of the
// pricebook: "rules[N]" (rule N matched), "global_percent" (no rule
// matched), or "at_cost" (a Tax, Credit or Refund line its Markup… flag
// leaves at cost).
type RuleRef string

// RuleRefs that are not rules.
const (
	RefGlobal RuleRef = "global_percent"
	RefAtCost RuleRef = "at_cost"
	// RefWithheld: a reseller discount or partner credit the pricebook
	// does not pass through; its resale is 0 and it is on no invoice.
	RefWithheld RuleRef = "withheld"
)

// RuleRefOf returns the RuleRef of Rules[i].
func RuleRefOf(i int) RuleRef { return RuleRef("rules[" + strconv.Itoa(i) + "]") }

// Rule returns the index in Pricebook.Rules, and false for global_percent
// and at_cost.
func (r RuleRef) Rule() (int, bool) {
	s, ok := strings.CutPrefix(string(r), "rules[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0
}

// multiplier applies a percent: resale_u = cost_u × num / percentDen,
// with num = 100 + percent at scale 18.
type multiplier struct {
	num      *big.Int
	identity bool // percent 0: resale is cost, untouched
}

func newMultiplier(percentU *big.Int) multiplier {
	return multiplier{num: new(big.Int).Add(percentDen, percentU), identity: percentU.Sign() == 0}
}

func (m multiplier) apply(cost money.Amount) money.Amount {
	if m.identity || cost.IsZero() {
		return cost
	}
	x := unscaled(cost)
	return fromUnscaled(quoHalfEven(x.Mul(x, m.num), percentDen))
}

type compiledRule struct {
	ref                     RuleRef
	account, service, usage string
	prefix                  bool // usage is a prefix
	operation, region       string
	lineType, entity        string
	named                   int // how many fields the rule names
	tier                    int // of account, service and usage type: higher is more specific
	extra                   int // of the other fields: higher is more specific
	m                       multiplier
}

// specificity orders the combinations of account, service and usage
// type a rule names; see the package doc.
func specificity(account, service, usage bool) int {
	switch {
	case account && service && usage:
		return 7
	case account && usage:
		return 6
	case account && service:
		return 5
	case service && usage:
		return 4
	case usage:
		return 3
	case service:
		return 2
	case account:
		return 1
	}
	return 0
}

// extraSpecificity orders the other fields a rule names: operation,
// then region, then line item type, then billing entity.
func extraSpecificity(operation, region, lineType, entity bool) int {
	n := 0
	for i, b := range []bool{entity, lineType, region, operation} {
		if b {
			n |= 1 << i
		}
	}
	return n
}

// rank orders matching rules; see better.
type rank struct {
	named     int
	tier      int
	extra     int
	exact     bool // exact usage type
	prefixLen int
	viaSC     bool // service matched product_servicecode
}

func (a rank) better(b rank) bool {
	if a.named != b.named {
		return a.named > b.named
	}
	if a.tier != b.tier {
		return a.tier > b.tier
	}
	if a.extra != b.extra {
		return a.extra > b.extra
	}
	if a.exact != b.exact {
		return a.exact
	}
	if a.prefixLen != b.prefixLen {
		return a.prefixLen > b.prefixLen
	}
	return a.viaSC && !b.viaSC
}

func (r *compiledRule) match(item LineItem) (rank, bool) {
	if r.account != "" && r.account != item.AccountID ||
		r.operation != "" && r.operation != item.Operation ||
		r.region != "" && r.region != item.Region ||
		r.lineType != "" && r.lineType != item.LineItemType ||
		r.entity != "" && r.entity != item.BillingEntity {
		return rank{}, false
	}
	k := rank{named: r.named, tier: r.tier, extra: r.extra}
	if r.usage != "" {
		if r.prefix {
			if !strings.HasPrefix(item.UsageType, r.usage) {
				return rank{}, false
			}
			k.prefixLen = len(r.usage)
		} else {
			if item.UsageType != r.usage {
				return rank{}, false
			}
			k.exact = true
		}
	}
	if r.service != "" {
		switch r.service {
		case item.ServiceCode:
			k.viaSC = true
		case item.ProductCode:
		default:
			return rank{}, false
		}
	}
	return k, true
}

type supportTier struct {
	from     money.Amount
	percentU *big.Int
	percent  string // normalized, for descriptions
}

type compiledSupport struct {
	name    string
	tiers   []supportTier
	minimum money.Amount
}

type compiledCredit struct {
	description   string
	amount        money.Amount
	recurring     bool
	period, until string
}

// appliesIn reports whether the credit applies in period (a period the
// pricebook is in force).
func (c compiledCredit) appliesIn(period string) bool {
	if !c.recurring {
		return period == c.period
	}
	return (c.period == "" || c.period <= period) && (c.until == "" || period <= c.until)
}

// Pricer prices line items and invoices cycles with one validated
// pricebook, parsed once. It is read-only and safe for concurrent use.
type Pricer struct {
	p        Pricebook
	global   multiplier
	rules    []compiledRule
	support  *compiledSupport
	credits  []compiledCredit
	withhold map[string]bool     // line item types withheld
	partner  []string            // descriptions of partner credits; a trailing "*" is a prefix
	passPC   bool                // partner credits pass through
	rates    map[string]*big.Int // currency → rate into p.Currency, unscaled at scale 18
	taxes    []compiledTax
}

type compiledTax struct {
	name     string
	percentU *big.Int
	percent  string
}

// NewPricer validates p and prepares it for pricing; the error is a
// *ValidationError.
func NewPricer(p Pricebook) (*Pricer, error) { return compile(p) }

// Pricebook returns the pricebook it prices with.
func (pr *Pricer) Pricebook() Pricebook { return pr.p }

// Resale returns the resale price of one line item at scale 18 and what
// priced it. p must be valid (Validate returns nil): Resale panics
// otherwise, as regexp.MustCompile does. It parses p on every call; to
// price many line items, use NewPricer once and Pricer.Resale.
func Resale(p Pricebook, item LineItem) (money.Amount, RuleRef) {
	pr, err := compile(p)
	if err != nil {
		panic(fmt.Sprintf("pricing.Resale: %v", err))
	}
	return pr.Resale(item)
}

// Resale returns the resale price of one line item at scale 18, unrounded
// to cents, and what priced it; see the package doc for precedence, the
// Markup flags and rounding.
func (pr *Pricer) Resale(item LineItem) (money.Amount, RuleRef) {
	return pr.resale(pr.Convert(item))
}

// resale prices an item already in the bill's currency.
func (pr *Pricer) resale(item LineItem) (money.Amount, RuleRef) {
	if pr.withheld(item) {
		return money.Amount{}, RefWithheld
	}
	switch item.LineItemType {
	case TypeTax:
		if !pr.p.MarkupTax {
			return item.UnblendedCost, RefAtCost
		}
	case TypeCredit:
		if !pr.p.MarkupCredits {
			return item.UnblendedCost, RefAtCost
		}
	case TypeRefund:
		if !pr.p.MarkupRefunds {
			return item.UnblendedCost, RefAtCost
		}
	}
	best := -1
	var bestRank rank
	for i := range pr.rules {
		k, ok := pr.rules[i].match(item)
		if ok && (best < 0 || k.better(bestRank)) {
			best, bestRank = i, k
		}
	}
	base := pr.base(item)
	if best < 0 {
		return pr.global.apply(base), RefGlobal
	}
	r := &pr.rules[best]
	return r.m.apply(base), r.ref
}

// base is the cost a line item's percent applies to, by CostBasis: a
// null amortized cost counts as its unblended cost (MissingBasis finds
// such lines first); a null public on-demand cost, as on fees, negations
// and discounts, counts as 0.
func (pr *Pricer) base(item LineItem) money.Amount {
	switch pr.p.CostBasis {
	case CostAmortized:
		if item.HasAmortizedCost {
			return item.AmortizedCost
		}
	case CostPublicOnDemand:
		return item.PublicOnDemandCost
	}
	return item.UnblendedCost
}

// ErrNoCostBasis: a line item lacks the cost the pricebook prices on.
var ErrNoCostBasis = errors.New("line item without the pricebook's cost basis")

// MissingBasis reports, for a pricebook on amortized cost, a line item
// whose amortized_cost is null (written before costlake computed it):
// pricing it would charge its unblended cost instead. An error matching
// ErrNoCostBasis, nil otherwise.
func (pr *Pricer) MissingBasis(item LineItem) error {
	if pr.p.CostBasis == CostAmortized && !item.HasAmortizedCost && !pr.withheld(item) {
		return fmt.Errorf("%w: account %s's %s line has no amortized_cost (ingested before costlake computed it): the period's next delivery fills it, or price on unblended cost",
			ErrNoCostBasis, item.AccountID, item.LineItemType)
	}
	return nil
}

// withheld reports whether item stays with the reseller: a program
// discount or a partner credit the pricebook does not pass through.
func (pr *Pricer) withheld(item LineItem) bool {
	if pr.withhold[item.LineItemType] {
		return true
	}
	if item.LineItemType != TypeCredit || pr.passPC {
		return false
	}
	for _, d := range pr.partner {
		if base, ok := strings.CutSuffix(d, wildcard); ok && strings.HasPrefix(item.Description, base) || d == item.Description {
			return true
		}
	}
	return false
}

// Convert returns item with its cost in the pricebook's currency: items
// in another currency its Conversions name are converted at their rate
// (half-even at the 18th decimal); others are returned as they are
// (CheckCurrencies refuses them before pricing).
func (pr *Pricer) Convert(item LineItem) LineItem {
	rate, ok := pr.rates[item.Currency]
	if !ok {
		return item
	}
	conv := func(a money.Amount) money.Amount {
		if a.IsZero() {
			return a
		}
		x := unscaled(a)
		return fromUnscaled(quoHalfEven(x.Mul(x, rate), pow10(money.Scale)))
	}
	item.UnblendedCost, item.AmortizedCost, item.PublicOnDemandCost = conv(item.UnblendedCost), conv(item.AmortizedCost), conv(item.PublicOnDemandCost)
	item.Currency = pr.p.Currency
	return item
}

// ResaleRate returns the resale rate of a line item priced by ref whose
// unblended rate is rate: the rate converted and adjusted by the same
// percent as its cost. Withheld items have none (ok false).
func (pr *Pricer) ResaleRate(item LineItem, ref RuleRef, rate money.Amount) (money.Amount, bool) {
	conv := pr.Convert(LineItem{Currency: item.Currency, UnblendedCost: rate})
	if pr.p.CostBasis != "" && pr.p.CostBasis != CostUnblended && ref != RefAtCost {
		return money.Amount{}, false // the unblended rate is not what the percent applied to
	}
	switch ref {
	case RefWithheld:
		return money.Amount{}, false
	case RefAtCost:
		return conv.UnblendedCost, true
	case RefGlobal:
		return pr.global.apply(conv.UnblendedCost), true
	}
	if i, ok := ref.Rule(); ok && i < len(pr.rules) {
		return pr.rules[i].m.apply(conv.UnblendedCost), true
	}
	return money.Amount{}, false
}

// ErrCurrency: a customer's line items are in a currency its bill cannot
// hold (several currencies, or one without a conversion).
var ErrCurrency = errors.New("line items in a currency the bill cannot hold")

// BillCurrency returns the currency of a bill of line items in the given
// currencies (blank ones, as AWS leaves on some lines, count as none):
// the pricebook's Currency, or the line items' only one. It returns an
// error matching ErrCurrency when the items are in several currencies
// and the pricebook converts none of them, or in one it neither bills in
// nor converts.
func (pr *Pricer) BillCurrency(currencies []string) (string, error) {
	seen := map[string]bool{}
	var list []string
	for _, c := range currencies {
		if c != "" && !seen[c] {
			seen[c] = true
			list = append(list, c)
		}
	}
	slices.Sort(list)
	if pr.p.Currency == "" {
		if len(list) > 1 {
			return "", fmt.Errorf("%w: %s; the pricebook must name the bill's currency and a conversion for the others", ErrCurrency, strings.Join(list, ", "))
		}
		if len(list) == 1 {
			return list[0], nil
		}
		return "", nil
	}
	var missing []string
	for _, c := range list {
		if _, ok := pr.rates[c]; c != pr.p.Currency && !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s, and the pricebook bills in %s without a conversion from it", ErrCurrency, strings.Join(missing, ", "), pr.p.Currency)
	}
	return pr.p.Currency, nil
}

// Add prices item and adds it to t, in the bill's currency, returning
// its resale and what priced it.
func (pr *Pricer) Add(t *Totals, item LineItem) (money.Amount, RuleRef) {
	item = pr.Convert(item)
	resale, ref := pr.resale(item)
	t.Add(item, resale, ref)
	return resale, ref
}

// compile validates p, collecting every problem, and parses it.
func compile(p Pricebook) (*Pricer, error) {
	var c checker
	pr := &Pricer{p: p}
	if p.Version < 0 {
		c.add("version", "must be ≥ 0 (the store sets it)")
	}
	c.period("effective_from", p.EffectiveFrom)
	if g, ok := c.percent("global_percent", p.GlobalPercent, MinPercent, MaxPercent, true); ok {
		pr.global = newMultiplier(g)
	}

	seen := map[[7]string]int{}
	for i, r := range p.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		cr := compiledRule{ref: RuleRefOf(i), account: r.Account, service: r.Service, usage: r.UsageType,
			operation: r.Operation, region: r.Region, lineType: r.LineItemType, entity: r.BillingEntity}
		for _, v := range []string{r.Account, r.Service, r.UsageType, r.Operation, r.Region, r.LineItemType, r.BillingEntity} {
			if v != "" {
				cr.named++
			}
		}
		if cr.named == 0 {
			c.add(f, "names none of account, service, usage_type, operation, region, line_item_type, billing_entity (global_percent adjusts everything)")
		}
		for _, x := range []struct{ field, v string }{{"operation", r.Operation}, {"region", r.Region}, {"line_item_type", r.LineItemType}} {
			if x.v != "" && (hasSpace(x.v) || strings.Contains(x.v, wildcard)) {
				c.add(f+"."+x.field, "an exact value without spaces or wildcards, got %q", x.v)
			}
		}
		if r.BillingEntity != "" && (strings.TrimSpace(r.BillingEntity) != r.BillingEntity || strings.Contains(r.BillingEntity, wildcard)) {
			c.add(f+".billing_entity", "an exact billing entity such as \"AWS Marketplace\", got %q", r.BillingEntity)
		}
		if r.Account != "" && !validAccount(r.Account) {
			c.add(f+".account", "must be a 12-digit AWS account ID, got %q", r.Account)
		}
		if r.Service != "" {
			switch {
			case hasSpace(r.Service) || strings.TrimSpace(r.Service) != r.Service:
				c.add(f+".service", "must not contain spaces, got %q", r.Service)
			case strings.Contains(r.Service, wildcard):
				c.add(f+".service", "no wildcards: a product code or service code, exactly (e.g. AmazonEC2)")
			}
		}
		if u := r.UsageType; u != "" {
			switch {
			case u == wildcard:
				c.add(f+".usage_type", `"*" alone matches everything: leave usage_type out`)
			case strings.Count(u, wildcard) > 1 || (strings.Contains(u, wildcard) && !strings.HasSuffix(u, wildcard)):
				c.add(f+".usage_type", `"*" may only end a usage type, as a prefix match, got %q`, u)
			case hasSpace(u):
				c.add(f+".usage_type", "must not contain spaces, got %q", u)
			}
			if base, ok := strings.CutSuffix(u, wildcard); ok {
				cr.usage, cr.prefix = base, true
			}
		}
		if pct, ok := c.percent(f+".percent", r.Percent, MinPercent, MaxPercent, false); ok {
			cr.m = newMultiplier(pct)
		}
		key := [7]string{r.Account, r.Service, r.UsageType, r.Operation, r.Region, r.LineItemType, r.BillingEntity}
		if j, dup := seen[key]; dup {
			c.add(f, "duplicates rules[%d] (it names the same values): which one applies would be ambiguous", j)
		} else {
			seen[key] = i
		}
		cr.tier = specificity(r.Account != "", r.Service != "", r.UsageType != "")
		cr.extra = extraSpecificity(r.Operation != "", r.Region != "", r.LineItemType != "", r.BillingEntity != "")
		pr.rules = append(pr.rules, cr)
	}

	if s := p.Support; s != nil {
		cs := &compiledSupport{name: s.Name}
		minFee, minOK := c.amount("support.minimum_fee", s.MinimumFee, false, true)
		cs.minimum = minFee
		if len(s.Tiers) == 0 && minOK && minFee.IsZero() {
			c.add("support", "needs tiers or a minimum_fee (omit support for no support fee)")
		}
		var prev money.Amount
		prevOK := false
		for i, t := range s.Tiers {
			f := fmt.Sprintf("support.tiers[%d]", i)
			from, ok := c.amount(f+".from", t.From, false, false)
			switch {
			case !ok:
			case i == 0 && !from.IsZero():
				c.add(f+".from", "the first tier must start at 0, got %q", t.From)
			case i > 0 && prevOK && from.Cmp(prev) <= 0:
				c.add(f+".from", "must be above support.tiers[%d].from (%s): tiers ascend", i-1, prev)
			}
			prev, prevOK = from, ok
			pct, pok := c.percent(f+".percent", t.Percent, 0, maxSupportPercent, false)
			if ok && pok {
				cs.tiers = append(cs.tiers, supportTier{from: from, percentU: pct, percent: fromUnscaled(pct).String()})
			}
		}
		pr.support = cs
	}

	for i, cr := range p.Credits {
		f := fmt.Sprintf("credits[%d]", i)
		cc := compiledCredit{description: cr.Description, recurring: cr.Recurring, period: cr.Period, until: cr.Until}
		if strings.TrimSpace(cr.Description) == "" {
			c.add(f+".description", "required: what the credit is for, shown on the invoice")
		}
		cc.amount, _ = c.amount(f+".amount", cr.Amount, true, false)
		effOK := validPeriod(p.EffectiveFrom)
		if !cr.Recurring {
			if c.period(f+".period", cr.Period) && effOK && cr.Period < p.EffectiveFrom {
				c.add(f+".period", "%s is before effective_from %s: the credit would never apply", cr.Period, p.EffectiveFrom)
			}
			if cr.Until != "" {
				c.add(f+".until", "only a recurring credit has an end")
			}
		} else {
			start, startOK := p.EffectiveFrom, effOK
			if cr.Period != "" {
				start, startOK = cr.Period, c.period(f+".period", cr.Period)
				if startOK && effOK && start < p.EffectiveFrom {
					start = p.EffectiveFrom
				}
			}
			if cr.Until != "" && c.period(f+".until", cr.Until) && startOK && cr.Until < start {
				c.add(f+".until", "%s is before the credit's first period %s", cr.Until, start)
			}
		}
		pr.credits = append(pr.credits, cc)
	}
	switch p.CostBasis {
	case "", CostUnblended, CostAmortized, CostPublicOnDemand:
	default:
		c.add("cost_basis", "must be %s (the default), %s or %s, got %q", CostUnblended, CostAmortized, CostPublicOnDemand, p.CostBasis)
	}
	compileWithholding(&c, p, pr)
	compileCurrency(&c, p, pr)
	for i, t := range p.Taxes {
		f := fmt.Sprintf("taxes[%d]", i)
		if strings.TrimSpace(t.Name) == "" {
			c.add(f+".name", "required: the tax's name on the invoice")
		}
		if pct, ok := c.percent(f+".percent", t.Percent, 0, maxSupportPercent, false); ok {
			pr.taxes = append(pr.taxes, compiledTax{name: t.Name, percentU: pct, percent: fromUnscaled(pct).String()})
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return pr, nil
}

// compileWithholding reads PassThrough and PartnerCredits.
func compileWithholding(c *checker, p Pricebook, pr *Pricer) {
	pr.withhold = map[string]bool{}
	for _, t := range WithheldTypes {
		pr.withhold[t] = true
	}
	seen := map[string]bool{}
	for i, t := range p.PassThrough {
		f := fmt.Sprintf("pass_through[%d]", i)
		switch {
		case seen[t]:
			c.add(f, "%q is listed twice", t)
		case t == PartnerCredit:
			pr.passPC = true
		case pr.withhold[t]:
			delete(pr.withhold, t)
		default:
			c.add(f, "must be one of %s or %s, got %q", strings.Join(WithheldTypes, ", "), PartnerCredit, t)
		}
		seen[t] = true
	}
	for i, d := range p.PartnerCredits {
		f := fmt.Sprintf("partner_credits[%d]", i)
		switch base, _ := strings.CutSuffix(d, wildcard); {
		case strings.TrimSpace(base) == "":
			c.add(f, "a credit's line item description, or a prefix of it ending in \"*\", got %q", d)
		case strings.Contains(base, wildcard):
			c.add(f, `"*" may only end a description, as a prefix match, got %q`, d)
		}
		pr.partner = append(pr.partner, d)
	}
}

// compileCurrency reads Currency and Conversions.
func compileCurrency(c *checker, p Pricebook, pr *Pricer) {
	if p.Currency != "" && !validCurrency(p.Currency) {
		c.add("currency", "must be an ISO 4217 code of three capital letters, got %q", p.Currency)
	}
	if len(p.Conversions) > 0 && p.Currency == "" {
		c.add("conversions", "need currency: the currency they convert into")
	}
	pr.rates = map[string]*big.Int{}
	for i, cv := range p.Conversions {
		f := fmt.Sprintf("conversions[%d]", i)
		switch {
		case !validCurrency(cv.From):
			c.add(f+".from", "must be an ISO 4217 code of three capital letters, got %q", cv.From)
			continue
		case cv.From == p.Currency:
			c.add(f+".from", "%s is the bill's own currency", cv.From)
			continue
		case pr.rates[cv.From] != nil:
			c.add(f+".from", "%s is converted twice", cv.From)
			continue
		}
		if rate, ok := c.amount(f+".rate", cv.Rate, true, false); ok {
			pr.rates[cv.From] = unscaled(rate)
		}
	}
}

func validCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}
