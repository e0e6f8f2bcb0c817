package command

import (
	"slices"
	"testing"
)

// LRANGE of an unchanged list is served from the range cache, and every
// write of the list (or a new incarnation of the key) is seen at once: the
// record's stamp and version key the entries.
func TestLRangeCacheSeesEveryWrite(t *testing.T) {
	e, c := randExecutor(t)
	lrange := func(want ...string) {
		t.Helper()
		if got := bulks(do(t, e, c, "LRANGE", "l", "0", "-1")); !slices.Equal(got, want) {
			t.Fatalf("LRANGE l 0 -1 = %q, want %q", got, want)
		}
	}
	do(t, e, c, "RPUSH", "l", "a", "b", "c")
	lrange("a", "b", "c")
	hits := rangeCacheHits.Value()
	lrange("a", "b", "c")
	if rangeCacheHits.Value() != hits+1 {
		t.Fatalf("a second LRANGE of an unchanged list was not served from the cache")
	}
	for _, step := range []struct {
		args []string
		want []string
	}{
		{[]string{"LSET", "l", "1", "B"}, []string{"a", "B", "c"}},
		{[]string{"LPUSH", "l", "z"}, []string{"z", "a", "B", "c"}},
		{[]string{"RPOP", "l"}, []string{"z", "a", "B"}},
		{[]string{"LREM", "l", "0", "a"}, []string{"z", "B"}},
		{[]string{"LINSERT", "l", "BEFORE", "B", "y"}, []string{"z", "y", "B"}},
		{[]string{"LTRIM", "l", "1", "-1"}, []string{"y", "B"}},
		{[]string{"DEL", "l"}, nil},
		{[]string{"RPUSH", "l", "y", "B"}, []string{"y", "B"}},
		{[]string{"LMOVE", "l", "l", "LEFT", "RIGHT"}, []string{"B", "y"}},
	} {
		do(t, e, c, step.args...)
		lrange(step.want...)
		lrange(step.want...)
	}
	// Inside MULTI, the transaction's own writes.
	do(t, e, c, "MULTI")
	do(t, e, c, "RPUSH", "l", "x")
	do(t, e, c, "LRANGE", "l", "0", "-1")
	if got := bulks(do(t, e, c, "EXEC")); !slices.Equal(got, []string{"B", "y", "x"}) {
		t.Fatalf("EXEC's LRANGE = %q", got)
	}
	lrange("B", "y", "x")
}
