package synth

import (
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Every amount the generator writes is an int64 count of units of 10⁻¹⁰
// (AWS writes at most ten fractional digits), so what is written and what
// is summed are the same integers and the totals are exact.
const (
	scale = 10
	one   = 10_000_000_000 // 1.0 in units of 10⁻¹⁰
	cent  = one / 100
)

// appendDec appends v×10⁻¹⁰ the way AWS writes CUR amounts (Java's
// Double.toString layout): "0.0", "1.0", "0.0416", "12.5" for magnitudes
// in [10⁻³, 10⁷), and scientific notation outside it: "5.0E-5",
// "1.81E-8", "1.2345678E7". Trailing fractional zeros are dropped but one
// fractional digit is always kept.
func appendDec(b []byte, v int64) []byte {
	if v == 0 {
		return append(b, "0.0"...)
	}
	u := uint64(v)
	if v < 0 {
		b = append(b, '-')
		u = -u
	}
	var d [20]byte
	i := len(d)
	for u > 0 {
		i--
		d[i] = byte('0' + u%10)
		u /= 10
	}
	s := d[i:]
	n := len(s)
	exp := n - 1 - scale
	if exp >= -3 && exp < 7 {
		var frac []byte
		if n > scale {
			b = append(b, s[:n-scale]...)
			b = append(b, '.')
			frac = s[n-scale:]
		} else {
			b = append(b, '0', '.')
			for k := n; k < scale; k++ {
				b = append(b, '0')
			}
			frac = s
		}
		frac = trimZeros(frac)
		if len(frac) == 0 {
			return append(b, '0')
		}
		return append(b, frac...)
	}
	b = append(b, s[0], '.')
	if m := trimZeros(s[1:]); len(m) > 0 {
		b = append(b, m...)
	} else {
		b = append(b, '0')
	}
	b = append(b, 'E')
	return strconv.AppendInt(b, int64(exp), 10)
}

func trimZeros(s []byte) []byte {
	for len(s) > 0 && s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	return s
}

// mulDiv returns a×b×10⁻¹⁰ rounded half up: the cost of a units at rate b,
// both in units of 10⁻¹⁰. It panics if the result does not fit in int64,
// which the catalog's ranges rule out.
func mulDiv(a, b int64) int64 {
	if a < 0 || b < 0 {
		panic("synth: mulDiv of a negative value")
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	lo, c := bits.Add64(lo, one/2, 0)
	hi += c
	q, _ := bits.Div64(hi, lo, one)
	if q > 1<<63-1 {
		panic("synth: amount overflows int64")
	}
	return int64(q)
}

// pct returns v×p/100, truncated toward zero.
func pct(v, p int64) int64 { return v * p / 100 }

// fixed parses a plain decimal literal of the catalog ("0.0416") into
// units of 10⁻¹⁰. It panics on anything else: it only reads constants.
func fixed(s string) int64 {
	ip, fp, _ := strings.Cut(s, ".")
	if len(fp) > scale {
		panic("synth: too many decimals in " + s)
	}
	fp += strings.Repeat("0", scale-len(fp))
	i, err1 := strconv.ParseInt(ip, 10, 64)
	f, err2 := strconv.ParseInt(fp, 10, 64)
	if err1 != nil || err2 != nil || strings.HasPrefix(ip, "-") {
		panic(fmt.Sprintf("synth: bad decimal constant %q", s))
	}
	return i*one + f
}

// formatTotal writes a sum of units of 10⁻¹⁰ as a plain decimal string
// without exponent or trailing fractional zeros: "0", "-1.5", "1234.0000012".
func formatTotal(v *big.Int) string {
	if v.Sign() == 0 {
		return "0"
	}
	s := new(big.Int).Abs(v).String()
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	ip, fp := s[:len(s)-scale], strings.TrimRight(s[len(s)-scale:], "0")
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if v.Sign() < 0 {
		out = "-" + out
	}
	return out
}
