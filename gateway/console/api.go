package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
)

// APIError is a refusal or failure the API answered, as its error body
// says it.
type APIError struct {
	Status  int
	Code    string
	Message string
	Fields  map[string]string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("the API answered %d %s: %s", e.Status, e.Code, e.Message)
}

// missingRoute reports whether the API has no such route (a gateway
// without the list endpoints): Echo's own 404 or 405, not a handler's
// "no such customer".
func (e *APIError) missingRoute() bool {
	return e.Status == http.StatusMethodNotAllowed || (e.Status == http.StatusNotFound && e.Message == http.StatusText(http.StatusNotFound))
}

// maxAPIBody bounds what the console decodes of one API answer.
const maxAPIBody = 8 << 20

// call runs one API request in process with the session's key and
// decodes a 2xx answer into out (when not nil). The request keeps the
// caller's address, so the API's audit records say who called.
func (c *Console) call(r *http.Request, s *session, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequestWithContext(r.Context(), method, path, rd)
	req.RemoteAddr = r.RemoteAddr
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	c.cfg.API.ServeHTTP(rec, req)
	data := rec.Body.Bytes()
	if len(data) > maxAPIBody {
		return fmt.Errorf("the API's answer to %s %s is over %d bytes", method, path, maxAPIBody)
	}
	if rec.Code < 200 || rec.Code > 299 {
		var eb struct {
			Error struct {
				Code    string            `json:"code"`
				Message string            `json:"message"`
				Fields  map[string]string `json:"fields"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &eb) // a body that is not the error shape still has its status
		return &APIError{Status: rec.Code, Code: eb.Error.Code, Message: eb.Error.Message, Fields: eb.Error.Fields}
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the API's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// apiPath joins escaped path segments under /v1 with a query.
func apiPath(q url.Values, segments ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segments {
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	if len(q) > 0 {
		b.WriteString("?")
		b.WriteString(q.Encode())
	}
	return b.String()
}

func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

// Amount is a decimal amount as the API writes it (a string); a number is
// accepted too, as its text.
type Amount string

func (a *Amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Amount(s)
		return nil
	}
	*a = Amount(strings.TrimSpace(string(b)))
	return nil
}

// Page is a list page of the API: {"items": [...], "next_cursor": "…"}.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// PayerItem is an item of GET /v1/payers.
type PayerItem struct {
	PayerAccountID string `json:"payer_account_id"`
	CustomerID     string `json:"customer_id"`
	Name           string `json:"name"`
	Status         string `json:"status"`
	StatusSince    string `json:"status_since"`
	Checks         struct {
		Passed  int `json:"passed"`
		Failed  int `json:"failed"`
		Pending int `json:"pending"`
	} `json:"checks"`
	LastCrawl string `json:"last_crawl"`
	Stale     bool   `json:"stale"`
}

// CustomerItem is an item of GET /v1/customers. Accounts and on_hold are
// shown as they come (a count or a list; a flag or the hold).
type CustomerItem struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	Accounts         json.RawMessage `json:"accounts"`
	PricebookVersion int             `json:"pricebook_version"`
	LastClosedPeriod string          `json:"last_closed_period"`
	OnHold           json.RawMessage `json:"on_hold"`
}

// CycleItem is an item of GET /v1/customers/{id}/cycles.
type CycleItem struct {
	Period           string `json:"period"`
	Status           string `json:"status"`
	ClosedAt         string `json:"closed_at"`
	PricebookVersion int    `json:"pricebook_version"`
	Currency         string `json:"currency"`
	Total            Amount `json:"total"`
	Due              Amount `json:"due"`
}

// Check is one onboarding check.
type Check struct {
	Name    string `json:"name"`
	Result  string `json:"result"`
	Message string `json:"message"`
}

// Payer is GET /v1/payers/{id}.
type Payer struct {
	ID           string `json:"id"`
	WorkflowID   string `json:"workflow_id"`
	Status       string `json:"status"`
	Registration struct {
		CustomerID     string `json:"customer_id"`
		PayerAccountID string `json:"payer_account_id"`
		Name           string `json:"name"`
		Access         struct {
			Mode    string `json:"mode"`
			RoleARN string `json:"role_arn"`
		} `json:"access"`
		Export map[string]any `json:"export"`
	} `json:"registration"`
	Failure *struct {
		Step   string `json:"step"`
		Reason string `json:"reason"`
		Fix    string `json:"fix"`
	} `json:"failure"`
	Stack struct {
		Name           string `json:"name"`
		QuickCreateURL string `json:"quick_create_url"`
		TemplateURL    string `json:"template_url"`
		Status         string `json:"status"`
		Reason         string `json:"reason"`
		Waiting        string `json:"waiting"`
		Polls          int    `json:"polls"`
		Reminders      int    `json:"reminders"`
	} `json:"stack"`
	Wait *struct {
		Since      string `json:"since"`
		Deadline   string `json:"deadline"`
		FreshAfter string `json:"fresh_after"`
	} `json:"wait"`
	Checks           []Check  `json:"checks"`
	ChecksAt         string   `json:"checks_at"`
	Accounts         []string `json:"accounts"`
	BillPayer        string   `json:"bill_payer_account_id"`
	LatestPeriod     string   `json:"latest_period"`
	RequestedChanges []string `json:"requested_changes"`
	RejectReason     string   `json:"reject_reason"`
	ApprovedBy       string   `json:"approved_by"`
	ActivatedAt      string   `json:"activated_at"`
	CrawlSchedule    string   `json:"crawl_schedule"`
	ScheduleError    string   `json:"schedule_error"`
	FirstIngestion   *struct {
		WorkflowID string `json:"workflow_id"`
		Period     string `json:"period"`
		Note       string `json:"note"`
	} `json:"first_ingestion"`
	Events []struct {
		At   string `json:"at"`
		What string `json:"what"`
	} `json:"events"`
	Schedule *struct {
		ID          string   `json:"id"`
		Paused      bool     `json:"paused"`
		Note        string   `json:"note"`
		NextRuns    []string `json:"next_runs"`
		Crawls      int      `json:"crawls"`
		LastStarted string   `json:"last_started"`
		RunningNow  int      `json:"running_now"`
	} `json:"schedule"`
}

// Run is one crawl or backfill of GET /v1/payers/{id}/runs.
type Run struct {
	WorkflowID string          `json:"workflow_id"`
	RunID      string          `json:"run_id"`
	Status     string          `json:"status"`
	Started    string          `json:"started"`
	Closed     string          `json:"closed"`
	Result     json.RawMessage `json:"result"`
	Failure    string          `json:"failure"`
}

// Runs is GET /v1/payers/{id}/runs: {"runs": [...]} today, the list
// shape ({"items": [...]}) once the list endpoints land; both are read.
type Runs struct {
	Runs       []Run  `json:"runs"`
	Items      []Run  `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// All is the runs whichever shape held them (the list shape repeats
// them in both).
func (r Runs) All() []Run {
	if len(r.Items) > 0 {
		return r.Items
	}
	return r.Runs
}

// Customer is GET /v1/customers/{id}.
type Customer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Period string `json:"period"`
	Export *struct {
		URL  string `json:"url"`
		Mode string `json:"mode"`
	} `json:"export"`
	Accounts []struct {
		PayerAccountID string   `json:"payer_account_id"`
		Accounts       []string `json:"accounts"`
	} `json:"accounts"`
}

// Pricebook is GET /v1/customers/{id}/pricebook.
type Pricebook struct {
	Version       int    `json:"version"`
	EffectiveFrom string `json:"effective_from"`
	CreatedBy     string `json:"created_by"`
	CreatedAt     string `json:"created_at"`
}

// Cycle is GET /v1/customers/{id}/cycles/{period}, in the operator's or
// the customer's view (the latter has no cost).
type Cycle struct {
	WorkflowID string `json:"workflow_id"`
	Status     string `json:"status"`
	Source     string `json:"source"`
	Failure    string `json:"failure"`
	Result     *struct {
		CustomerID       string `json:"customer_id"`
		Period           string `json:"period"`
		PricebookVersion int    `json:"pricebook_version"`
		ClosedAt         string `json:"closed_at"`
		Rows             int    `json:"rows"`
		Bill             struct {
			Currency string `json:"currency"`
			Lines    []struct {
				Kind           string  `json:"kind"`
				Description    string  `json:"description"`
				LineItems      int     `json:"line_items"`
				Cost           *Amount `json:"cost"`
				Amount         Amount  `json:"amount"`
				CorrectsPeriod string  `json:"corrects_period"`
			} `json:"lines"`
			Cost         *Amount `json:"cost"`
			Total        Amount  `json:"total"`
			Due          Amount  `json:"due"`
			UnusedCredit Amount  `json:"unused_credit"`
		} `json:"bill"`
		Exports []struct {
			URL            string `json:"url"`
			PayerAccountID string `json:"payer_account_id"`
			Mode           string `json:"mode"`
			Files          int    `json:"files"`
			Rows           int    `json:"rows"`
			UnblendedCost  Amount `json:"unblended_cost"`
		} `json:"exports"`
		Invoices []string `json:"invoices"`
	} `json:"result"`
}

// MonthEndStarted is POST /v1/month-end's answer.
type MonthEndStarted struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	Period     string `json:"period"`
	Status     string `json:"status"`
}
