package awsemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// STS: awsQuery, signing name "sts", namespace
// https://sts.amazonaws.com/doc/2011-06-15/. Operations: AssumeRole
// (signed) and AssumeRoleWithWebIdentity (unsigned, as in AWS).
//
// The emulator enforces the roles a test puts with [Server.PutRole]: the
// trust policy's principal, actions and conditions (sts:ExternalId,
// sts:RoleSessionName, sts:SourceIdentity, and an OIDC provider's
// <host>:aud and <host>:sub) decide whether a caller may assume the role;
// a SourceIdentity needs sts:SetSourceIdentity too. With [Server.UseMinIO],
// the credentials handed out are MinIO's, issued with a session policy made
// of the role's S3 statements, so MinIO itself denies what the role does
// not grant.

const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// Role is an IAM role: its ARN, trust policy and permission policies (JSON).
type Role struct {
	ARN         string
	TrustPolicy string
	Policies    []string
}

// Session is a role session the emulator issued.
type Session struct {
	RoleARN         string
	RoleSessionName string
	SourceIdentity  string
	AccessKeyID     string // of the temporary credentials
}

type stsState struct {
	roles    map[string]Role // by ARN
	source   func(roleARN string) (Role, bool)
	callers  map[string]string // access key ID -> principal ARN
	sessions []Session
	minio    *minioSTS
}

type minioSTS struct {
	endpoint, accessKey, secretKey string
}

// PutRole creates or replaces a role.
func (s *Server) PutRole(r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sts.roles == nil {
		s.sts.roles = map[string]Role{}
	}
	s.sts.roles[r.ARN] = r
}

// SetRoleSource sets where roles not put with PutRole come from, e.g. the
// stack a test deployed, rendered from its template. fn runs with the
// emulator locked: it must not call the emulator.
func (s *Server) SetRoleSource(fn func(roleARN string) (Role, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sts.source = fn
}

// role finds a role put or, failing that, from the role source.
func (s *Server) role(arn string) (Role, bool) {
	if r, ok := s.sts.roles[arn]; ok {
		return r, true
	}
	if s.sts.source != nil {
		return s.sts.source(arn)
	}
	return Role{}, false
}

// DeleteRole removes a role; assuming it is then denied.
func (s *Server) DeleteRole(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sts.roles, arn)
}

// SetCaller says which principal (an IAM role or user ARN) signs with an
// access key ID. AssumeRole from an unknown key is InvalidClientTokenId.
func (s *Server) SetCaller(accessKeyID, principalARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sts.callers == nil {
		s.sts.callers = map[string]string{}
	}
	s.sts.callers[accessKeyID] = principalARN
}

// UseMinIO makes role sessions MinIO's own temporary credentials: the
// emulator calls MinIO's STS AssumeRole with the given (root) keys and a
// session policy of the role's S3 statements.
func (s *Server) UseMinIO(endpoint, accessKey, secretKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sts.minio = &minioSTS{endpoint, accessKey, secretKey}
}

// Sessions returns the role sessions issued, oldest first.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Session(nil), s.sts.sessions...)
}

// SessionOf returns the session whose temporary credentials are accessKeyID.
func (s *Server) SessionOf(accessKeyID string) (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.sts.sessions {
		if se.AccessKeyID == accessKeyID {
			return se, true
		}
	}
	return Session{}, false
}

func init() {
	register(&service{
		signingName:  "sts",
		xmlNamespace: stsNamespace,
		accessDenied: "AccessDenied",
		unsigned:     map[string]bool{"AssumeRoleWithWebIdentity": true},
		ops: map[string]handler{
			"AssumeRole":                stsAssumeRole,
			"AssumeRoleWithWebIdentity": stsAssumeRoleWithWebIdentity,
		},
	})
}

func stsDenied(principal, action, role string) *apiError {
	return &apiError{Code: "AccessDenied", Status: http.StatusForbidden, Message: fmt.Sprintf(
		"User: %s is not authorized to perform: %s on resource: %s", principal, action, role)}
}

func stsAssumeRole(s *Server, r *request) (any, *apiError) {
	roleARN, name := r.form.Get("RoleArn"), r.form.Get("RoleSessionName")
	if e := checkSessionName(name); e != nil {
		return nil, e
	}
	caller, ok := s.sts.callers[r.AccessKeyID]
	if !ok {
		return nil, &apiError{Code: "InvalidClientTokenId", Status: http.StatusForbidden, Message: "The security token included in the request is invalid."}
	}
	role, ok := s.role(roleARN)
	ctx := map[string]string{"sts:RoleSessionName": name}
	if v := r.form.Get("ExternalId"); r.form.Has("ExternalId") {
		ctx["sts:ExternalId"] = v
	}
	source := r.form.Get("SourceIdentity")
	if source != "" {
		ctx["sts:SourceIdentity"] = source
	}
	p := principalOf{aws: caller}
	if !ok || !allows(role.TrustPolicy, "sts:AssumeRole", p, ctx) {
		return nil, stsDenied(caller, "sts:AssumeRole", roleARN)
	}
	if source != "" && !allows(role.TrustPolicy, "sts:SetSourceIdentity", p, ctx) {
		return nil, stsDenied(caller, "sts:SetSourceIdentity", roleARN)
	}
	return s.issue(role, name, source, r.form.Get("DurationSeconds"), "AssumeRoleResult")
}

func stsAssumeRoleWithWebIdentity(s *Server, r *request) (any, *apiError) {
	roleARN, name := r.form.Get("RoleArn"), r.form.Get("RoleSessionName")
	if e := checkSessionName(name); e != nil {
		return nil, e
	}
	claims, err := jwtClaims(r.form.Get("WebIdentityToken"))
	if err != nil {
		return nil, &apiError{Code: "InvalidIdentityToken", Message: "the web identity token is not a JWT: " + err.Error()}
	}
	// The token's issuer names the OIDC provider the role must trust; the
	// signature is not verified (the test stand makes its own tokens).
	host := strings.TrimPrefix(fmt.Sprint(claims["iss"]), "https://")
	role, ok := s.role(roleARN)
	account := AccountID
	if f := strings.Split(roleARN, ":"); len(f) > 4 {
		account = f[4]
	}
	ctx := map[string]string{host + ":sub": fmt.Sprint(claims["sub"]), "sts:RoleSessionName": name}
	switch aud := claims["aud"].(type) {
	case string:
		ctx[host+":aud"] = aud
	case []any:
		if len(aud) == 1 {
			ctx[host+":aud"] = fmt.Sprint(aud[0])
		}
	}
	p := principalOf{federated: "arn:aws:iam::" + account + ":oidc-provider/" + host}
	if !ok || !allows(role.TrustPolicy, "sts:AssumeRoleWithWebIdentity", p, ctx) {
		return nil, &apiError{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Not authorized to perform sts:AssumeRoleWithWebIdentity"}
	}
	return s.issue(role, name, "", r.form.Get("DurationSeconds"), "AssumeRoleWithWebIdentityResult")
}

func checkSessionName(name string) *apiError {
	if len(name) < 2 || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-", r))
	}) >= 0 {
		return errorf("ValidationError", "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", name)
	}
	return nil
}

type xmlCredentials struct {
	AccessKeyId     string
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

// issue hands out the session's credentials: MinIO's with the role's S3
// statements as session policy, or made-up ones the emulator accepts.
func (s *Server) issue(role Role, name, source, duration, result string) (any, *apiError) {
	secs, _ := strconv.Atoi(duration)
	if secs == 0 {
		secs = 3600
	}
	creds := xmlCredentials{AccessKeyId: "ASIA" + strings.ToUpper(strings.ReplaceAll(newUUID(), "-", ""))[:16], SecretAccessKey: newUUID(), SessionToken: newUUID(),
		Expiration: isoTime(time.Now().Add(time.Duration(secs) * time.Second))}
	if m := s.sts.minio; m != nil {
		policy, err := s3SessionPolicy(role.Policies)
		if err != nil {
			return nil, errorf("MalformedPolicyDocument", "role %s: %v", role.ARN, err)
		}
		client := sts.New(sts.Options{Region: Region, BaseEndpoint: aws.String(m.endpoint), Credentials: credentials.NewStaticCredentialsProvider(m.accessKey, m.secretKey, "")})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role.ARN), RoleSessionName: aws.String(name), Policy: aws.String(policy), DurationSeconds: aws.Int32(int32(secs))})
		if err != nil {
			return nil, errorf("InternalFailure", "MinIO STS: %v", err)
		}
		c := out.Credentials
		creds = xmlCredentials{AccessKeyId: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey), SessionToken: aws.ToString(c.SessionToken), Expiration: isoTime(aws.ToTime(c.Expiration))}
	}
	s.sts.sessions = append(s.sts.sessions, Session{RoleARN: role.ARN, RoleSessionName: name, SourceIdentity: source, AccessKeyID: creds.AccessKeyId})
	roleName := role.ARN[strings.LastIndex(role.ARN, "/")+1:]
	account := strings.Split(role.ARN, ":")[4]
	type assumedUser struct {
		Arn           string
		AssumedRoleId string
	}
	return struct {
		XMLName         xml.Name
		Credentials     xmlCredentials
		AssumedRoleUser assumedUser
		SourceIdentity  string `xml:",omitempty"`
	}{XMLName: xml.Name{Local: result}, Credentials: creds, SourceIdentity: source,
		AssumedRoleUser: assumedUser{Arn: "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + name, AssumedRoleId: "AROA" + creds.AccessKeyId[4:] + ":" + name}}, nil
}

func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("want 3 dot-separated parts, got %d", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(b, &claims)
}

// policy is an IAM policy document, as far as the emulator reads it.
type policy struct {
	Version   string
	Statement oneOrMany[statement]
}

type statement struct {
	Sid       string                                  `json:",omitempty"`
	Effect    string                                  `json:",omitempty"`
	Principal json.RawMessage                         `json:",omitempty"`
	Action    oneOrMany[string]                       `json:",omitempty"`
	Resource  oneOrMany[string]                       `json:",omitempty"`
	Condition map[string]map[string]oneOrMany[string] `json:",omitempty"`
}

// oneOrMany is a policy value that may be one item or a list of them.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '[' {
		return json.Unmarshal(b, (*[]T)(o))
	}
	var one T
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*o = oneOrMany[T]{one}
	return nil
}

// principalOf is who asks: an AWS principal ARN, or a federated provider.
type principalOf struct {
	aws, federated string
}

// matches reports whether a statement's Principal names p.
func (p principalOf) matches(raw json.RawMessage) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var m map[string]oneOrMany[string]
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for _, want := range m["AWS"] {
		if p.aws == "" {
			continue
		}
		account := strings.Split(p.aws, ":")[4]
		if want == "*" || want == p.aws || want == account || want == "arn:aws:iam::"+account+":root" {
			return true
		}
	}
	for _, want := range m["Federated"] {
		if p.federated != "" && want == p.federated {
			return true
		}
	}
	return false
}

// allows evaluates a trust policy for an action by p with the request's
// condition keys: some Allow statement matches and no Deny does. A
// condition operator the emulator does not know fails closed.
func allows(doc, action string, p principalOf, keys map[string]string) bool {
	var pol policy
	if json.Unmarshal([]byte(doc), &pol) != nil {
		return false
	}
	allowed := false
	for _, st := range pol.Statement {
		if !p.matches(st.Principal) || !actionMatches(st.Action, action) || !conditionsHold(st.Condition, keys) {
			continue
		}
		if st.Effect == "Deny" {
			return false
		}
		allowed = allowed || st.Effect == "Allow"
	}
	return allowed
}

func actionMatches(patterns []string, action string) bool {
	for _, pat := range patterns {
		if like(strings.ToLower(pat), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// like is IAM's wildcard match: * is any run of characters (slashes
// included), ? is one.
func like(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(s)
}

// conditionsHold applies StringEquals, StringLike and their negations: a
// key the request does not carry fails the positive ones.
func conditionsHold(cond map[string]map[string]oneOrMany[string], keys map[string]string) bool {
	for op, byKey := range cond {
		for key, values := range byKey {
			v, has := keys[key]
			match := false
			for _, want := range values {
				switch op {
				case "StringEquals", "StringNotEquals":
					match = match || (has && v == want)
				case "StringLike", "StringNotLike":
					match = match || (has && like(want, v))
				default:
					return false
				}
			}
			if strings.Contains(op, "Not") {
				match = !match
			}
			if !match {
				return false
			}
		}
	}
	return true
}

// s3SessionPolicy is the role's S3 statements as one policy MinIO applies
// to the session; a role without any gets a policy that denies all of S3.
func s3SessionPolicy(docs []string) (string, error) {
	out := policy{Version: "2012-10-17"}
	for _, d := range docs {
		var pol policy
		if err := json.Unmarshal([]byte(d), &pol); err != nil {
			return "", err
		}
		for _, st := range pol.Statement {
			var actions []string
			for _, a := range st.Action {
				if strings.HasPrefix(a, "s3:") {
					actions = append(actions, a)
				}
			}
			if len(actions) == 0 {
				continue
			}
			st.Sid, st.Principal, st.Action = "", nil, actions
			out.Statement = append(out.Statement, st)
		}
	}
	if len(out.Statement) == 0 {
		out.Statement = append(out.Statement, statement{Effect: "Deny", Action: []string{"s3:*"}, Resource: []string{"arn:aws:s3:::*"}})
	}
	b, err := json.Marshal(out)
	return string(b), err
}
