package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/costlake/costlake/internal/restcatalog"
)

// openAPIPath is an Echo route's path as the document writes it.
func openAPIPath(echoPath string) string {
	if p, ok := strings.CutSuffix(echoPath, "/*"); ok {
		echoPath = p + "/:id" // the ingestion's ID, slashes and all
	}
	parts := strings.Split(echoPath, "/")
	for i, part := range parts {
		if name, ok := strings.CutPrefix(part, ":"); ok {
			parts[i] = "{" + name + "}"
		}
	}
	return strings.Join(parts, "/")
}

func TestOpenAPIDocumentValidates(t *testing.T) {
	doc, err := OpenAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("gateway/openapi.yaml: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi: %s, want 3.1", doc.OpenAPI)
	}
}

// Every route Echo serves is in the document, and every operation of the
// document is a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, err := OpenAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Iceberg: restcatalog.New(nil, nil)})
	var served, documented []string
	for _, r := range e.Routes() {
		if consoleRoutes[r.Path] {
			continue // the console's pages, not the API
		}
		if isIcebergPath(r.Path) {
			continue // the Iceberg REST catalog has its own specification
		}
		served = append(served, r.Method+" "+openAPIPath(r.Path))
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in gateway/openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("gateway/openapi.yaml documents %s, which is no route", r)
		}
	}
}

// Every code the status table gives is one the document's Error schema
// lists, and each status's response in the document allows its codes.
func TestOpenAPIDocumentsEveryErrorCode(t *testing.T) {
	doc, err := OpenAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	codes := doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum
	for kind, st := range statusTable {
		if !slices.Contains(codes, any(st.code)) {
			t.Errorf("kind %d: code %q is not in the Error schema's enum", kind, st.code)
		}
	}
	byStatus := map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
		429: "RateLimited", 500: "Internal", 503: "Unavailable"}
	for kind, st := range statusTable {
		name, ok := byStatus[st.status]
		if !ok {
			t.Errorf("kind %d: status %d has no shared response in the document", kind, st.status)
			continue
		}
		schema := doc.Components.Responses[name].Value.Content.Get("application/json").Schema.Value
		body, _ := json.Marshal(errorBody{Error: Error{Code: st.code, Message: "m"}})
		var v any
		_ = json.Unmarshal(body, &v)
		if err := schema.VisitJSON(v); err != nil {
			t.Errorf("kind %d: the %s response refuses code %q: %v", kind, name, st.code, err)
		}
	}
}

func TestOpenAPIServedWithoutKey(t *testing.T) {
	e := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, OpenAPIPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", OpenAPIPath, rec.Code, rec.Body)
	}
	var got struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.OpenAPI != "3.1.0" || got.Paths["/v1/payers/{id}"] == nil {
		t.Fatalf("served document: openapi %q, %d paths", got.OpenAPI, len(got.Paths))
	}
}
