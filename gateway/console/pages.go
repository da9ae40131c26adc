package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// view is what every page template gets: the layout's parts and the
// page's own data in Body.
type view struct {
	Title string
	Nav   string
	Who   *Identity
	CSRF  string
	Flash string
	Body  any
}

type refusal struct {
	Title, Message string
	Status         int
	Fields         map[string]string
	Back           string
}

type signInData struct {
	CSRF   string
	Error  string
	Notice bool
}

var funcs = template.FuncMap{
	"when": func(s string) string {
		if s == "" {
			return "—"
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || t.IsZero() {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"raw": func(m json.RawMessage) string {
		// A count, a flag or a short list, as text (escaped by the template).
		var v any
		if len(m) == 0 || json.Unmarshal(m, &v) != nil || v == nil {
			return "—"
		}
		switch x := v.(type) {
		case bool:
			if x {
				return "yes"
			}
			return "no"
		case []any:
			parts := make([]string, 0, len(x))
			for _, e := range x {
				parts = append(parts, fmt.Sprint(e))
			}
			return strings.Join(parts, ", ")
		case map[string]any:
			if r, ok := x["reason"]; ok {
				return fmt.Sprintf("yes: %v", r)
			}
		}
		return fmt.Sprint(v)
	},
	"decide": func(id, csrf string, approve bool) decideForm {
		return decideForm{ID: id, CSRF: csrf, Approve: approve}
	},
	// wholePayer: an assignment of every account ("*", or none named).
	"wholePayer": func(accounts []string) bool { return len(accounts) == 0 || (len(accounts) == 1 && accounts[0] == "*") },
	"held": func(m json.RawMessage) bool {
		s := strings.TrimSpace(string(m))
		return s != "" && s != "false" && s != "null"
	},
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, page string, body any) {
	t, ok := c.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	v := view{Body: body, Nav: strings.TrimSuffix(page, ".html")}
	switch b := body.(type) {
	case refusal:
		v.Title = b.Title
	case interface{ title() string }:
		v.Title = b.title()
	}
	if s != nil {
		who := s.who
		v.Who, v.CSRF = &who, s.csrf
	}
	if f := r.URL.Query().Get("done"); f != "" && len(f) <= 300 {
		v.Flash = f
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		c.log.Error("console: page failed to render", "page", page, "error", err)
		http.Error(w, "the page failed to render; see the gateway log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an API refusal as a page with the API's status: a scoped
// key's 404 for another customer's page stays a 404 that says no more.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	ae, ok := asAPIError(err)
	if !ok {
		c.log.Error("console: API call failed", "path", r.URL.Path, "error", err)
		c.render(w, r, s, http.StatusBadGateway, "refused.html", refusal{Title: "Error", Message: "The gateway could not answer this page; see its log.", Status: http.StatusBadGateway})
		return
	}
	if ae.Status == http.StatusUnauthorized {
		c.sessions.drop(s.id)
		http.Redirect(w, r, "/sign-in", http.StatusSeeOther)
		return
	}
	title := map[int]string{http.StatusNotFound: "Not found", http.StatusForbidden: "Refused", http.StatusConflict: "Not now",
		http.StatusBadRequest: "Invalid", http.StatusTooManyRequests: "Slow down"}[ae.Status]
	if title == "" {
		title = "Unavailable"
	}
	c.render(w, r, s, ae.Status, "refused.html", refusal{Title: title, Message: ae.Message, Status: ae.Status, Fields: ae.Fields, Back: r.Header.Get("Referer")})
}

// list is a list page's state: its items, the next page, and why there
// are none when the API has no list route.
type list[T any] struct {
	Items       []T
	Next        string
	Unavailable string
}

// fetchList reads one page of a list route; a gateway without it leaves
// a note instead of failing the page.
func fetchList[T any](c *Console, r *http.Request, s *session, q url.Values, segments ...string) (list[T], error) {
	var p Page[T]
	err := c.call(r, s, http.MethodGet, apiPath(q, segments...), nil, &p)
	if ae, ok := asAPIError(err); ok && ae.missingRoute() {
		return list[T]{Unavailable: fmt.Sprintf("This gateway has no list of %s yet (GET %s answered %d); open one by its ID.", segments[len(segments)-1], apiPath(nil, segments...), ae.Status)}, nil
	}
	if err != nil {
		return list[T]{}, err
	}
	return list[T]{Items: p.Items, Next: p.NextCursor}, nil
}

// statusAliases are the onboarding's names of the list's "waiting"
// statuses; a list route that refuses one name (400) is asked with the
// other.
var statusAliases = map[string]string{"waiting_for_approval": "awaiting_approval", "waiting_for_stack": "awaiting_stack"}

// fetchPayers reads one page of GET /v1/payers.
func fetchPayers(c *Console, r *http.Request, s *session, q url.Values) (list[PayerItem], error) {
	l, err := fetchList[PayerItem](c, r, s, q, "payers")
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusBadRequest {
		if alias, ok := statusAliases[q.Get("status")]; ok {
			q.Set("status", alias)
			return fetchList[PayerItem](c, r, s, q, "payers")
		}
	}
	return l, err
}

// pageQuery is the limit and cursor of a list page, from the page's URL.
func pageQuery(r *http.Request) url.Values {
	q := url.Values{"limit": {"50"}}
	if cur := r.URL.Query().Get("cursor"); cur != "" && len(cur) <= 4096 {
		q.Set("cursor", cur)
	}
	return q
}

var (
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
	periodRe  = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)
	statusRe  = regexp.MustCompile(`^[a-z_]{1,40}$`)
	// customerRe bounds what the console puts in a path; the API checks
	// the rest.
	customerRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// statuses are the payer statuses the filter offers.
var statuses = []string{"registered", "waiting_for_stack", "stack_failed", "validating", "checks_failed", "waiting_for_approval", "changes_requested", "active", "stale", "rejected", "offboarded", "failed", "unknown"}

type payersData struct {
	List     list[PayerItem]
	Status   string
	Statuses []string
	NextURL  string
}

func (payersData) title() string { return "Payers" }

func (c *Console) payersPage(w http.ResponseWriter, r *http.Request, s *session) {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/payers/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	q := pageQuery(r)
	st := r.URL.Query().Get("status")
	if st != "" && statusRe.MatchString(st) {
		q.Set("status", st)
	} else {
		st = ""
	}
	l, err := fetchPayers(c, r, s, q)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := payersData{List: l, Status: st, Statuses: statuses}
	if l.Next != "" {
		d.NextURL = "/payers?" + url.Values{"status": {st}, "cursor": {l.Next}}.Encode()
	}
	c.render(w, r, s, http.StatusOK, "payers.html", d)
}

type payerData struct {
	Payer      Payer
	Runs       []Run
	RunsNote   string
	TemporalUI string
	Decide     bool
	Approve    bool
}

func (d payerData) title() string { return "Payer " + d.Payer.ID }

// decidable are the statuses in which an operator approves, rejects or
// requests changes (the onboarding refuses the rest with 409 anyway).
var decidable = map[string]bool{"awaiting_approval": true, "checks_failed": true, "stack_failed": true}

func (c *Console) payerPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !accountID.MatchString(id) {
		c.render(w, r, s, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: fmt.Sprintf("no payer %q", id), Status: http.StatusNotFound})
		return
	}
	var p Payer
	if err := c.call(r, s, http.MethodGet, apiPath(nil, "payers", id), nil, &p); err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := payerData{Payer: p, TemporalUI: c.temporalQuery(fmt.Sprintf("CostlakePayer=%q", id)),
		Decide: s.who.Decider() && decidable[p.Status], Approve: s.who.Decider() && p.Status == "awaiting_approval"}
	var runs Runs
	if err := c.call(r, s, http.MethodGet, apiPath(url.Values{"limit": {"10"}}, "payers", id, "runs"), nil, &runs); err != nil {
		d.RunsNote = "Crawl runs are not available: " + err.Error()
	} else {
		d.Runs = runs.All()
	}
	c.render(w, r, s, http.StatusOK, "payer.html", d)
}

// temporalQuery links to the Temporal UI's workflow list filtered by a
// visibility query; empty without a UI.
func (c *Console) temporalQuery(query string) string {
	if c.cfg.TemporalUI == "" {
		return ""
	}
	return strings.TrimRight(c.cfg.TemporalUI, "/") + "/namespaces/" + url.PathEscape(c.cfg.Namespace) + "/workflows?query=" + url.QueryEscape(query)
}

// temporalWorkflow links to one workflow in the Temporal UI.
func (c *Console) temporalWorkflow(id string) string {
	if c.cfg.TemporalUI == "" || id == "" {
		return ""
	}
	return strings.TrimRight(c.cfg.TemporalUI, "/") + "/namespaces/" + url.PathEscape(c.cfg.Namespace) + "/workflows/" + url.PathEscape(id)
}

// maxReason bounds a reason or the requested changes.
const maxReason = 2000

func (c *Console) payerAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !accountID.MatchString(id) {
		c.render(w, r, s, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: fmt.Sprintf("no payer %q", id), Status: http.StatusNotFound})
		return
	}
	back := "/payers/" + id
	body := map[string]any{}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	switch action {
	case "approve":
	case "reject":
		if reason == "" || len(reason) > maxReason {
			c.render(w, r, s, http.StatusBadRequest, "refused.html", refusal{Title: "Invalid", Status: http.StatusBadRequest, Back: back,
				Message: fmt.Sprintf("A rejection needs its reason (at most %d characters).", maxReason)})
			return
		}
		body["reason"] = reason
	case "request-changes":
		var issues []string
		for _, l := range strings.Split(r.PostForm.Get("issues"), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				issues = append(issues, l)
			}
		}
		if len(issues) == 0 || len(r.PostForm.Get("issues")) > maxReason {
			c.render(w, r, s, http.StatusBadRequest, "refused.html", refusal{Title: "Invalid", Status: http.StatusBadRequest, Back: back,
				Message: fmt.Sprintf("Requesting changes needs the changes, one a line (at most %d characters).", maxReason)})
			return
		}
		body["issues"] = issues
	default:
		c.render(w, r, s, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: "There is no such action.", Status: http.StatusNotFound})
		return
	}
	if err := c.call(r, s, http.MethodPost, apiPath(nil, "payers", id, action), body, nil); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, back+"?"+url.Values{"done": {action + ": sent"}}.Encode(), http.StatusSeeOther)
}

// queue is one part of the approval queue: payers in one status, and
// the decisions the key may take on them.
type queue struct {
	List            list[PayerItem]
	Decide, Approve bool
	CSRF            string
}

type approvalsData struct {
	Waiting, Failed queue
}

// decideForm is the approve / reject / request-changes forms of a payer.
type decideForm struct {
	ID, CSRF string
	Approve  bool
}

func (approvalsData) title() string { return "Approvals" }

func (c *Console) approvalsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := approvalsData{Waiting: queue{Decide: s.who.Decider(), Approve: true, CSRF: s.csrf}, Failed: queue{Decide: s.who.Decider(), CSRF: s.csrf}}
	var err error
	if d.Waiting.List, err = fetchPayers(c, r, s, url.Values{"status": {"waiting_for_approval"}, "limit": {"100"}}); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Failed.List, err = fetchPayers(c, r, s, url.Values{"status": {"checks_failed"}, "limit": {"100"}}); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "approvals.html", d)
}

type customersData struct {
	List    list[CustomerItem]
	NextURL string
}

func (customersData) title() string { return "Customers" }

func (c *Console) customersPage(w http.ResponseWriter, r *http.Request, s *session) {
	if id := strings.TrimSpace(r.URL.Query().Get("id")); id != "" {
		http.Redirect(w, r, "/customers/"+url.PathEscape(id), http.StatusSeeOther)
		return
	}
	if !s.who.Unscoped() {
		// A scoped key has one customer: its own page.
		http.Redirect(w, r, "/customers/"+url.PathEscape(s.who.CustomerID), http.StatusSeeOther)
		return
	}
	l, err := fetchList[CustomerItem](c, r, s, pageQuery(r), "customers")
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	d := customersData{List: l}
	if l.Next != "" {
		d.NextURL = "/customers?" + url.Values{"cursor": {l.Next}}.Encode()
	}
	c.render(w, r, s, http.StatusOK, "customers.html", d)
}

type customerData struct {
	Customer      Customer
	Pricebook     *Pricebook
	PricebookNote string
	Cycles        list[CycleItem]
	TemporalUI    string
	LastMonth     string
}

func (d customerData) title() string { return "Customer " + d.Customer.ID }

func (c *Console) customerPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if !customerRe.MatchString(id) {
		c.render(w, r, s, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: fmt.Sprintf("no customer %q", id), Status: http.StatusNotFound})
		return
	}
	var d customerData
	if err := c.call(r, s, http.MethodGet, apiPath(nil, "customers", id), nil, &d.Customer); err != nil {
		c.fail(w, r, s, err)
		return
	}
	var pb Pricebook
	switch err := c.call(r, s, http.MethodGet, apiPath(nil, "customers", id, "pricebook"), nil, &pb); {
	case err == nil:
		d.Pricebook = &pb
	default:
		if ae, ok := asAPIError(err); ok && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden) {
			d.PricebookNote = ae.Message
		} else {
			d.PricebookNote = err.Error()
		}
	}
	var err error
	if d.Cycles, err = fetchList[CycleItem](c, r, s, url.Values{"limit": {"24"}}, "customers", id, "cycles"); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if s.who.Unscoped() {
		d.TemporalUI = c.temporalQuery(fmt.Sprintf("CostlakeCustomer=%q", id))
	}
	d.LastMonth = c.now().AddDate(0, -1, 0).Format("2006-01")
	c.render(w, r, s, http.StatusOK, "customer.html", d)
}

func (c *Console) now() time.Time {
	if c.cfg.Now != nil {
		return c.cfg.Now().UTC()
	}
	return time.Now().UTC()
}

type cycleData struct {
	CustomerID, Period string
	Cycle              Cycle
	TemporalUI         string
}

func (d cycleData) title() string { return "Cycle " + d.CustomerID + " " + d.Period }

func (c *Console) cyclePage(w http.ResponseWriter, r *http.Request, s *session) {
	id, p := r.PathValue("id"), r.PathValue("period")
	if !customerRe.MatchString(id) || !periodRe.MatchString(p) {
		c.render(w, r, s, http.StatusNotFound, "refused.html", refusal{Title: "Not found", Message: "There is no such cycle (a period is YYYY-MM).", Status: http.StatusNotFound})
		return
	}
	d := cycleData{CustomerID: id, Period: p}
	if err := c.call(r, s, http.MethodGet, apiPath(nil, "customers", id, "cycles", p), nil, &d.Cycle); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if s.who.Unscoped() {
		d.TemporalUI = c.temporalWorkflow(d.Cycle.WorkflowID)
	}
	c.render(w, r, s, http.StatusOK, "cycle.html", d)
}

// findCycle is the cycle form on a customer's page: a GET, since it only
// reads (and a CSRF token has no place in a URL).
func (c *Console) findCycle(w http.ResponseWriter, r *http.Request, s *session) {
	id, p := r.PathValue("id"), strings.TrimSpace(r.URL.Query().Get("period"))
	if !customerRe.MatchString(id) || !periodRe.MatchString(p) {
		c.render(w, r, s, http.StatusBadRequest, "refused.html", refusal{Title: "Invalid", Message: "A period is YYYY-MM.", Status: http.StatusBadRequest, Back: "/customers/" + url.PathEscape(id)})
		return
	}
	http.Redirect(w, r, "/customers/"+url.PathEscape(id)+"/cycles/"+p, http.StatusSeeOther)
}

type monthEndData struct {
	Customers  list[CustomerItem]
	LastMonth  string
	Run        bool
	TemporalUI string
}

func (monthEndData) title() string { return "Month-end" }

func (c *Console) monthEndData(r *http.Request, s *session) (monthEndData, error) {
	d := monthEndData{LastMonth: c.now().AddDate(0, -1, 0).Format("2006-01"), Run: s.who.Decider()}
	l, err := fetchList[CustomerItem](c, r, s, url.Values{"limit": {"200"}}, "customers")
	d.Customers = l
	if s.who.Unscoped() {
		d.TemporalUI = c.temporalQuery(`WorkflowType="MonthEnd"`)
	}
	return d, err
}

func (c *Console) monthEndPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.monthEndData(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, http.StatusOK, "monthend.html", d)
}

func (c *Console) runMonthEnd(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]string{}
	if p := strings.TrimSpace(r.PostForm.Get("period")); p != "" {
		if !periodRe.MatchString(p) {
			c.render(w, r, s, http.StatusBadRequest, "refused.html", refusal{Title: "Invalid", Message: "A period is YYYY-MM.", Status: http.StatusBadRequest, Back: "/month-end"})
			return
		}
		body["period"] = p
	}
	var started MonthEndStarted
	if err := c.call(r, s, http.MethodPost, "/v1/month-end", body, &started); err != nil {
		c.fail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/month-end?"+url.Values{"done": {"month-end of " + started.Period + " started: " + started.WorkflowID}}.Encode(), http.StatusSeeOther)
}
