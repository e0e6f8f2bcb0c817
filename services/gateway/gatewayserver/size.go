package gatewayserver

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// ByteSize is a size in bytes. As a flag or environment value it takes
// Redis's memory units: a plain number of bytes, or one with k, kb, m, mb, g
// or gb (k = 1000, kb = 1024, and so on; any case), as in `1gb` or `512mb`.
// It prints as plain bytes.
type ByteSize int64

// ParseByteSize parses s as Redis's memtoull does.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSuffix(t, u.suffix), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || t == "" || t[0] == '+' {
		return 0, fmt.Errorf("%q: want a size in bytes, optionally with a unit (k, kb, m, mb, g, gb)", s)
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return ByteSize(n * mul), nil
}

// String implements flag.Value.
func (b ByteSize) String() string { return strconv.FormatInt(int64(b), 10) }

// Set implements flag.Value.
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler (environment variables).
func (b *ByteSize) UnmarshalText(text []byte) error { return b.Set(string(text)) }

// OutputBufferLimit is Redis's `client-output-buffer-limit normal <hard>
// <soft> <soft-seconds>`: a client whose pending replies reach Hard bytes is
// closed at once; one whose pending replies stay at or above Soft bytes for
// more than SoftSeconds is closed then. 0 turns a limit off. As a flag or
// environment value it is "<hard> <soft> <soft-seconds>", optionally led by
// "normal", sizes in Redis's memory units: `1gb 0 0`, `normal 256mb 64mb 60`.
type OutputBufferLimit struct {
	Hard        ByteSize
	Soft        ByteSize
	SoftSeconds int64
}

// ParseOutputBufferLimit parses s (see OutputBufferLimit).
func ParseOutputBufferLimit(s string) (OutputBufferLimit, error) {
	f := strings.Fields(s)
	if len(f) == 4 && strings.EqualFold(f[0], "normal") {
		f = f[1:]
	}
	if len(f) != 3 {
		return OutputBufferLimit{}, fmt.Errorf("%q: want \"<hard> <soft> <soft-seconds>\" (for normal clients), e.g. \"1gb 0 0\"", s)
	}
	hard, err := ParseByteSize(f[0])
	if err != nil {
		return OutputBufferLimit{}, fmt.Errorf("hard limit %w", err)
	}
	soft, err := ParseByteSize(f[1])
	if err != nil {
		return OutputBufferLimit{}, fmt.Errorf("soft limit %w", err)
	}
	secs, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || secs < 0 || secs > math.MaxInt64/int64(time.Second) {
		return OutputBufferLimit{}, errors.New("soft-seconds " + strconv.Quote(f[2]) + ": want a number of seconds")
	}
	return OutputBufferLimit{Hard: hard, Soft: soft, SoftSeconds: secs}, nil
}

// String implements flag.Value.
func (o OutputBufferLimit) String() string {
	return fmt.Sprintf("%d %d %d", o.Hard, o.Soft, o.SoftSeconds)
}

// Set implements flag.Value.
func (o *OutputBufferLimit) Set(s string) error {
	v, err := ParseOutputBufferLimit(s)
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// UnmarshalText implements encoding.TextUnmarshaler (environment variables).
func (o *OutputBufferLimit) UnmarshalText(text []byte) error { return o.Set(string(text)) }

// limit is the form the servers enforce.
func (o OutputBufferLimit) limit() resp.OutputLimit {
	return resp.OutputLimit{Hard: int64(o.Hard), Soft: int64(o.Soft), SoftFor: time.Duration(o.SoftSeconds) * time.Second}
}
