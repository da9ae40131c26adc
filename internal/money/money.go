// Package money holds exact decimal amounts. Every cost, rate and quantity
// costlake reads is kept as a fixed-point decimal with Scale fractional
// digits (Iceberg decimal(38,18)); nothing passes through float64.
package money

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// Precision and Scale of every amount column: 20 integer digits, 18 fractional.
const (
	Precision = 38
	Scale     = 18
)

var (
	// ErrSyntax reports text that is not a decimal number.
	ErrSyntax = errors.New("not a decimal number")
	// ErrTooPrecise reports a number with more than Scale significant
	// fractional digits; rounding it would change the amount.
	ErrTooPrecise = errors.New("more fractional digits than costlake keeps (18)")
	// ErrOverflow reports a number too large for decimal(38,18).
	ErrOverflow = errors.New("number too large for decimal(38,18)")
)

// Amount is an exact decimal with Scale fractional digits. The zero value is 0.
type Amount struct{ n decimal128.Num }

var ten = decimal128.FromU64(10)

// pow10 holds 10^0 … 10^38.
var pow10 [Precision + 1]decimal128.Num

func init() {
	pow10[0] = decimal128.FromU64(1)
	for i := 1; i <= Precision; i++ {
		pow10[i] = pow10[i-1].Mul(ten)
	}
}

// Parse reads a decimal in plain ("-12.5") or scientific ("5.0E-5")
// notation, exactly. It never rounds: a value with more than 18
// significant fractional digits returns ErrTooPrecise.
func Parse(s string) (Amount, error) {
	if n, ok := parsePlain(s); ok {
		return Amount{n}, nil
	}
	n, err := parseNum(s)
	return Amount{n}, err
}

// parsePlain reads the common case in one pass: an optional sign, at most
// 19 digits in all with at most Scale after an optional point, no
// exponent. Anything else (and every error) is left to parseNum.
func parsePlain(s string) (decimal128.Num, bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	var acc uint64
	digits, frac, point := 0, 0, false
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			acc = acc*10 + uint64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			return decimal128.Num{}, false
		}
	}
	if digits == 0 || digits > 19 || frac > Scale {
		return decimal128.Num{}, false
	}
	n := decimal128.FromU64(acc).Mul(pow10[Scale-frac])
	if neg {
		n = n.Negate()
	}
	return n, true
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// FromNum wraps an unscaled decimal128 value at Scale.
func FromNum(n decimal128.Num) Amount { return Amount{n} }

// Num returns the unscaled decimal128 value at Scale, as stored in Parquet.
func (a Amount) Num() decimal128.Num { return a.n }

// Add returns a+b. Sums of billing amounts stay far below 10^20.
func (a Amount) Add(b Amount) Amount { return Amount{a.n.Add(b.n)} }

// Sub returns a-b.
func (a Amount) Sub(b Amount) Amount { return Amount{a.n.Sub(b.n)} }

// Cmp compares a and b: -1, 0 or +1.
func (a Amount) Cmp(b Amount) int { return a.n.Cmp(b.n) }

// IsZero reports whether a is 0.
func (a Amount) IsZero() bool { return a.n.Sign() == 0 }

// String formats a without trailing fractional zeros: "12.5", "-0.000001", "0".
// Amounts below 1.8e19 (every billing amount) take one allocation: the
// ingestion formats the amortized cost of commitment fees row by row.
func (a Amount) String() string {
	n := a.n
	neg := n.Sign() < 0
	if neg {
		n = n.Negate()
	}
	const unit = 1_000_000_000_000_000_000 // 10^Scale
	hi, lo := uint64(n.HighBits()), n.LowBits()
	if hi >= unit { // the integer part needs more than 64 bits (or n is the most negative value)
		return a.bigString()
	}
	q, r := bits.Div64(hi, lo, unit)
	var buf [48]byte
	b := buf[:0]
	if neg {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, q, 10)
	if r != 0 {
		var frac [Scale]byte
		for i := Scale - 1; i >= 0; i-- {
			frac[i] = byte('0' + r%10)
			r /= 10
		}
		end := Scale
		for frac[end-1] == '0' {
			end--
		}
		b = append(append(b, '.'), frac[:end]...)
	}
	return string(b)
}

// bigString is String through math/big, for any value.
func (a Amount) bigString() string {
	b := a.n.BigInt()
	neg := b.Sign() < 0
	if neg {
		b.Neg(b)
	}
	digits := b.String()
	if len(digits) <= Scale {
		digits = strings.Repeat("0", Scale-len(digits)+1) + digits
	}
	intPart, frac := digits[:len(digits)-Scale], strings.TrimRight(digits[len(digits)-Scale:], "0")
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out
}

// MarshalJSON writes the amount as a JSON string, so no JSON reader turns
// it into a float.
func (a Amount) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON reads a JSON string (or number literal) exactly.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

func parseNum(s string) (decimal128.Num, error) {
	var zero decimal128.Num
	orig := s
	if s == "" {
		return zero, fmt.Errorf("%w: empty", ErrSyntax)
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		e, ok := atoi(s[i+1:])
		if !ok {
			return zero, fmt.Errorf("%w: %q", ErrSyntax, orig)
		}
		exp = e
	}
	intPart, fracPart := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, fracPart = mant[:i], mant[i+1:]
	}
	if intPart == "" && fracPart == "" {
		return zero, fmt.Errorf("%w: %q", ErrSyntax, orig)
	}
	// Value = digits × 10^(exp − len(fracPart)); stored unscaled × 10^Scale.
	digits := intPart + fracPart
	shift := Scale + exp - len(fracPart)
	// Trailing zeros cut below the scale lose nothing.
	for shift < 0 && len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		shift++
	}
	if shift < 0 {
		for i := 0; i < len(digits); i++ {
			if digits[i] < '0' || digits[i] > '9' {
				return zero, fmt.Errorf("%w: %q", ErrSyntax, orig)
			}
		}
		if strings.Trim(digits, "0") != "" {
			return zero, fmt.Errorf("%w: %q", ErrTooPrecise, orig)
		}
		return zero, nil
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits)+shift > Precision {
		if len(digits) == 0 {
			return zero, nil
		}
		return zero, fmt.Errorf("%w: %q", ErrOverflow, orig)
	}
	var n decimal128.Num
	// Up to 18 digits fit a uint64: one multiply instead of one per digit.
	var acc uint64
	accDigits := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return zero, fmt.Errorf("%w: %q", ErrSyntax, orig)
		}
		acc = acc*10 + uint64(c-'0')
		accDigits++
		if accDigits == 18 {
			n = n.Mul(pow10[18]).Add(decimal128.FromU64(acc))
			acc, accDigits = 0, 0
		}
	}
	if accDigits > 0 {
		n = n.Mul(pow10[accDigits]).Add(decimal128.FromU64(acc))
	}
	n = n.Mul(pow10[shift])
	if neg {
		n = n.Negate()
	}
	return n, nil
}

// atoi reads an exponent; anything past ±9999 is not a billing amount.
func atoi(s string) (int, bool) {
	v, err := strconv.Atoi(s)
	return v, err == nil && v >= -9999 && v <= 9999
}

// BigRat returns a as an exact rational, for cross-checks against other
// decimal libraries.
func (a Amount) BigRat() *big.Rat {
	return new(big.Rat).SetFrac(a.n.BigInt(), pow10[Scale].BigInt())
}

// FloatText renders a double (bits 64 or 32) the way costlake reads it:
// its shortest decimal text, the one that reads back as the same double
// and so the decimal the writer started from. When that text has more
// than Scale fractional digits (1e-19, 5e-324, 1.2345678901234567e-10)
// it is rounded half-even to Scale digits and rounded is true: what is
// dropped is below 10^-18, and a month is never failed for it.
func FloatText(f float64, bits int) (text string, rounded bool) {
	text = strconv.FormatFloat(f, 'g', -1, bits)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return text, false // not a number at all: Parse says so
	}
	// d.ddd…e±x: digits, and the power of ten of the first one.
	sci := strconv.FormatFloat(math.Abs(f), 'e', -1, bits)
	mant, expText, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	intDigits := exp + 1 // digits before the point; ≤ 0 for values below 1
	if len(digits)-intDigits <= Scale {
		return text, false
	}
	// More than Scale fractional digits needs a value below 0.1 (a double
	// has at most 17 significant digits), so what is kept fits a uint64.
	keep := intDigits + Scale
	var kept uint64
	if keep > 0 {
		kept, _ = strconv.ParseUint(digits[:keep], 10, 64)
	}
	var rest string
	if keep >= 0 {
		rest = digits[keep:]
	} else {
		rest = strings.Repeat("0", -keep) + digits
	}
	switch {
	case rest[0] > '5', rest[0] == '5' && strings.TrimRight(rest[1:], "0") != "":
		kept++
	case rest[0] == '5' && kept%2 == 1: // exactly half: to even
		kept++
	}
	n := decimal128.FromU64(kept)
	if f < 0 {
		n = n.Negate()
	}
	return Amount{n}.String(), true
}
