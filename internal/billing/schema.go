package billing

import (
	"fmt"
	"slices"
)

// ColReport names the report of the payer's period a row came from, for
// sources that deliver several reports per period (the partner layout's
// report_id); empty for single-report sources and null in rows written
// before the column existed. A report's next delivery replaces its rows
// and only those. Both tables append it after their own columns.
const ColReport = "costlake_report"

var reportColumn = Column{Name: ColReport, Kind: String,
	Doc: "the report of the payer's period this row came from (the partner layout's report_id; empty for single-report sources); a report's next delivery replaces its rows only"}

// Schema is one table's canonical columns and the columns costlake itself
// relies on in it: who pays, which account used, what kind of charge, what
// it cost. billing.line_items (CUR) and billing.focus_line_items (FOCUS)
// each have one.
type Schema struct {
	Table   string
	Columns []Column
	// Payer and Period partition the table; Account, ChargeType and Cost
	// are what ingestions reconcile by; Report tells a period's reports
	// apart.
	Payer, Period, Account, ChargeType, Cost, Report string
	filters                                          []string // other columns queries filter on
	index                                            map[string]int
}

func newSchema(table string, cols []Column, payer, account, chargeType, cost string, filters ...string) *Schema {
	cols = slices.Concat(cols, []Column{reportColumn}) // a copy: Columns itself stays the CUR 2.0 list
	s := &Schema{Table: table, Columns: cols, Payer: payer, Period: ColBillingPeriod, Account: account, ChargeType: chargeType, Cost: cost,
		Report: ColReport, filters: filters, index: make(map[string]int, len(cols))}
	for i, c := range cols {
		s.index[c.Name] = i
	}
	for _, name := range append([]string{payer, account, chargeType, cost, ColBillingPeriod, ColOtherColumns}, filters...) {
		s.MustIndex(name)
	}
	return s
}

// Index returns the position of a column, or -1.
func (s *Schema) Index(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// MustIndex is Index for names that are part of the schema; it panics otherwise.
func (s *Schema) MustIndex(name string) int {
	i := s.Index(name)
	if i < 0 {
		panic(fmt.Sprintf("billing: table %s has no column %s", s.Table, name))
	}
	return i
}

// NewRecord returns an empty record sized for the schema.
func (s *Schema) NewRecord() *Record {
	return &Record{Values: make([]string, len(s.Columns)), Entries: make([][]Entry, len(s.Columns))}
}

// LineItems is the schema of billing.line_items: CUR in CUR 2.0 names.
var LineItems = newSchema("line_items", Columns, ColPayerAccountID, ColUsageAccountID, ColLineItemType, ColUnblendedCost,
	ColUsageStartDate, ColProductCode, "line_item_usage_type", "product_region_code")

// FOCUS is the schema of billing.focus_line_items: FOCUS 1.0 exports of
// AWS Data Exports, kept under their FOCUS column names. It has no
// computed cost measures (SetMeasures): AWS writes each row's amortized
// cost itself, as EffectiveCost, and FOCUS 1.0 has no net costs.
var FOCUS = newSchema("focus_line_items", focusColumns(), "BillingAccountId", "SubAccountId", "ChargeCategory", "BilledCost",
	"ChargePeriodStart", "ServiceName", "RegionId")

// Schemas lists every table's schema.
var Schemas = []*Schema{LineItems, FOCUS}

// SchemaByTable returns the schema of a table name, or nil.
func SchemaByTable(table string) *Schema {
	for _, s := range Schemas {
		if s.Table == table {
			return s
		}
	}
	return nil
}

// focusColumns lists FOCUS 1.0 as AWS Data Exports writes it
// (../shared/data/column-lists/focus_1_0_aws_FOCUS_1_0_AWS_columns.txt),
// with the Id column of FOCUS sample data, then costlake's own columns.
func focusColumns() []Column {
	var cols []Column
	add := func(kind Kind, names ...string) {
		for _, n := range names {
			cols = append(cols, Column{Name: n, Kind: kind})
		}
	}
	add(String, "AvailabilityZone")
	add(Decimal, "BilledCost")
	add(String, "BillingAccountId", "BillingAccountName", "BillingCurrency")
	add(Timestamp, "BillingPeriodEnd", "BillingPeriodStart")
	add(String, "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency")
	add(Timestamp, "ChargePeriodEnd", "ChargePeriodStart")
	add(String, "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
		"CommitmentDiscountType", "CommitmentDiscountStatus")
	add(Decimal, "ConsumedQuantity")
	add(String, "ConsumedUnit")
	add(Decimal, "ContractedCost", "ContractedUnitPrice", "EffectiveCost")
	add(String, "InvoiceIssuerName")
	add(Decimal, "ListCost", "ListUnitPrice")
	add(String, "PricingCategory")
	add(Decimal, "PricingQuantity")
	add(String, "PricingUnit", "ProviderName", "PublisherName", "RegionId", "RegionName", "ResourceId",
		"ResourceName", "ResourceType", "ServiceCategory", "ServiceName", "SkuId", "SkuPriceId",
		"SubAccountId", "SubAccountName", "Id")
	add(Map, "Tags", "x_CostCategories", "x_Discounts")
	add(String, "x_Operation", "x_ServiceCode", "x_UsageType")
	cols = append(cols,
		Column{Name: ColBillingPeriod, Kind: String, Doc: "billing period as YYYY-MM; with the billing account, the partition a delivery replaces"},
		Column{Name: ColOtherColumns, Kind: Map, Doc: "source columns costlake does not know yet, under their original header"},
	)
	return cols
}

// MapFOCUSHeader maps a FOCUS header: FOCUS names are kept as they are;
// Tags, x_CostCategories and x_Discounts hold JSON objects; unknown
// columns go to other_columns. FOCUS files write "NULL" for empty values.
func MapFOCUSHeader(header []string) (*Mapping, error) {
	m := &Mapping{Source: header, Targets: make([]Target, len(header)), Null: "NULL"}
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if seen[h] {
			return nil, fmt.Errorf("%w: %q appears twice", ErrDuplicateColumn, h)
		}
		seen[h] = true
		switch j := FOCUS.Index(h); {
		case j < 0 || h == ColOtherColumns || h == ColBillingPeriod || h == ColReport:
			m.Targets[i] = Target{Column: FOCUS.MustIndex(ColOtherColumns), Key: h}
		case FOCUS.Columns[j].Kind == Map:
			m.Targets[i] = Target{Column: j, JSON: true}
		default:
			m.Targets[i] = Target{Column: j}
		}
	}
	return m, nil
}
