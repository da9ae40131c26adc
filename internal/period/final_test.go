package period

import (
	"testing"
	"time"
)

// The finality rule on the days that matter: before, on and after month
// end plus the default five days, and at the end of February (leap and
// common years).
func TestFinalByDate(t *testing.T) {
	day := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		period string
		asOf   time.Time
		final  bool
		at     time.Time
	}{
		{"2026-11", day(2026, 12, 1, 0), false, day(2026, 12, 6, 0)},
		{"2026-11", day(2026, 12, 5, 23), false, day(2026, 12, 6, 0)},
		{"2026-11", day(2026, 12, 6, 0), true, day(2026, 12, 6, 0)},
		{"2026-11", day(2026, 12, 28, 12), true, day(2026, 12, 6, 0)},
		{"2026-12", day(2027, 1, 1, 0), false, day(2027, 1, 6, 0)}, // across a year
		{"2026-12", day(2027, 1, 6, 0), true, day(2027, 1, 6, 0)},
		{"2027-01", day(2027, 2, 28, 12), true, day(2027, 2, 6, 0)},  // last day of a common February
		{"2027-02", day(2027, 2, 28, 23), false, day(2027, 3, 6, 0)}, // February itself is still open
		{"2028-02", day(2028, 2, 29, 12), false, day(2028, 3, 6, 0)}, // leap year
		{"2028-02", day(2028, 3, 5, 23), false, day(2028, 3, 6, 0)},
		{"2028-02", day(2028, 3, 6, 0), true, day(2028, 3, 6, 0)},
		{"2026-11", day(2026, 11, 15, 0), false, day(2026, 12, 6, 0)}, // during the month
	} {
		p := MustParse(tc.period)
		final, at := p.FinalByDate(5, tc.asOf), p.FinalAt(5)
		if final != tc.final || !at.Equal(tc.at) {
			t.Errorf("%s as of %s: final %v at %s, want %v at %s", tc.period, tc.asOf, final, at, tc.final, tc.at)
		}
	}
	// Ten days, as a reseller waiting for support fees would set it.
	feb := MustParse("2027-02")
	if final, at := feb.FinalByDate(10, day(2027, 3, 10, 23)), feb.FinalAt(10); final || !at.Equal(day(2027, 3, 11, 0)) {
		t.Errorf("2027-02 with 10 days: final %v at %s", final, at)
	}
}
