// Package costexplorer reads a payer's daily costs from AWS Cost Explorer
// (GetCostAndUsage), for payers that grant costlake only
// ce:GetCostAndUsage and no billing export.
//
// # Query strategy
//
// GetCostAndUsage groups by at most two dimensions, and costlake wants
// three: linked account × service × record type. Fetch splits the third
// dimension into separate queries:
//
//  1. one discovery query, GroupBy RECORD_TYPE, learns which record types
//     (Usage, Tax, Credit, SavingsPlanCoveredUsage, …) the range holds;
//  2. one query per record type, Filter RECORD_TYPE = that type, GroupBy
//     LINKED_ACCOUNT and SERVICE, returns that type's exact costs per
//     account and service per day.
//
// That is 1 + R queries (plus their extra pages) for R record types, a
// handful for any payer. Splitting by service instead (GroupBy
// LINKED_ACCOUNT + RECORD_TYPE per service) would take one query per
// service, tens to hundreds; splitting by account, one per account. The
// record types cannot be listed with GetDimensionValues, because such
// payers grant only ce:GetCostAndUsage; the discovery query learns them
// with the one permission there is. Every amount is Cost Explorer's own
// for its group, never derived, so the rows are exact.
//
// # Paid calls
//
// Cost Explorer charges $0.01 per request. Fetch counts every HTTP
// response Cost Explorer sent, with a middleware in the Deserialize step
// of each GetCostAndUsage call. That step runs once per attempt, inside
// the SDK's retry loop (Finalize step), so a request the SDK retried after
// throttling or a server error counts once per attempt, like the bill. A
// request that never got an answer (connection refused) is not counted.
//
// # Throttling
//
// The SDK's retryer already retries throttling codes (LimitExceededException,
// ThrottlingException, …) a few times. When throttling outlasts it, Fetch
// waits with exponential back-off and jitter ([Backoff]) and asks for the
// same page again, a bounded number of times, and stops when the context
// ends. Stats.Throttled counts every throttled response, retried by the
// SDK or by Fetch.
package costexplorer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/costlake/costlake/internal/money"
)

// Metric names of GetCostAndUsage that Fetch asks for.
const (
	MetricUnblended    = "UnblendedCost"
	MetricAmortized    = "AmortizedCost"
	MetricNetUnblended = "NetUnblendedCost"
)

// Metrics are the metrics of every cost query, in DailyCost's order.
var Metrics = []string{MetricUnblended, MetricAmortized, MetricNetUnblended}

// DateLayout is the layout of Cost Explorer's dates.
const DateLayout = time.DateOnly

var (
	// ErrRange reports a start or end that is not a YYYY-MM-DD date, or an
	// empty range.
	ErrRange = errors.New("invalid date range")
	// ErrThrottled reports throttling that outlasted every retry.
	//lint:ignore ST1005 Cost Explorer is the AWS product's name
	ErrThrottled = errors.New("Cost Explorer kept throttling")
	// ErrResponse reports a response costlake cannot turn into exact rows:
	// a missing metric, an amount that does not fit decimal(38,18), a group
	// seen twice, a day outside the range.
	ErrResponse = errors.New("unexpected Cost Explorer response")
)

// DailyCost is one day's cost of one linked account, service and record
// type. Amounts are exact, as Cost Explorer wrote them.
type DailyCost struct {
	Date          string // YYYY-MM-DD
	LinkedAccount string
	Service       string
	RecordType    string
	Unblended     money.Amount
	Amortized     money.Amount
	NetUnblended  money.Amount
	Currency      string // the unit of the amounts, e.g. USD
	// Estimated is set for days Cost Explorer has not finalized yet.
	Estimated bool
}

// Stats is what a fetch cost.
type Stats struct {
	// Calls counts the HTTP responses Cost Explorer sent: each is a paid
	// request, including SDK retries and throttled attempts.
	Calls int
	// Pages counts successful responses.
	Pages int
	// Throttled counts responses that asked to slow down.
	Throttled int
}

// Backoff is the wait between tries of a page whose throttling outlasted
// the SDK's retryer: try n (n ≥ 1) waits between half and all of
// min(Base·2^(n−1), Max), then tries again, up to Attempts tries in all.
type Backoff struct {
	Attempts  int
	Base, Max time.Duration
	// Sleep waits d or until ctx ends; nil sleeps on a timer. Tests make
	// it instant.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a number in [0, 1); nil uses math/rand/v2.
	Jitter func() float64
}

// DefaultBackoff waits about 2 s, 4 s, … up to a minute, 8 tries in all:
// Cost Explorer allows a few requests per second per account.
var DefaultBackoff = Backoff{Attempts: 8, Base: 2 * time.Second, Max: time.Minute}

// Delay returns the wait after try n.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	j := rand.Float64
	if b.Jitter != nil {
		j = b.Jitter
	}
	return d/2 + time.Duration(j()*float64(d/2))
}

func (b Backoff) wait(ctx context.Context, n int) error {
	d := b.Delay(n)
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Option tunes Fetch.
type Option func(*fetcher)

// WithBackoff replaces DefaultBackoff.
func WithBackoff(b Backoff) Option { return func(f *fetcher) { f.backoff = b } }

// WithProgress calls fn after every response and before every back-off
// wait, e.g. to heartbeat an activity.
func WithProgress(fn func(Stats)) Option { return func(f *fetcher) { f.progress = fn } }

type fetcher struct {
	client   *ce.Client
	start    string
	end      string
	backoff  Backoff
	progress func(Stats)
	stats    Stats
}

// newFetcher applies opts and checks the range [start, end).
func newFetcher(client *ce.Client, start, end string, opts []Option) (*fetcher, error) {
	f := &fetcher{client: client, start: start, end: end, backoff: DefaultBackoff}
	for _, o := range opts {
		o(f)
	}
	if f.backoff.Attempts < 1 {
		f.backoff.Attempts = 1
	}
	return f, CheckRange(start, end)
}

// Fetch returns the daily unblended, amortized and net unblended costs by
// linked account, service and record type for the days in [start, end)
// (YYYY-MM-DD, end exclusive), sorted by date, account, service and record
// type, and what the fetch cost. Stats are returned on error too: the
// calls were paid for.
func Fetch(ctx context.Context, client *ce.Client, start, end string, opts ...Option) ([]DailyCost, Stats, error) {
	f, err := newFetcher(client, start, end, opts)
	if err != nil {
		return nil, f.stats, err
	}
	recordTypes, err := f.recordTypes(ctx)
	if err != nil {
		return nil, f.stats, err
	}
	var rows []DailyCost
	seen := map[rowKey]bool{}
	for _, rt := range recordTypes {
		err := f.query(ctx, &ce.GetCostAndUsageInput{
			TimePeriod:  f.period(),
			Granularity: types.GranularityDaily,
			Metrics:     Metrics,
			Filter:      &types.Expression{Dimensions: &types.DimensionValues{Key: types.DimensionRecordType, Values: []string{rt}}},
			GroupBy: []types.GroupDefinition{
				{Type: types.GroupDefinitionTypeDimension, Key: aws.String(string(types.DimensionLinkedAccount))},
				{Type: types.GroupDefinitionTypeDimension, Key: aws.String(string(types.DimensionService))},
			},
		}, func(day string, estimated bool, g types.Group) error {
			if len(g.Keys) != 2 {
				return fmt.Errorf("%w: record type %s, %s: group keys %q, want account and service", ErrResponse, rt, day, g.Keys)
			}
			row := DailyCost{Date: day, LinkedAccount: g.Keys[0], Service: g.Keys[1], RecordType: rt, Estimated: estimated}
			k := rowKey{day, row.LinkedAccount, row.Service, rt}
			if seen[k] {
				return fmt.Errorf("%w: %s account %s service %q record type %s returned twice", ErrResponse, day, row.LinkedAccount, row.Service, rt)
			}
			seen[k] = true
			if err := setAmounts(&row, g.Metrics); err != nil {
				return fmt.Errorf("%s account %s service %q record type %s: %w", day, row.LinkedAccount, row.Service, rt, err)
			}
			rows = append(rows, row)
			return nil
		})
		if err != nil {
			return nil, f.stats, err
		}
	}
	slices.SortFunc(rows, func(a, b DailyCost) int {
		return cmp.Or(cmp.Compare(a.Date, b.Date), cmp.Compare(a.LinkedAccount, b.LinkedAccount),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.RecordType, b.RecordType))
	})
	return rows, f.stats, nil
}

type rowKey struct{ date, account, service, recordType string }

// CheckRange checks that start and end are YYYY-MM-DD dates with start
// before end.
func CheckRange(start, end string) error {
	s, err := time.Parse(DateLayout, start)
	if err != nil {
		return fmt.Errorf("%w: start %q: want YYYY-MM-DD", ErrRange, start)
	}
	e, err := time.Parse(DateLayout, end)
	if err != nil {
		return fmt.Errorf("%w: end %q: want YYYY-MM-DD", ErrRange, end)
	}
	if !s.Before(e) {
		return fmt.Errorf("%w: start %s is not before end %s (end is exclusive)", ErrRange, start, end)
	}
	return nil
}

func (f *fetcher) period() *types.DateInterval {
	return &types.DateInterval{Start: aws.String(f.start), End: aws.String(f.end)}
}

// recordTypes runs the discovery query: the record types with costs in
// the range, sorted.
func (f *fetcher) recordTypes(ctx context.Context) ([]string, error) {
	found := map[string]bool{}
	err := f.query(ctx, &ce.GetCostAndUsageInput{
		TimePeriod:  f.period(),
		Granularity: types.GranularityDaily,
		Metrics:     []string{MetricUnblended},
		GroupBy:     []types.GroupDefinition{{Type: types.GroupDefinitionTypeDimension, Key: aws.String(string(types.DimensionRecordType))}},
	}, func(day string, _ bool, g types.Group) error {
		if len(g.Keys) != 1 {
			return fmt.Errorf("%w: %s: record type group keys %q", ErrResponse, day, g.Keys)
		}
		found[g.Keys[0]] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(found))
	for rt := range found {
		out = append(out, rt)
	}
	slices.Sort(out)
	return out, nil
}

// query runs one query through all its pages and hands each group to each.
func (f *fetcher) query(ctx context.Context, in *ce.GetCostAndUsageInput, each func(day string, estimated bool, g types.Group) error) error {
	req := *in
	tokens := map[string]bool{}
	for {
		out, err := f.call(ctx, &req)
		if err != nil {
			return err
		}
		f.stats.Pages++
		f.report()
		for _, r := range out.ResultsByTime {
			var day string
			if r.TimePeriod != nil {
				day = aws.ToString(r.TimePeriod.Start)
			}
			if day < f.start || day >= f.end {
				return fmt.Errorf("%w: a result for %q, outside %s to %s", ErrResponse, day, f.start, f.end)
			}
			for _, g := range r.Groups {
				if err := each(day, r.Estimated, g); err != nil {
					return err
				}
			}
		}
		next := aws.ToString(out.NextPageToken)
		if next == "" {
			return nil
		}
		if tokens[next] {
			return fmt.Errorf("%w: page token %q came back twice", ErrResponse, next)
		}
		tokens[next] = true
		req.NextPageToken = aws.String(next)
	}
}

// call asks for one page, waiting out throttling that outlasts the SDK's
// retryer.
func (f *fetcher) call(ctx context.Context, in *ce.GetCostAndUsageInput) (*ce.GetCostAndUsageOutput, error) {
	for try := 1; ; try++ {
		out, err := f.client.GetCostAndUsage(ctx, in, f.count)
		if err == nil {
			return out, nil
		}
		if !IsThrottle(err) {
			return nil, fmt.Errorf("GetCostAndUsage %s to %s: %w", f.start, f.end, err)
		}
		if try >= f.backoff.Attempts {
			return nil, fmt.Errorf("%w: GetCostAndUsage %s to %s throttled after %d tries: %w", ErrThrottled, f.start, f.end, try, err)
		}
		f.report()
		if err := f.backoff.wait(ctx, try); err != nil {
			return nil, fmt.Errorf("GetCostAndUsage %s to %s: waiting out throttling: %w", f.start, f.end, err)
		}
	}
}

func (f *fetcher) report() {
	if f.progress != nil {
		f.progress(f.stats)
	}
}

// count adds the call-counting middleware to one call's stack.
func (f *fetcher) count(o *ce.Options) {
	o.APIOptions = append(slices.Clip(o.APIOptions), func(s *middleware.Stack) error {
		return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("costlake.CountCalls",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if answered(out, err) {
					f.stats.Calls++
				}
				if IsThrottle(err) {
					f.stats.Throttled++
				}
				return out, md, err
			}), middleware.Before)
	})
}

// answered reports whether an attempt got an HTTP response.
func answered(out middleware.DeserializeOutput, err error) bool {
	if r, ok := out.RawResponse.(*smithyhttp.Response); ok && r != nil {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re)
}

// IsThrottle reports an error that asks the caller to slow down: one of
// the SDK's throttling codes (LimitExceededException, ThrottlingException,
// TooManyRequestsException, …) or HTTP 429.
func IsThrottle(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; ok {
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == 429
}

// setAmounts parses the three metrics of a group exactly.
func setAmounts(row *DailyCost, metrics map[string]types.MetricValue) error {
	dst := []*money.Amount{&row.Unblended, &row.Amortized, &row.NetUnblended}
	for i, name := range Metrics {
		mv, ok := metrics[name]
		if !ok || mv.Amount == nil {
			return fmt.Errorf("%w: no %s", ErrResponse, name)
		}
		a, err := money.Parse(aws.ToString(mv.Amount))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrResponse, name, err)
		}
		*dst[i] = a
		unit := aws.ToString(mv.Unit)
		if i == 0 {
			row.Currency = unit
		} else if unit != row.Currency {
			return fmt.Errorf("%w: %s is in %q, %s in %q", ErrResponse, MetricUnblended, row.Currency, name, unit)
		}
	}
	return nil
}
