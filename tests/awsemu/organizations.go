package awsemu

import (
	"fmt"
	"hash/fnv"
	"time"
)

// Organizations: awsJson1_1, X-Amz-Target AWSOrganizationsV20161128.<Op>,
// signing name "organizations". Operations: ListAccounts, DescribeAccount,
// DescribeOrganization.

// Account is an AWS Organizations account, as ListAccounts and
// DescribeAccount return it. Empty fields get defaults from
// [Server.SetOrganization].
type Account struct {
	Id              string
	Arn             string    // default arn:aws:organizations::<management>:account/<org id>/<Id>
	Email           string    // default <Id>@example.com
	Name            string    // default "account <Id>"
	State           string    // ACTIVE (default), SUSPENDED, PENDING_ACTIVATION, PENDING_CLOSURE, CLOSED
	Status          string    // ACTIVE (default), SUSPENDED, PENDING_CLOSURE
	JoinedMethod    string    // CREATED for the management account, INVITED otherwise (defaults)
	JoinedTimestamp time.Time // default 2020-01-01T00:00:00Z
}

type orgState struct {
	management string // "" until SetOrganization: not in an organization
	member     string // set by SetMemberAccount: the caller is this member account
	id         string
	accounts   []Account
	errCode    string
	errMessage string
}

// SetOrganization makes the caller the management account of an
// organization with the given accounts, in ListAccounts order. Include
// the management account in accounts, as AWS does. Until this is called,
// every Organizations operation fails with AWSOrganizationsNotInUseException.
func (s *Server) SetOrganization(management string, accounts []Account) {
	h := fnv.New64a()
	h.Write([]byte(management))
	id := fmt.Sprintf("o-%010x", h.Sum64()&0xffffffffff)
	out := make([]Account, len(accounts))
	for i, a := range accounts {
		if a.Arn == "" {
			a.Arn = fmt.Sprintf("arn:aws:organizations::%s:account/%s/%s", management, id, a.Id)
		}
		if a.Email == "" {
			a.Email = a.Id + "@example.com"
		}
		if a.Name == "" {
			a.Name = "account " + a.Id
		}
		if a.State == "" {
			a.State = "ACTIVE"
		}
		if a.Status == "" {
			a.Status = "ACTIVE"
		}
		if a.JoinedMethod == "" {
			a.JoinedMethod = "INVITED"
			if a.Id == management {
				a.JoinedMethod = "CREATED"
			}
		}
		if a.JoinedTimestamp.IsZero() {
			a.JoinedTimestamp = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		out[i] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org.management, s.org.id, s.org.accounts, s.org.member = management, id, out, ""
}

// SetMemberAccount makes the caller member, an account of the
// organization that management manages. As AWS answers a member account,
// DescribeOrganization works (and names the management account), while
// ListAccounts and DescribeAccount fail with AccessDeniedException: only
// the management account may list the organization.
func (s *Server) SetMemberAccount(member, management string) {
	s.SetOrganization(management, []Account{{Id: management}, {Id: member}})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org.member = member
}

// SetOrganizationsError makes every Organizations operation fail with code
// and message, e.g. AWSOrganizationsNotInUseException for a payer that is
// not in an organization, or AccessDeniedException for a member account
// or a role without permission. An empty message gets AWS's usual text
// for known codes; an empty code clears the error.
func (s *Server) SetOrganizationsError(code, message string) {
	if message == "" {
		switch code {
		case "AWSOrganizationsNotInUseException":
			message = "Your account is not a member of an organization."
		case "AccessDeniedException":
			message = "You don't have permissions to access this resource."
		default:
			message = code
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.org.errCode, s.org.errMessage = code, message
}

type wireAccount struct {
	Id              string
	Arn             string
	Email           string
	Name            string
	State           string
	Status          string
	JoinedMethod    string
	JoinedTimestamp epochSeconds
}

func toWireAccount(a Account) wireAccount {
	return wireAccount{a.Id, a.Arn, a.Email, a.Name, a.State, a.Status, a.JoinedMethod, epochSeconds(a.JoinedTimestamp)}
}

func init() {
	register(&service{
		signingName:  "organizations",
		target:       "AWSOrganizationsV20161128",
		jsonVersion:  "1.1",
		accessDenied: "AccessDeniedException",
		guard: func(s *Server, r *request) *apiError {
			if s.org.errCode != "" {
				return &apiError{Code: s.org.errCode, Message: s.org.errMessage}
			}
			if s.org.management == "" {
				return errorf("AWSOrganizationsNotInUseException", "Your account is not a member of an organization.")
			}
			if s.org.member != "" && r.Operation != "DescribeOrganization" {
				return errorf("AccessDeniedException", "You don't have permissions to access this resource.")
			}
			return nil
		},
		ops: map[string]handler{
			"ListAccounts":         orgListAccounts,
			"DescribeAccount":      orgDescribeAccount,
			"DescribeOrganization": orgDescribeOrganization,
		},
	})
}

func orgInvalidInput(reason, message string) *apiError {
	return &apiError{Code: "InvalidInputException", Message: message, Fields: map[string]any{"Reason": reason}}
}

func orgListAccounts(s *Server, r *request) (any, *apiError) {
	var in struct {
		MaxResults int
		NextToken  string
	}
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	if in.MaxResults < 0 || in.MaxResults > 20 {
		return nil, orgInvalidInput("MAX_VALUE_EXCEEDED", "You provided a value that exceeds the maximum allowed value.")
	}
	accounts, next, ok := page(s, r.Operation, s.org.accounts, in.NextToken, in.MaxResults)
	if !ok {
		return nil, orgInvalidInput("INVALID_NEXT_TOKEN", "You specified an invalid value for nextToken.")
	}
	out := struct {
		Accounts  []wireAccount
		NextToken string `json:",omitempty"`
	}{Accounts: []wireAccount{}, NextToken: next}
	for _, a := range accounts {
		out.Accounts = append(out.Accounts, toWireAccount(a))
	}
	return out, nil
}

func orgDescribeAccount(s *Server, r *request) (any, *apiError) {
	var in struct{ AccountId string }
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	if !isAccountID(in.AccountId) {
		return nil, orgInvalidInput("INVALID_PATTERN", "You specified a value with an invalid pattern.")
	}
	for _, a := range s.org.accounts {
		if a.Id == in.AccountId {
			return struct{ Account wireAccount }{toWireAccount(a)}, nil
		}
	}
	return nil, errorf("AccountNotFoundException", "You specified an account that doesn't exist.")
}

func orgDescribeOrganization(s *Server, _ *request) (any, *apiError) {
	o := struct {
		Id                 string
		Arn                string
		FeatureSet         string
		MasterAccountArn   string
		MasterAccountId    string
		MasterAccountEmail string `json:",omitempty"`
	}{
		Id:               s.org.id,
		Arn:              fmt.Sprintf("arn:aws:organizations::%s:organization/%s", s.org.management, s.org.id),
		FeatureSet:       "ALL",
		MasterAccountArn: fmt.Sprintf("arn:aws:organizations::%s:account/%s/%s", s.org.management, s.org.id, s.org.management),
		MasterAccountId:  s.org.management,
	}
	for _, a := range s.org.accounts {
		if a.Id == s.org.management {
			o.MasterAccountArn, o.MasterAccountEmail = a.Arn, a.Email
		}
	}
	return struct{ Organization any }{o}, nil
}

func isAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, c := range id {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
