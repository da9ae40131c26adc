package costexplorer

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	ce "github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"

	"github.com/costlake/costlake/internal/money"
)

// AccountCost is one linked account's unblended cost over a range.
type AccountCost struct {
	LinkedAccount string       `json:"linked_account"`
	Unblended     money.Amount `json:"unblended"`
	Currency      string       `json:"currency,omitempty"`
}

// MonthlyByAccount asks Cost Explorer once (plus its extra pages) for the
// unblended cost per linked account of [start, end), with MONTHLY
// granularity: what the month-end check compares a CUR payer's line
// items with when no daily costs were crawled. A range of one month is
// one result; amounts of several results for one account are added.
func MonthlyByAccount(ctx context.Context, client *ce.Client, start, end string, opts ...Option) ([]AccountCost, Stats, error) {
	f, err := newFetcher(client, start, end, opts)
	if err != nil {
		return nil, f.stats, err
	}
	byAccount := map[string]*AccountCost{}
	err = f.query(ctx, &ce.GetCostAndUsageInput{
		TimePeriod:  f.period(),
		Granularity: types.GranularityMonthly,
		Metrics:     []string{MetricUnblended},
		GroupBy:     []types.GroupDefinition{{Type: types.GroupDefinitionTypeDimension, Key: aws.String(string(types.DimensionLinkedAccount))}},
	}, func(day string, _ bool, g types.Group) error {
		if len(g.Keys) != 1 {
			return fmt.Errorf("%w: %s: linked account group keys %q", ErrResponse, day, g.Keys)
		}
		mv, ok := g.Metrics[MetricUnblended]
		if !ok || mv.Amount == nil {
			return fmt.Errorf("%w: %s account %s: no %s", ErrResponse, day, g.Keys[0], MetricUnblended)
		}
		a, err := money.Parse(aws.ToString(mv.Amount))
		if err != nil {
			return fmt.Errorf("%w: %s account %s: %w", ErrResponse, day, g.Keys[0], err)
		}
		c := byAccount[g.Keys[0]]
		if c == nil {
			c = &AccountCost{LinkedAccount: g.Keys[0], Currency: aws.ToString(mv.Unit)}
			byAccount[g.Keys[0]] = c
		}
		c.Unblended = c.Unblended.Add(a)
		return nil
	})
	if err != nil {
		return nil, f.stats, err
	}
	out := make([]AccountCost, 0, len(byAccount))
	for _, c := range byAccount {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b AccountCost) int {
		if a.LinkedAccount < b.LinkedAccount {
			return -1
		}
		if a.LinkedAccount > b.LinkedAccount {
			return 1
		}
		return 0
	})
	return out, f.stats, nil
}
