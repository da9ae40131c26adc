package awsauth

import (
	"regexp"
	"strings"
	"testing"
)

// STS's alphabet and length for RoleSessionName and SourceIdentity.
var stsName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

func TestSessionNames(t *testing.T) {
	for _, c := range []struct {
		s            Session
		name, source string
	}{
		{Session{Purpose: "onboarding", Payer: "210987654321", Customer: "acme"}, "costlake-onboarding-210987654321-acme", "costlake-210987654321-acme"},
		{Session{Purpose: "crawl", Payer: "210987654321"}, "costlake-crawl-210987654321", "costlake-210987654321"},
		{Session{Purpose: "export"}, "costlake-export", "costlake"},
		{Session{Purpose: "a b/c", Payer: "1"}, "costlake-a-b-c-1", "costlake-1"},
		{Session{Purpose: "ingest", Payer: "210987654321", Customer: strings.Repeat("x", 63)}, ("costlake-ingest-210987654321-" + strings.Repeat("x", 63))[:64], ("costlake-210987654321-" + strings.Repeat("x", 63))[:64]},
	} {
		if got := c.s.Name(); got != c.name || !stsName.MatchString(got) {
			t.Errorf("%+v: Name() = %q, want %q", c.s, got, c.name)
		}
		if got := c.s.SourceIdentity(); got != c.source || !stsName.MatchString(got) {
			t.Errorf("%+v: SourceIdentity() = %q, want %q", c.s, got, c.source)
		}
	}
}
