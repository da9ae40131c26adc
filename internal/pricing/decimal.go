package pricing

import (
	"fmt"
	"math/big"

	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/costlake/costlake/internal/money"
)

// Arithmetic on the unscaled integers of money.Amount (value × 10^18),
// exact with math/big; the one rounding is half-even.

var (
	bigOne = big.NewInt(1)
	// scaleUnit is 10^18: 1 at money.Scale.
	scaleUnit = pow10(money.Scale)
	// percentDen is 100 × 10^18, 100 at money.Scale:
	// amount × percent/100 = amount_u × percent_u / percentDen.
	percentDen = new(big.Int).Mul(big.NewInt(100), scaleUnit)
	// centUnits is 0.01 at money.Scale.
	centUnits = pow10(money.Scale - 2)
	// maxUnscaled is the largest decimal(38,18) magnitude, 10^38 − 1.
	maxUnscaled = new(big.Int).Sub(pow10(money.Precision), bigOne)
)

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// unscaled returns a × 10^18 as an integer.
func unscaled(a money.Amount) *big.Int { return a.Num().BigInt() }

// fromUnscaled returns the Amount whose unscaled value is v. A value
// beyond decimal(38,18) panics: billing amounts are below 10^19.
func fromUnscaled(v *big.Int) money.Amount {
	if v.CmpAbs(maxUnscaled) > 0 {
		panic(fmt.Sprintf("pricing: %s×10^-18 does not fit decimal(38,18)", v))
	}
	return money.FromNum(decimal128.FromBigInt(v))
}

// quoHalfEven returns x/d rounded half to even; d > 0.
func quoHalfEven(x, d *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(x, d, new(big.Int)) // truncated toward zero
	if r.Sign() == 0 {
		return q
	}
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	c := twice.Cmp(d)
	if c > 0 || (c == 0 && q.Bit(0) == 1) { // Bit(0) is the parity for negatives too
		if x.Sign() < 0 {
			q.Sub(q, bigOne)
		} else {
			q.Add(q, bigOne)
		}
	}
	return q
}

// RoundCents rounds a half-even (banker's rounding) to two decimal places:
// 0.125 → 0.12, 0.135 → 0.14, -0.125 → -0.12. Invoices round once, at the
// end (Bill.Due); line items never are.
func RoundCents(a money.Amount) money.Amount {
	q := quoHalfEven(unscaled(a), centUnits)
	return fromUnscaled(q.Mul(q, centUnits))
}

func maxAmount(a, b money.Amount) money.Amount {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func minAmount(a, b money.Amount) money.Amount {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}
