package billing

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Entry is one key/value of a map column.
type Entry struct{ Key, Value string }

// Record is one canonical line item as text, before typing. Readers fill
// it row by row and reuse it, so a chunk of a million rows allocates once.
type Record struct {
	// Values holds the text of each non-map column by its index in Columns;
	// "" is null.
	Values []string
	// Entries holds the entries of each map column by its index in Columns.
	Entries [][]Entry
}

// NewRecord returns an empty record sized for Columns (billing.line_items).
func NewRecord() *Record { return LineItems.NewRecord() }

// Reset clears every value and entry, keeping the allocations.
func (r *Record) Reset() {
	clear(r.Values)
	for i := range r.Entries {
		r.Entries[i] = r.Entries[i][:0]
	}
}

// ErrBadJSONMap reports a map column whose text is not a JSON object.
var ErrBadJSONMap = errors.New("map column is not a JSON object")

// Fill resets r and sets it from one source row through m. Empty source
// values leave map columns without that key.
func (r *Record) Fill(m *Mapping, row []string) error {
	r.Reset()
	for i, v := range row {
		if m.Null != "" && v == m.Null {
			continue
		}
		t := m.Targets[i]
		switch {
		case t.JSON:
			if err := r.AddJSON(t.Column, v); err != nil {
				return fmt.Errorf("column %s: %w", m.Source[i], err)
			}
		case t.Key == "":
			r.Values[t.Column] = v
		case v != "":
			r.Entries[t.Column] = append(r.Entries[t.Column], Entry{Key: t.Key, Value: v})
		}
	}
	return nil
}

// AddJSON adds the entries of a JSON object; values other than strings
// (discount amounts are numbers) keep their JSON text, so no number
// passes through float64.
func (r *Record) AddJSON(col int, text string) error {
	if text == "" || text == "{}" || text == "null" {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &obj); err != nil {
		return fmt.Errorf("%w: %v", ErrBadJSONMap, err)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := obj[k]
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		if s != "" && s != "null" {
			r.Entries[col] = append(r.Entries[col], Entry{Key: k, Value: s})
		}
	}
	return nil
}
