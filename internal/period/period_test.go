package period

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, s := range []string{"2026-01", "2026-12", "2000-01", "9999-12"} {
		p, err := Parse(s)
		if err != nil || p.String() != s {
			t.Errorf("Parse(%q) = %v, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "2026-1", "2026-13", "2026-00", "26-01", "1999-12", "2026/01", "2026-01-01", " 2026-01", "２０２６-01", "+026-01", "2026-0a"} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q): %v, want ErrInvalid", s, err)
		}
	}
}

func TestArithmetic(t *testing.T) {
	jan := MustParse("2026-01")
	for _, c := range []struct {
		n    int
		want string
	}{{0, "2026-01"}, {1, "2026-02"}, {11, "2026-12"}, {12, "2027-01"}, {-1, "2025-12"}, {-13, "2024-12"}, {25, "2028-02"}} {
		if got := jan.Add(c.n).String(); got != c.want {
			t.Errorf("2026-01 + %d = %s, want %s", c.n, got, c.want)
		}
		if d := jan.Add(c.n).MonthsSince(jan); d != c.n {
			t.Errorf("MonthsSince after Add(%d) = %d", c.n, d)
		}
	}
	if !jan.Before(jan.Next()) || jan.Prev().Compare(jan) != -1 || jan.Compare(jan) != 0 {
		t.Error("order")
	}
	// A month counts from its first day: March 31 minus one month is February.
	if got := Of(time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC)).Prev().String(); got != "2026-02" {
		t.Errorf("March 31 back one month = %s", got)
	}
	// Of takes the UTC month: 23:30 on Jan 31 in New York is February in UTC.
	ny := time.FixedZone("EST", -5*3600)
	if got := Of(time.Date(2026, 1, 31, 23, 30, 0, 0, ny)).String(); got != "2026-02" {
		t.Errorf("Of in another zone = %s", got)
	}
	p := MustParse("2024-02")
	if !p.Start().Equal(time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)) || !p.End().Equal(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("bounds %v %v", p.Start(), p.End())
	}
	if !p.Contains(time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)) || p.Contains(p.End()) {
		t.Error("Contains")
	}
}

func TestJSON(t *testing.T) {
	type in struct {
		Period Period `json:"period"`
		Since  Period `json:"since,omitzero"`
	}
	b, err := json.Marshal(in{Period: MustParse("2026-09")})
	if err != nil || string(b) != `{"period":"2026-09"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var got in
	if err := json.Unmarshal([]byte(`{"period":"2026-10","since":""}`), &got); err != nil || got.Period.String() != "2026-10" || !got.Since.IsZero() {
		t.Fatalf("unmarshal: %+v %v", got, err)
	}
	if err := json.Unmarshal([]byte(`{"period":"2026-13"}`), &got); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad period: %v", err)
	}
}
