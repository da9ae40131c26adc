// Package pricing is reseller billing: a customer's pricebook, the resale
// price of each AWS line item, and the customer's invoice for a billing
// cycle. It does no I/O; the reseller store keeps pricebook versions
// (as the JSON of Pricebook), the lakehouse feeds line items, and the
// close-cycle workflow freezes the resulting Bill.
//
// # Pricebook
//
// A Pricebook belongs to one customer and takes effect from a billing
// period (EffectiveFrom, "YYYY-MM") until a newer version replaces it.
// Every percent is a decimal string: negative is a discount, positive an
// uplift, between -100 and 1000 with at most 6 decimal places. A line
// item's resale is
//
//	resale = cost × (1 + percent/100)
//
// where cost is line_item_unblended_cost (what AWS invoices) and percent
// comes from the most specific rule that matches the line item, else
// GlobalPercent (empty means 0).
//
// # Rule precedence
//
// A rule names one or more of: Account (line_item_usage_account_id),
// Service (equal to product_servicecode or to line_item_product_code),
// UsageType (line_item_usage_type; exact, or a prefix when it ends in
// "*"), Operation (line_item_operation; with UsageType it names a SKU),
// Region (product_region_code), LineItemType (line_item_line_item_type)
// and BillingEntity (bill_billing_entity, e.g. "AWS Marketplace"). A rule
// matches when every field it names matches. Among the matching rules
// the winner is, first, the one naming the most fields; then, among
// account, service and usage type, the most specific combination, in
// this order (most specific first):
//
//  1. account + service + usage type
//  2. account + usage type
//  3. account + service
//  4. service + usage type
//  5. usage type
//  6. service
//  7. account
//
// then the one naming, of the other fields, operation before region
// before line item type before billing entity; GlobalPercent prices what
// no rule matches.
//
// Within the same combination, an exact usage type beats a prefix and a
// longer prefix beats a shorter one; then a Service matched through
// product_servicecode beats one matched through line_item_product_code
// (data transfer billed under AmazonS3 has service code AWSDataTransfer:
// a rule for AWSDataTransfer beats a rule for AmazonS3). Two rules naming
// the same account, service and usage type are duplicates and Validate
// rejects them, so exactly one rule, or the global percent, prices every
// line item; Resale returns which as a RuleRef ("rules[3]",
// "global_percent", "at_cost").
//
// # Line item types
//
// The payer's program discounts (SppDiscount, EdpDiscount,
// PrivateRateDiscount, DistributorDiscount, BundledDiscount,
// RiVolumeDiscount: WithheldTypes) and the credits PartnerCredits marks
// are the reseller's margin, not the customer's: they are withheld
// (RefWithheld, resale 0, summed in Totals.Withheld and on no invoice
// line) unless PassThrough names them, in which case they are priced like
// any other line of their type.
//
// Tax, Credit and Refund line items (line_item_line_item_type) are passed
// at cost unless MarkupTax, MarkupCredits or MarkupRefunds is set; when
// set, they are priced by the rules like any other line. Every other type
// is priced by the rules, negative ones included: SavingsPlanNegation,
// passed-through discounts and the like get the same percent as the usage they offset
// (same account, service and usage type), so a covered usage line and its
// negation still cancel in resale.
//
// # Currency
//
// A bill is in one currency. Without Currency it is the line items' own,
// and line items in several currencies are refused (BillCurrency,
// ErrCurrency); with Currency, line items in another currency are
// converted at the rate Conversions name, before pricing, and the rate
// is pinned with the pricebook version the cycle closes on.
//
// # Support plan
//
// A SupportPlan charges, like AWS Business and Enterprise support, a
// tiered percent of the month's AWS charges, or its MinimumFee when that
// is more; it is charged every cycle the pricebook is in force, usage or
// not. Following AWS, "the month's AWS charges" are the customer's: the
// resale of the usage lines (every line but Tax, Credit, Refund and AWS's
// own support plan lines), after the pricebook's discounts and uplifts,
// before credits, refunds and tax. A negative base counts as 0. Tiers are
// marginal bands: with tiers from 0 at 10%, from 10000 at 7% and from
// 80000 at 5%, a base of 85000 pays 10% of 10000 + 7% of 70000 + 5% of
// 5000.
//
// AWS's own support charges (product code AWSSupport… or
// AWSDeveloperSupport) are priced by the rules and shown on their own
// invoice line; a rule {"service": "AWSSupportBusiness", "percent":
// "-100"} drops them when the reseller's plan replaces AWS's.
//
// # Credits
//
// A pricebook Credit is a fixed amount off the invoice: once (in Period)
// or recurring (every cycle from Period, default EffectiveFrom, until
// Until, inclusive). Credits apply in the order listed, after the support
// fee and before tax, and never take the invoice below zero: each applies
// at most what remains of the pre-tax subtotal; what cannot apply is
// reported as Unused on its line and in Bill.UnusedCredit, and is not
// carried to the next cycle (a closed cycle stays closed; the operator
// may add a one-off credit to a later period). AWS's own credits and
// refunds are line items, not pricebook credits: they pass through and
// may make an invoice negative.
//
// # Taxes
//
// A pricebook's Taxes (the reseller's, e.g. VAT) are added by AddTaxes
// after every other line, adjustments included: each is its percent of
// the bill's amounts before taxes, AWS's own Tax lines left out, and
// never of a negative base.
//
// # Rounding
//
// Amounts are exact decimals (package money, decimal(38,18)); nothing
// passes through float64. Per line item there is no rounding to cents:
// a resale is computed exactly and kept at scale 18, the storage scale.
// Only a product with more than 18 decimal places is rounded, half-even
// at the 18th; costs as AWS delivers them (at most 10 decimal places)
// times a percent with at most 6 never are. Sums (Totals, Bill lines,
// Bill.Total) are exact sums of those scale-18 amounts: a customer's
// Bill.Total equals the sum of its lines, and the Totals of chunks merged
// equal the Totals of the whole, to the last digit. Bill.Due alone is
// rounded, half-even (banker's) to cents, once, at the end: Due =
// RoundCents(Total). The support fee is computed at scale 18 from the
// exact base (its bands summed before one half-even rounding at the
// 18th decimal), like every other line.
package pricing
