package command

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// maxStepsPerPop bounds the sub-keys the backend steps over per pop
// (backend.SubKeysStepped), deletions included: a reverse seek and a
// forward one (embedded), or the forward-only search's seeks of two keys
// each (lastBelowFwd: about 8 per byte it builds), or, once the set holds
// fewer than fwdSearchMin members, one read of them all. Without the marks
// pop k stepped over the k-1 deletions earlier pops left in the memtable.
const maxStepsPerPop = fwdSearchMin + 8

// Thousands of ZPOPMINs and ZPOPMAXs on one set, with no flush in between
// to drop their deletions, step over a bounded number of sub-keys each,
// and pop the right members; with the reverse seek and with forward seeks
// only (the raft backend's way; tests/gateway runs it there).
func TestZPopStepsStayBounded(t *testing.T) {
	bothWalks(t, func(t *testing.T) {
		e, c := randExecutor(t)
		const n = 4000
		name := func(i int) string { return fmt.Sprintf("m:%05d", i) }
		fill(t, e, c, "ZADD", "z", n, name)
		lo, hi := 0, n-1
		worst, total := int64(0), int64(0)
		for i := 0; lo <= hi; i++ {
			before := backend.SubKeysStepped.Value()
			var want int
			var reply string
			switch i % 4 {
			case 0, 1:
				reply, want = do(t, e, c, "ZPOPMIN", "z"), lo
				lo++
			case 2:
				reply, want = do(t, e, c, "ZPOPMAX", "z"), hi
				hi--
			case 3:
				reply, want = do(t, e, c, "ZMPOP", "1", "z", "MAX"), hi
				hi--
			}
			steps := backend.SubKeysStepped.Value() - before
			total += steps
			worst = max(worst, steps)
			if b := bulks(reply); len(b) < 2 || b[len(b)-2] != name(want) || b[len(b)-1] != strconv.Itoa(want) {
				t.Fatalf("pop %d (kind %d) = %q, want %s", i, i%4, reply, name(want))
			}
		}
		t.Logf("%d pops: %d sub-keys stepped per pop on average, %d at most", n, total/n, worst)
		if worst > maxStepsPerPop {
			t.Fatalf("a pop stepped over %d sub-keys, want <= %d", worst, maxStepsPerPop)
		}
		if got := do(t, e, c, "EXISTS", "z"); got != ":0\r\n" {
			t.Fatalf("EXISTS z after popping every member = %q", got)
		}
	})
}

// A ZRANGE from rank 0 and a ZREMRANGEBYRANK from 0 start at the low mark
// too: after popping half the set, each steps over a bounded number of
// sub-keys, not the popped half's deletions.
func TestZRangeFromRankZeroSkipsPopped(t *testing.T) {
	e, c := randExecutor(t)
	const n = 4000
	name := func(i int) string { return fmt.Sprintf("m:%05d", i) }
	fill(t, e, c, "ZADD", "z", n, name)
	do(t, e, c, "ZPOPMIN", "z", strconv.Itoa(n/2))
	for _, cmd := range [][]string{{"ZRANGE", "z", "0", "0"}, {"ZRANK", "z", name(n / 2)}, {"ZREMRANGEBYRANK", "z", "0", "0"},
		{"ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "0", "1"}, {"ZPOPMIN", "z"}} {
		before := backend.SubKeysStepped.Value()
		got := do(t, e, c, cmd...)
		if steps := backend.SubKeysStepped.Value() - before; steps > maxStepsPerPop {
			t.Fatalf("%v = %q stepped over %d sub-keys, want <= %d", cmd, got, steps, maxStepsPerPop)
		}
	}
	if got := do(t, e, c, "ZRANGE", "z", "0", "0"); got != fmt.Sprintf("*1\r\n$7\r\n%s\r\n", name(n/2+2)) {
		t.Fatalf("ZRANGE z 0 0 = %q, want %s", got, name(n/2+2))
	}
}

// A sorted set whose metadata record has no marks — as every record
// written before them, format 1 — reads and pops as before, whatever
// deletions its index holds, and gets its marks at its first pop.
func TestZSetRecordWithoutMarks(t *testing.T) {
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := New(st, Options{})
	c := e.NewClient("127.0.0.1:1", "127.0.0.1:2")
	name := func(i int) string { return fmt.Sprintf("m:%03d", i) }
	fill(t, e, c, "ZADD", "z", 300, name)
	do(t, e, c, "ZPOPMIN", "z", "10")
	do(t, e, c, "ZPOPMAX", "z", "10")
	// Rewrite the record as the binaries before the marks wrote it: the
	// same version and count, format 1, no marks.
	stored := keyspace.Key(0, []byte("z"))
	rewrite := func(fn func(m *keyspace.Meta) int) int {
		var format int
		err := st.Update(context.Background(), backend.WriteOptions{SubKeys: true}, [][]byte{stored}, func(tx backend.Txn) error {
			v, ok, err := tx.Get(stored)
			if err != nil || !ok {
				return fmt.Errorf("get z: %v, found %v", err, ok)
			}
			m, err := keyspace.DecodeMeta(v.Data)
			if err != nil {
				return err
			}
			format = fn(&m)
			v.Data = keyspace.AppendMeta(nil, m)
			tx.Set(stored, v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return format
	}
	rewrite(func(m *keyspace.Meta) int {
		if m.ZLow == nil || m.ZHigh == nil {
			t.Fatalf("no marks after pops at both ends: %+v", m)
		}
		m.ZLow, m.ZHigh = nil, nil
		return 0
	})
	if f := rewrite(func(*keyspace.Meta) int { return 0 }); f != 0 {
		t.Fatal(f)
	}
	var v backend.Value
	err = st.Update(context.Background(), backend.WriteOptions{}, [][]byte{stored}, func(tx backend.Txn) error {
		var err error
		v, _, err = tx.Get(stored)
		return err
	})
	if err != nil || v.Data[0] != 1 || len(v.Data) != 26 {
		t.Fatalf("record without marks = %x, %v; want format 1, 26 bytes", v.Data, err)
	}
	for _, tc := range []struct{ cmd, want []string }{
		{[]string{"ZCARD", "z"}, []string{"280"}},
		{[]string{"ZRANGE", "z", "0", "1"}, []string{name(10), name(11)}},
		{[]string{"ZREVRANGE", "z", "0", "0"}, []string{name(289)}},
		{[]string{"ZRANK", "z", name(12)}, []string{"2"}},
		{[]string{"ZPOPMIN", "z"}, []string{name(10), "10"}},
		{[]string{"ZPOPMAX", "z"}, []string{name(289), "289"}},
		{[]string{"ZADD", "z", "5", "low", "500", "high"}, []string{"2"}},
		{[]string{"ZPOPMIN", "z", "2"}, []string{"low", "5", name(11), "11"}},
		{[]string{"ZPOPMAX", "z", "2"}, []string{"high", "500", name(288), "288"}},
		{[]string{"ZRANGE", "z", "0", "0"}, []string{name(12)}},
	} {
		got := do(t, e, c, tc.cmd...)
		b := bulks(got)
		if len(b) == 0 && len(got) > 1 && got[0] == ':' {
			b = []string{got[1 : len(got)-2]}
		}
		if fmt.Sprint(b) != fmt.Sprint(tc.want) {
			t.Fatalf("%v = %q, want %v", tc.cmd, got, tc.want)
		}
	}
	rewrite(func(m *keyspace.Meta) int {
		if m.ZLow == nil || m.ZHigh == nil {
			t.Fatalf("no marks after pops from a record without them: %+v", m)
		}
		return 0
	})
}
