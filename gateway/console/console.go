// Package console is the operator console the gateway serves at "/":
// server-rendered pages over the gateway's own JSON API. Every page calls
// the API in process with the signed-in key, so the console sees and may
// do exactly what that key may through the API, no more.
package console

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Mounts are the paths the console answers: exact paths, or prefixes when
// they end in "/". The gateway routes these to the console and everything
// else (the API under /v1) as before.
var Mounts = []string{"/", "/sign-in", "/sign-out", "/payers", "/payers/", "/approvals", "/customers", "/customers/", "/month-end", "/assets/"}

// Identity is who a key is, for the navigation and the sign-in check; what
// the key may do is decided by the API on every call.
type Identity struct {
	Name       string
	Role       string // operator or viewer
	CustomerID string // empty: every customer
}

// Operator reports whether the key may act (not only read).
func (i Identity) Operator() bool { return i.Role == "operator" }

// Unscoped reports whether the key spans customers.
func (i Identity) Unscoped() bool { return i.CustomerID == "" }

// Decider reports whether the key may approve, reject or request changes
// (an unscoped operator, as the API's decider routes require).
func (i Identity) Decider() bool { return i.Operator() && i.Unscoped() }

// ErrUnknownKey is Identify's answer for a key the gateway does not accept.
var ErrUnknownKey = errors.New("unknown or expired API key")

// Config configures the console.
type Config struct {
	// API is the gateway's JSON API; the console calls it in process.
	API http.Handler
	// Identify tells who a key is, or ErrUnknownKey (unknown, expired,
	// revoked); it runs on every page, so a revoked key's session ends.
	Identify func(key string) (Identity, error)
	// TemporalUI is the Temporal Web UI's base URL (e.g.
	// http://127.0.0.1:8233); empty shows no links into it.
	TemporalUI string
	// Namespace is the Temporal namespace the links name.
	Namespace string
	// SecureCookies marks the cookies Secure even on plain HTTP (TLS
	// ended by a proxy in front); requests over TLS always get Secure.
	SecureCookies bool
	// IdleTimeout ends a session unused this long (default 30 minutes);
	// MaxAge ends any session (default 12 hours).
	IdleTimeout, MaxAge time.Duration
	Log                 *slog.Logger
	// Now is the clock of sessions; nil is time.Now.
	Now func() time.Time
}

// Console is the console's http.Handler.
type Console struct {
	cfg      Config
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	log      *slog.Logger
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Identify == nil {
		return nil, errors.New("console: API and Identify are required")
	}
	cfg.Namespace = cmp.Or(cfg.Namespace, "default")
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c := &Console{cfg: cfg, log: cmp.Or(cfg.Log, slog.Default()),
		sessions: newSessions(cmp.Or(cfg.IdleTimeout, 30*time.Minute), cmp.Or(cfg.MaxAge, 12*time.Hour), now)}
	if err := c.parse(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func (c *Console) parse() error {
	c.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "templates/layout.html" || n == "templates/partials.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return err
		}
		c.pages[n[len("templates/"):]] = t
	}
	return nil
}

// maxForm bounds a form's body: the largest is a reason or a list of
// requested changes.
const maxForm = 32 << 10

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// No script runs but our own files, nothing frames the console, and
	// forms post only to it.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) routes() {
	m := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix("/assets/", http.FileServer(http.FS(assets)))
	m.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only, no listing
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	m.HandleFunc("GET /sign-in", c.signInPage)
	m.HandleFunc("POST /sign-in", c.signIn)
	m.HandleFunc("POST /sign-out", c.signedIn(c.signOut))
	m.HandleFunc("GET /{$}", c.signedIn(func(w http.ResponseWriter, r *http.Request, s *session) {
		http.Redirect(w, r, "/payers", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /payers", c.signedIn(c.payersPage))
	m.HandleFunc("GET /payers/{id}", c.signedIn(c.payerPage))
	m.HandleFunc("POST /payers/{id}/{action}", c.signedIn(c.payerAction))
	m.HandleFunc("GET /approvals", c.signedIn(c.approvalsPage))
	m.HandleFunc("GET /customers", c.signedIn(c.customersPage))
	m.HandleFunc("GET /customers/{id}", c.signedIn(c.customerPage))
	m.HandleFunc("GET /customers/{id}/cycles", c.signedIn(c.findCycle))
	m.HandleFunc("GET /customers/{id}/cycles/{period}", c.signedIn(c.cyclePage))
	m.HandleFunc("GET /month-end", c.signedIn(c.monthEndPage))
	m.HandleFunc("POST /month-end", c.signedIn(c.runMonthEnd))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, nil, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: "There is no such page."})
	})
	c.mux = m
}

// sessionCookie holds an opaque session ID; the key stays on the server.
const sessionCookie = "costlake_session"

// signInCookie carries the sign-in form's CSRF token before there is a
// session (double submit: the form's field must equal the cookie).
const signInCookie = "costlake_signin"

func (c *Console) cookie(r *http.Request, name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || c.cfg.SecureCookies}
	if maxAge < 0 {
		ck.MaxAge = -1
	} else if maxAge > 0 {
		ck.MaxAge = int(maxAge / time.Second)
	}
	return ck
}

// handler is a page for a signed-in key.
type handler func(http.ResponseWriter, *http.Request, *session)

// signedIn admits requests with a live session whose key is still
// accepted, checks the CSRF token of every POST, and sends everyone else
// to the sign-in page.
func (c *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var s *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			s = c.sessions.get(ck.Value)
		}
		if s != nil {
			id, err := c.cfg.Identify(s.key)
			if err != nil {
				c.sessions.drop(s.id)
				s = nil
			} else {
				s.who = id
			}
		}
		if s == nil {
			if r.Method == http.MethodPost {
				c.render(w, r, nil, http.StatusForbidden, "refused.html", refusal{Title: "Signed out", Message: "Your session has ended; sign in again."})
				return
			}
			http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				c.render(w, r, s, http.StatusRequestEntityTooLarge, "refused.html", refusal{Title: "Form refused", Message: "The form could not be read: " + err.Error()})
				return
			}
			if !sameToken(r.PostForm.Get("csrf"), s.csrf) {
				c.log.Warn("console: form without a valid CSRF token refused", "path", r.URL.Path, "key", s.who.Name)
				c.render(w, r, s, http.StatusForbidden, "refused.html", refusal{Title: "Form refused", Message: "The form did not carry this session's CSRF token. Reload the page and try again."})
				return
			}
		}
		h(w, r, s)
	}
}

func sameToken(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func token() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	t := token()
	http.SetCookie(w, c.cookie(r, signInCookie, t, 15*time.Minute))
	c.render(w, r, nil, http.StatusOK, "signin.html", signInData{CSRF: t, Notice: r.URL.Query().Get("signed-out") != ""})
}

// maxKey bounds the key field; real keys are 52 characters.
const maxKey = 256

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		c.render(w, r, nil, http.StatusRequestEntityTooLarge, "refused.html", refusal{Title: "Form refused", Message: "The form could not be read."})
		return
	}
	ck, err := r.Cookie(signInCookie)
	if err != nil || !sameToken(r.PostForm.Get("csrf"), ck.Value) {
		c.render(w, r, nil, http.StatusForbidden, "refused.html", refusal{Title: "Form refused", Message: "The sign-in form did not carry its CSRF token. Open the sign-in page again."})
		return
	}
	key := r.PostForm.Get("key")
	var who Identity
	if len(key) <= maxKey {
		who, err = c.cfg.Identify(key)
	} else {
		err = ErrUnknownKey
	}
	if err != nil {
		t := token()
		http.SetCookie(w, c.cookie(r, signInCookie, t, 15*time.Minute))
		c.render(w, r, nil, http.StatusUnauthorized, "signin.html", signInData{CSRF: t, Error: "That API key is not accepted (unknown, expired or revoked)."})
		return
	}
	s := c.sessions.create(key, who)
	http.SetCookie(w, c.cookie(r, signInCookie, "", -1))
	http.SetCookie(w, c.cookie(r, sessionCookie, s.id, 0))
	http.Redirect(w, r, "/payers", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, s *session) {
	c.sessions.drop(s.id)
	http.SetCookie(w, c.cookie(r, sessionCookie, "", -1))
	http.Redirect(w, r, "/sign-in?signed-out=1", http.StatusSeeOther)
}

// session is a signed-in key. The cookie names it by a random ID; the key
// itself never leaves the server.
type session struct {
	id, key, csrf string
	who           Identity
	created, seen time.Time
}

// sessions is the gateway process's sessions (a gateway behind a load
// balancer needs sticky sessions, or signs in again on another replica).
type sessions struct {
	mu           sync.Mutex
	byID         map[string]*session
	idle, maxAge time.Duration
	now          func() time.Time
}

// maxSessions bounds the sessions held; the oldest go first.
const maxSessions = 10000

func newSessions(idle, maxAge time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, idle: idle, maxAge: maxAge, now: now}
}

func (ss *sessions) live(s *session, now time.Time) bool {
	return now.Sub(s.seen) < ss.idle && now.Sub(s.created) < ss.maxAge
}

func (ss *sessions) create(key string, who Identity) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	if len(ss.byID) >= maxSessions {
		var oldest *session
		for id, s := range ss.byID {
			if !ss.live(s, now) {
				delete(ss.byID, id)
			} else if oldest == nil || s.created.Before(oldest.created) {
				oldest = s
			}
		}
		if len(ss.byID) >= maxSessions && oldest != nil {
			delete(ss.byID, oldest.id)
		}
	}
	s := &session{id: token(), key: key, csrf: token(), who: who, created: now, seen: now}
	ss.byID[s.id] = s
	return s
}

// get returns a live session (a copy, so a request never races another
// on its fields), or nil.
func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return nil
	}
	now := ss.now()
	if !ss.live(s, now) {
		delete(ss.byID, id)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}
