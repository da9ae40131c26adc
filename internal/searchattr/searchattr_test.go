package searchattr

import (
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/costlake/costlake/internal/period"
)

// TestRunAttributes: a run's attributes are its fields, the empty ones
// left out (a manual ingestion names no customer).
func TestRunAttributes(t *testing.T) {
	a := Run{Kind: KindIngestion, Payer: "123456789012", Period: period.MustParse("2026-11")}.Attributes()
	if a.Size() != 3 {
		t.Fatalf("%d attributes, want 3: %v", a.Size(), a.GetUntypedValues())
	}
	if v, ok := a.GetKeyword(Payer); !ok || v != "123456789012" {
		t.Errorf("CostlakePayer = %q, %v", v, ok)
	}
	if v, ok := a.GetKeyword(Period); !ok || v != "2026-11" {
		t.Errorf("CostlakePeriod = %q, %v", v, ok)
	}
	if v, ok := a.GetKeyword(Kind); !ok || v != KindIngestion {
		t.Errorf("CostlakeKind = %q, %v", v, ok)
	}
	if _, ok := a.GetKeyword(Customer); ok {
		t.Error("an empty customer is set")
	}
	types := Types()
	if len(types) != 4 {
		t.Fatalf("Types: %v", types)
	}
	for name, typ := range types {
		if typ != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			t.Errorf("%s is %v, want Keyword", name, typ)
		}
	}
}
