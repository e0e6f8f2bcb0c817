package glob

import (
	"bytes"
	"testing"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h*llo", "heeeello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{"user:*", "user:1", true},
		{"user:*", "usr:1", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false},
		{"**", "x", true},
		{"[", "x", false},
		{"x*", "", false},
		{"", "", true},
		{"", "a", false},
	}
	for _, c := range cases {
		if got := Match([]byte(c.p), []byte(c.s)); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestMatchHostilePatternTerminates(t *testing.T) {
	p := bytes.Repeat([]byte("a*"), 40)
	p = append(p, 'b')
	s := bytes.Repeat([]byte("a"), 60)
	if Match(p, s) {
		t.Fatal("hostile pattern matched")
	}
}

func TestLiteralPrefix(t *testing.T) {
	cases := map[string]string{
		"user:*":   "user:",
		`a\*b*`:    "a*b",
		"?x":       "",
		"plain":    "plain",
		"ab[cd]ef": "ab",
	}
	for p, want := range cases {
		if got := string(LiteralPrefix([]byte(p))); got != want {
			t.Errorf("LiteralPrefix(%q) = %q, want %q", p, got, want)
		}
	}
}
