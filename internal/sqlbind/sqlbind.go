// Package sqlbind adapts the catalog database's queries to its dialect:
// costlake writes them with SQLite's "?" placeholders, and PostgreSQL
// wants "$1", "$2", …; and it serialises schema setup between processes
// (WithSchemaLock).
package sqlbind

import (
	"strconv"
	"strings"
)

// Dollar rewrites every "?" of query into PostgreSQL's numbered
// placeholders. costlake's queries hold no "?" inside string literals.
func Dollar(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
