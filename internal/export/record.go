package export

import (
	"fmt"
	"strings"
	"time"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// Canonical columns (billing.LineItems, CUR 2.0 names) each report column
// is read from by FromRecord.
var (
	colInvoiceID    = billing.LineItems.MustIndex(billing.ColBillInvoiceID)
	colPayer        = billing.LineItems.MustIndex(billing.ColPayerAccountID)
	colAccount      = billing.LineItems.MustIndex(billing.ColUsageAccountID)
	colLineItemID   = billing.LineItems.MustIndex(billing.ColLineItemID)
	colProduct      = billing.LineItems.MustIndex(billing.ColProduct)
	colProductCode  = billing.LineItems.MustIndex(billing.ColProductCode)
	colRateID       = billing.LineItems.MustIndex(billing.ColRateID)
	colSubscription = billing.LineItems.MustIndex(billing.ColSubscriptionID)
	colUsageType    = billing.LineItems.MustIndex(billing.ColUsageType)
	colOperation    = billing.LineItems.MustIndex(billing.ColOperation)
	colAZ           = billing.LineItems.MustIndex(billing.ColAvailabilityZone)
	colType         = billing.LineItems.MustIndex(billing.ColLineItemType)
	colDescription  = billing.LineItems.MustIndex(billing.ColDescription)
	colStart        = billing.LineItems.MustIndex(billing.ColUsageStartDate)
	colEnd          = billing.LineItems.MustIndex(billing.ColUsageEndDate)
	colQuantity     = billing.LineItems.MustIndex(billing.ColUsageAmount)
	colBlendedRate  = billing.LineItems.MustIndex(billing.ColBlendedRate)
	colBlendedCost  = billing.LineItems.MustIndex(billing.ColBlendedCost)
	colUnblRate     = billing.LineItems.MustIndex(billing.ColUnblendedRate)
	colUnblCost     = billing.LineItems.MustIndex(billing.ColUnblendedCost)
	colResource     = billing.LineItems.MustIndex(billing.ColResourceID)
	colTags         = billing.LineItems.MustIndex(billing.ColResourceTags)
)

// FromRecord fills r from one canonical line item (billing.LineItems):
//
//	InvoiceID        bill_invoice_id, or "Estimated" while blank (as the DBR did)
//	PayerAccountId   bill_payer_account_id
//	LinkedAccountId  line_item_usage_account_id
//	RecordType       "LineItem"
//	RecordId         identity_line_item_id
//	ProductName      product['product_name'], else line_item_product_code
//	RateId           pricing_rate_id
//	SubscriptionId   reservation_subscription_id
//	PricingPlanId    blank (CUR has no equivalent)
//	UsageType        line_item_usage_type
//	Operation        line_item_operation
//	AvailabilityZone line_item_availability_zone
//	ReservedInstance "Y" for DiscountedUsage and RIFee lines, else "N"
//	ItemDescription  line_item_line_item_description
//	UsageStartDate   line_item_usage_start_date
//	UsageEndDate     line_item_usage_end_date
//	UsageQuantity    line_item_usage_amount
//	BlendedRate      line_item_blended_rate
//	BlendedCost      line_item_blended_cost
//	UnBlendedRate    line_item_unblended_rate
//	UnBlendedCost    line_item_unblended_cost
//	ResourceId       line_item_resource_id
//	tags             resource_tags, each key under its column in names
//
// Null amounts become 0. Resale and ResaleRate are left for the caller
// (the pricebook) to set. names is the export's NewTagNames; a key it
// does not hold goes under TagColumn(key).
func FromRecord(rec *billing.Record, r *Row, names TagNames) error {
	v := rec.Values
	*r = Row{
		InvoiceID:        v[colInvoiceID],
		PayerAccountID:   v[colPayer],
		LinkedAccountID:  v[colAccount],
		RecordType:       "LineItem",
		RecordID:         v[colLineItemID],
		ProductName:      entry(rec.Entries[colProduct], "product_name"),
		RateID:           v[colRateID],
		SubscriptionID:   v[colSubscription],
		UsageType:        v[colUsageType],
		Operation:        v[colOperation],
		AvailabilityZone: v[colAZ],
		ReservedInstance: "N",
		ItemDescription:  v[colDescription],
		ResourceID:       v[colResource],
	}
	if r.InvoiceID == "" {
		r.InvoiceID = "Estimated"
	}
	if r.ProductName == "" {
		r.ProductName = v[colProductCode]
	}
	if t := v[colType]; t == "DiscountedUsage" || t == "RIFee" {
		r.ReservedInstance = "Y"
	}
	var err error
	if r.UsageStartDate, err = parseTime(v[colStart]); err != nil {
		return fmt.Errorf("%s: %w", billing.ColUsageStartDate, err)
	}
	if r.UsageEndDate, err = parseTime(v[colEnd]); err != nil {
		return fmt.Errorf("line_item_usage_end_date: %w", err)
	}
	for _, a := range []struct {
		col int
		dst *money.Amount
	}{
		{colQuantity, &r.UsageQuantity}, {colBlendedRate, &r.BlendedRate}, {colBlendedCost, &r.BlendedCost},
		{colUnblRate, &r.UnBlendedRate}, {colUnblCost, &r.UnBlendedCost},
	} {
		if v[a.col] == "" {
			continue
		}
		if *a.dst, err = money.Parse(v[a.col]); err != nil {
			return fmt.Errorf("%s: %w", billing.LineItems.Columns[a.col].Name, err)
		}
	}
	if tags := rec.Entries[colTags]; len(tags) > 0 {
		r.Tags = make(map[string]string, len(tags))
		for _, e := range tags {
			r.Tags[names.Column(e.Key)] = e.Value
		}
	}
	return nil
}

func entry(es []billing.Entry, key string) string {
	for _, e := range es {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// TagColumn turns a resource_tags key into the report's tag column name.
// Keys hold the tag as AWS wrote it in the source: legacy CUR keeps the
// original ("user:CostCenter"), which is printed as it is. CUR 2.0 and
// the Athena layout write snake case ("user_cost_center"), whose
// original capitalisation and punctuation AWS has dropped; those get the
// legacy prefix back: "user_cost_center" → "user:cost_center",
// "aws_created_by" → "aws:createdBy".
func TagColumn(key string) string {
	switch {
	case strings.Contains(key, ":"):
		return key
	case key == "aws_created_by":
		return "aws:createdBy"
	case strings.HasPrefix(key, "user_"):
		return "user:" + strings.TrimPrefix(key, "user_")
	case strings.HasPrefix(key, "aws_"):
		return "aws:" + strings.TrimPrefix(key, "aws_")
	default:
		return "user:" + key
	}
}

// TagNames maps resource_tags keys to an export's tag columns, one column
// per key: two keys are never merged into one column.
type TagNames map[string]string

// NewTagNames names the tag columns of keys (distinct, sorted): a key
// with a colon is its own column; any other gets TagColumn(key), unless
// that column is taken (legacy "user:cost_center" beside CUR 2.0's
// "user_cost_center"), when it keeps its own text as a legacy header,
// "resourceTags/user_cost_center".
func NewTagNames(keys []string) TagNames {
	names := make(TagNames, len(keys))
	taken := make(map[string]bool, len(keys))
	for _, k := range keys {
		if strings.Contains(k, ":") {
			names[k], taken[k] = k, true
		}
	}
	for _, k := range keys {
		if strings.Contains(k, ":") {
			continue
		}
		c := TagColumn(k)
		if taken[c] {
			c = "resourceTags/" + k
		}
		names[k], taken[c] = c, true
	}
	return names
}

// Column returns the column of key: its own, or TagColumn(key).
func (n TagNames) Column(key string) string {
	if c, ok := n[key]; ok {
		return c
	}
	return TagColumn(key)
}

// Columns returns the columns in the order of keys.
func (n TagNames) Columns(keys []string) []string {
	cols := make([]string, 0, len(keys))
	for _, k := range keys {
		cols = append(cols, n.Column(k))
	}
	return cols
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000Z0700",
	"2006-01-02 15:04:05.000",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02",
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp: %q", s)
}
