package command

import (
	"math/big"
	"strings"
)

// INCRBYFLOAT computes in C's long double on x86-64 (the x87 80-bit format: a
// 64-bit mantissa, 15-bit exponent) and prints "%.17Lf" without trailing zeros.
// float64 would give different digits (10.5 + 0.1 prints 10.6 in Redis, but
// 10.59999999999999964 from a float64 printed the same way), so the arithmetic is
// emulated with big.Float at 64 bits of precision, rounding to nearest even like
// the x87 unit.
const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384  // |x| >= 2^16384 overflows to infinity
	longDoubleMinExp = -16444 // below the smallest subnormal strtold reports ERANGE
	maxFloatArgLen   = 5 * 1024
)

// parseLongDouble parses s as Redis's string2ld does: no surrounding spaces, the
// whole string a number, no NaN, no overflow (ERANGE).
func parseLongDouble(s []byte) (*big.Float, bool) {
	if len(s) == 0 || len(s) >= maxFloatArgLen || isSpace(s[0]) || isSpace(s[len(s)-1]) {
		return nil, false
	}
	str := string(s)
	if strings.IndexByte(str, '_') >= 0 {
		return nil, false
	}
	switch strings.ToLower(strings.TrimLeft(str, "+-")) {
	case "inf", "infinity":
		f := new(big.Float).SetInf(str[0] == '-')
		return f, true
	}
	f, _, err := big.ParseFloat(str, 0, longDoublePrec, big.ToNearestEven)
	if err != nil {
		return nil, false
	}
	if !f.IsInf() && f.Sign() != 0 {
		if exp := f.MantExp(nil); exp > longDoubleMaxExp || exp < longDoubleMinExp {
			return nil, false
		}
	}
	return f, true
}

// addLongDouble returns a+b in long double, or false if the result is NaN or
// infinite.
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	sum := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Add(a, b)
	if sum.Sign() != 0 && sum.MantExp(nil) > longDoubleMaxExp {
		return nil, false
	}
	return sum, true
}

// formatLongDouble prints f like Redis's ld2string in LD_STR_HUMAN mode.
func formatLongDouble(f *big.Float) []byte {
	s := f.Text('f', 17)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	if s == "-0" {
		s = "0"
	}
	return []byte(s)
}
