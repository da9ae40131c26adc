package payer

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
)

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

// Fingerprint names the policy as a commit records it: "all", or
// "connected:<n>:<hash of the sorted accounts>", so a crawl can tell a
// period ingested under another policy (connected accounts changed) and
// take it again. Short whatever the number of accounts.
func (p AccountPolicy) Fingerprint() string {
	if !p.ConnectedOnly {
		return "all"
	}
	accts := slices.Clone(p.Connected)
	slices.Sort(accts)
	accts = slices.Compact(accts)
	sum := sha256.Sum256([]byte(strings.Join(accts, ",")))
	return fmt.Sprintf("connected:%d:%x", len(accts), sum[:8])
}
