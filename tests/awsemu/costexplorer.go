package awsemu

import (
	"encoding/json"
	"maps"
	"slices"
)

// Cost Explorer: awsJson1_1, X-Amz-Target AWSInsightsIndexService.<Op>,
// signing name "ce". Operation: GetCostAndUsage. Throttling is injected
// with FailNext("GetCostAndUsage", "LimitExceededException", ...).

// ResultByTime is one time period of GetCostAndUsage results. Amounts are
// decimal strings, as on the wire.
type ResultByTime struct {
	TimePeriod DateInterval
	Total      map[string]MetricValue `json:",omitempty"` // metric name (e.g. UnblendedCost) -> value
	Groups     []Group                `json:",omitempty"`
	Estimated  bool
}

// DateInterval is a [Start, End) period: YYYY-MM-DD, or
// YYYY-MM-DDThh:mm:ssZ for hourly results.
type DateInterval struct {
	Start string
	End   string
}

// MetricValue is an amount and its unit, e.g. {"12.3456", "USD"}.
type MetricValue struct {
	Amount string
	Unit   string
}

// Group is the metrics of one group (e.g. one LINKED_ACCOUNT) in a period.
type Group struct {
	Keys    []string
	Metrics map[string]MetricValue
}

type ceState struct {
	results    []ResultByTime
	records    []CostRecord // see SetCostRecords
	useRecords bool
}

// SetCostAndUsage sets the results GetCostAndUsage serves, in time order.
// A request gets the results whose TimePeriod.Start falls in its
// TimePeriod, with only the requested metrics, SetPageSize results per
// page, linked by NextPageToken.
func (s *Server) SetCostAndUsage(results []ResultByTime) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.costs.results = slices.Clone(results)
	s.costs.useRecords = false
}

func init() {
	register(&service{
		signingName:  "ce",
		target:       "AWSInsightsIndexService",
		jsonVersion:  "1.1",
		accessDenied: "AccessDeniedException",
		ops: map[string]handler{
			"GetCostAndUsage": ceGetCostAndUsage,
		},
	})
}

func ceGetCostAndUsage(s *Server, r *request) (any, *apiError) {
	type groupDefinition struct {
		Type string `json:",omitempty"`
		Key  string `json:",omitempty"`
	}
	var in struct {
		TimePeriod    *DateInterval
		Granularity   string
		Metrics       []string
		GroupBy       []groupDefinition
		Filter        json.RawMessage
		NextPageToken string
	}
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	switch {
	case in.TimePeriod == nil || in.TimePeriod.Start == "" || in.TimePeriod.End == "":
		return nil, errorf("ValidationException", "TimePeriod with Start and End is required")
	case in.TimePeriod.Start >= in.TimePeriod.End:
		return nil, errorf("ValidationException", "Start date (and hour) should be before end date (and hour)")
	case in.Granularity != "DAILY" && in.Granularity != "MONTHLY" && in.Granularity != "HOURLY":
		return nil, errorf("ValidationException", "Granularity must be DAILY, MONTHLY or HOURLY")
	case len(in.Metrics) == 0:
		return nil, errorf("ValidationException", "Metrics is required")
	case len(in.GroupBy) > 2:
		return nil, errorf("ValidationException", "You can group by up to two dimensions, tags or cost categories")
	}
	if s.costs.useRecords {
		dims := make([]string, len(in.GroupBy))
		for i, g := range in.GroupBy {
			if g.Type != "DIMENSION" {
				return nil, errorf("ValidationException", "awsemu groups records by DIMENSION only, not %s", g.Type)
			}
			dims[i] = g.Key
		}
		return ceAggregate(s, r, *in.TimePeriod, in.Granularity, in.Metrics, dims, in.Filter, in.NextPageToken)
	}

	var matched []ResultByTime
	for _, res := range s.costs.results {
		if res.TimePeriod.Start >= in.TimePeriod.Start && res.TimePeriod.Start < in.TimePeriod.End {
			matched = append(matched, onlyMetrics(res, in.Metrics))
		}
	}
	results, next, ok := page(s, r.Operation, matched, in.NextPageToken, 0)
	if !ok {
		return nil, errorf("InvalidNextTokenException", "The pagination token is invalid.")
	}
	if results == nil {
		results = []ResultByTime{}
	}
	return struct {
		GroupDefinitions []groupDefinition `json:",omitempty"`
		ResultsByTime    []ResultByTime
		NextPageToken    string `json:",omitempty"`
	}{in.GroupBy, results, next}, nil
}

// onlyMetrics copies res keeping only the requested metrics, as AWS
// returns them.
func onlyMetrics(res ResultByTime, metrics []string) ResultByTime {
	keep := func(m map[string]MetricValue) map[string]MetricValue {
		if m == nil {
			return nil
		}
		out := maps.Clone(m)
		maps.DeleteFunc(out, func(k string, _ MetricValue) bool { return !slices.Contains(metrics, k) })
		return out
	}
	out := res
	out.Total = keep(res.Total)
	out.Groups = nil
	for _, g := range res.Groups {
		out.Groups = append(out.Groups, Group{Keys: slices.Clone(g.Keys), Metrics: keep(g.Metrics)})
	}
	return out
}
