package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A delivery to a real HTTP server verifies with the secret, and fails
// with another secret, a changed body or an old timestamp.
func TestSendSignsAndVerifies(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r.Header.Clone(), must(io.ReadAll(r.Body))
	}))
	defer srv.Close()
	e := Event{ID: "evt_1", Type: CycleClosed, Timestamp: now, Data: []byte(`{"customer_id":"acme"}`)}
	clock := func() time.Time { return now }
	if _, err := (Sender{AllowPrivate: true, Now: clock}).Send(context.Background(), srv.URL, key, e); err != nil {
		t.Fatal(err)
	}
	if err := Verify(key, got, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := Verify([]byte("another secret of 32 bytes......"), got, body, now, 5*time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("other key: %v", err)
	}
	if err := Verify(key, got, append(body, ' '), now, 5*time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("changed body: %v", err)
	}
	if err := Verify(key, got, body, now.Add(time.Hour), 5*time.Minute); !errors.Is(err, ErrSignature) {
		t.Fatalf("old delivery: %v", err)
	}
}

// The Standard Webhooks example: secret, ID, timestamp and body give the
// signature its specification prints.
func TestSignStandardWebhooksVector(t *testing.T) {
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

// Refused URLs: not https, no host, credentials, private addresses; an
// endpoint answering 500 is ErrRefused; a redirect is not followed.
func TestSenderRefuses(t *testing.T) {
	s := Sender{}
	for _, u := range []string{"http://example.com/h", "https:///h", "https://u:p@example.com/h", "https://127.0.0.1/h", "https://10.0.0.1/h", "ftp://example.com", "https://example.com/#x"} {
		if _, err := s.Check(u); !errors.Is(err, ErrURL) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if _, err := s.Check("https://hooks.example.com/costlake"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()
	e := Event{ID: "evt_2", Type: PayerStale, Timestamp: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Data: []byte(`{}`)}
	if _, err := (Sender{}).Send(context.Background(), srv.URL, []byte("0123456789abcdef"), e); !errors.Is(err, ErrURL) {
		t.Fatalf("http to loopback without AllowPrivate: %v", err)
	}
	if code, err := (Sender{AllowPrivate: true}).Send(context.Background(), srv.URL, []byte("0123456789abcdef"), e); !errors.Is(err, ErrRefused) || code != 500 {
		t.Fatalf("500: %d %v", code, err)
	}
	if code, err := (Sender{AllowPrivate: true}).Send(context.Background(), srv.URL+"/redirect", []byte("0123456789abcdef"), e); !errors.Is(err, ErrRefused) || code != http.StatusFound {
		t.Fatalf("redirect: %d %v", code, err)
	}
	if err := CheckSecretRef("whsec_abc"); !errors.Is(err, ErrSecret) {
		t.Fatal(err)
	}
	t.Setenv("COSTLAKE_TEST_HOOK", "whsec_"+base64.StdEncoding.EncodeToString([]byte("k")))
	if k, err := ResolveSecret("env:COSTLAKE_TEST_HOOK"); err != nil || string(k) != "k" {
		t.Fatalf("%q %v", k, err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
