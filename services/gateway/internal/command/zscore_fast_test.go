package command

import (
	"math"
	"strconv"
	"testing"
)

// The integer fast path of parseScore gives what strtod gives, -0's sign
// included, and leaves what it does not read to strtod.
func TestParseSmallIntMatchesStrtod(t *testing.T) {
	in := []string{"0", "-0", "+0", "7", "-7", "+7", "007", "-007", "100000", "99999",
		"123456789012345", "-123456789012345", "999999999999999", "1234567890123456",
		"-", "+", "1.5", "1e3", "0x10", " 5", "5 ", "inf", "-inf", "nan", "12a"}
	for i := range 2000 {
		in = append(in, strconv.Itoa(i*7919-5000000))
	}
	for _, s := range in {
		b := []byte(s)
		want, n, erange := strtod(b)
		wantOK := n == len(b) && !erange && !math.IsNaN(want) && len(b) > 0 && !isCSpace(b[0])
		got, ok := parseScore(b)
		if ok != wantOK || (ok && (got != want || math.Signbit(got) != math.Signbit(want))) {
			t.Errorf("parseScore(%q) = %v, %v; strtod reads %v, %v", s, got, ok, want, wantOK)
		}
		if f, fast := parseSmallInt(b); fast && (f != want || math.Signbit(f) != math.Signbit(want)) {
			t.Errorf("parseSmallInt(%q) = %v; strtod reads %v", s, f, want)
		}
	}
}
