package command

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Sorted-set scores are C doubles: Redis parses them with strtod and
// prints them with printf's "%.17g", so both are reproduced here exactly.

const (
	errZNaN         replyError = "ERR resulting score is not a number (NaN)"
	errZMinMax      replyError = "ERR min or max is not a float"
	errZLexRange    replyError = "ERR min or max not valid string range item"
	errZXXNX        replyError = "ERR XX and NX options at the same time are not compatible"
	errZGTLTNX      replyError = "ERR GT, LT, and/or NX options at the same time are not compatible"
	errZIncrPair    replyError = "ERR INCR option supports a single increment-element pair"
	errZLimitByRank replyError = "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
	errZLexScores   replyError = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
)

// isCSpace is C's isspace in the "C" locale.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && strings.EqualFold(string(b[:len(p)]), p)
}

// strtod parses the longest prefix of s that glibc's strtod accepts
// (leading white space, a sign, "inf"/"infinity"/"nan[(...)]", a decimal
// or hexadecimal number). It returns the value, the bytes consumed (0: no
// conversion) and whether strtod would set ERANGE with a result of ±HUGE_VAL
// or zero (overflow, or underflow to zero) — the cases Redis refuses.
func strtod(s []byte) (f float64, n int, erange bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	rest := s[i:]
	switch {
	case hasPrefixFold(rest, "infinity"):
		return sign(math.Inf(1)), i + 8, false
	case hasPrefixFold(rest, "inf"):
		return sign(math.Inf(1)), i + 3, false
	case hasPrefixFold(rest, "nan"):
		j := i + 3
		if j < len(s) && s[j] == '(' {
			k := j + 1
			for k < len(s) && (s[k] == '_' || s[k] >= '0' && s[k] <= '9' || (s[k]|0x20) >= 'a' && (s[k]|0x20) <= 'z') {
				k++
			}
			if k < len(s) && s[k] == ')' {
				j = k + 1
			}
		}
		return math.NaN(), j, false
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isHex := func(c byte) bool { return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f' }
	if len(rest) >= 2 && rest[0] == '0' && (rest[1]|0x20) == 'x' {
		j := i + 2
		var mant strings.Builder
		digits, nonzero := 0, false
		for j < len(s) && isHex(s[j]) {
			mant.WriteByte(s[j])
			nonzero = nonzero || s[j] != '0'
			j, digits = j+1, digits+1
		}
		if j < len(s) && s[j] == '.' {
			mant.WriteByte('.')
			j++
			for j < len(s) && isHex(s[j]) {
				mant.WriteByte(s[j])
				nonzero = nonzero || s[j] != '0'
				j, digits = j+1, digits+1
			}
		}
		if digits == 0 { // "0x" alone: strtod reads the 0
			return sign(0), i + 1, false
		}
		exp := "0"
		if j < len(s) && (s[j]|0x20) == 'p' {
			k := j + 1
			if k < len(s) && (s[k] == '+' || s[k] == '-') {
				k++
			}
			if k < len(s) && isDigit(s[k]) {
				for k < len(s) && isDigit(s[k]) {
					k++
				}
				exp = string(s[j+1 : k])
				j = k
			}
		}
		m := mant.String()
		if m[0] == '.' {
			m = "0" + m
		}
		if m[len(m)-1] == '.' {
			m += "0"
		}
		v, err := strconv.ParseFloat("0x"+m+"p"+clampExp(exp), 64)
		return sign(v), j, rangeErr(err, v, nonzero)
	}
	j := i
	digits, nonzero := 0, false
	for j < len(s) && isDigit(s[j]) {
		nonzero = nonzero || s[j] != '0'
		j, digits = j+1, digits+1
	}
	if j < len(s) && s[j] == '.' {
		j++
		for j < len(s) && isDigit(s[j]) {
			nonzero = nonzero || s[j] != '0'
			j, digits = j+1, digits+1
		}
	}
	if digits == 0 {
		return 0, 0, false
	}
	mantEnd := j
	exp := ""
	if j < len(s) && (s[j]|0x20) == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			exp = string(s[j+1 : k])
			j = k
		}
	}
	num := string(s[i:mantEnd])
	if num[0] == '.' {
		num = "0" + num
	}
	if num[len(num)-1] == '.' {
		num += "0"
	}
	if exp != "" {
		num += "e" + clampExp(exp)
	}
	v, err := strconv.ParseFloat(num, 64)
	return sign(v), j, rangeErr(err, v, nonzero)
}

// clampExp keeps an exponent of many digits within what ParseFloat reads
// (the result is ±inf or 0 either way).
func clampExp(e string) string {
	neg := strings.HasPrefix(e, "-")
	d := strings.TrimLeft(strings.TrimLeft(e, "+-"), "0")
	if len(d) > 6 {
		d = "999999"
	}
	if d == "" {
		d = "0"
	}
	if neg {
		return "-" + d
	}
	return d
}

func rangeErr(err error, v float64, nonzero bool) bool {
	if err == nil {
		return v == 0 && nonzero
	}
	var ne *strconv.NumError
	if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		return true
	}
	return v == 0 && nonzero
}

// parseScore parses a score argument as Redis's getDoubleFromObject: the
// whole argument, no leading space, not NaN, no overflow or underflow to
// zero ("1e400", "1e-400" are refused; "inf" and "5e-324" are not).
func parseScore(b []byte) (float64, bool) {
	if len(b) == 0 || isCSpace(b[0]) {
		return 0, false
	}
	if f, ok := parseSmallInt(b); ok {
		return f, true
	}
	f, n, erange := strtod(b)
	if n != len(b) || erange || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseSmallInt reads b if it is an optional sign and 1 to 15 decimal
// digits, the common score (redis-benchmark's ZADD sends one): below 2^53,
// so exactly the double strtod gives, without the strings strtod builds
// for ParseFloat. "-0" is -0, as strtod reads it.
func parseSmallInt(b []byte) (float64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	neg := false
	if b[0] == '-' || b[0] == '+' {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	f := float64(n)
	if neg {
		f = -f
	}
	return f, true
}

// scoreArg is parseScore with Redis's reply.
func scoreArg(b []byte) (float64, error) {
	f, ok := parseScore(b)
	if !ok {
		return 0, errNotFloat
	}
	return f, nil
}

// formatScore is printf("%.17g", f), with "inf" and "-inf" (what
// addReplyDouble writes).
func formatScore(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	e := strconv.FormatFloat(f, 'e', 16, 64)
	at := strings.IndexByte(e, 'e')
	x, _ := strconv.Atoi(e[at+1:])
	if x < -4 || x >= 17 {
		mant := trimFraction(e[:at])
		sign := "+"
		if x < 0 {
			sign, x = "-", -x
		}
		xs := strconv.Itoa(x)
		if len(xs) < 2 {
			xs = "0" + xs
		}
		return mant + "e" + sign + xs
	}
	return trimFraction(strconv.FormatFloat(f, 'f', 16-x, 64))
}

// trimFraction drops a fraction's trailing zeros, and its point if
// nothing is left after it (%g's rule).
func trimFraction(s string) string {
	if strings.IndexByte(s, '.') < 0 {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// listpackScore is a score as Redis 7.0 stores it in a listpack (and ZSCAN
// of a listpack returns it): an integer when the double is one within
// ±2^62 (double2ll: -0 is 0), else d2string's "%.17g".
func listpackScore(f float64) string {
	const lim = float64(1 << 62)
	if f >= -lim && f <= lim && f == math.Trunc(f) {
		return strconv.FormatInt(int64(f), 10)
	}
	return formatScore(f)
}

// double writes a score as addReplyDouble: a bulk string in RESP2, a
// double in RESP3.
func (r *Request) double(f float64) {
	s := formatScore(f)
	if r.w.Proto < 3 {
		r.w.BulkString(s)
		return
	}
	r.w.Raw([]byte("," + s + "\r\n"))
}

// scoreRange is Redis's zrangespec: [min, max], either end exclusive.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

// parseRangeScore parses one end of a score range as zslParseRange: "("
// makes it exclusive; then strtod, which may skip leading space and
// over- or underflow, and must stop at the end or at a NUL byte (C's
// string end); NaN is refused.
func parseRangeScore(b []byte) (f float64, ex bool, ok bool) {
	if len(b) > 0 && b[0] == '(' {
		b, ex = b[1:], true
	}
	f, n, _ := strtod(b)
	if n < len(b) && b[n] != 0 {
		return 0, false, false
	}
	if math.IsNaN(f) {
		return 0, false, false
	}
	return f, ex, true
}

func parseScoreRange(min, max []byte) (scoreRange, error) {
	var sr scoreRange
	var ok1, ok2 bool
	sr.min, sr.minex, ok1 = parseRangeScore(min)
	sr.max, sr.maxex, ok2 = parseRangeScore(max)
	if !ok1 || !ok2 {
		return sr, errZMinMax
	}
	return sr, nil
}

func (sr scoreRange) empty() bool {
	return sr.min > sr.max || (sr.min == sr.max && (sr.minex || sr.maxex))
}
func (sr scoreRange) gteMin(f float64) bool {
	if sr.minex {
		return f > sr.min
	}
	return f >= sr.min
}
func (sr scoreRange) lteMax(f float64) bool {
	if sr.maxex {
		return f < sr.max
	}
	return f <= sr.max
}

// lexBound is one end of a lexicographic range: inf -1 is "-" (below
// every string), +1 is "+" (above every string).
type lexBound struct {
	s   []byte
	inf int
}

// lexRange is Redis's zlexrangespec.
type lexRange struct {
	min, max     lexBound
	minex, maxex bool
}

func parseLexItem(b []byte) (lexBound, bool, bool) {
	if len(b) == 0 {
		return lexBound{}, false, false
	}
	switch b[0] {
	case '+', '-':
		if len(b) > 1 && b[1] != 0 {
			return lexBound{}, false, false
		}
		if b[0] == '+' {
			return lexBound{inf: 1}, true, true
		}
		return lexBound{inf: -1}, true, true
	case '(':
		return lexBound{s: b[1:]}, true, true
	case '[':
		return lexBound{s: b[1:]}, false, true
	}
	return lexBound{}, false, false
}

func parseLexRange(min, max []byte) (lexRange, error) {
	var lr lexRange
	var ok1, ok2 bool
	lr.min, lr.minex, ok1 = parseLexItem(min)
	lr.max, lr.maxex, ok2 = parseLexItem(max)
	if !ok1 || !ok2 {
		return lr, errZLexRange
	}
	return lr, nil
}

// cmpLex is sdscmplex: the special bounds compare as Redis's shared
// minstring and maxstring objects do (equal only to themselves).
func cmpLex(a, b lexBound) int {
	if a.inf != 0 && a.inf == b.inf {
		return 0
	}
	if a.inf == -1 || b.inf == 1 {
		return -1
	}
	if a.inf == 1 || b.inf == -1 {
		return 1
	}
	return strings.Compare(string(a.s), string(b.s))
}

func (lr lexRange) empty() bool {
	c := cmpLex(lr.min, lr.max)
	return c > 0 || (c == 0 && (lr.minex || lr.maxex))
}
func (lr lexRange) gteMin(m []byte) bool {
	c := cmpLex(lexBound{s: m}, lr.min)
	if lr.minex {
		return c > 0
	}
	return c >= 0
}
func (lr lexRange) lteMax(m []byte) bool {
	c := cmpLex(lexBound{s: m}, lr.max)
	if lr.maxex {
		return c < 0
	}
	return c <= 0
}
