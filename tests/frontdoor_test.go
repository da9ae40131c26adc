package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/server/temporaltest"

	"github.com/costlake/costlake/gateway"
)

// frontDoor is a gateway served for real, over HTTPS with a self-signed
// certificate, on a clock the test moves.
type frontDoor struct {
	t      *testing.T
	url    string
	client *http.Client
	now    time.Time
	mu     sync.Mutex
	audit  syncBuffer
	keys   string // the keys file
}

// syncBuffer is a bytes.Buffer the gateway writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *frontDoor) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *frontDoor) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// call makes one request and returns the status and the response.
func (f *frontDoor) call(method, path, key, body string) (int, http.Header, gateway.Error) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := f.client.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var e struct {
		Error gateway.Error `json:"error"`
	}
	data, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, resp.Header, e.Error
}

func writeKeys(t *testing.T, path string, keys ...gateway.APIKey) {
	t.Helper()
	data, err := json.Marshal(gateway.KeysFile{Keys: keys})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// newFrontDoor serves a gateway on Temporal with keys read from a file.
func newFrontDoor(t *testing.T, ts *temporaltest.TestServer, cfg gateway.Config, keys ...gateway.APIKey) *frontDoor {
	t.Helper()
	f := &frontDoor{t: t, now: onboardToday, keys: filepath.Join(t.TempDir(), "keys.json")}
	writeKeys(t, f.keys, keys...)
	ring, err := gateway.OpenKeyRing(f.keys, nil)
	require.NoError(t, err)
	cfg.KeyRing, cfg.Clock = ring, f.clock
	cfg.Audit = slog.New(slog.NewJSONHandler(&f.audit, nil))
	var h http.Handler = gateway.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	if ts != nil {
		h = gateway.New(ts.GetDefaultClient(), slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	}
	h = validatingGateway(t, h)
	certFile, keyFile, pool := selfSigned(t)
	srv, err := gateway.HTTPServer(h, gateway.ServeOptions{TLSCert: certFile, TLSKey: keyFile})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.ServeOn(ctx, srv, ln) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	f.url = "https://" + ln.Addr().String()
	f.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return f
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "costlake-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, err := x509.MarshalECPrivateKey(priv)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile, pool
}

// A read that needs no Temporal: an invalid payer ID is a 404 from the
// gateway itself, so these tests exercise the front door only.
const frontDoorRead = "/v1/payers/not-a-payer"

// TestGatewayRateLimit: a burst over a key's limit gets 429 with
// Retry-After; other keys are not slowed; tokens come back as the
// gateway's clock moves.
func TestGatewayRateLimit(t *testing.T) {
	busy, busyEntry := gateway.NewAPIKey("busy", gateway.RoleViewer, "")
	calm, calmEntry := gateway.NewAPIKey("calm", gateway.RoleViewer, "")
	f := newFrontDoor(t, nil, gateway.Config{RateLimit: 0.5, RateBurst: 3}, busyEntry, calmEntry)

	for i := range 3 {
		code, _, _ := f.call("GET", frontDoorRead, busy, "")
		require.Equal(t, http.StatusNotFound, code, "request %d is within the burst", i+1)
	}
	code, h, e := f.call("GET", frontDoorRead, busy, "")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "rate_limited", e.Code)
	require.Equal(t, "2", h.Get("Retry-After"), "one token every 2 s")
	require.NotContains(t, e.Message, busy)

	code, _, _ = f.call("GET", frontDoorRead, calm, "")
	require.Equal(t, http.StatusNotFound, code, "another key has its own bucket")
	code, _, _ = f.call("GET", "/healthz", "", "")
	require.Equal(t, http.StatusOK, code, "health checks are not limited")

	f.advance(time.Second)
	code, h, _ = f.call("GET", frontDoorRead, busy, "")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "1", h.Get("Retry-After"))
	f.advance(time.Second)
	code, _, _ = f.call("GET", frontDoorRead, busy, "")
	require.Equal(t, http.StatusNotFound, code, "a token came back after 2 s")
}

// TestGatewayKeysReload: a key removed from the keys file is refused at
// once, without a restart; a broken rewrite keeps the keys read before; a
// key past its expiry (on the gateway's clock) is refused.
func TestGatewayKeysReload(t *testing.T) {
	alice, aliceEntry := gateway.NewAPIKey("alice", gateway.RoleViewer, "")
	bob, bobEntry := gateway.NewAPIKey("bob", gateway.RoleViewer, "")
	f := newFrontDoor(t, nil, gateway.Config{}, aliceEntry, bobEntry)
	code, _, _ := f.call("GET", frontDoorRead, alice, "")
	require.Equal(t, http.StatusNotFound, code)

	// Revoke alice.
	writeKeys(t, f.keys, bobEntry)
	code, _, e := f.call("GET", frontDoorRead, alice, "")
	require.Equal(t, http.StatusUnauthorized, code, "a revoked key is refused without a restart")
	require.Equal(t, "unauthorized", e.Code)
	code, _, _ = f.call("GET", frontDoorRead, bob, "")
	require.Equal(t, http.StatusNotFound, code)

	// A half-written file changes nothing.
	require.NoError(t, os.WriteFile(f.keys, []byte(`{"keys": [`), 0o600))
	code, _, _ = f.call("GET", frontDoorRead, bob, "")
	require.Equal(t, http.StatusNotFound, code, "a broken keys file keeps the keys read before")

	// Bob's key gets an expiry an hour from now.
	expires := f.clock().Add(time.Hour)
	bobEntry.ExpiresAt = &expires
	writeKeys(t, f.keys, bobEntry)
	code, _, _ = f.call("GET", frontDoorRead, bob, "")
	require.Equal(t, http.StatusNotFound, code, "not expired yet")
	f.advance(time.Hour)
	code, _, e = f.call("GET", frontDoorRead, bob, "")
	require.Equal(t, http.StatusUnauthorized, code, "expired")
	require.Equal(t, "key_expired", e.Code)
	require.NotContains(t, e.Message, bob)

	// Reload reads the file even when nothing about it changed.
	ring, err := gateway.OpenKeyRing(f.keys, nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f.keys, []byte(`{}`), 0o600))
	require.ErrorIs(t, ring.Reload(), gateway.ErrKeysFile)
	require.Len(t, ring.Keys(), 1, "the keys read before stay")
}

// auditRecord is one line of the audit log.
type auditRecord struct {
	Msg    string `json:"msg"`
	Method string `json:"method"`
	Route  string `json:"route"`
	Target string `json:"target"`
	Status int    `json:"status"`
	Key    string `json:"key"`
	KeyID  string `json:"key_id"`
}

// TestGatewayAuditLog: every mutating call, refused or not, is one audit
// record with the key's name and ID, the route, the target and the status;
// reads are not audited; no record holds a key.
func TestGatewayAuditLog(t *testing.T) {
	ts := newTemporal(t)
	op, opEntry := gateway.NewAPIKey("ops-alice", gateway.RoleOperator, "")
	viewer, viewerEntry := gateway.NewAPIKey("viewer-bob", gateway.RoleViewer, "")
	f := newFrontDoor(t, ts, gateway.Config{}, opEntry, viewerEntry)

	source := "file://" + filepath.Join(t.TempDir(), "cur", "report")
	code, _, _ := f.call("POST", "/v1/ingestions", op, `{"source":"`+source+`","period":"2026-09"}`)
	require.Equal(t, http.StatusAccepted, code)
	code, _, _ = f.call("POST", "/v1/payers/123456789012/approve", op, "")
	require.Equal(t, http.StatusNotFound, code)
	code, _, _ = f.call("POST", "/v1/payers/123456789012/approve", viewer, "")
	require.Equal(t, http.StatusForbidden, code)
	code, _, _ = f.call("DELETE", "/v1/payers/123456789012", "clk_not-a-key", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _, _ = f.call("GET", frontDoorRead, op, "")
	require.Equal(t, http.StatusNotFound, code)

	log := f.audit.String()
	for _, k := range []string{op, viewer, "clk_not-a-key", opEntry.SHA256} {
		require.NotContains(t, log, k, "the audit log never holds a key or its whole hash")
	}
	var got []auditRecord
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var r auditRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), sc.Text())
		require.Equal(t, "audit", r.Msg)
		got = append(got, r)
	}
	require.Equal(t, []auditRecord{
		{Msg: "audit", Method: "POST", Route: "/v1/ingestions", Target: "/v1/ingestions/ingest/" + source + "/2026-09", Status: 202, Key: "ops-alice", KeyID: opEntry.ID()},
		{Msg: "audit", Method: "POST", Route: "/v1/payers/:id/approve", Target: "id=123456789012", Status: 404, Key: "ops-alice", KeyID: opEntry.ID()},
		{Msg: "audit", Method: "POST", Route: "/v1/payers/:id/approve", Target: "id=123456789012", Status: 403, Key: "viewer-bob", KeyID: viewerEntry.ID()},
		{Msg: "audit", Method: "DELETE", Route: "/v1/payers/:id", Target: "id=123456789012", Status: 401},
	}, got)
}

// TestGatewayTimeouts: a client that sends half a request header is cut
// off by the server's header timeout instead of holding the connection.
func TestGatewayTimeouts(t *testing.T) {
	srv, err := gateway.HTTPServer(http.NotFoundHandler(), gateway.ServeOptions{ReadHeaderTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.ServeOn(ctx, srv, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	// A safety net far beyond the server's timeout: reaching it means the
	// server kept the half-open request.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.ReadAll(conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server closed the connection: %v", err)

	// A handler still waiting when the answer could no longer be written
	// is told to stop.
	gaveUp := make(chan error, 1)
	slow, err := gateway.HTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		gaveUp <- r.Context().Err()
	}), gateway.ServeOptions{WriteTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { done <- gateway.ServeOn(ctx, slow, ln2) }()
	t.Cleanup(func() { cancel(); <-done })
	// The client's timeout is a safety net: without the deadline, the
	// handler would learn only of the client leaving (context.Canceled).
	if resp, err := (&http.Client{Timeout: 20 * time.Second}).Get("http://" + ln2.Addr().String() + "/"); err == nil {
		resp.Body.Close()
	}
	select {
	case err := <-gaveUp:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(30 * time.Second): // a safety net, not a timing
		t.Fatal("the handler's context never ended")
	}

	_, err = gateway.HTTPServer(http.NotFoundHandler(), gateway.ServeOptions{TLSCert: "cert.pem"})
	require.ErrorIs(t, err, gateway.ErrTLSConfig)
}
