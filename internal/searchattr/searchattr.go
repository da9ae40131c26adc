// Package searchattr holds costlake's Temporal search attributes: the four
// Keyword attributes every costlake workflow is started with (payer,
// customer, period, kind), so the Temporal UI and `temporal workflow list`
// filter runs by them, and their registration on a namespace (`costlake
// setup`, `costlake dev`).
//
// The attributes are set when a run starts (start options, child workflow
// options, a schedule's action), never upserted by workflow code, so they
// add no command to a workflow's history.
package searchattr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/costlake/costlake/internal/period"
)

// The attributes' keys.
var (
	Payer    = temporal.NewSearchAttributeKeyKeyword("CostlakePayer")
	Customer = temporal.NewSearchAttributeKeyKeyword("CostlakeCustomer")
	Period   = temporal.NewSearchAttributeKeyKeyword("CostlakePeriod")
	Kind     = temporal.NewSearchAttributeKeyKeyword("CostlakeKind")
)

// Kinds of run, the values of Kind.
const (
	KindOnboarding     = "onboarding"
	KindCrawl          = "crawl"
	KindBackfill       = "backfill"
	KindIngestion      = "ingestion"
	KindCycle          = "cycle"
	KindCustomer       = "customer"
	KindResellerExport = "reseller-export"
	KindMaintenance    = "maintenance"
	KindMonthEnd       = "month-end"
	KindMonthEndChange = "month-end-change"
)

// Types are every costlake attribute and its type, as a namespace must
// hold them.
func Types() map[string]enumspb.IndexedValueType {
	types := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{Payer, Customer, Period, Kind} {
		types[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return types
}

// Run is what a run is about; empty fields are left out.
type Run struct {
	Kind     string
	Payer    string
	Customer string
	Period   period.Period
}

// Attributes are the run's search attributes.
func (r Run) Attributes() temporal.SearchAttributes {
	var set []temporal.SearchAttributeUpdate
	for _, a := range []struct {
		key   temporal.SearchAttributeKeyKeyword
		value string
	}{{Kind, r.Kind}, {Payer, r.Payer}, {Customer, r.Customer}, {Period, periodText(r.Period)}} {
		if a.value != "" {
			set = append(set, a.key.ValueSet(a.value))
		}
	}
	return temporal.NewSearchAttributes(set...)
}

func periodText(p period.Period) string {
	if p.IsZero() {
		return ""
	}
	return p.String()
}

// ErrMissing says a namespace lacks costlake's attributes: starting a run
// with them would fail.
var ErrMissing = errors.New("search attributes missing")

// ErrWrongType says a namespace holds a costlake attribute under another
// type; Temporal cannot change it in place.
var ErrWrongType = errors.New("search attribute of the wrong type")

// Check says whether namespace holds every costlake attribute with its
// type: ErrMissing names the missing ones and `costlake setup`.
func Check(ctx context.Context, c client.Client, namespace string) error {
	absent, err := missing(ctx, c.OperatorService(), namespace)
	if err != nil {
		return err
	}
	if len(absent) > 0 {
		return fmt.Errorf("%w: namespace %s has no %s; run `costlake setup` with the same Temporal settings to add them", ErrMissing, namespace, strings.Join(absent, ", "))
	}
	return nil
}

// Ensure adds the costlake attributes namespace lacks and returns their
// names; those already there with the right type are left as they are.
// One there with another type is ErrWrongType.
func Ensure(ctx context.Context, c client.Client, namespace string) (added []string, err error) {
	ops := c.OperatorService()
	absent, err := missing(ctx, ops, namespace)
	if err != nil || len(absent) == 0 {
		return nil, err
	}
	add := map[string]enumspb.IndexedValueType{}
	for _, name := range absent {
		add[name] = Types()[name]
	}
	_, err = ops.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: add})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) { // another setup added them meanwhile
		return nil, fmt.Errorf("add search attributes %s to namespace %s: %w", strings.Join(absent, ", "), namespace, err)
	}
	// Verify: the answer is what the namespace holds now.
	if still, err := missing(ctx, ops, namespace); err != nil {
		return nil, err
	} else if len(still) > 0 {
		return nil, fmt.Errorf("%w: namespace %s still has no %s after adding them", ErrMissing, namespace, strings.Join(still, ", "))
	}
	return absent, nil
}

// missing lists the costlake attributes namespace lacks, sorted, and fails
// with ErrWrongType when one has another type.
func missing(ctx context.Context, ops operatorservice.OperatorServiceClient, namespace string) ([]string, error) {
	held, err := ops.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list the search attributes of namespace %s: %w", namespace, err)
	}
	var out, wrong []string
	for name, want := range Types() {
		got, ok := held.GetCustomAttributes()[name]
		switch {
		case !ok:
			out = append(out, name)
		case got != want:
			wrong = append(wrong, fmt.Sprintf("%s is %s, costlake needs %s", name, typeName(got), typeName(want)))
		}
	}
	if len(wrong) > 0 {
		sort.Strings(wrong)
		return nil, fmt.Errorf("%w in namespace %s: %s; remove it (temporal operator search-attribute remove) and run `costlake setup` again", ErrWrongType, namespace, strings.Join(wrong, "; "))
	}
	slices.Sort(out)
	return out, nil
}

func typeName(t enumspb.IndexedValueType) string {
	return strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_")
}
