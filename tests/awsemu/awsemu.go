// Package awsemu is an in-process emulator of the AWS billing and onboarding
// services costlake talks to. It speaks their real wire protocols, so tests
// drive the real aws-sdk-go-v2 clients (serialization, pagination, retries,
// typed errors) against it, with no interface mocks.
//
// One HTTP server serves every service at [Server.URL]:
//
//	service                      protocol                 routed by
//	Organizations                awsJson1_1               X-Amz-Target AWSOrganizationsV20161128.<Op>
//	CloudFormation               awsQuery (form in, XML)  Action=<Op>
//	Cost and Usage Reports       awsJson1_1               X-Amz-Target AWSOrigamiServiceGatewayService.<Op>
//	BCM Data Exports             awsJson1_1               X-Amz-Target AWSBillingAndCostManagementDataExports.<Op>
//	Cost Explorer                awsJson1_1               X-Amz-Target AWSInsightsIndexService.<Op>
//	STS                          awsQuery (form in, XML)  Action=<Op> (see sts.go: roles are enforced)
//
// Every request must carry a SigV4 Authorization header whose credential
// scope names the right service (organizations, cloudformation, cur,
// bcm-data-exports, ce, sts); signatures are not verified. Every request is
// recorded as a [Call] with the access key ID that signed it.
//
// Point a client at the emulator with [Server.Config], or with
// BaseEndpoint, or with the AWS_ENDPOINT_URL_<SERVICE> variables that
// [Server.Setenv] sets:
//
//	cfg := emu.Config()
//	org := organizations.NewFromConfig(cfg)
//
//	// or, with credentials from elsewhere (e.g. an assumed role):
//	org := organizations.NewFromConfig(cfg, func(o *organizations.Options) {
//		o.BaseEndpoint = aws.String(emu.URL)
//	})
//
// All methods are safe for concurrent use.
package awsemu

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Defaults used by the emulator.
const (
	// Region is the region [Server.Config] uses and generated ARNs name.
	Region = "us-east-1"
	// AccountID is the account generated ARNs name when none is given.
	AccountID = "123456789012"
	// AccessKeyID and SecretAccessKey are the static credentials of
	// [Server.Config].
	AccessKeyID     = "AKIAAWSEMULATOR00001"
	SecretAccessKey = "awsemu-secret"
	// DefaultPageSize is the page size of every paginated operation until
	// [Server.SetPageSize] changes it. It is small so that paginators
	// really turn pages.
	DefaultPageSize = 2
)

// Call is one request the emulator received, rejected ones included.
type Call struct {
	Service     string // signing name: organizations, cloudformation, cur, bcm-data-exports, ce
	Operation   string // e.g. ListAccounts, DescribeStacks
	AccessKeyID string // from the SigV4 Authorization header; "" if unsigned
	Region      string // from the credential scope
	Input       string // raw request body (JSON document or form-encoded query)
}

// Server is a running emulator. Create it with [Start].
type Server struct {
	// URL is the base endpoint of every emulated service, e.g.
	// http://127.0.0.1:41234.
	URL string

	tb  testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	pageSize int
	calls    []Call
	faults   map[string][]fault // operation -> queued faults
	denied   map[string]bool    // operation -> AccessDenied

	org   orgState
	cfn   cfnState
	cur   curState
	bcm   bcmState
	costs ceState
	sts   stsState
}

type fault struct {
	code, message string
}

// Start starts an emulator and closes it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{
		tb:       tb,
		pageSize: DefaultPageSize,
		faults:   map[string][]fault{},
		denied:   map[string]bool{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	tb.Cleanup(s.srv.Close)
	return s
}

// Close stops the server. Start already arranges this at test end.
func (s *Server) Close() { s.srv.Close() }

// Config returns an aws.Config for the emulator: region [Region], static
// credentials [AccessKeyID]/[SecretAccessKey], BaseEndpoint [Server.URL]
// (so every client made from it talks to the emulator; override
// BaseEndpoint per client for other servers such as S3), and the SDK's
// standard retryer with its usual attempts and retryable codes but a 1 ms
// backoff, so throttling tests run fast.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.URL),
		Retryer:      FastRetryer,
	}
}

// FastRetryer is the SDK's standard retryer (3 attempts, standard
// retryable and throttling codes) with a 1 ms backoff. Use it as
// aws.Config.Retryer or a client's Options.Retryer.
func FastRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
			return time.Millisecond, nil
		})
	})
}

// EndpointEnvVars are the environment variables the SDK's shared config
// (config.LoadDefaultConfig) reads for each emulated service's endpoint.
var EndpointEnvVars = []string{
	"AWS_ENDPOINT_URL_ORGANIZATIONS",
	"AWS_ENDPOINT_URL_CLOUDFORMATION",
	"AWS_ENDPOINT_URL_COST_AND_USAGE_REPORT_SERVICE",
	"AWS_ENDPOINT_URL_BCM_DATA_EXPORTS",
	"AWS_ENDPOINT_URL_COST_EXPLORER",
}

// Env returns "NAME=URL" for each of [EndpointEnvVars], for a child
// process's environment.
func (s *Server) Env() []string {
	env := make([]string, 0, len(EndpointEnvVars))
	for _, k := range EndpointEnvVars {
		env = append(env, k+"="+s.URL)
	}
	return env
}

// Setenv sets each of [EndpointEnvVars] to the emulator's URL for the rest
// of the test (with t.Setenv, so not in parallel tests).
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, k := range EndpointEnvVars {
		t.Setenv(k, s.URL)
	}
}

// SetPageSize sets the largest page any paginated operation returns. A
// request's own MaxResults can only make pages smaller.
func (s *Server) SetPageSize(n int) {
	if n < 1 {
		n = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// Calls returns the recorded calls of one operation (all calls if
// operation is ""), oldest first. Each attempt of a retried request is a
// call.
func (s *Server) Calls(operation string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if operation == "" || c.Operation == operation {
			out = append(out, c)
		}
	}
	return out
}

// FailNext makes the next times calls of operation fail with the AWS error
// code and message, e.g. ThrottlingException, TooManyRequestsException or
// LimitExceededException. Server-side codes (Internal*, ServiceUnavailable*)
// get status 500 or 503, others 400. Faults queue up behind earlier ones.
func (s *Server) FailNext(operation, code, message string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range times {
		s.faults[operation] = append(s.faults[operation], fault{code, message})
	}
}

// ClearFaults drops the faults still queued for operation (all
// operations if "").
func (s *Server) ClearFaults(operation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if operation == "" {
		clear(s.faults)
		return
	}
	delete(s.faults, operation)
}

// Deny makes every call of operation fail as IAM would for a principal
// without permission: AccessDeniedException (AccessDenied on
// CloudFormation) with "User: arn:... is not authorized to perform:
// <service>:<operation> ...". Allow undoes it.
func (s *Server) Deny(operation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[operation] = true
}

// Allow undoes Deny.
func (s *Server) Allow(operation string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.denied, operation)
}

// apiError is an AWS error response.
type apiError struct {
	Code    string
	Message string
	Status  int            // 0 means derived from Code
	Fields  map[string]any // extra modeled members, e.g. Reason, ResourceId
}

func (e *apiError) status() int {
	if e.Status != 0 {
		return e.Status
	}
	switch {
	case strings.HasPrefix(e.Code, "Internal"), e.Code == "ServiceException":
		return http.StatusInternalServerError
	case strings.HasPrefix(e.Code, "ServiceUnavailable"):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// request is one decoded call handed to an operation handler.
type request struct {
	Call
	body []byte     // JSON services
	form url.Values // Query services
}

// decode unmarshals a JSON request body into v.
func (r *request) decode(v any) *apiError {
	if len(bytes.TrimSpace(r.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return &apiError{Code: "SerializationException", Message: err.Error()}
	}
	return nil
}

// handler runs an operation with s.mu held and returns the response shape:
// a JSON document for JSON services, an XML <OpResult> element for Query.
type handler func(s *Server, r *request) (any, *apiError)

type service struct {
	signingName  string // SigV4 credential scope service and IAM action prefix
	target       string // X-Amz-Target prefix; "" for the Query protocol
	jsonVersion  string // "1.1" or "1.0"
	xmlNamespace string // Query protocol response namespace
	accessDenied string // error code IAM denials use
	ops          map[string]handler
	unsigned     map[string]bool // operations AWS serves without a signature
	// guard, if set, runs before every operation (e.g. "not in an organization").
	guard func(s *Server, r *request) *apiError
}

var (
	servicesByTarget = map[string]*service{}
	servicesByAction = map[string]*service{} // Query protocol: action -> service
)

func register(svc *service) {
	if svc.target != "" {
		servicesByTarget[svc.target] = svc
		return
	}
	for op := range svc.ops {
		servicesByAction[op] = svc
	}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &request{Call: Call{Input: string(body)}}
	var svc *service
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, op, _ := strings.Cut(target, ".")
		svc = servicesByTarget[prefix]
		req.Operation = op
		if svc == nil {
			writeJSONError(w, "1.1", s.requestID(), &apiError{Code: "UnknownOperationException",
				Message: fmt.Sprintf("awsemu does not emulate X-Amz-Target %q", target)})
			return
		}
		req.body = body
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("Action") == "" {
			http.Error(w, fmt.Sprintf("awsemu: %s %s is neither an AWS JSON (X-Amz-Target) nor an AWS Query (Action=) request", r.Method, r.URL), http.StatusNotFound)
			return
		}
		req.form = form
		req.Operation = form.Get("Action")
		svc = servicesByAction[req.Operation]
		if svc == nil {
			writeQueryError(w, "", s.requestID(), &apiError{Code: "InvalidAction",
				Message: fmt.Sprintf("Could not find operation %s for version %s", req.Operation, form.Get("Version"))})
			return
		}
	}

	scope, authErr := parseAuthorization(r.Header.Get("Authorization"), svc.signingName)
	if svc.unsigned[req.Operation] && r.Header.Get("Authorization") == "" {
		authErr = nil
	}
	req.Service = svc.signingName
	req.AccessKeyID, req.Region = scope.accessKeyID, scope.region

	resp, apiErr := s.dispatch(svc, req, authErr)
	rid := s.requestID()
	if apiErr != nil {
		if svc.target != "" {
			writeJSONError(w, svc.jsonVersion, rid, apiErr)
		} else {
			writeQueryError(w, svc.xmlNamespace, rid, apiErr)
		}
		return
	}
	if svc.target != "" {
		writeJSON(w, svc.jsonVersion, rid, resp)
	} else {
		writeQueryResponse(w, svc.xmlNamespace, req.Operation, rid, resp)
	}
}

// dispatch records the call, then applies auth, faults, denials, the
// service guard and finally the handler.
func (s *Server) dispatch(svc *service, req *request, authErr *apiError) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, req.Call)
	if authErr != nil {
		return nil, authErr
	}
	if q := s.faults[req.Operation]; len(q) > 0 {
		s.faults[req.Operation] = q[1:]
		return nil, &apiError{Code: q[0].code, Message: q[0].message}
	}
	h := svc.ops[req.Operation]
	if h == nil {
		if svc.target == "" {
			return nil, errorf("InvalidAction", "Could not find operation %s", req.Operation)
		}
		return nil, errorf("UnknownOperationException", "awsemu does not emulate %s.%s", svc.target, req.Operation)
	}
	if s.denied[req.Operation] {
		action := svc.signingName + ":" + req.Operation
		return nil, &apiError{Code: svc.accessDenied, Message: fmt.Sprintf(
			"User: arn:aws:sts::%s:assumed-role/awsemu/%s is not authorized to perform: %s because no identity-based policy allows the %s action",
			AccountID, req.AccessKeyID, action, action)}
	}
	if svc.guard != nil {
		if err := svc.guard(s, req); err != nil {
			return nil, err
		}
	}
	return h(s, req)
}

type credentialScope struct {
	accessKeyID, region, service string
}

// parseAuthorization reads a SigV4 Authorization header,
//
//	AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/organizations/aws4_request, SignedHeaders=..., Signature=...
//
// and checks the scope's service. The signature itself is not verified.
func parseAuthorization(h, wantService string) (credentialScope, *apiError) {
	var scope credentialScope
	if h == "" {
		return scope, &apiError{Code: "MissingAuthenticationTokenException", Message: "Missing Authentication Token", Status: http.StatusForbidden}
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != "AWS4-HMAC-SHA256" {
		return scope, &apiError{Code: "IncompleteSignatureException", Message: fmt.Sprintf("Unsupported authorization algorithm %q", alg), Status: http.StatusForbidden}
	}
	var cred, signature string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "Signature":
			signature = v
		}
	}
	fields := strings.Split(cred, "/")
	if len(fields) != 5 || fields[4] != "aws4_request" || signature == "" {
		return scope, &apiError{Code: "IncompleteSignatureException", Message: fmt.Sprintf("Authorization header requires 'Credential' and 'Signature' parameters. Authorization=%s", h), Status: http.StatusForbidden}
	}
	scope = credentialScope{accessKeyID: fields[0], region: fields[2], service: fields[3]}
	if scope.service != wantService {
		return scope, &apiError{Code: "InvalidSignatureException", Message: fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", wantService), Status: http.StatusForbidden}
	}
	return scope, nil
}

func (s *Server) requestID() string {
	return newUUID()
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeJSON(w http.ResponseWriter, version, requestID string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSONError(w, version, requestID, &apiError{Code: "InternalFailure", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// writeJSONError writes {"__type":"Code","message":"..."} plus any modeled
// members, the awsJson error shape.
func writeJSONError(w http.ResponseWriter, version, requestID string, e *apiError) {
	doc := map[string]any{}
	for k, v := range e.Fields {
		doc[k] = v
	}
	doc["__type"] = e.Code
	doc["message"] = e.Message
	b, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(e.status())
	_, _ = w.Write(b)
}

func writeQueryResponse(w http.ResponseWriter, namespace, op, requestID string, result any) {
	inner, err := xml.Marshal(result)
	if err != nil {
		writeQueryError(w, namespace, requestID, &apiError{Code: "InternalFailure", Message: err.Error()})
		return
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%sResponse xmlns=%q>", op, namespace)
	b.Write(inner)
	fmt.Fprintf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>", requestID, op)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	_, _ = w.Write(b.Bytes())
}

// writeQueryError writes the awsQuery error shape:
//
//	<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>
func writeQueryError(w http.ResponseWriter, namespace, requestID string, e *apiError) {
	code := e.Code
	if code == "MissingAuthenticationTokenException" {
		code = "MissingAuthenticationToken"
	} else if code == "InvalidSignatureException" {
		code = "SignatureDoesNotMatch"
	}
	status := e.status()
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	doc := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Namespace string   `xml:"xmlns,attr,omitempty"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Namespace: namespace, Type: typ, Code: code, Message: e.Message, RequestID: requestID}
	b, _ := xml.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// page returns the page of items that token (from an earlier page of the
// same operation, or "" for the first) and maxResults (0 for none) select,
// and the token of the next page ("" on the last). ok is false for a token
// this operation did not issue.
func page[T any](s *Server, op string, items []T, token string, maxResults int) (out []T, next string, ok bool) {
	start := 0
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return nil, "", false
		}
		name, off, _ := strings.Cut(string(raw), ":")
		n, err := strconv.Atoi(off)
		if name != op || err != nil || n < 0 || n > len(items) {
			return nil, "", false
		}
		start = n
	}
	size := s.pageSize
	if maxResults > 0 && maxResults < size {
		size = maxResults
	}
	end := min(start+size, len(items))
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(op + ":" + strconv.Itoa(end)))
	}
	return slices.Clone(items[start:end]), next, true
}

// epochSeconds marshals a time as JSON epoch seconds (awsJson's default
// timestamp format), with millisecond precision.
type epochSeconds time.Time

func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// isoTime formats a time as ISO 8601 with milliseconds, as AWS writes
// date-time timestamps (awsQuery's default, and members with
// @timestampFormat("date-time")).
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
