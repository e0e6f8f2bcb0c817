package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
)

// The embedded backend answers most existence reads of a hot collection
// from a negative-lookup filter (embedded/filter.go); a member the filter
// missed would be counted twice (SADD would answer 1 for a member it
// holds, SCARD would grow). TestCollectionFilterModel runs random
// sequences of every command that writes elements (SADD, HSET, ZADD and
// their deletions, DEL, RENAME, COPY, SMOVE, the *STORE commands,
// DUMP/RESTORE, MULTI/EXEC, a command that panics after writing elements)
// over a few keys, under the event loop's batch and without it, and
// checks every reply that depends on what a collection holds against a
// model.

type modelVal struct {
	typ string            // "set", "hash", "zset"
	m   map[string]string // member -> value ("" for sets, the score for zsets)
}

func (v *modelVal) clone() *modelVal {
	c := &modelVal{typ: v.typ, m: make(map[string]string, len(v.m))}
	for k, x := range v.m {
		c.m[k] = x
	}
	return c
}

var intReplyRE = regexp.MustCompile(`^:(-?\d+)\r\n$`)

func intReply(t *testing.T, what, reply string) int {
	t.Helper()
	m := intReplyRE.FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("%s: reply %q is not an integer", what, reply)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestCollectionFilterModel(t *testing.T) {
	for _, grouped := range []bool{true, false} {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("grouped=%v/seed=%d", grouped, seed), func(t *testing.T) {
				runCollectionModel(t, grouped, seed, 5000)
			})
		}
	}
}

func runCollectionModel(t *testing.T, grouped bool, seed uint64, steps int) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), Sync: embedded.SyncNo, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := New(st, Options{Logger: log, TestingPanicOn: func(k []byte) bool { return string(k) == "boom" }})
	c := e.NewClient("127.0.0.1:1", "127.0.0.1:2")
	ctx := context.Background()
	if grouped {
		ctx = e.be.(backend.Batcher).Batch(ctx)
		// Before Close (cleanups run last first), the end of the loop's
		// last iteration: the group lets go of the writers' lock, which
		// the sweeper Close waits for may be waiting on.
		t.Cleanup(func() { _ = e.be.Sync(ctx) })
	}
	rng := rand.New(rand.NewPCG(7, seed))
	model := map[string]*modelVal{}
	keys := []string{"a", "b", "c", "d"}
	types := []string{"set", "hash", "zset"}
	run := func(args ...string) (string, error) {
		err := e.Exec(ctx, c, argv(args...), true)
		out := string(c.Out.Bytes())
		c.Out.Reset()
		if grouped && rng.IntN(4) == 0 {
			// The end of an event-loop iteration: the batch commits.
			if err := e.be.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return out, err
	}
	do := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return out
	}
	member := func() string { return fmt.Sprintf("m%d", rng.IntN(300)) }
	addCmd := func(typ, key, m string, score int) ([]string, func(v *modelVal) int) {
		apply := func(v *modelVal) int {
			_, had := v.m[m]
			switch typ {
			case "set":
				v.m[m] = ""
			case "hash":
				v.m[m] = fmt.Sprint("v", score)
			case "zset":
				v.m[m] = fmt.Sprint(score)
			}
			if had {
				return 0
			}
			return 1
		}
		switch typ {
		case "set":
			return []string{"SADD", key, m}, apply
		case "hash":
			return []string{"HSET", key, m, fmt.Sprint("v", score)}, apply
		default:
			return []string{"ZADD", key, fmt.Sprint(score), m}, apply
		}
	}
	get := func(key string) *modelVal {
		v := model[key]
		if v == nil || len(v.m) == 0 {
			delete(model, key)
			return nil
		}
		return v
	}
	for step := 0; step < steps; step++ {
		key := keys[rng.IntN(len(keys))]
		other := keys[rng.IntN(len(keys))]
		v := get(key)
		typ := types[rng.IntN(3)]
		if v != nil {
			typ = v.typ
		}
		what := fmt.Sprintf("step %d", step)
		switch op := rng.IntN(100); {
		case op < 50: // add one or two elements
			m1, m2 := member(), member()
			args, apply := addCmd(typ, key, m1, rng.IntN(1000))
			if v == nil {
				v = &modelVal{typ: typ, m: map[string]string{}}
				model[key] = v
			}
			want := apply(v)
			if m2 != m1 && typ == "set" {
				args = append(args, m2)
				want += apply2set(v, m2)
			}
			if got := intReply(t, what+" "+strings.Join(args, " "), do(args...)); got != want {
				t.Fatalf("%s: %q = %d, want %d", what, args, got, want)
			}
		case op < 60: // remove one
			m := member()
			cmd := map[string]string{"set": "SREM", "hash": "HDEL", "zset": "ZREM"}[typ]
			want := 0
			if v != nil {
				if _, ok := v.m[m]; ok {
					want = 1
					delete(v.m, m)
				}
			}
			if got := intReply(t, what, do(cmd, key, m)); got != want {
				t.Fatalf("%s: %s %s %s = %d, want %d", what, cmd, key, m, got, want)
			}
		case op < 72: // membership
			m := member()
			want := 0
			if v != nil {
				if _, ok := v.m[m]; ok {
					want = 1
				}
			}
			cmd := map[string]string{"set": "SISMEMBER", "hash": "HEXISTS", "zset": "ZSCORE"}[typ]
			out := do(cmd, key, m)
			got := 0
			if typ == "zset" {
				if out != "$-1\r\n" {
					got = 1
					if want == 1 && out != fmt.Sprintf("$%d\r\n%s\r\n", len(v.m[m]), v.m[m]) {
						t.Fatalf("%s: ZSCORE %s %s = %q, want %s", what, key, m, out, v.m[m])
					}
				}
			} else {
				got = intReply(t, what, out)
			}
			if got != want {
				t.Fatalf("%s: %s %s %s = %q, want %d", what, cmd, key, m, out, want)
			}
		case op < 74:
			do("DEL", key)
			delete(model, key)
		case op < 76:
			out, _ := run("RENAME", key, other)
			if v == nil {
				if !strings.HasPrefix(out, "-ERR") {
					t.Fatalf("%s: RENAME of a missing key = %q", what, out)
				}
				break
			}
			if key != other {
				model[other] = v
				delete(model, key)
			}
		case op < 78:
			if key == other {
				break
			}
			do("COPY", key, other, "REPLACE")
			if v != nil {
				model[other] = v.clone()
			} else if get(other) != nil {
				// COPY of a missing key copies nothing: the destination stays.
			}
		case op < 82: // SMOVE between sets
			m := member()
			ov := get(other)
			if typ != "set" || (ov != nil && ov.typ != "set") {
				break
			}
			want := 0
			if v != nil {
				if _, ok := v.m[m]; ok {
					want = 1
				}
			}
			if got := intReply(t, what, do("SMOVE", key, other, m)); got != want {
				t.Fatalf("%s: SMOVE %s %s %s = %d, want %d", what, key, other, m, got, want)
			}
			if want == 1 {
				delete(v.m, m)
				if ov == nil {
					ov = &modelVal{typ: "set", m: map[string]string{}}
					model[other] = ov
				}
				ov.m[m] = ""
			}
		case op < 85: // a *STORE command into other, from key and a third key
			third := keys[rng.IntN(len(keys))]
			tv := get(third)
			if v == nil || (typ != "set" && typ != "zset") || (tv != nil && tv.typ != typ) {
				break
			}
			res := &modelVal{typ: typ, m: map[string]string{}}
			var cmd []string
			if typ == "set" {
				cmd = []string{"SUNIONSTORE", other, key, third}
			} else {
				cmd = []string{"ZUNIONSTORE", other, "2", key, third, "AGGREGATE", "MAX"}
			}
			for _, src := range []*modelVal{v, tv} {
				if src == nil {
					continue
				}
				for m, s := range src.m {
					if old, ok := res.m[m]; ok && typ == "zset" {
						a, _ := strconv.Atoi(old)
						b, _ := strconv.Atoi(s)
						s = fmt.Sprint(max(a, b))
					}
					res.m[m] = s
				}
			}
			if got := intReply(t, what, do(cmd...)); got != len(res.m) {
				t.Fatalf("%s: %q = %d, want %d", what, cmd, got, len(res.m))
			}
			model[other] = res
		case op < 87: // DUMP key, RESTORE other REPLACE
			if v == nil {
				break
			}
			payload := bulks(do("DUMP", key))
			if len(payload) != 1 {
				// A payload holding \r is not split by bulks: skip it.
				break
			}
			out := do("RESTORE", other, "0", payload[0], "REPLACE")
			if out != "+OK\r\n" {
				break
			}
			model[other] = v.clone()
		case op < 93: // MULTI with two adds, EXEC
			if v == nil {
				v = &modelVal{typ: typ, m: map[string]string{}}
				model[key] = v
			}
			do("MULTI")
			var want []int
			for range 2 {
				args, apply := addCmd(typ, key, member(), rng.IntN(1000))
				if out := do(args...); out != "+QUEUED\r\n" {
					t.Fatalf("%s: queued %q = %q", what, args, out)
				}
				want = append(want, apply(v))
			}
			out := do("EXEC")
			wantOut := "*2\r\n"
			for _, w := range want {
				wantOut += fmt.Sprintf(":%d\r\n", w)
			}
			if out != wantOut {
				t.Fatalf("%s: EXEC = %q, want %q", what, out, wantOut)
			}
		case op < 95: // a command that panics after writing elements
			if v == nil {
				break
			}
			cmd := []string{"SUNIONSTORE", "boom", key}
			if typ == "zset" {
				cmd = []string{"ZUNIONSTORE", "boom", "1", key}
			} else if typ == "hash" {
				cmd = []string{"COPY", key, "boom"}
			}
			_, _ = run(cmd...)
			// The client's connection would be closed: a new one.
			c = e.NewClient("127.0.0.1:1", "127.0.0.1:2")
		default: // count
			cmd := map[string]string{"set": "SCARD", "hash": "HLEN", "zset": "ZCARD"}[typ]
			want := 0
			if v != nil {
				want = len(v.m)
			}
			if got := intReply(t, what, do(cmd, key)); got != want {
				t.Fatalf("%s: %s %s = %d, want %d", what, cmd, key, got, want)
			}
		}
	}
	// Every key's full contents at the end, and the boom key never written.
	for _, key := range append(keys, "boom") {
		v := get(key)
		typ := ""
		if v != nil {
			typ = v.typ
		}
		out := do("TYPE", key)
		if wantType := map[string]string{"": "none", "set": "set", "hash": "hash", "zset": "zset"}[typ]; out != "+"+wantType+"\r\n" {
			t.Fatalf("TYPE %s = %q, want %s", key, out, wantType)
		}
		if v == nil {
			continue
		}
		var got []string
		switch typ {
		case "set":
			got = bulks(do("SMEMBERS", key))
		case "hash":
			got = bulks(do("HKEYS", key))
		case "zset":
			got = bulks(do("ZRANGE", key, "0", "-1"))
		}
		want := make([]string, 0, len(v.m))
		for m := range v.m {
			want = append(want, m)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: members %v, want %v", key, got, want)
		}
	}
	n, builds := st.FilterStats()
	if builds == 0 {
		t.Fatalf("no collection filter was built (%d held): the test did not exercise them", n)
	}
	t.Logf("%d filters built, %d held", builds, n)
}

// apply2set adds m to a set's model and returns 1 if it is new.
func apply2set(v *modelVal, m string) int {
	if _, ok := v.m[m]; ok {
		return 0
	}
	v.m[m] = ""
	return 1
}
