package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/contract/customerops"
)

// Error is the body of every error response.
type Error struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

type errorBody struct {
	Error Error `json:"error"`
}

// errKind is what went wrong, as a client must act on it. Handlers return
// an *apiError of a kind; statusTable alone says its HTTP status and code.
type errKind int

const (
	kindInternal         errKind = iota // a fault of ours, logged; the client learns nothing more
	kindInvalid                         // the request has invalid fields
	kindUnauthorized                    // no key, or an unknown one
	kindKeyExpired                      // a known key past its expiry
	kindForbidden                       // the key may not do this
	kindNotFound                        // no such resource (or not one the key may see)
	kindConflict                        // the resource's state refuses the call now
	kindRateLimited                     // the key is over its rate limit
	kindOnboardingFailed                // the worker cannot onboard the payer as set up
	kindSetupIncomplete                 // the worker lacks settings the onboarding needs
	kindUnavailable                     // a worker did not answer in time
)

// statusTable is the one place that maps error kinds to HTTP statuses and
// the codes clients match on. The OpenAPI document lists the same codes.
var statusTable = map[errKind]struct {
	status int
	code   string
}{
	kindInternal:         {http.StatusInternalServerError, "internal"},
	kindInvalid:          {http.StatusBadRequest, "invalid_request"},
	kindUnauthorized:     {http.StatusUnauthorized, "unauthorized"},
	kindKeyExpired:       {http.StatusUnauthorized, "key_expired"},
	kindForbidden:        {http.StatusForbidden, "forbidden"},
	kindNotFound:         {http.StatusNotFound, "not_found"},
	kindConflict:         {http.StatusConflict, "conflict"},
	kindRateLimited:      {http.StatusTooManyRequests, "rate_limited"},
	kindOnboardingFailed: {http.StatusServiceUnavailable, "onboarding_failed"},
	kindSetupIncomplete:  {http.StatusServiceUnavailable, "setup_incomplete"},
	kindUnavailable:      {http.StatusServiceUnavailable, "unavailable"},
}

// failureKinds maps the failure types of workflows the gateway waits for
// (temporal.ApplicationError.Type) to error kinds; any other failure is
// internal.
var failureKinds = map[string]errKind{
	customerops.ErrTypeInvalid:  kindInvalid,
	customerops.ErrTypeConflict: kindConflict,
	customerops.ErrTypeClosed:   kindConflict,
	customerops.ErrTypeNotFound: kindNotFound,
}

// apiError is an error a client is told about; handleError writes it.
type apiError struct {
	kind    errKind
	message string
	fields  map[string]string
}

func (e *apiError) Error() string { return e.message }

// errorf is an apiError of kind with a formatted message.
func errorf(kind errKind, format string, args ...any) *apiError {
	return &apiError{kind: kind, message: fmt.Sprintf(format, args...)}
}

func validationError(fields map[string]string) error {
	return &apiError{kind: kindInvalid, message: "the request has invalid fields", fields: fields}
}

// failureError is the apiError of a workflow failure whose type the table
// knows, with the failure's message; otherwise nil.
func failureError(err error) *apiError {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return nil
	}
	if kind, ok := failureKinds[app.Type()]; ok {
		return &apiError{kind: kind, message: app.Message()}
	}
	return nil
}

// errorResponse is the status and body an error is answered with.
func (s *Server) errorResponse(err error, c echo.Context) (int, Error) {
	var ae *apiError
	var he *echo.HTTPError
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &ae):
		t := statusTable[ae.kind]
		return t.status, Error{Code: t.code, Message: ae.message, Fields: ae.fields}
	case errors.As(err, &he):
		// Echo's own refusals (no route, wrong method, body too large):
		// the code is the status text in snake case.
		return he.Code, Error{Code: strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_"), Message: fmt.Sprint(he.Message)}
	case errors.As(err, &nf):
		t := statusTable[kindNotFound]
		return t.status, Error{Code: t.code, Message: nf.Error()}
	default:
		s.log.Error("request failed", "method", c.Request().Method, "path", c.Request().URL.Path, "error", err)
		t := statusTable[kindInternal]
		return t.status, Error{Code: t.code, Message: "internal error; see the gateway log"}
	}
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if isIcebergPath(c.Request().URL.Path) {
		s.icebergError(err, c)
		return
	}
	status, body := s.errorResponse(err, c)
	if err := c.JSON(status, errorBody{Error: body}); err != nil {
		s.log.Warn("could not write error response", "error", err)
	}
}
