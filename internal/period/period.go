// Package period is the billing period: one calendar month in UTC,
// written "YYYY-MM" (AWS's billing periods, costlake's partitions and
// cycles). It is parsed once, by one rule, and counted in whole months.
package period

import (
	"errors"
	"fmt"
	"time"
)

// Layout is a period's text form, as time.Format writes it.
const Layout = "2006-01"

// The years a period may name: AWS billing data starts after 2000, and
// four digits keep the text sortable.
const (
	MinYear = 2000
	MaxYear = 9999
)

// ErrInvalid reports text that is not a billing period.
var ErrInvalid = errors.New("invalid billing period")

// Period is one month. The zero Period is no period (IsZero); every other
// value is valid. Periods compare with == and order with Compare.
type Period struct {
	year  int
	month time.Month
}

// Parse reads "YYYY-MM": four digits of a year from MinYear to MaxYear, a
// hyphen, two digits of a month.
func Parse(s string) (Period, error) {
	if len(s) != len(Layout) {
		return Period{}, invalid(s)
	}
	t, err := time.Parse(Layout, s)
	if err != nil || t.Year() < MinYear {
		return Period{}, invalid(s)
	}
	return Period{t.Year(), t.Month()}, nil
}

func invalid(s string) error {
	if len(s) > 16 {
		s = s[:16] + "…" // the text may be anyone's; quote a little of it
	}
	return fmt.Errorf("%w %q: want YYYY-MM", ErrInvalid, s)
}

// MustParse is Parse for constants in tests and defaults; it panics on
// bad text.
func MustParse(s string) Period {
	p, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return p
}

// Valid reports whether s is a billing period.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// Of is the period holding t, in UTC.
func Of(t time.Time) Period {
	t = t.UTC()
	return Period{t.Year(), t.Month()}
}

// IsZero reports the zero Period.
func (p Period) IsZero() bool { return p.year == 0 }

// String is "YYYY-MM", or "" for the zero Period.
func (p Period) String() string {
	if p.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d", p.year, p.month)
}

// Start is the first instant of the month, UTC.
func (p Period) Start() time.Time { return time.Date(p.year, p.month, 1, 0, 0, 0, 0, time.UTC) }

// End is the first instant of the next month: the period is [Start, End).
func (p Period) End() time.Time { return p.Add(1).Start() }

// Add is the period n months later (earlier for negative n). It counts
// whole months, so January plus one is February whatever the day.
func (p Period) Add(n int) Period {
	m := p.year*12 + int(p.month-1) + n
	return Period{m / 12, time.Month(m%12 + 1)}
}

// Next and Prev are the adjacent months.
func (p Period) Next() Period { return p.Add(1) }
func (p Period) Prev() Period { return p.Add(-1) }

// MonthsSince is how many months p is after q (negative when before).
func (p Period) MonthsSince(q Period) int {
	return (p.year*12 + int(p.month)) - (q.year*12 + int(q.month))
}

// Compare is -1, 0 or +1 as p is before, equal to or after q.
func (p Period) Compare(q Period) int {
	switch d := p.MonthsSince(q); {
	case d < 0:
		return -1
	case d > 0:
		return 1
	}
	return 0
}

// Before reports whether p is earlier than q.
func (p Period) Before(q Period) bool { return p.Compare(q) < 0 }

// Contains reports whether t (in any zone) falls in the period.
func (p Period) Contains(t time.Time) bool { return Of(t) == p }

// MarshalText writes "YYYY-MM", so a Period is a plain string in JSON
// (workflow inputs and API bodies keep their wire form).
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses "YYYY-MM"; empty text is the zero Period, so an
// optional field may be left out.
func (p *Period) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = Period{}
		return nil
	}
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// FinalAt is when the period is final without an invoice ID: its month
// end plus days (AWS's support fees and refunds land in the first days of
// the next month).
func (p Period) FinalAt(days int) time.Time { return p.End().AddDate(0, 0, days) }

// FinalByDate tells whether the period is final by date alone on asOf: at
// or after FinalAt. asOf is the business clock's date (package clock),
// never the wall clock of whoever asks.
func (p Period) FinalByDate(days int, asOf time.Time) bool { return !asOf.Before(p.FinalAt(days)) }
