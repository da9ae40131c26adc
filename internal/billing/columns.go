// Package billing defines costlake's canonical line item: the CUR 2.0
// column names every delivery format is mapped onto, each column's kind,
// and how a legacy CUR header ("lineItem/UnblendedCost") finds its column.
package billing

import (
	"strings"
	"unicode"
)

// Kind is how a column is stored.
type Kind int

const (
	String    Kind = iota // Iceberg string
	Decimal               // Iceberg decimal(38,18), parsed exactly by package money
	Timestamp             // Iceberg timestamptz (UTC, microseconds)
	Map                   // Iceberg map<string,string>
)

func (k Kind) String() string {
	return [...]string{"string", "decimal(38,18)", "timestamptz", "map<string,string>"}[k]
}

// Column is one canonical column.
type Column struct {
	Name string
	Kind Kind
	Doc  string
}

// Names of the columns costlake itself relies on.
const (
	ColPayerAccountID   = "bill_payer_account_id"
	ColUsageAccountID   = "line_item_usage_account_id"
	ColLineItemType     = "line_item_line_item_type"
	ColUnblendedCost    = "line_item_unblended_cost"
	ColBillingPeriod    = "billing_period"
	ColProduct          = "product"
	ColResourceTags     = "resource_tags"
	ColTags             = "tags"
	ColCostCategory     = "cost_category"
	ColDiscount         = "discount"
	ColOtherColumns     = "other_columns"
	ColUsageStartDate   = "line_item_usage_start_date"
	ColLineItemID       = "identity_line_item_id"
	ColBillInvoiceID    = "bill_invoice_id"
	ColProductCode      = "line_item_product_code"
	ColBillingStartDate = "bill_billing_period_start_date"
	ColServiceCode      = "product_servicecode"
	ColUsageType        = "line_item_usage_type"
	ColOperation        = "line_item_operation"
	ColAvailabilityZone = "line_item_availability_zone"
	ColDescription      = "line_item_line_item_description"
	ColUsageEndDate     = "line_item_usage_end_date"
	ColUsageAmount      = "line_item_usage_amount"
	ColBlendedRate      = "line_item_blended_rate"
	ColBlendedCost      = "line_item_blended_cost"
	ColUnblendedRate    = "line_item_unblended_rate"
	ColResourceID       = "line_item_resource_id"
	ColRateID           = "pricing_rate_id"
	ColSubscriptionID   = "reservation_subscription_id"
	ColRegion           = "product_region_code"
	ColBillingEntity    = "bill_billing_entity"
	ColCurrency         = "line_item_currency_code"
	// ColPublicOnDemandCost is the list price of a line item.
	ColPublicOnDemandCost = "pricing_public_on_demand_cost"
)

// NamedColumns are the columns named by a Col constant: the ones code
// reads by name (a test checks each is in Columns).
var NamedColumns = []string{
	ColPayerAccountID, ColUsageAccountID, ColLineItemType, ColUnblendedCost, ColBillingPeriod,
	ColProduct, ColResourceTags, ColTags, ColCostCategory, ColDiscount, ColOtherColumns,
	ColUsageStartDate, ColLineItemID, ColBillInvoiceID, ColProductCode, ColBillingStartDate,
	ColServiceCode, ColUsageType, ColOperation, ColAvailabilityZone, ColDescription,
	ColUsageEndDate, ColUsageAmount, ColBlendedRate, ColBlendedCost, ColUnblendedRate,
	ColResourceID, ColRateID, ColSubscriptionID, ColRegion, ColBillingEntity, ColCurrency, ColPublicOnDemandCost,
}

// Columns is the canonical schema in table order: the CUR 2.0 columns of
// AWS Data Exports (including split cost allocation), then costlake's own
// (billing_period, other_columns and the cost measures of SetMeasures).
var Columns = buildColumns()

var decimalColumns = set(
	"discount_bundled_discount", "discount_total_discount",
	"line_item_blended_cost", "line_item_blended_rate", "line_item_net_unblended_cost",
	"line_item_net_unblended_rate", "line_item_normalization_factor",
	"line_item_normalized_usage_amount", "line_item_unblended_cost", "line_item_unblended_rate",
	"line_item_usage_amount", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate",
	"reservation_amortized_upfront_cost_for_usage", "reservation_amortized_upfront_fee_for_billing_period",
	"reservation_effective_cost", "reservation_net_amortized_upfront_cost_for_usage",
	"reservation_net_amortized_upfront_fee_for_billing_period", "reservation_net_effective_cost",
	"reservation_net_recurring_fee_for_usage", "reservation_net_unused_amortized_upfront_fee_for_billing_period",
	"reservation_net_unused_recurring_fee", "reservation_net_upfront_value",
	"reservation_recurring_fee_for_usage", "reservation_unused_amortized_upfront_fee_for_billing_period",
	"reservation_unused_normalized_unit_quantity", "reservation_unused_quantity",
	"reservation_unused_recurring_fee", "reservation_upfront_value",
	"savings_plan_amortized_upfront_commitment_for_billing_period",
	"savings_plan_net_amortized_upfront_commitment_for_billing_period",
	"savings_plan_net_recurring_commitment_for_billing_period",
	"savings_plan_net_savings_plan_effective_cost", "savings_plan_recurring_commitment_for_billing_period",
	"savings_plan_savings_plan_effective_cost", "savings_plan_savings_plan_rate",
	"savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
	"split_line_item_actual_usage", "split_line_item_net_split_cost", "split_line_item_net_unused_cost",
	"split_line_item_public_on_demand_split_cost", "split_line_item_public_on_demand_unused_cost",
	"split_line_item_reserved_usage", "split_line_item_split_cost", "split_line_item_split_usage",
	"split_line_item_split_usage_ratio", "split_line_item_unused_cost",
)

var timestampColumns = set(
	"bill_billing_period_end_date", "bill_billing_period_start_date",
	"line_item_usage_end_date", "line_item_usage_start_date",
)

var mapColumns = set(ColCostCategory, ColDiscount, ColProduct, ColResourceTags, ColTags)

// cur2Columns lists the CUR 2.0 table in AWS's order
// (../shared/data/column-lists/cur2_COST_AND_USAGE_REPORT_columns.txt),
// then the columns AWS's table dictionary added after that list
// (addedColumns). A table created before a column was added gains it by
// schema evolution (lakehouse), so this order is only a new table's.
var cur2Columns = append(strings.Fields(`
bill_bill_type bill_billing_entity bill_billing_period_end_date bill_billing_period_start_date
bill_invoice_id bill_invoicing_entity bill_payer_account_id bill_payer_account_name
cost_category discount discount_bundled_discount discount_total_discount
identity_line_item_id identity_time_interval
line_item_availability_zone line_item_blended_cost line_item_blended_rate line_item_currency_code
line_item_legal_entity line_item_line_item_description line_item_line_item_type
line_item_net_unblended_cost line_item_net_unblended_rate line_item_normalization_factor
line_item_normalized_usage_amount line_item_operation line_item_product_code line_item_resource_id
line_item_tax_type line_item_unblended_cost line_item_unblended_rate line_item_usage_account_id
line_item_usage_account_name line_item_usage_amount line_item_usage_end_date
line_item_usage_start_date line_item_usage_type
pricing_currency pricing_lease_contract_length pricing_offering_class pricing_public_on_demand_cost
pricing_public_on_demand_rate pricing_purchase_option pricing_rate_code pricing_rate_id
pricing_term pricing_unit
product product_comment product_fee_code product_fee_description product_from_location
product_from_location_type product_from_region_code product_instance_family product_instance_type
product_instancesku product_location product_location_type product_operation product_pricing_unit
product_product_family product_region_code product_servicecode product_sku product_to_location
product_to_location_type product_to_region_code product_usagetype
reservation_amortized_upfront_cost_for_usage reservation_amortized_upfront_fee_for_billing_period
reservation_availability_zone reservation_effective_cost reservation_end_time
reservation_modification_status reservation_net_amortized_upfront_cost_for_usage
reservation_net_amortized_upfront_fee_for_billing_period reservation_net_effective_cost
reservation_net_recurring_fee_for_usage reservation_net_unused_amortized_upfront_fee_for_billing_period
reservation_net_unused_recurring_fee reservation_net_upfront_value
reservation_normalized_units_per_reservation reservation_number_of_reservations
reservation_recurring_fee_for_usage reservation_reservation_a_r_n reservation_start_time
reservation_subscription_id reservation_total_reserved_normalized_units
reservation_total_reserved_units reservation_units_per_reservation
reservation_unused_amortized_upfront_fee_for_billing_period reservation_unused_normalized_unit_quantity
reservation_unused_quantity reservation_unused_recurring_fee reservation_upfront_value
resource_tags
savings_plan_amortized_upfront_commitment_for_billing_period savings_plan_end_time
savings_plan_instance_type_family savings_plan_net_amortized_upfront_commitment_for_billing_period
savings_plan_net_recurring_commitment_for_billing_period savings_plan_net_savings_plan_effective_cost
savings_plan_offering_type savings_plan_payment_option savings_plan_purchase_term
savings_plan_recurring_commitment_for_billing_period savings_plan_region
savings_plan_savings_plan_a_r_n savings_plan_savings_plan_effective_cost
savings_plan_savings_plan_rate savings_plan_start_time savings_plan_total_commitment_to_date
savings_plan_used_commitment
split_line_item_actual_usage split_line_item_net_split_cost split_line_item_net_unused_cost
split_line_item_parent_resource_id split_line_item_public_on_demand_split_cost
split_line_item_public_on_demand_unused_cost split_line_item_reserved_usage
split_line_item_split_cost split_line_item_split_usage split_line_item_split_usage_ratio
split_line_item_unused_cost
`), addedColumns...)

// addedColumns are CUR 2.0 columns newer than the column list above:
// tags (resource tags and the other tags AWS attributes, a map),
// line_item_iam_principal and line_item_user_identifier (who made the
// request, for Bedrock and other services that attribute by caller).
var addedColumns = []string{ColTags, "line_item_iam_principal", "line_item_user_identifier"}

func buildColumns() []Column {
	cols := make([]Column, 0, len(cur2Columns)+2+len(MeasureColumns))
	for _, name := range cur2Columns {
		kind := String
		switch {
		case decimalColumns[name]:
			kind = Decimal
		case timestampColumns[name]:
			kind = Timestamp
		case mapColumns[name]:
			kind = Map
		}
		cols = append(cols, Column{Name: name, Kind: kind})
	}
	cols = append(cols,
		Column{Name: ColBillingPeriod, Kind: String, Doc: "billing period as YYYY-MM; with the payer, the partition a delivery replaces"},
		Column{Name: ColOtherColumns, Kind: Map, Doc: "source columns costlake does not know yet, under their original header"},
	)
	return append(cols, MeasureColumns...)
}

var columnIndex = func() map[string]int {
	m := make(map[string]int, len(Columns))
	for i, c := range Columns {
		m[c.Name] = i
	}
	return m
}()

// Index returns the position of a canonical column in Columns, or -1.
func Index(name string) int {
	if i, ok := columnIndex[name]; ok {
		return i
	}
	return -1
}

// MustIndex is Index for names that are part of the schema; it panics otherwise.
func MustIndex(name string) int {
	i := Index(name)
	if i < 0 {
		panic("billing: no column " + name)
	}
	return i
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// SnakeCase converts AWS's camelCase to CUR 2.0 snake case the way AWS does:
// every capital starts a new word, so "ReservationARN" becomes
// "reservation_a_r_n" and "user:Name" becomes "user_name".
func SnakeCase(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		switch {
		case unicode.IsUpper(r):
			if i > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		case r == ':' || r == '-' || r == ' ' || r == '.' || r == '/':
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "_") {
				b.WriteByte('_')
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
