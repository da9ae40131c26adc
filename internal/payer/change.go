package payer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/costlake/costlake/internal/period"
)

// Cutover is an export migration (legacy CUR to CUR 2.0, a new bucket)
// while both exports deliver: every period is taken from exactly one of
// them, periods before From from Previous (its restatements included),
// From and later from the registration's Export. A period the lake held
// from Previous is replaced whole by Export's delivery, never added to.
type Cutover struct {
	Previous Export        `json:"previous"`
	From     period.Period `json:"from"`
}

// ExportFor is the export period p is taken from.
func (r Registration) ExportFor(p period.Period) Export {
	if c := r.Cutover; c != nil && p.Before(c.From) {
		return c.Previous
	}
	return r.Export
}

// FieldErrors checks a cut-over from the export current; keys are its
// JSON field names ("previous.bucket"). A nil cut-over has none.
func (c *Cutover) FieldErrors(current Export) map[string]string {
	f := map[string]string{}
	if c == nil {
		return f
	}
	for k, v := range c.Previous.FieldErrors() {
		f["previous."+k] = v
	}
	if c.From.IsZero() {
		f["from"] = "required: the first period (YYYY-MM) taken from the new export"
	}
	switch {
	case c.Previous.Type == CostExplorer || current.Type == CostExplorer:
		f["previous.type"] = "a cut-over is between two exports in buckets; Cost Explorer is none"
	case sameTable(c.Previous.Type) != sameTable(current.Type):
		f["previous.type"] = tableMessage
	case c.Previous.Source() == current.Source():
		f["previous"] = "the new export is the current one (" + current.Source() + "): a cut-over is between two exports"
	}
	return f
}

// sameTable tells which lake table an export type's rows go to: FOCUS
// keeps its own columns in billing.focus_line_items, the CUR formats share
// billing.line_items. A cut-over stays in one table, where replacing a
// period removes the previous export's rows of it.
func sameTable(t ExportType) string {
	if t == FOCUS {
		return "focus_line_items"
	}
	return "line_items"
}

const tableMessage = "FOCUS rows go to billing.focus_line_items and CUR rows to billing.line_items: a period moved between them would be held by both; offboard and register the payer again to change between FOCUS and CUR"

// Change is a change of a registration (PATCH /v1/payers/{id}): the
// fields it sets replace the registration's, the others stay.
type Change struct {
	Name   *string `json:"name,omitempty"`
	Export *Export `json:"export,omitempty"`
	// CutoverFrom, with Export, is the first period taken from the new
	// export; the periods before it stay with the export it replaces.
	// Zero: every period from the new export.
	CutoverFrom       period.Period `json:"cutover_from,omitzero"`
	LinkedAccounts    *string       `json:"linked_accounts,omitempty"`
	ConnectedAccounts *[]string     `json:"connected_accounts,omitempty"`
	// Schedule replaces the whole schedule; {} is the default.
	Schedule *Schedule `json:"schedule,omitempty"`
}

// Empty reports a change that sets nothing.
func (ch Change) Empty() bool {
	return ch.Name == nil && ch.Export == nil && ch.CutoverFrom.IsZero() && ch.LinkedAccounts == nil &&
		ch.ConnectedAccounts == nil && ch.Schedule == nil
}

// Changed lists the JSON fields of the registration a change sets, sorted
// (written in order: workflows call it, and map order is random).
func (ch Change) Changed() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"connected_accounts", ch.ConnectedAccounts != nil}, {"cutover", ch.Export != nil}, {"export", ch.Export != nil},
		{"linked_accounts", ch.LinkedAccounts != nil}, {"name", ch.Name != nil}, {"schedule", ch.Schedule != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Apply returns the registration with the change made, normalized, and a
// message per bad field keyed as in the request ("export.bucket",
// "cutover_from"); the registration is only usable when there are none.
// It is the same check a registration gets, plus what a registered
// payer cannot change: the stack is deployed, so the change cannot ask it
// to create an export or a bucket, and the rows stay in their table.
func (r Registration) Apply(ch Change) (Registration, map[string]string) {
	f := map[string]string{}
	if ch.Empty() {
		f["body"] = "nothing to change: send name, export (with cutover_from), linked_accounts, connected_accounts or schedule"
		return r, f
	}
	next := r
	next.ConnectedAccounts = slices.Clone(r.ConnectedAccounts)
	if ch.Name != nil {
		next.Name = *ch.Name
	}
	if ch.LinkedAccounts != nil {
		next.LinkedAccounts = *ch.LinkedAccounts
		if *ch.LinkedAccounts == "all" && ch.ConnectedAccounts == nil {
			next.ConnectedAccounts = nil // "all" keeps no list
		}
	}
	if ch.ConnectedAccounts != nil {
		next.ConnectedAccounts = slices.Clone(*ch.ConnectedAccounts)
	}
	if ch.Schedule != nil {
		next.Schedule = *ch.Schedule
	}
	if ch.Export != nil {
		e := *ch.Export
		next.Export = e
		next.Cutover = nil
		if !ch.CutoverFrom.IsZero() {
			// Only the export being replaced is kept: an older one's
			// periods are before every period a crawl looks at.
			next.Cutover = &Cutover{Previous: r.Export, From: ch.CutoverFrom}
		}
		if e.Create {
			f["export.create"] = "the payer's stack is deployed: create the export in the account (or update the stack), then send detect_existing"
		}
		if e.CreateBucket {
			f["export.create_bucket"] = "the payer's stack is deployed: create the bucket in the account (or update the stack) first"
		}
		if (e.Type == CostExplorer) != (r.Export.Type == CostExplorer) {
			f["export.type"] = fmt.Sprintf("cannot change from %s to %s: Cost Explorer's daily costs and an export's line items are different tables; offboard and register the payer again", r.Export.Type, e.Type)
		} else if sameTable(e.Type) != sameTable(r.Export.Type) {
			f["export.type"] = tableMessage
		}
	} else if !ch.CutoverFrom.IsZero() {
		f["cutover_from"] = "only with export: the first period taken from the new export"
	}
	next.Normalize()
	for k, v := range next.FieldErrors() {
		// The cut-over is made of the request's cutover_from and the
		// export being replaced, which was checked when it was set.
		if strings.HasPrefix(k, "cutover.") {
			k = "cutover_from"
		}
		if _, set := f[k]; !set {
			f[k] = v
		}
	}
	return next, f
}
