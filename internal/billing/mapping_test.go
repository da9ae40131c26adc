package billing

import (
	"errors"
	"slices"
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
		{"resourceTags/user:Name", "resource_tags", "user:Name"},
		{"resourceTags/aws:createdBy", "resource_tags", "aws:createdBy"},
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
		{"resource_tags_user_CostCenter", "resource_tags", "user_CostCenter"},
		{"RESOURCE_TAGS_user_env", "resource_tags", "user_env"},
		{"Line_Item_Unblended_Cost", "line_item_unblended_cost", ""},
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

// keysOf returns the targets of a mapping as "column[key]".
func keysOf(m *Mapping) []string {
	out := make([]string, len(m.Targets))
	for i, t := range m.Targets {
		out[i] = t.describe()
	}
	return out
}

// TestTagKeyVariantsNeverMerge: tag and cost category keys that differ
// only by case or punctuation are distinct keys in every format, and no
// header of a real delivery fails the mapping.
func TestTagKeyVariantsNeverMerge(t *testing.T) {
	legacy := []string{"lineItem/UnblendedCost", "resourceTags/user:CostCenter", "resourceTags/user:cost-center",
		"resourceTags/user:cost_center", "resourceTags/user:costcenter", "resourceTags/user:env", "resourceTags/user:Env",
		"costCategory/Team", "costCategory/team", "product/ProductName", "product/productName"}
	m, err := MapLegacyHeader(legacy)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line_item_unblended_cost", `resource_tags["user:CostCenter"]`, `resource_tags["user:cost-center"]`,
		`resource_tags["user:cost_center"]`, `resource_tags["user:costcenter"]`, `resource_tags["user:env"]`, `resource_tags["user:Env"]`,
		`cost_category["Team"]`, `cost_category["team"]`, `product["product_name"]`, `other_columns["product/productName"]`}
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Errorf("legacy:\n got %q\nwant %q", got, want)
	}

	athena := []string{"line_item_unblended_cost", "resource_tags_user_cost_center", "resource_tags_user_costcenter",
		"resource_tags_user_CostCenter", "Resource_Tags_user_cost_center", "cost_category_team", "cost_category_Team"}
	m, err = MapAthenaHeader(athena)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"line_item_unblended_cost", `resource_tags["user_cost_center"]`, `resource_tags["user_costcenter"]`,
		`resource_tags["user_CostCenter"]`, `other_columns["Resource_Tags_user_cost_center"]`, `cost_category["team"]`, `cost_category["Team"]`}
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Errorf("athena:\n got %q\nwant %q", got, want)
	}

	cur2 := []string{"line_item_unblended_cost", "resource_tags", "Resource_Tags", "tags", "line_item_iam_principal", "line_item_brand_new"}
	m, err = MapCUR2Header(cur2)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"line_item_unblended_cost", "resource_tags", `other_columns["Resource_Tags"]`, "tags", "line_item_iam_principal", `other_columns["line_item_brand_new"]`}
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Errorf("cur2:\n got %q\nwant %q", got, want)
	}
}

// TestMapAthenaHeaderOriginals: a Parquet column whose manifest names the
// legacy header keeps the tag key AWS wrote, as the CSV of the same
// delivery does; columns without an original keep their own text.
func TestMapAthenaHeaderOriginals(t *testing.T) {
	header := []string{"line_item_unblended_cost", "resource_tags_user_cost_center", "resource_tags_user_costcenter", "cost_category_team", "resource_tags_user_name"}
	originals := map[string]string{
		"line_item_unblended_cost":       "lineItem/UnblendedCost",
		"resource_tags_user_cost_center": "resourceTags/user:CostCenter",
		"resource_tags_user_costcenter":  "resourceTags/user:costcenter",
		"cost_category_team":             "costCategory/Team",
	}
	m, err := MapAthenaHeaderOriginals(header, originals)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"line_item_unblended_cost", `resource_tags["user:CostCenter"]`, `resource_tags["user:costcenter"]`, `cost_category["Team"]`, `resource_tags["user_name"]`}
	if got := keysOf(m); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestNamedColumnsExist: every column code reads by name is in the
// canonical schema, so a typo in a Col constant fails here, not in an
// ingestion.
func TestNamedColumnsExist(t *testing.T) {
	for _, name := range NamedColumns {
		if LineItems.Index(name) < 0 {
			t.Errorf("%s is not a canonical column", name)
		}
	}
}
