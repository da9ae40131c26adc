package harness

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OIDCPolicyClaim is the ID token claim that MinIOWithOIDC maps to MinIO
// policies (MinIO's claim-based mode): "policy": "readwrite" grants the
// built-in readwrite policy.
const OIDCPolicyClaim = "policy"

// OIDCIssuer is a minimal OpenID Connect provider: a discovery document
// and a JWKS with one RSA key, over plain HTTP on loopback. It issues no
// tokens over the wire; tests mint ID tokens directly with Token.
type OIDCIssuer struct {
	// URL is the issuer, as in the iss claim, e.g. "http://127.0.0.1:PORT".
	URL string
	// ClientID is the audience of the tokens (the OAuth client ID that a
	// relying party such as MinIO is configured with).
	ClientID string
	// KeyID is the kid of the signing key in the JWKS and token headers.
	KeyID string

	key         *rsa.PrivateKey
	jwksFetches atomic.Int64
}

// OIDC starts an issuer on a free loopback port; it is stopped when the
// test ends.
func OIDC(t testing.TB) *OIDCIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("harness: OIDC signing key: %v", err)
	}
	o := &OIDCIssuer{ClientID: "costlake-test-client", KeyID: "costlake-test-key-1", key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                o.URL,
			"jwks_uri":                              o.URL + "/jwks",
			"authorization_endpoint":                o.URL + "/authorize", // required by the spec, never served
			"token_endpoint":                        o.URL + "/token",     // likewise
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", OIDCPolicyClaim},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		o.jwksFetches.Add(1)
		pub := &o.key.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA",
			"use": "sig",
			"alg": "RS256",
			"kid": o.KeyID,
			"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ConfigURL is the issuer's discovery document.
func (o *OIDCIssuer) ConfigURL() string { return o.URL + "/.well-known/openid-configuration" }

// JWKSFetches counts how often the JWKS has been served, i.e. whether a
// relying party has loaded the issuer's keys.
func (o *OIDCIssuer) JWKSFetches() int64 { return o.jwksFetches.Load() }

// IDToken describes a token to mint; zero fields take the defaults noted.
type IDToken struct {
	Subject   string         // default "system:serviceaccount:costlake:worker"
	Audience  string         // default the issuer's ClientID
	IssuedAt  time.Time      // default now
	ExpiresAt time.Time      // default IssuedAt + 1h
	Claims    map[string]any // extra claims, e.g. {OIDCPolicyClaim: "readwrite"}
	// SignWith signs with another key (under the issuer's kid), for
	// tokens the issuer never issued.
	SignWith *rsa.PrivateKey
}

// Token mints a signed RS256 ID token (a compact JWT) from this issuer.
func (o *OIDCIssuer) Token(t testing.TB, spec IDToken) string {
	t.Helper()
	now := spec.IssuedAt
	if now.IsZero() {
		now = time.Now()
	}
	exp := spec.ExpiresAt
	if exp.IsZero() {
		exp = now.Add(time.Hour)
	}
	claims := jwt.MapClaims{}
	for k, v := range spec.Claims {
		claims[k] = v
	}
	claims["iss"] = o.URL
	claims["sub"] = cmp.Or(spec.Subject, "system:serviceaccount:costlake:worker")
	claims["aud"] = cmp.Or(spec.Audience, o.ClientID)
	claims["iat"] = now.Unix()
	claims["exp"] = exp.Unix()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = o.KeyID
	key := o.key
	if spec.SignWith != nil {
		key = spec.SignWith
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("harness: sign ID token: %v", err)
	}
	return s
}

// MinIOWithOIDC starts MinIO (as MinIO does) trusting issuer for
// AssumeRoleWithWebIdentity in claim-based mode: the token's aud must be
// issuer.ClientID and its OIDCPolicyClaim names the MinIO policies of the
// session. In this mode MinIO ignores the RoleArn parameter unless it is
// one of its own role ARNs, so any AWS-shaped role ARN works. The issuer
// must already be serving, since MinIO loads the discovery document and
// the JWKS at startup; this waits until it has.
func MinIOWithOIDC(t testing.TB, issuer *OIDCIssuer) *MinIOServer {
	t.Helper()
	m := minioWithEnv(t, []string{
		"MINIO_IDENTITY_OPENID_CONFIG_URL=" + issuer.ConfigURL(),
		"MINIO_IDENTITY_OPENID_CLIENT_ID=" + issuer.ClientID,
		"MINIO_IDENTITY_OPENID_CLAIM_NAME=" + OIDCPolicyClaim,
	})
	deadline := time.Now().Add(time.Minute)
	for issuer.JWKSFetches() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("harness: MinIO at %s never fetched the JWKS of %s; is the OpenID configuration rejected?", m.Endpoint, issuer.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return m
}
