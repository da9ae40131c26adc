package payer

import "slices"

// AccountPolicy says which usage accounts' rows an ingestion keeps.
type AccountPolicy struct {
	// ConnectedOnly keeps only the rows of Connected accounts; the others
	// are counted in the summary, never silently dropped.
	ConnectedOnly bool     `json:"connected_only"`
	Connected     []string `json:"connected,omitempty"`
}

// Keeps reports whether rows of a usage account are ingested.
func (p AccountPolicy) Keeps(account string) bool {
	return !p.ConnectedOnly || slices.Contains(p.Connected, account)
}
