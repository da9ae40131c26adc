package billing

import (
	"errors"
	"fmt"
	"strings"
)

// ErrDuplicateColumn reports two source headers that land on the same
// canonical column or map key, which would silently lose one of them.
var ErrDuplicateColumn = errors.New("two source columns map to the same canonical column")

// Target says where one source column goes: a top-level column, or a key
// of one of the map columns.
type Target struct {
	Column int    // index into Columns
	Key    string // map key when Columns[Column].Kind == Map; empty otherwise
	// JSON marks a whole map column written as a JSON object, as CUR 2.0
	// CSV writes product, resource_tags, cost_category and discount.
	JSON bool
}

// Mapping maps each position of a source header onto a Target.
type Mapping struct {
	Source  []string
	Targets []Target
	// Null is text the source writes for an empty value ("NULL" in FOCUS
	// files); "" when empty fields are empty.
	Null string
}

// legacyCategory maps a legacy header category to its CUR 2.0 prefix.
var legacyCategory = map[string]string{
	"identity":      "identity",
	"bill":          "bill",
	"lineItem":      "line_item",
	"pricing":       "pricing",
	"product":       "product",
	"reservation":   "reservation",
	"savingsPlan":   "savings_plan",
	"discount":      "discount",
	"splitLineItem": "split_line_item",
}

// MapLegacyHeader maps a legacy CUR header ("lineItem/UnblendedCost",
// "product/ProductName", "resourceTags/user:Name", "costCategory/Team")
// onto the canonical schema:
//   - category and name in snake case when that is a CUR 2.0 column;
//   - other product attributes into product[snake name];
//   - tags into resource_tags["user_name"] (the CUR 2.0 key);
//   - cost categories into cost_category[name]; other discounts into discount[snake name];
//   - anything else into other_columns under its original header, so nothing is dropped.
func MapLegacyHeader(header []string) (*Mapping, error) {
	m := &Mapping{Source: header, Targets: make([]Target, len(header))}
	seen := make(map[Target]string, len(header))
	for i, h := range header {
		t := legacyTarget(h)
		if prev, dup := seen[t]; dup {
			return nil, fmt.Errorf("%w: %q and %q both map to %s", ErrDuplicateColumn, prev, h, t.describe())
		}
		seen[t] = h
		m.Targets[i] = t
	}
	return m, nil
}

func legacyTarget(h string) Target {
	other := Target{Column: MustIndex(ColOtherColumns), Key: h}
	cat, name, ok := strings.Cut(h, "/")
	if !ok || name == "" {
		return other
	}
	switch cat {
	case "resourceTags":
		return Target{Column: MustIndex(ColResourceTags), Key: SnakeCase(name)}
	case "costCategory":
		return Target{Column: MustIndex(ColCostCategory), Key: name}
	}
	prefix, known := legacyCategory[cat]
	if !known {
		return other
	}
	col := prefix + "_" + SnakeCase(name)
	if i := Index(col); i >= 0 && Columns[i].Kind != Map {
		return Target{Column: i}
	}
	switch cat {
	case "product":
		return Target{Column: MustIndex(ColProduct), Key: SnakeCase(name)}
	case "discount":
		return Target{Column: MustIndex(ColDiscount), Key: SnakeCase(name)}
	}
	return other
}

// MapCUR2Header maps a CUR 2.0 (Data Exports) header: names are already
// canonical; the map columns hold JSON objects; unknown columns go to
// other_columns under their name.
func MapCUR2Header(header []string) (*Mapping, error) {
	m := &Mapping{Source: header, Targets: make([]Target, len(header))}
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if seen[name] {
			return nil, fmt.Errorf("%w: %q appears twice", ErrDuplicateColumn, h)
		}
		seen[name] = true
		switch j := Index(name); {
		case j < 0 || name == ColOtherColumns || name == ColBillingPeriod:
			m.Targets[i] = Target{Column: MustIndex(ColOtherColumns), Key: h}
		case Columns[j].Kind == Map:
			m.Targets[i] = Target{Column: j, JSON: true}
		default:
			m.Targets[i] = Target{Column: j}
		}
	}
	return m, nil
}

// MapAthenaHeader maps the snake_case headers of legacy CUR's Athena
// integration, which partner CUR generators also write
// ("line_item_unblended_cost", "product_product_name",
// "resource_tags_user_name"): canonical columns stay columns; other
// product_, resource_tags_, cost_category_ and discount_ names go into
// their map under the rest of the name; anything else into other_columns.
func MapAthenaHeader(header []string) (*Mapping, error) {
	m := &Mapping{Source: header, Targets: make([]Target, len(header))}
	seen := make(map[Target]string, len(header))
	for i, h := range header {
		t := athenaTarget(strings.ToLower(strings.TrimSpace(h)), h)
		if prev, dup := seen[t]; dup {
			return nil, fmt.Errorf("%w: %q and %q both map to %s", ErrDuplicateColumn, prev, h, t.describe())
		}
		seen[t] = h
		m.Targets[i] = t
	}
	return m, nil
}

func athenaTarget(name, original string) Target {
	if j := Index(name); j >= 0 && Columns[j].Kind != Map && name != ColOtherColumns && name != ColBillingPeriod {
		return Target{Column: j}
	}
	for _, prefix := range []string{ColResourceTags, ColCostCategory, ColDiscount, ColProduct} {
		if rest, ok := strings.CutPrefix(name, prefix+"_"); ok && rest != "" {
			return Target{Column: MustIndex(prefix), Key: rest}
		}
	}
	return Target{Column: MustIndex(ColOtherColumns), Key: original}
}

func (t Target) describe() string {
	if t.Key != "" {
		return fmt.Sprintf("%s[%q]", Columns[t.Column].Name, t.Key)
	}
	return Columns[t.Column].Name
}
