package billing

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

// NewRecord returns an empty record sized for Columns.
func NewRecord() *Record {
	return &Record{Values: make([]string, len(Columns)), Entries: make([][]Entry, len(Columns))}
}

// Reset clears every value and entry, keeping the allocations.
func (r *Record) Reset() {
	clear(r.Values)
	for i := range r.Entries {
		r.Entries[i] = r.Entries[i][:0]
	}
}

// Fill resets r and sets it from one source row through m. Empty source
// values leave map columns without that key.
func (r *Record) Fill(m *Mapping, row []string) {
	r.Reset()
	for i, v := range row {
		t := m.Targets[i]
		if t.Key == "" {
			r.Values[t.Column] = v
		} else if v != "" {
			r.Entries[t.Column] = append(r.Entries[t.Column], Entry{Key: t.Key, Value: v})
		}
	}
}
