package config

import (
	"net/url"
	"strings"
)

// RedactDSN is a catalog DSN fit for logs and errors: a postgres:// URI
// keeps its user, host and database but not its password (in the user
// info or a password= parameter); a SQLite path is returned as is. A URI
// that does not parse is shown by its scheme only, since where the
// password sits in it is unknown.
func RedactDSN(dsn string) string {
	scheme, _, isURI := strings.Cut(dsn, "://")
	if !isURI {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return scheme + "://(unparseable; hidden)"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
