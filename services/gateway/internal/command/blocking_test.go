package command

import (
	"testing"
	"time"
)

// blockTimeout against what redis-server 7.0.15 does with each timeout
// (the byte-for-byte comparison is in gatewayserver; this pins the
// durations, which a reply cannot show).
func TestBlockTimeout(t *testing.T) {
	forever := time.Duration(0)
	for _, tc := range []struct {
		arg  string
		want time.Duration
		err  string
	}{
		{"0", forever, ""}, {"-0", forever, ""}, {"-0.0009", forever, ""}, {"-0.001", forever, ""}, {"-0.0011", 0, "ERR timeout is negative"},
		{"0.0001", time.Millisecond, ""}, {"0.0006", time.Millisecond, ""}, {"0.001", time.Millisecond, ""},
		{"0.0015", 2 * time.Millisecond, ""}, {"1e-400", time.Millisecond, ""}, {"0.01", 10 * time.Millisecond, ""},
		{"1.5", 1500 * time.Millisecond, ""}, {"0x10", 16 * time.Second, ""},
		{"9223372036854775.8071", forever, ""}, {"9223372036854775.8072", 0, "ERR timeout is negative"},
		{"1e16", 0, "ERR timeout is negative"}, {"inf", 0, "ERR timeout is negative"},
		{"nan", 0, "ERR timeout is not a float or out of range"}, {"x", 0, "ERR timeout is not a float or out of range"},
	} {
		got, err := blockTimeout([]byte(tc.arg))
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tc.want || gotErr != tc.err {
			t.Errorf("blockTimeout(%q) = %v, %q; want %v, %q", tc.arg, got, gotErr, tc.want, tc.err)
		}
	}
}
