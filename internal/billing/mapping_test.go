package billing

import (
	"errors"
	"testing"
)

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"UnblendedCost":      "unblended_cost",
		"ReservationARN":     "reservation_a_r_n",
		"SavingsPlanARN":     "savings_plan_a_r_n",
		"user:Name":          "user_name",
		"aws:createdBy":      "aws_created_by",
		"servicecode":        "servicecode",
		"publicOnDemandCost": "public_on_demand_cost",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMapLegacyHeader(t *testing.T) {
	cases := []struct {
		header, col, key string
	}{
		{"lineItem/UnblendedCost", "line_item_unblended_cost", ""},
		{"identity/LineItemId", "identity_line_item_id", ""},
		{"bill/PayerAccountId", "bill_payer_account_id", ""},
		{"reservation/ReservationARN", "reservation_reservation_a_r_n", ""},
		{"savingsPlan/SavingsPlanARN", "savings_plan_savings_plan_a_r_n", ""},
		{"product/servicecode", "product_servicecode", ""},
		{"product/instanceType", "product_instance_type", ""},
		{"product/regionCode", "product_region_code", ""},
		{"product/ProductName", "product", "product_name"},
		{"product/durability", "product", "durability"},
		{"pricing/publicOnDemandCost", "pricing_public_on_demand_cost", ""},
		{"resourceTags/user:Name", "resource_tags", "user_name"},
		{"resourceTags/aws:createdBy", "resource_tags", "aws_created_by"},
		{"costCategory/Team", "cost_category", "Team"},
		{"discount/EdpDiscount", "discount", "edp_discount"},
		{"discount/TotalDiscount", "discount_total_discount", ""},
		{"lineItem/SomethingNew", "other_columns", "lineItem/SomethingNew"},
		{"weird", "other_columns", "weird"},
	}
	for _, c := range cases {
		m, err := MapLegacyHeader([]string{c.header})
		if err != nil {
			t.Fatal(err)
		}
		got := m.Targets[0]
		if Columns[got.Column].Name != c.col || got.Key != c.key {
			t.Errorf("%s -> %s, want %s[%q]", c.header, got.describe(), c.col, c.key)
		}
	}
}

func TestMapLegacyHeaderDuplicate(t *testing.T) {
	_, err := MapLegacyHeader([]string{"lineItem/UnblendedCost", "lineItem/UnblendedCost"})
	if !errors.Is(err, ErrDuplicateColumn) {
		t.Fatalf("err = %v, want ErrDuplicateColumn", err)
	}
}

func TestColumnsCoverKinds(t *testing.T) {
	if len(Columns) < 120 {
		t.Fatalf("only %d columns", len(Columns))
	}
	for _, name := range []string{ColUnblendedCost, ColUsageStartDate, ColResourceTags, ColBillingPeriod} {
		if Index(name) < 0 {
			t.Errorf("missing %s", name)
		}
	}
	if Columns[MustIndex(ColUnblendedCost)].Kind != Decimal || Columns[MustIndex(ColUsageStartDate)].Kind != Timestamp {
		t.Error("wrong kinds")
	}
}

func TestMapAthenaHeader(t *testing.T) {
	cases := []struct{ header, col, key string }{
		{"line_item_unblended_cost", "line_item_unblended_cost", ""},
		{"product_servicecode", "product_servicecode", ""},
		{"product_product_name", "product", "product_name"},
		{"product_account_assistance", "product", "account_assistance"},
		{"resource_tags_user_name", "resource_tags", "user_name"},
		{"resource_tags_aws_created_by", "resource_tags", "aws_created_by"},
		{"cost_category_team", "cost_category", "team"},
		{"discount_total_discount", "discount_total_discount", ""},
		{"discount_edp_discount", "discount", "edp_discount"},
		{"something_new", "other_columns", "something_new"},
	}
	for _, c := range cases {
		m, err := MapAthenaHeader([]string{c.header})
		if err != nil {
			t.Fatal(err)
		}
		got := m.Targets[0]
		if Columns[got.Column].Name != c.col || got.Key != c.key {
			t.Errorf("%s -> %s, want %s[%q]", c.header, got.describe(), c.col, c.key)
		}
	}
}
