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
//   - tags into resource_tags under the key as AWS wrote it
//     (resource_tags["user:Name"]), cost categories into
//     cost_category[name]: "user:CostCenter" and "user:cost_center" are
//     two tags, and snake-casing them would merge them;
//   - other discounts into discount[snake name];
//   - anything else into other_columns under its original header, so nothing is dropped.
//
// Two distinct headers that would land on the same column or key
// ("product/ProductName" beside "product/productName") never fail
// and never merge: the later one goes into other_columns under its
// header. Only a header written twice, letter for letter, is an error.
func MapLegacyHeader(header []string) (*Mapping, error) {
	return mapHeader(header, legacyTarget)
}

// mapHeader maps each header through target. Headers are matched as
// written (trimmed): the same text twice is ErrDuplicateColumn; distinct
// headers that target the same place send the later one to other_columns
// under its original header.
func mapHeader(header []string, target func(h string) Target) (*Mapping, error) {
	m := &Mapping{Source: header, Targets: make([]Target, len(header))}
	other := MustIndex(ColOtherColumns)
	names := make(map[string]bool, len(header))
	seen := make(map[Target]bool, len(header))
	for i, h := range header {
		name := strings.TrimSpace(h)
		if names[name] {
			return nil, fmt.Errorf("%w: %q appears twice", ErrDuplicateColumn, h)
		}
		names[name] = true
		t := target(h)
		if seen[t] {
			t = Target{Column: other, Key: h}
		}
		seen[t] = true
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
		return Target{Column: MustIndex(ColResourceTags), Key: name}
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
// canonical; the map columns hold JSON objects (in CSV; Parquet has
// maps), whose keys are kept as AWS wrote them; unknown columns go to
// other_columns under their name. Names differing only in case
// ("Tags" beside "tags") both ingest, the later one into other_columns.
func MapCUR2Header(header []string) (*Mapping, error) {
	return mapHeader(header, func(h string) Target {
		name := strings.ToLower(strings.TrimSpace(h))
		switch j := Index(name); {
		case j < 0 || isComputed(name):
			return Target{Column: MustIndex(ColOtherColumns), Key: h}
		case Columns[j].Kind == Map:
			return Target{Column: j, JSON: true}
		default:
			return Target{Column: j}
		}
	})
}

// MapAthenaHeader maps the snake_case headers of legacy CUR's Athena
// integration, which partner CUR generators also write
// ("line_item_unblended_cost", "product_product_name",
// "resource_tags_user_name"): canonical columns stay columns; other
// product_, resource_tags_, cost_category_ and discount_ names go into
// their map under the rest of the header, as the header writes it
// ("resource_tags_user_cost_center" → resource_tags["user_cost_center"]);
// anything else into other_columns. These headers have already lost the
// tag's original key (AWS snake-cased "user:CostCenter"), so the header's
// own text is the key: two distinct headers are two keys, never merged.
func MapAthenaHeader(header []string) (*Mapping, error) {
	return MapAthenaHeaderOriginals(header, nil)
}

// MapAthenaHeaderOriginals is MapAthenaHeader for files whose manifest
// still names each column in legacy form: originals maps a file's column
// ("resource_tags_user_cost_center") to its legacy header
// ("resourceTags/user:CostCenter"), and such a tag or cost category keeps
// the key AWS wrote, as the same delivery in CSV does.
func MapAthenaHeaderOriginals(header []string, originals map[string]string) (*Mapping, error) {
	return mapHeader(header, func(h string) Target {
		if o, ok := originals[h]; ok {
			if t := legacyTarget(o); t.Column == MustIndex(ColResourceTags) || t.Column == MustIndex(ColCostCategory) {
				return t
			}
		}
		return athenaTarget(strings.TrimSpace(h), h)
	})
}

func athenaTarget(name, original string) Target {
	lower := strings.ToLower(name)
	if j := Index(lower); j >= 0 && Columns[j].Kind != Map && !isComputed(lower) {
		return Target{Column: j}
	}
	for _, prefix := range []string{ColResourceTags, ColCostCategory, ColDiscount, ColProduct} {
		if len(name) > len(prefix)+1 && strings.EqualFold(name[:len(prefix)+1], prefix+"_") {
			return Target{Column: MustIndex(prefix), Key: name[len(prefix)+1:]}
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
