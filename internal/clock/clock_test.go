package clock

import (
	"testing"
	"time"
)

func TestPeriod(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		back int
		want string
	}{
		{time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC), 1, "2026-02"},
		{time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC), 0, "2026-03"},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 1, "2025-12"},
		{time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), 4, "2026-01"},
		{time.Date(2026, 12, 31, 23, 59, 0, 0, time.FixedZone("UTC-5", -5*3600)), 0, "2027-01"}, // 04:59 UTC on January 1
	} {
		if got := Period(tc.at, tc.back); got != tc.want {
			t.Errorf("Period(%s, %d) = %s, want %s", tc.at, tc.back, got, tc.want)
		}
	}
}

func TestFixedAndSystemClocks(t *testing.T) {
	at := time.Date(2027, 2, 28, 12, 0, 0, 0, time.UTC)
	if got := Fixed(at).Now(); !got.Equal(at) {
		t.Errorf("Fixed: %s", got)
	}
	var system Clock
	if got := system.Now(); got.Location() != time.UTC || got.IsZero() {
		t.Errorf("the zero Clock reads the system clock in UTC: %s", got)
	}
}
