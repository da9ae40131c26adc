package money

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/shopspring/decimal"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"0", "0"},
		{"0.0", "0"},
		{"-0.0", "0"},
		{"12.5", "12.5"},
		{"+12.50", "12.5"},
		{"-3", "-3"},
		{".5", "0.5"},
		{"5.", "5"},
		{"5.0E-5", "0.00005"},
		{"1.592358E-4", "0.0001592358"},
		{"8.1e-8", "0.000000081"},
		{"1.5E3", "1500"},
		{"0.000000000000000001", "0.000000000000000001"},
		{"1.000000000000000000000", "1"},
		{"99999999999999999999.999999999999999999", "99999999999999999999.999999999999999999"},
		{"-1234567890123456789.123456789012345678", "-1234567890123456789.123456789012345678"},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("Parse(%q) = %s, want %s", c.in, got, c.want)
		}
		// Cross-check against an independent decimal library.
		ref := decimal.RequireFromString(c.in)
		if got.BigRat().Cmp(ref.Rat()) != 0 {
			t.Errorf("Parse(%q) = %s, shopspring says %s", c.in, got, ref)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrSyntax},
		{"abc", ErrSyntax},
		{"1.2.3", ErrSyntax},
		{"1e", ErrSyntax},
		{"1e99999", ErrSyntax},
		{"-", ErrSyntax},
		{"12,5", ErrSyntax},
		{"0.0000000000000000001", ErrTooPrecise},
		{"1E-19", ErrTooPrecise},
		{"123456789012345678901", ErrOverflow},
		{"1E25", ErrOverflow},
	}
	for _, c := range cases {
		_, err := Parse(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("Parse(%q) error = %v, want %v", c.in, err, c.want)
		}
	}
}

func TestArithmeticAndJSON(t *testing.T) {
	a, b := MustParse("0.1"), MustParse("0.2")
	if got := a.Add(b).String(); got != "0.3" {
		t.Fatalf("0.1+0.2 = %s", got)
	}
	if got := a.Sub(b).String(); got != "-0.1" {
		t.Fatalf("0.1-0.2 = %s", got)
	}
	if !a.Add(b).Add(MustParse("-0.3")).IsZero() {
		t.Fatal("sum should be zero")
	}
	js, err := json.Marshal(struct{ A Amount }{MustParse("-12.000001")})
	if err != nil || string(js) != `{"A":"-12.000001"}` {
		t.Fatalf("marshal = %s, %v", js, err)
	}
	var back struct{ A Amount }
	if err := json.Unmarshal(js, &back); err != nil || back.A.String() != "-12.000001" {
		t.Fatalf("unmarshal = %v, %v", back.A, err)
	}
}

func BenchmarkParse(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Parse("0.0001592358"); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "-0.5", "5.0E-5", "1e3", ".1", "99999999999999999999.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(a.String())
		if err != nil || back.Cmp(a) != 0 {
			t.Fatalf("round trip %q -> %s -> %v (%v)", s, a, back, err)
		}
	})
}

// The one-pass path for plain decimals gives what the general parser gives.
func TestParsePlainMatchesParseNum(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	in := []string{"0", "-0", "+0", "0.", ".0", "1", "-1.5", "18446744073709551615", "9999999999999999999", "-9999999999.999999999",
		"0.000000000000000001", "1234567890123456789", ".123456789012345678", "-.5", "+.5", "00001.10000"}
	for i := 0; i < 100000; i++ {
		var b []byte
		if rng.Intn(4) == 0 {
			b = append(b, "+-"[rng.Intn(2)])
		}
		n := rng.Intn(22)
		dot := rng.Intn(n + 2)
		for j := 0; j < n; j++ {
			if j == dot {
				b = append(b, '.')
			}
			b = append(b, byte('0'+rng.Intn(10)))
		}
		in = append(in, string(b))
	}
	for _, s := range in {
		fast, ok := parsePlain(s)
		if !ok {
			continue
		}
		slow, err := parseNum(s)
		if err != nil || fast != slow {
			t.Fatalf("%q: fast %v, general %v (%v)", s, FromNum(fast), FromNum(slow), err)
		}
	}
}

func TestFloatText(t *testing.T) {
	cases := []struct {
		in      float64
		want    string
		rounded bool
	}{
		{0, "0", false},
		{12.5, "12.5", false},
		{0.1, "0.1", false},
		{1.592358e-4, "0.0001592358", false},
		{1e-18, "1e-18", false},                                // 18 digits: kept as written
		{123456.78901234567, "123456.78901234567", false},      // 17 significant digits
		{1e-19, "0", true},                                     // below half of 10^-18
		{-1e-19, "0", true},                                    // no negative zero
		{5e-324, "0", true},                                    // the smallest double
		{1.2345678901234567e-10, "0.000000000123456789", true}, // …789|01234567 rounds down
		{1.2345678901234567e-11, "0.000000000012345679", true}, // …678|901234567 rounds up
		{-1.2345678901234567e-10, "-0.000000000123456789", true},
		{5e-19, "0", true},                                     // exactly half: to even (0)
		{1.5e-18, "0.000000000000000002", true},                // exactly half: to even (2)
		{2.5e-18, "0.000000000000000002", true},                // exactly half: to even (2)
		{2.5000000000000006e-18, "0.000000000000000003", true}, // the next double up: above half
		{9.999999999999999e-19, "0.000000000000000001", true},  // the double below 1e-18: rounds up a digit
		{0.12345678901234568, "0.12345678901234568", false},
		{1.0000000000000002e-2, "0.010000000000000002", false},
		{1.2345678901234567e-3, "0.001234567890123457", true},
	}
	for _, c := range cases {
		got, rounded := FloatText(c.in, 64)
		if got != c.want || rounded != c.rounded {
			t.Errorf("FloatText(%v) = %q, %v; want %q, %v", c.in, got, rounded, c.want, c.rounded)
			continue
		}
		a, err := Parse(got)
		if err != nil {
			t.Errorf("Parse(FloatText(%v)) = %v", c.in, err)
			continue
		}
		// Cross-check with shopspring: the shortest text, rounded half-even.
		ref := decimal.RequireFromString(strconv.FormatFloat(c.in, 'g', -1, 64)).RoundBank(Scale)
		if a.BigRat().Cmp(ref.Rat()) != 0 {
			t.Errorf("FloatText(%v) = %s, shopspring RoundBank says %s", c.in, got, ref)
		}
	}
	if got, rounded := FloatText(float64(float32(1e-20)), 32); got != "0" || !rounded {
		t.Errorf("float32 1e-20 = %q, %v", got, rounded)
	}
}

// String's one-allocation path prints what the math/big path prints.
func TestStringMatchesBig(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	vals := []Amount{{}, MustParse("1"), MustParse("-1"), MustParse("0.000000000000000001"), MustParse("-0.1"),
		MustParse("18446744073.709551615"), MustParse("99999999999999999999.999999999999999999"),
		MustParse("-99999999999999999999.999999999999999999"), MustParse("18446744073709551615.999999999999999999"),
		MustParse("18446744073709551616"), FromNum(decimal128.MaxDecimal128), FromNum(decimal128.MaxDecimal128.Negate()),
		FromNum(decimal128.New(math.MinInt64, 0))}
	for i := 0; i < 10000; i++ {
		n := decimal128.New(r.Int63n(1<<20)-1<<19, r.Uint64())
		if i%2 == 0 {
			n = decimal128.FromI64(r.Int63() - r.Int63())
		}
		vals = append(vals, FromNum(n))
	}
	for _, v := range vals {
		if got, want := v.String(), v.bigString(); got != want {
			t.Fatalf("String() = %s, math/big says %s", got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = MustParse("-1234.5678").String() }); n > 1 {
		t.Errorf("String allocates %v times", n)
	}
}
