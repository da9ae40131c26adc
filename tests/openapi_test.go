package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/costlake/costlake/gateway"
)

var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := gateway.OpenAPIDocument()
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// validatingGateway serves h and checks every response against the
// gateway's OpenAPI document: a route the document does not describe, a
// status it does not list for the route, or a body (or header) that does
// not match its schema fails the test. Requests are not checked: the
// suite sends bad ones on purpose, and their error answers are checked.
func validatingGateway(t testing.TB, h http.Handler) http.Handler {
	router, err := openAPIRouter()
	if err != nil {
		t.Fatalf("the gateway's OpenAPI document: %v", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		// An HTTP/2 preface ("PRI *") is no API call: a gRPC client of an
		// earlier test's Temporal server, redialling a port the kernel has
		// since given to this gateway. The gateway refuses it; nothing to
		// check against the document.
		if r.Method == "PRI" {
			return
		}
		if err := checkResponse(router, r, rec); err != nil {
			body := rec.Body.String()
			if len(body) > 2000 {
				body = body[:2000] + "…"
			}
			t.Errorf("OpenAPI: %s %s answered %d, not as gateway/openapi.yaml says: %v\nbody: %s", r.Method, r.URL.Path, rec.Code, err, body)
		}
	})
}

func checkResponse(router routers.Router, r *http.Request, rec *httptest.ResponseRecorder) error {
	// An ingestion's ID holds slashes; the document's {id} is one path
	// segment, so route with them escaped.
	routed := r.Clone(context.Background())
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/ingestions/"); ok {
		u := *r.URL
		u.RawPath = "/v1/ingestions/" + url.PathEscape(rest)
		routed.URL = &u
	}
	route, params, err := router.FindRoute(routed)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// errorsTB records Errorf calls instead of failing, to test the hook.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// The hook fails a test on an undocumented route, an undocumented status
// and a body that does not match its schema, and passes what matches.
func TestOpenAPIHookCatchesDrift(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		status     int
		body       string
		fails      bool
	}{
		{"documented", "/healthz", 200, `{"status":"ok"}`, false},
		{"wrong body", "/healthz", 200, `{"status":"fine"}`, true},
		{"extra field", "/healthz", 200, `{"status":"ok","x":1}`, true},
		{"undocumented status", "/healthz", 418, `{"status":"ok"}`, true},
		{"undocumented route", "/v1/nowhere", 200, `{}`, true},
	} {
		rec := &errorsTB{TB: t}
		h := validatingGateway(rec, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.body)
		}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
		if got := len(rec.errs) > 0; got != tc.fails {
			t.Errorf("%s: failed %v (%q), want %v", tc.name, got, rec.errs, tc.fails)
		}
	}
}
