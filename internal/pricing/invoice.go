package pricing

import (
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/costlake/costlake/internal/money"
)

// Sum is the exact sum of some line items: how many, their cost
// (unblended) and their resale, both at scale 18.
type Sum struct {
	Lines  int64        `json:"lines"`
	Cost   money.Amount `json:"cost"`
	Resale money.Amount `json:"resale"`
}

func (s *Sum) add(o Sum) {
	s.Lines += o.Lines
	s.Cost = s.Cost.Add(o.Cost)
	s.Resale = s.Resale.Add(o.Resale)
}

// Totals are a customer's line items of one cycle, summed exactly by
// class and by what priced them. Build them with Pricer.Add (or Add with
// Resale's results) over every line item; Totals of chunks, payers or
// workers combine with Merge, and the result does not depend on order or
// grouping. The zero value is empty and ready; Totals serialise to JSON.
type Totals struct {
	Usage      Sum `json:"usage"`
	AWSSupport Sum `json:"aws_support"`
	Credits    Sum `json:"aws_credits"`
	Refunds    Sum `json:"aws_refunds"`
	Tax        Sum `json:"tax"`
	// Withheld sums the reseller discounts and partner credits kept from
	// the customer (RefWithheld): on no invoice line.
	Withheld Sum `json:"withheld,omitzero"`
	// ByRule sums the line items per RuleRef that priced them.
	ByRule map[RuleRef]Sum `json:"by_rule,omitempty"`
}

func (t *Totals) class(c Class) *Sum {
	switch c {
	case ClassAWSSupport:
		return &t.AWSSupport
	case ClassCredit:
		return &t.Credits
	case ClassRefund:
		return &t.Refunds
	case ClassTax:
		return &t.Tax
	}
	return &t.Usage
}

// Add adds one line item priced at resale by ref.
func (t *Totals) Add(item LineItem, resale money.Amount, ref RuleRef) {
	one := Sum{Lines: 1, Cost: item.UnblendedCost, Resale: resale}
	if ref == RefWithheld {
		t.Withheld.add(one)
	} else {
		t.class(ClassOf(item)).add(one)
	}
	if t.ByRule == nil {
		t.ByRule = map[RuleRef]Sum{}
	}
	s := t.ByRule[ref]
	s.add(one)
	t.ByRule[ref] = s
}

// Merge adds o to t.
func (t *Totals) Merge(o Totals) {
	t.Usage.add(o.Usage)
	t.AWSSupport.add(o.AWSSupport)
	t.Credits.add(o.Credits)
	t.Refunds.add(o.Refunds)
	t.Tax.add(o.Tax)
	t.Withheld.add(o.Withheld)
	if len(o.ByRule) > 0 && t.ByRule == nil {
		t.ByRule = map[RuleRef]Sum{}
	}
	for ref, s := range o.ByRule {
		v := t.ByRule[ref]
		v.add(s)
		t.ByRule[ref] = v
	}
}

// All returns the sum over every class, withheld line items included.
func (t Totals) All() Sum {
	var s Sum
	for _, c := range []Sum{t.Usage, t.AWSSupport, t.Credits, t.Refunds, t.Tax, t.Withheld} {
		s.add(c)
	}
	return s
}

// LineKind is the kind of a Bill line.
type LineKind string

// The kinds, in the order lines appear on a Bill.
const (
	LineUsage      LineKind = "usage"       // resale of the usage line items
	LineAWSSupport LineKind = "aws_support" // resale of AWS's own support charges
	LineAWSCredits LineKind = "aws_credits" // AWS credits (type Credit)
	LineAWSRefunds LineKind = "aws_refunds" // AWS refunds (type Refund)
	LineSupportFee LineKind = "support_fee" // the pricebook's support plan
	LineCredit     LineKind = "credit"      // one pricebook credit
	LineTax        LineKind = "tax"         // tax (type Tax)
)

// BillLine is one line of a Bill. Amounts are exact, at scale 18.
type BillLine struct {
	Kind        LineKind `json:"kind"`
	Description string   `json:"description"`
	// LineItems is how many line items it sums (line item lines only).
	LineItems int64 `json:"line_items,omitzero"`
	// Cost is what AWS charged for them (0 for the support fee and
	// pricebook credits).
	Cost money.Amount `json:"cost"`
	// Amount is what the customer is charged; negative takes off.
	Amount money.Amount `json:"amount"`
	// Base is what the support fee is a percent of.
	Base money.Amount `json:"base,omitzero"`
	// Unused is the part of a pricebook credit that could not apply.
	Unused money.Amount `json:"unused,omitzero"`
	// CorrectsPeriod is the closed period an adjustment line corrects.
	CorrectsPeriod string `json:"corrects_period,omitempty"`
}

// Bill is a customer's invoice for one billing cycle.
type Bill struct {
	CustomerID       string `json:"customer_id,omitempty"`
	Period           string `json:"period"`
	PricebookVersion int    `json:"pricebook_version"`
	// Currency is the ISO 4217 code every amount is in ("" when the line
	// items carried none).
	Currency string     `json:"currency,omitempty"`
	Lines    []BillLine `json:"lines"`
	// Cost is the sum of the lines' Cost: what AWS charged.
	Cost money.Amount `json:"cost"`
	// Total is the exact sum of the lines' Amount, at scale 18.
	Total money.Amount `json:"total"`
	// Due is Total rounded half-even to cents: the one rounding.
	Due money.Amount `json:"due"`
	// UnusedCredit is the pricebook credit that could not apply this
	// cycle; it is not carried over.
	UnusedCredit money.Amount `json:"unused_credit"`
}

// Errors of Invoice besides an invalid pricebook.
var (
	// ErrPeriod: the period is not a billing period YYYY-MM.
	ErrPeriod = errors.New("not a billing period YYYY-MM")
	// ErrNotInForce: the pricebook takes effect after the period.
	ErrNotInForce = errors.New("pricebook not in force in the period")
)

// Invoice bills one customer's cycle: the Totals of all its line items in
// period, priced with p (by Pricer.Add or Resale), plus p's support fee
// and credits; see the package doc. Errors: a *ValidationError (matching
// ErrInvalid) for an invalid p, ErrPeriod, ErrNotInForce.
func Invoice(p Pricebook, period string, t Totals) (Bill, error) {
	pr, err := compile(p)
	if err != nil {
		return Bill{}, err
	}
	return pr.Invoice(period, t)
}

// Invoice is the package-level Invoice with the pricer's pricebook.
func (pr *Pricer) Invoice(period string, t Totals) (Bill, error) {
	if !validPeriod(period) {
		return Bill{}, fmt.Errorf("pricing: invoice period %q: %w", period, ErrPeriod)
	}
	if period < pr.p.EffectiveFrom {
		return Bill{}, fmt.Errorf("pricing: %w: version %d takes effect in %s, after %s", ErrNotInForce, pr.p.Version, pr.p.EffectiveFrom, period)
	}
	b := Bill{CustomerID: pr.p.CustomerID, Period: period, PricebookVersion: pr.p.Version}
	add := func(l BillLine) { b.Lines = append(b.Lines, l) }
	sumLine := func(kind LineKind, desc string, s Sum, always bool) {
		if always || s.Lines != 0 || !s.Cost.IsZero() || !s.Resale.IsZero() {
			add(BillLine{Kind: kind, Description: desc, LineItems: s.Lines, Cost: s.Cost, Amount: s.Resale})
		}
	}
	sumLine(LineUsage, "AWS usage", t.Usage, true)
	sumLine(LineAWSSupport, "AWS support (as billed by AWS)", t.AWSSupport, false)
	sumLine(LineAWSCredits, "AWS credits", t.Credits, false)
	sumLine(LineAWSRefunds, "AWS refunds", t.Refunds, false)

	if s := pr.support; s != nil {
		fee, desc := s.fee(t.Usage.Resale)
		add(BillLine{Kind: LineSupportFee, Description: desc, Amount: fee, Base: t.Usage.Resale})
	}

	// Pricebook credits: never below a zero pre-tax subtotal.
	var subtotal money.Amount
	for _, l := range b.Lines {
		subtotal = subtotal.Add(l.Amount)
	}
	room := maxAmount(subtotal, money.Amount{})
	for _, c := range pr.credits {
		if !c.appliesIn(period) {
			continue
		}
		applied := minAmount(c.amount, room)
		room = room.Sub(applied)
		unused := c.amount.Sub(applied)
		b.UnusedCredit = b.UnusedCredit.Add(unused)
		add(BillLine{Kind: LineCredit, Description: c.description, Amount: money.Amount{}.Sub(applied), Unused: unused})
	}

	sumLine(LineTax, "Tax", t.Tax, false)

	for _, l := range b.Lines {
		b.Cost = b.Cost.Add(l.Cost)
		b.Total = b.Total.Add(l.Amount)
	}
	b.Due = RoundCents(b.Total)
	return b, nil
}

// SupportFee returns the support fee of a pricebook's plan for a base
// (the usage resale; negative counts as 0): the tiered percent, or the
// minimum fee when more, at scale 18. It is 0 without a plan; p must be
// valid (it panics otherwise).
func SupportFee(p Pricebook, base money.Amount) money.Amount {
	pr, err := compile(p)
	if err != nil {
		panic(fmt.Sprintf("pricing.SupportFee: %v", err))
	}
	if pr.support == nil {
		return money.Amount{}
	}
	fee, _ := pr.support.fee(base)
	return fee
}

// fee computes the support fee and its description.
func (s *compiledSupport) fee(base money.Amount) (money.Amount, string) {
	if base.Cmp(money.Amount{}) < 0 {
		base = money.Amount{}
	}
	acc := new(big.Int)
	var parts []string
	for i, t := range s.tiers {
		if base.Cmp(t.from) <= 0 {
			break
		}
		top := base
		if i+1 < len(s.tiers) {
			top = minAmount(base, s.tiers[i+1].from)
		}
		portion := top.Sub(t.from)
		x := unscaled(portion)
		acc.Add(acc, x.Mul(x, t.percentU))
		parts = append(parts, fmt.Sprintf("%s%% of %s", t.percent, portion))
	}
	tiered := fromUnscaled(quoHalfEven(acc, percentDen))
	name := "Support plan"
	if s.name != "" {
		name += " " + s.name
	}
	desc := name
	if len(parts) > 0 {
		desc += ": " + strings.Join(parts, " + ")
	}
	if s.minimum.Cmp(tiered) > 0 {
		if len(parts) > 0 {
			return s.minimum, fmt.Sprintf("%s: minimum fee %s (tiered %s)", name, s.minimum, tiered)
		}
		return s.minimum, fmt.Sprintf("%s: minimum fee %s", name, s.minimum)
	}
	return tiered, desc
}
