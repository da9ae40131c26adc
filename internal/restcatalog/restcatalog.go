// Package restcatalog answers the read side of the Apache Iceberg REST
// catalog protocol (config, namespaces, tables, load table) over any
// iceberg-go catalog, for one caller's Scope: everything, or one
// customer's namespace only. It knows no HTTP framework and no
// authentication; the gateway mounts it, admits the caller and writes
// its answers and Errors.
package restcatalog

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/costlake/costlake/internal/reseller"
)

// Reader is what the REST catalog reads: an iceberg-go catalog (the SQL
// catalog on a read-only connection) satisfies it.
type Reader interface {
	ListNamespaces(ctx context.Context, parent table.Identifier) ([]table.Identifier, error)
	LoadNamespaceProperties(ctx context.Context, namespace table.Identifier) (iceberg.Properties, error)
	ListTables(ctx context.Context, namespace table.Identifier) iter.Seq2[table.Identifier, error]
	LoadTable(ctx context.Context, identifier table.Identifier) (*table.Table, error)
}

// Scope is what one caller sees: every namespace, or (Customer set) that
// customer's own namespace only.
type Scope struct {
	Customer string
}

// Error is an answer in the protocol's error model
// ({"error": {"message", "type", "code"}}).
type Error struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is the JSON body of an Error.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error types of the protocol (its Java client maps them to exceptions).
const (
	TypeBadRequest    = "BadRequestException"
	TypeNotAuthorized = "NotAuthorizedException"
	TypeForbidden     = "ForbiddenException"
	TypeNoNamespace   = "NoSuchNamespaceException"
	TypeNoTable       = "NoSuchTableException"
	TypeUnsupported   = "UnsupportedOperationException"
	TypeSlowDown      = "SlowDownException"
	TypeServerError   = "ServiceFailureException"
	TypeUnavailable   = "ServiceUnavailableException"
)

// NewError is an Error of a status and type.
func NewError(status int, typ, format string, args ...any) *Error {
	return &Error{Code: status, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// ReadOnly is the answer to every call that would change the catalog.
func ReadOnly(method, path string) *Error {
	return NewError(http.StatusMethodNotAllowed, TypeUnsupported,
		"%s %s: costlake's Iceberg catalog is read-only; its tables are written by costlake's workers", method, path)
}

// Bounds of untrusted input.
const (
	maxNameLen  = 255
	maxPageSize = 1000
)

// Server answers the protocol's reads.
type Server struct {
	cat Reader
	// tableConfig is the config of every LoadTable answer: settings
	// (never credentials) a client needs to read the files.
	tableConfig map[string]string
}

// New returns a Server over cat; tableConfig (may be nil) is handed to
// clients with each table, and must hold no secret.
func New(cat Reader, tableConfig map[string]string) *Server {
	return &Server{cat: cat, tableConfig: tableConfig}
}

// ConfigResponse is the body of GET /v1/config.
type ConfigResponse struct {
	Defaults  map[string]string `json:"defaults"`
	Overrides map[string]string `json:"overrides"`
	Endpoints []string          `json:"endpoints"`
}

// Endpoints are the routes this catalog serves, as the protocol names them.
var Endpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
}

// Config answers GET /v1/config: no prefix, the endpoints served.
func (s *Server) Config() ConfigResponse {
	return ConfigResponse{Defaults: map[string]string{}, Overrides: map[string]string{}, Endpoints: slices.Clone(Endpoints)}
}

// ListNamespacesResponse is the body of GET /v1/namespaces.
type ListNamespacesResponse struct {
	Namespaces    [][]string `json:"namespaces"`
	NextPageToken *string    `json:"next-page-token,omitempty"`
}

// Page is a list request's pageToken and pageSize, as sent.
type Page struct{ Token, Size string }

// ListNamespaces answers GET /v1/namespaces: the namespaces the scope
// sees. Namespaces are one level deep, so a parent has no children.
func (s *Server) ListNamespaces(ctx context.Context, sc Scope, parent string, p Page) (ListNamespacesResponse, error) {
	out := ListNamespacesResponse{Namespaces: [][]string{}}
	if parent != "" {
		if _, err := s.namespace(ctx, sc, parent); err != nil {
			return out, err
		}
		return out, nil
	}
	all, err := s.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return out, err
	}
	var names []string
	for _, ns := range all {
		if len(ns) == 1 && sc.sees(ns[0]) {
			names = append(names, ns[0])
		}
	}
	names, next, err := page(names, p)
	if err != nil {
		return out, err
	}
	for _, n := range names {
		out.Namespaces = append(out.Namespaces, []string{n})
	}
	out.NextPageToken = next
	return out, nil
}

// NamespaceResponse is the body of GET /v1/namespaces/{namespace}.
type NamespaceResponse struct {
	Namespace  []string          `json:"namespace"`
	Properties map[string]string `json:"properties"`
}

// Namespace answers GET (and HEAD) /v1/namespaces/{namespace}; raw is the
// path parameter as sent.
func (s *Server) Namespace(ctx context.Context, sc Scope, raw string) (NamespaceResponse, error) {
	ns, err := s.namespace(ctx, sc, raw)
	if err != nil {
		return NamespaceResponse{}, err
	}
	props, err := s.cat.LoadNamespaceProperties(ctx, table.Identifier{ns})
	if err != nil {
		return NamespaceResponse{}, s.notFound(err, ns, "")
	}
	out := NamespaceResponse{Namespace: []string{ns}, Properties: map[string]string{}}
	maps.Copy(out.Properties, props)
	return out, nil
}

// TableIdentifier names a table in list answers.
type TableIdentifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

// ListTablesResponse is the body of GET /v1/namespaces/{namespace}/tables.
type ListTablesResponse struct {
	Identifiers   []TableIdentifier `json:"identifiers"`
	NextPageToken *string           `json:"next-page-token,omitempty"`
}

// ListTables answers GET /v1/namespaces/{namespace}/tables.
func (s *Server) ListTables(ctx context.Context, sc Scope, raw string, p Page) (ListTablesResponse, error) {
	out := ListTablesResponse{Identifiers: []TableIdentifier{}}
	ns, err := s.namespace(ctx, sc, raw)
	if err != nil {
		return out, err
	}
	if _, err := s.cat.LoadNamespaceProperties(ctx, table.Identifier{ns}); err != nil {
		return out, s.notFound(err, ns, "")
	}
	var names []string
	for id, err := range s.cat.ListTables(ctx, table.Identifier{ns}) {
		if err != nil {
			return out, s.notFound(err, ns, "")
		}
		names = append(names, id[len(id)-1])
	}
	names, next, err := page(names, p)
	if err != nil {
		return out, err
	}
	for _, n := range names {
		out.Identifiers = append(out.Identifiers, TableIdentifier{Namespace: []string{ns}, Name: n})
	}
	out.NextPageToken = next
	return out, nil
}

// LoadTableResponse is the body of GET /v1/namespaces/{namespace}/tables/{table}.
type LoadTableResponse struct {
	MetadataLocation string            `json:"metadata-location"`
	Metadata         table.Metadata    `json:"metadata"`
	Config           map[string]string `json:"config"`
}

// LoadTable answers GET (and HEAD) /v1/namespaces/{namespace}/tables/{table}:
// the table's current metadata as committed, and where it lies.
func (s *Server) LoadTable(ctx context.Context, sc Scope, rawNS, rawTable string) (LoadTableResponse, error) {
	ns, err := s.namespace(ctx, sc, rawNS)
	if err != nil {
		return LoadTableResponse{}, err
	}
	name, err := unescape(rawTable, "table")
	if err != nil {
		return LoadTableResponse{}, err
	}
	tbl, err := s.cat.LoadTable(ctx, table.Identifier{ns, name})
	if err != nil {
		return LoadTableResponse{}, s.notFound(err, ns, name)
	}
	out := LoadTableResponse{MetadataLocation: tbl.MetadataLocation(), Metadata: tbl.Metadata(), Config: map[string]string{}}
	maps.Copy(out.Config, s.tableConfig)
	return out, nil
}

// sees reports whether the scope sees a namespace.
func (sc Scope) sees(ns string) bool {
	return sc.Customer == "" || ns == reseller.CustomerNamespace(sc.Customer)
}

// namespace checks a namespace path parameter against the scope. A
// scoped caller hears 403 for the reseller's own namespaces (billing:
// whose existence is no secret) and 404 for another customer's, so its
// answers say nothing of which other customers exist.
func (s *Server) namespace(ctx context.Context, sc Scope, raw string) (string, error) {
	ns, err := unescape(raw, "namespace")
	if err != nil {
		return "", err
	}
	if strings.Contains(ns, "\x1f") {
		return "", NewError(http.StatusNotFound, TypeNoNamespace, "namespace %q does not exist: namespaces are one level deep", strings.ReplaceAll(ns, "\x1f", "."))
	}
	switch {
	case sc.sees(ns):
		return ns, nil
	case strings.HasPrefix(ns, reseller.CustomerNamespacePrefix):
		return "", NewError(http.StatusNotFound, TypeNoNamespace, "namespace %q does not exist", ns)
	default:
		return "", NewError(http.StatusForbidden, TypeForbidden,
			"the key is scoped to customer %s: it sees namespace %s only", sc.Customer, reseller.CustomerNamespace(sc.Customer))
	}
}

// notFound turns the catalog's not-found errors into the protocol's.
func (s *Server) notFound(err error, ns, name string) error {
	switch {
	case errors.Is(err, catalog.ErrNoSuchNamespace):
		return NewError(http.StatusNotFound, TypeNoNamespace, "namespace %q does not exist", ns)
	case errors.Is(err, catalog.ErrNoSuchTable):
		return NewError(http.StatusNotFound, TypeNoTable, "table %s.%s does not exist", ns, name)
	}
	return err
}

func unescape(raw, what string) (string, error) {
	v, err := url.PathUnescape(raw)
	if err != nil || v == "" || len(v) > maxNameLen {
		return "", NewError(http.StatusBadRequest, TypeBadRequest, "the %s in the path is not a name (1 to %d characters, URL-encoded)", what, maxNameLen)
	}
	return v, nil
}

// page cuts sorted names after the page token (the last name of the
// previous page), to at most the page size.
func page(names []string, p Page) ([]string, *string, error) {
	slices.Sort(names)
	if p.Token != "" {
		i, _ := slices.BinarySearch(names, p.Token)
		for i < len(names) && names[i] <= p.Token {
			i++
		}
		names = names[i:]
	}
	if p.Size == "" {
		return names, nil, nil
	}
	n, err := strconv.Atoi(p.Size)
	if err != nil || n < 1 || n > maxPageSize {
		return nil, nil, NewError(http.StatusBadRequest, TypeBadRequest, "pageSize must be an integer from 1 to %d", maxPageSize)
	}
	if len(names) <= n {
		return names, nil, nil
	}
	next := names[n-1]
	return names[:n], &next, nil
}
