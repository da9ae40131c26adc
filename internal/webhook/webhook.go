// Package webhook announces costlake's events to a reseller's endpoint,
// signed as Standard Webhooks (standardwebhooks.com) sign them: the
// headers webhook-id, webhook-timestamp and webhook-signature, the last
// "v1,<base64 HMAC-SHA256>" over "<id>.<timestamp>.<body>" with the
// reseller's secret. A receiver verifies with any Standard Webhooks
// library, or with Verify. The endpoint's URL is untrusted configuration:
// Check refuses what is not an https URL to a public host, the client
// follows no redirect, waits a bounded time and reads a bounded answer.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Event types.
const (
	CycleClosed   = "cycle.closed"
	ExportWritten = "export.written"
	CycleBlocked  = "cycle.blocked"
	PayerStale    = "payer.stale"
)

// Types are every event type, for validating a subscription.
var Types = []string{CycleClosed, ExportWritten, CycleBlocked, PayerStale}

// Headers of a delivery (Standard Webhooks).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts a Standard Webhooks secret: the rest is base64.
const SecretPrefix = "whsec_"

// Errors a caller names.
var (
	// ErrURL: the endpoint's URL is not one costlake sends to.
	ErrURL = errors.New("webhook URL refused")
	// ErrSecret: the secret reference does not resolve on this worker.
	ErrSecret = errors.New("webhook secret")
	// ErrRefused: the endpoint answered but not with a 2xx.
	ErrRefused = errors.New("webhook refused")
	// ErrSignature: a delivery's signature does not verify.
	ErrSignature = errors.New("webhook signature")
)

// Event is one announcement; its body is {"type", "timestamp", "data"}.
type Event struct {
	// ID is stable per fact (a cycle closed, a block with these figures),
	// so a receiver deduplicates retries and repeats by webhook-id.
	ID        string          `json:"-"`
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Body is the JSON the event is delivered as.
func (e Event) Body() ([]byte, error) { return json.Marshal(e) }

var secretRefPattern = regexp.MustCompile(`^env:[A-Z_][A-Z0-9_]*$`)

// CheckSecretRef says whether ref names a secret the way costlake keeps
// them: "env:NAME", read from the worker's environment, so the secret
// itself is never in a request, a record or a workflow's history.
func CheckSecretRef(ref string) error {
	if !secretRefPattern.MatchString(ref) {
		return fmt.Errorf("%w: %q: want env:NAME (the worker reads the secret from the variable NAME)", ErrSecret, ref)
	}
	return nil
}

// ResolveSecret reads the secret ref names: "whsec_<base64>" is decoded,
// anything else is used as its bytes.
func ResolveSecret(ref string) ([]byte, error) {
	if err := CheckSecretRef(ref); err != nil {
		return nil, err
	}
	v := os.Getenv(strings.TrimPrefix(ref, "env:"))
	if v == "" {
		return nil, fmt.Errorf("%w: %s is not set on this worker", ErrSecret, strings.TrimPrefix(ref, "env:"))
	}
	return DecodeSecret(v)
}

// DecodeSecret turns a secret's text into the HMAC key.
func DecodeSecret(v string) ([]byte, error) {
	if rest, ok := strings.CutPrefix(v, SecretPrefix); ok {
		key, err := base64.StdEncoding.DecodeString(rest)
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("%w: a %s secret must be base64 after the prefix", ErrSecret, SecretPrefix)
		}
		return key, nil
	}
	if len(v) < 16 {
		return nil, fmt.Errorf("%w: shorter than 16 bytes", ErrSecret)
	}
	return []byte(v), nil
}

// Sign is the webhook-signature value of a delivery.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's headers and body with key, and that its
// timestamp is within tolerance of now (replays of old deliveries fail).
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return fmt.Errorf("%w: missing %s, %s or %s", ErrSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	secs, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrSignature, tsText)
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is more than %s from now", ErrSignature, ts.UTC().Format(time.RFC3339), tolerance)
	}
	want := Sign(key, id, ts, body)
	// The header may hold several space-separated signatures (during a
	// secret rotation); one match is enough.
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no signature matches", ErrSignature)
}

// Sender delivers events.
type Sender struct {
	// AllowPrivate lets endpoints be plain http:// and resolve to
	// loopback or private addresses: for tests and endpoints inside the
	// operator's own network, never the default.
	AllowPrivate bool
	// Timeout bounds one delivery; 0 means 10 seconds.
	Timeout time.Duration
	// Now is the clock the signature's timestamp is read from; nil is the
	// wall clock (receivers compare it with theirs).
	Now func() time.Time
}

// maxAnswer bounds what is read of an endpoint's answer (it is only
// logged).
const maxAnswer = 4 << 10

// Check says whether costlake may send to raw: an absolute https URL (or
// http with AllowPrivate) naming a host, without credentials or fragment.
// Addresses are checked again when the connection is made (see dial),
// since a name may resolve anywhere.
func (s Sender) Check(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %q does not parse", ErrURL, raw)
	case u.Scheme != "https" && !(s.AllowPrivate && u.Scheme == "http"):
		return nil, fmt.Errorf("%w: %q: want https://", ErrURL, raw)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%w: %q names no host", ErrURL, raw)
	case u.User != nil:
		return nil, fmt.Errorf("%w: %q: credentials do not belong in the URL; the signature authenticates costlake", ErrURL, raw)
	case u.Fragment != "":
		return nil, fmt.Errorf("%w: %q has a fragment", ErrURL, raw)
	case len(raw) > 2048:
		return nil, fmt.Errorf("%w: longer than 2048 characters", ErrURL)
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && !s.AllowPrivate && !public(ip) {
		return nil, fmt.Errorf("%w: %q is not a public address", ErrURL, raw)
	}
	return u, nil
}

func public(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast())
}

func (s Sender) client() *http.Client {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dialer := &net.Dialer{Timeout: timeout}
	if !s.AllowPrivate {
		// The address actually dialled must be public, whatever the
		// name resolved to (DNS rebinding).
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if ip := net.ParseIP(host); err != nil || ip == nil || !public(ip) {
				return fmt.Errorf("%w: %s is not a public address", ErrURL, address)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: timeout, ResponseHeaderTimeout: timeout, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Send delivers e to endpoint signed with key, and returns the HTTP
// status. A non-2xx answer is ErrRefused, naming the status and the
// start of the answer.
func (s Sender) Send(ctx context.Context, endpoint string, key []byte, e Event) (int, error) {
	u, err := s.Check(endpoint)
	if err != nil {
		return 0, err
	}
	body, err := e.Body()
	if err != nil {
		return 0, err
	}
	// The signed timestamp is the attempt's, so a retry hours later is
	// not refused as a replay; the body keeps when the event happened.
	ts := time.Now()
	if s.Now != nil {
		ts = s.Now()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "costlake-webhook")
	req.Header.Set(HeaderID, e.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(key, e.ID, ts, body))
	resp, err := s.client().Do(req)
	if err != nil {
		return 0, fmt.Errorf("deliver %s %s to %s: %w", e.Type, e.ID, u.Redacted(), err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("%w: %s answered %d to %s %s: %.200q", ErrRefused, u.Redacted(), resp.StatusCode, e.Type, e.ID, answer)
	}
	return resp.StatusCode, nil
}
