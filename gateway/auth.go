package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Roles an API key can have.
const (
	RoleOperator = "operator" // drives onboarding and ingestions
	RoleViewer   = "viewer"   // reads only
)

// APIKey is one entry of the API keys file. Only the key's SHA-256 is
// stored, so the file reveals no usable key.
type APIKey struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// CustomerID scopes the key to one customer: it sees that customer's
	// payers and nothing else. Empty means every customer.
	CustomerID string `json:"customer_id,omitempty"`
	SHA256     string `json:"sha256"`
	// ExpiresAt, when set, is when the key stops being accepted (by the
	// gateway's clock).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// ID names a key in logs without revealing it: the first 12 hex digits
// of its SHA-256, which the keys file holds anyway.
func (k *APIKey) ID() string { return k.SHA256[:12] }

// KeysFile is the API keys file: {"keys": [APIKey…]}.
type KeysFile struct {
	Keys []APIKey `json:"keys"`
}

// ErrKeysFile reports an API keys file the gateway cannot use.
var ErrKeysFile = errors.New("invalid API keys file")

// LoadAPIKeys reads and checks an API keys file.
func LoadAPIKeys(path string) ([]APIKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeysFile, err)
	}
	var f KeysFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeysFile, path, err)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no keys; create one with `costlake apikey`", ErrKeysFile, path)
	}
	for i, k := range f.Keys {
		switch {
		case k.Name == "":
			return nil, fmt.Errorf("%w: %s: keys[%d] has no name", ErrKeysFile, path, i)
		case k.Role != RoleOperator && k.Role != RoleViewer:
			return nil, fmt.Errorf("%w: %s: key %q: role must be %q or %q", ErrKeysFile, path, k.Name, RoleOperator, RoleViewer)
		case len(k.SHA256) != 64 || !isHex(k.SHA256):
			return nil, fmt.Errorf("%w: %s: key %q: sha256 must be 64 hex digits (the key's SHA-256, never the key)", ErrKeysFile, path, k.Name)
		}
	}
	return f.Keys, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// NewAPIKey returns a fresh random key and its file entry.
func NewAPIKey(name, role, customerID string) (key string, entry APIKey) {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	key = "clk_" + hex.EncodeToString(b)
	return key, APIKey{Name: name, Role: role, CustomerID: customerID, SHA256: HashKey(key)}
}

// HashKey is what the keys file stores of a key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

const principalKey = "costlake.principal"

// authenticate admits requests with a known, unexpired bearer key within
// its rate limit, and remembers the key.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Path() == "/healthz" || c.Path() == "/readyz" || c.Path() == OpenAPIPath || c.Path() == icebergTokenPath || s.consolePage(c) {
			return next(c)
		}
		token, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
		// The Iceberg catalog's own tokens count on its routes only.
		k, tokenExpired := s.keyOrToken(strings.TrimSpace(token), isIcebergPath(c.Request().URL.Path))
		if !ok || k == nil {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="costlake"`)
			return errorf(kindUnauthorized, "missing or unknown API key: send Authorization: Bearer <key>")
		}
		c.Set(principalKey, k)
		if tokenExpired {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="costlake", error="invalid_token"`)
			return errorf(kindKeyExpired, "the catalog token of key %q has expired; fetch a new one", k.Name)
		}
		if now := s.clock.Now(); k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="costlake", error="invalid_token"`)
			return errorf(kindKeyExpired, "API key %q expired at %s; ask for a new one", k.Name, k.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if err := s.limit(c, k); err != nil {
			return err
		}
		return next(c)
	}
}

// lookup finds the key a token is, in the keys in force now; the result is
// a copy, so a reload never changes a request's key under it.
func (s *Server) lookup(token string) *APIKey {
	if token == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(token))
	keys := s.keys.Keys()
	var found *APIKey
	for i := range keys {
		want, _ := hex.DecodeString(keys[i].SHA256)
		// Compare every key, so timing says nothing about which matched.
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			k := keys[i]
			found = &k
		}
	}
	return found
}

func principal(c echo.Context) *APIKey {
	k, _ := c.Get(principalKey).(*APIKey)
	return k
}

// requireOperator refuses viewer keys.
func requireOperator(c echo.Context) error {
	if k := principal(c); k == nil || k.Role != RoleOperator {
		return errorf(kindForbidden, "key %q has role %s; this needs an operator key", k.Name, k.Role)
	}
	return nil
}

// requireUnscoped refuses keys scoped to one customer, for routes that are
// not about one customer.
func requireUnscoped(c echo.Context) error {
	if k := principal(c); k == nil || k.CustomerID != "" {
		return errorf(kindForbidden, "key %q is scoped to customer %s; this route spans customers", k.Name, k.CustomerID)
	}
	return nil
}

// requireDecider admits unscoped operator keys only, for the routes that
// decide about a payer (stack-deployed, approve, reject, request-changes,
// pause, resume, offboard): a customer-scoped key may register its payers
// and read them, never approve its own. The answer does not depend on the
// payer, so it tells a scoped key nothing about other customers' payers.
func requireDecider(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	if k := principal(c); k.CustomerID != "" {
		return errorf(kindForbidden,
			"key %q is scoped to customer %s: a scoped key may register and read payers, not decide about them; this needs an unscoped operator key", k.Name, k.CustomerID)
	}
	return nil
}

// sees reports whether the request's key may see a customer's data.
func sees(c echo.Context, customerID string) bool {
	k := principal(c)
	return k != nil && (k.CustomerID == "" || k.CustomerID == customerID)
}
