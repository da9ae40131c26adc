package awsemu

import (
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// CostRecord is one fact of Cost Explorer's data: what one combination of
// dimension values cost on one day. [Server.SetCostRecords] makes
// GetCostAndUsage compute its answers from such facts, as AWS does.
type CostRecord struct {
	Date string // YYYY-MM-DD
	// Dimensions holds the record's value of each dimension a request may
	// filter or group by, e.g. LINKED_ACCOUNT, SERVICE, RECORD_TYPE.
	Dimensions map[string]string
	// Metrics holds the amounts, decimal strings, e.g. UnblendedCost.
	Metrics   map[string]MetricValue
	Estimated bool
}

// SetCostRecords makes GetCostAndUsage answer from records instead of the
// results of [Server.SetCostAndUsage]. A DAILY or MONTHLY request keeps
// the records whose Date falls in its TimePeriod and that match its
// Filter (Dimensions with EQUALS values, And, Or, Not), groups them by
// its GroupBy dimensions (group keys in that order, groups sorted by
// keys) and sums each requested metric exactly. Every period of the range
// has a result, empty or not. Pages hold up to SetPageSize groups, so one
// period's groups may continue on the next page, as on AWS.
// SetCostAndUsage (or a nil slice) goes back to fixed results.
func (s *Server) SetCostRecords(records []CostRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.costs.records = slices.Clone(records)
	s.costs.useRecords = records != nil
}

// ceExpression is Cost Explorer's Expression, the dimension parts.
type ceExpression struct {
	And        []ceExpression `json:",omitempty"`
	Or         []ceExpression `json:",omitempty"`
	Not        *ceExpression  `json:",omitempty"`
	Dimensions *struct {
		Key          string
		Values       []string
		MatchOptions []string `json:",omitempty"`
	} `json:",omitempty"`
	Tags           json.RawMessage `json:",omitempty"`
	CostCategories json.RawMessage `json:",omitempty"`
}

func (e *ceExpression) check() *apiError {
	n := 0
	for _, set := range []bool{len(e.And) > 0, len(e.Or) > 0, e.Not != nil, e.Dimensions != nil} {
		if set {
			n++
		}
	}
	if len(e.Tags) > 0 || len(e.CostCategories) > 0 {
		return errorf("ValidationException", "awsemu filters by Dimensions only")
	}
	if n != 1 {
		return errorf("ValidationException", "Expression must have exactly one of And, Or, Not or Dimensions")
	}
	if d := e.Dimensions; d != nil {
		for _, m := range d.MatchOptions {
			if m != "EQUALS" && m != "CASE_SENSITIVE" {
				return errorf("ValidationException", "awsemu supports MatchOptions EQUALS and CASE_SENSITIVE only, not %s", m)
			}
		}
		if d.Key == "" || len(d.Values) == 0 {
			return errorf("ValidationException", "Dimensions needs a Key and Values")
		}
	}
	for i := range e.And {
		if err := e.And[i].check(); err != nil {
			return err
		}
	}
	for i := range e.Or {
		if err := e.Or[i].check(); err != nil {
			return err
		}
	}
	if e.Not != nil {
		return e.Not.check()
	}
	return nil
}

func (e *ceExpression) match(r *CostRecord) bool {
	switch {
	case len(e.And) > 0:
		for i := range e.And {
			if !e.And[i].match(r) {
				return false
			}
		}
		return true
	case len(e.Or) > 0:
		for i := range e.Or {
			if e.Or[i].match(r) {
				return true
			}
		}
		return false
	case e.Not != nil:
		return !e.Not.match(r)
	default:
		return slices.Contains(e.Dimensions.Values, r.Dimensions[e.Dimensions.Key])
	}
}

// ceGroupItem is one group of one period; a period with no groups is one
// item with a nil group, so that it still shows in the results.
type ceGroupItem struct {
	period DateInterval
	group  *Group
	total  map[string]MetricValue
	est    bool
}

// ceAggregate answers GetCostAndUsage from the records.
func ceAggregate(s *Server, r *request, tp DateInterval, granularity string, metrics []string, groupBy []string, filter json.RawMessage, token string) (any, *apiError) {
	var expr *ceExpression
	if len(filter) > 0 && string(filter) != "null" {
		expr = &ceExpression{}
		if err := json.Unmarshal(filter, expr); err != nil {
			return nil, errorf("SerializationException", "Filter: %v", err)
		}
		if err := expr.check(); err != nil {
			return nil, err
		}
	}
	periods, apiErr := cePeriods(tp, granularity)
	if apiErr != nil {
		return nil, apiErr
	}
	var items []ceGroupItem
	for _, p := range periods {
		type acc struct {
			keys []string
			sums map[string]*decimalSum
		}
		groups := map[string]*acc{}
		total := map[string]*decimalSum{}
		est := false
		for i := range s.costs.records {
			rec := &s.costs.records[i]
			if rec.Date < p.Start || rec.Date >= p.End || (expr != nil && !expr.match(rec)) {
				continue
			}
			est = est || rec.Estimated
			keys := make([]string, len(groupBy))
			for j, d := range groupBy {
				keys[j] = rec.Dimensions[d]
			}
			id := strings.Join(keys, "\x00")
			g := groups[id]
			if g == nil {
				g = &acc{keys: keys, sums: map[string]*decimalSum{}}
				groups[id] = g
			}
			for _, m := range metrics {
				mv, ok := rec.Metrics[m]
				if !ok {
					continue
				}
				for _, dst := range []map[string]*decimalSum{g.sums, total} {
					if dst[m] == nil {
						dst[m] = &decimalSum{unit: mv.Unit}
					}
					if err := dst[m].add(mv.Amount); err != nil {
						return nil, errorf("InternalFailure", "awsemu record %s: %s: %v", rec.Date, m, err)
					}
				}
			}
		}
		if len(groupBy) == 0 {
			items = append(items, ceGroupItem{period: p, total: formatSums(metrics, total), est: est})
			continue
		}
		ids := make([]string, 0, len(groups))
		for id := range groups {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if len(ids) == 0 {
			items = append(items, ceGroupItem{period: p, est: est})
		}
		for _, id := range ids {
			g := groups[id]
			items = append(items, ceGroupItem{period: p, group: &Group{Keys: g.keys, Metrics: formatSums(metrics, g.sums)}, est: est})
		}
	}
	pageItems, next, ok := page(s, r.Operation, items, token, 0)
	if !ok {
		return nil, errorf("InvalidNextTokenException", "The pagination token is invalid.")
	}
	results := []ResultByTime{}
	for _, it := range pageItems {
		if n := len(results); n == 0 || results[n-1].TimePeriod != it.period {
			results = append(results, ResultByTime{TimePeriod: it.period, Total: it.total, Estimated: it.est})
			if len(groupBy) > 0 {
				results[len(results)-1].Total = map[string]MetricValue{}
			}
		}
		if it.group != nil {
			last := &results[len(results)-1]
			last.Groups = append(last.Groups, *it.group)
		}
	}
	defs := make([]map[string]string, len(groupBy))
	for i, d := range groupBy {
		defs[i] = map[string]string{"Type": "DIMENSION", "Key": d}
	}
	return struct {
		GroupDefinitions []map[string]string `json:",omitempty"`
		ResultsByTime    []ResultByTime
		NextPageToken    string `json:",omitempty"`
	}{defs, results, next}, nil
}

// cePeriods splits [tp.Start, tp.End) into days or months.
func cePeriods(tp DateInterval, granularity string) ([]DateInterval, *apiError) {
	start, err1 := time.Parse(time.DateOnly, tp.Start)
	end, err2 := time.Parse(time.DateOnly, tp.End)
	if err1 != nil || err2 != nil {
		return nil, errorf("ValidationException", "awsemu: TimePeriod must be YYYY-MM-DD dates")
	}
	var out []DateInterval
	for t := start; t.Before(end); {
		var next time.Time
		switch granularity {
		case "DAILY":
			next = t.AddDate(0, 0, 1)
		case "MONTHLY":
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		default:
			return nil, errorf("ValidationException", "awsemu: records answer DAILY and MONTHLY requests only")
		}
		if next.After(end) {
			next = end
		}
		out = append(out, DateInterval{Start: t.Format(time.DateOnly), End: next.Format(time.DateOnly)})
		t = next
	}
	return out, nil
}

// decimalSum adds decimal strings exactly and prints the sum with as many
// fractional digits as the most precise amount added.
type decimalSum struct {
	sum    big.Rat
	digits int
	unit   string
}

func (d *decimalSum) add(amount string) error {
	var v big.Rat
	if _, ok := v.SetString(amount); !ok {
		return fmt.Errorf("amount %q is not a decimal", amount)
	}
	d.sum.Add(&d.sum, &v)
	mant := strings.ToLower(amount)
	exp := 0
	if i := strings.IndexByte(mant, 'e'); i >= 0 {
		fmt.Sscan(mant[i+1:], &exp)
		mant = mant[:i]
	}
	digits := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = len(mant) - i - 1
	}
	d.digits = max(d.digits, digits-exp)
	return nil
}

func (d *decimalSum) String() string { return d.sum.FloatString(d.digits) }

// formatSums returns every requested metric, 0 when no record had it.
func formatSums(metrics []string, sums map[string]*decimalSum) map[string]MetricValue {
	out := map[string]MetricValue{}
	for _, m := range metrics {
		if s := sums[m]; s != nil {
			out[m] = MetricValue{Amount: s.String(), Unit: s.unit}
		} else {
			out[m] = MetricValue{Amount: "0", Unit: "USD"}
		}
	}
	return out
}
