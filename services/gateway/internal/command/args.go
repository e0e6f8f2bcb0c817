package command

import (
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// parseInt parses a signed 64-bit integer with the strictness of Redis's string2ll:
// no spaces, no '+', no leading zeros, no "-0", at most 20 characters.
func parseInt(b []byte) (int64, bool) { return resp.ParseInt(b) }

// intArg parses an integer argument, replying Redis's standard error if it is not.
func intArg(b []byte) (int64, error) {
	n, ok := parseInt(b)
	if !ok {
		return 0, errNotInteger
	}
	return n, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// equalFold reports whether b equals the ASCII-lowercase word s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// lower returns an ASCII-lowercased copy of b in dst.
func lower(dst, b []byte) []byte {
	dst = dst[:0]
	for _, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
