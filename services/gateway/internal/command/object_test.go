package command

import (
	"slices"
	"testing"
)

// EXEC latches the keys its queued commands name (embedded backend); for a
// container those are where its subcommand's entry says, or OBJECT ENCODING
// would read its key unlatched inside EXEC's transaction.
func TestKeysOfContainerSubcommands(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"OBJECT", "ENCODING", "k"}, []string{"k"}},
		{[]string{"object", "refcount", "k"}, []string{"k"}},
		{[]string{"OBJECT", "HELP"}, nil},
		{[]string{"OBJECT", "NOSUCH", "k"}, nil},
		{[]string{"CLIENT", "SETNAME", "n"}, nil},
		{[]string{"DUMP", "k"}, []string{"k"}},
		{[]string{"RESTORE", "k", "0", "payload", "REPLACE"}, []string{"k"}},
	} {
		args := make([][]byte, len(c.args))
		for i, a := range c.args {
			args[i] = []byte(a)
		}
		var got []string
		for _, k := range Lookup(string(lower(nil, args[0]))).keysOf(args) {
			got = append(got, string(k))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("keysOf(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

// stringEncoding follows tryObjectEncoding's rules (string2l within 20
// characters, shared integers 0..9999, embstr up to 44 bytes).
func TestStringEncoding(t *testing.T) {
	for _, c := range []struct {
		v      string
		enc    string
		shared bool
	}{
		{"0", "int", true}, {"9999", "int", true}, {"10000", "int", false}, {"-1", "int", false},
		{"9223372036854775807", "int", false}, {"-9223372036854775808", "int", false},
		{"9223372036854775808", "embstr", false}, {"-0", "embstr", false}, {"01", "embstr", false},
		{"+1", "embstr", false}, {"", "embstr", false}, {"1.0", "embstr", false},
		{"12345678901234567890", "embstr", false}, // 20 characters, over int64
		{string(make([]byte, 44)), "embstr", false}, {string(make([]byte, 45)), "raw", false},
	} {
		enc, shared := stringEncoding(int64(len(c.v)), []byte(c.v))
		if enc != c.enc || shared != c.shared {
			t.Errorf("stringEncoding(%q) = %s, %v; want %s, %v", c.v, enc, shared, c.enc, c.shared)
		}
	}
}
