package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"
)

// The Redis workload: clients speak RESP to the gateways with go-redis and
// porcupine checks what they saw.
//
// The keys come in groups of two, one in each region ("a/..." below the
// split key "m", "x/..." above it). A group is one object of the model: a
// pair of integer registers. Single-key commands (GET, SET, DEL, INCR) touch
// one register; MSET writes both in one command and MGET reads both, so
// the model checks that MSET is atomic across regions (no MGET, and no
// sequence of single-key reads, may see half of one) together with
// linearizability. Linearizability is local, so checking each group on its
// own (porcupine's partitions) is sound: no command spans two groups.
//
// Besides the shared groups, clients MSET pairs of fresh keys ("b/..." and
// "z/...", again one per region) that nobody reads until the end: the
// final reads make every acknowledged pair a check that no acknowledged
// write is lost, and a cross-region MSET that a dying gateway left half
// committed must end up whole (or not at all).

type rkind int

const (
	rGet rkind = iota
	rSet
	rDel
	rIncr
	rMSet
	rMGet
	// The same commands whose outcome is unknown (the reply never came or
	// said so): their effect may or may not happen, at any time after the
	// call, and their reply is not checked.
	rDelAny
	rIncrAny
)

// rin is a command on one group; slot picks the key of a single-key command.
type rin struct {
	kind  rkind
	group string
	slot  int
	value int // SET, MSET: the value written (MSET writes it to both keys)
}

// rout is a reply: vals[slot] for GET and INCR (the value after), both for
// MGET; -1 is an absent key. n is DEL's count.
type rout struct {
	vals [2]int
	n    int
}

// pairModel is the model of one group: two registers, -1 absent.
var pairModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byGroup := map[string][]porcupine.Operation{}
		for _, op := range history {
			g := op.Input.(rin).group
			byGroup[g] = append(byGroup[g], op)
		}
		out := make([][]porcupine.Operation, 0, len(byGroup))
		for _, ops := range byGroup {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return [2]int{-1, -1} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.([2]int), input.(rin), output.(rout)
		next := s
		switch in.kind {
		case rGet:
			return out.vals[in.slot] == s[in.slot], s
		case rMGet:
			return out.vals == s, s
		case rSet:
			next[in.slot] = in.value
			return true, next
		case rMSet:
			return true, [2]int{in.value, in.value}
		case rDel, rDelAny:
			next[in.slot] = -1
			if in.kind == rDelAny {
				return true, next
			}
			want := 0
			if s[in.slot] >= 0 {
				want = 1
			}
			return out.n == want, next
		default: // rIncr, rIncrAny
			next[in.slot] = max(s[in.slot], 0) + 1
			return in.kind == rIncrAny || out.vals[in.slot] == next[in.slot], next
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(rin), output.(rout)
		k := keyName(in.group, in.slot)
		switch in.kind {
		case rGet:
			return fmt.Sprintf("GET %s -> %d", k, out.vals[in.slot])
		case rMGet:
			return fmt.Sprintf("MGET %s -> %v", in.group, out.vals)
		case rSet:
			return fmt.Sprintf("SET %s %d", k, in.value)
		case rMSet:
			return fmt.Sprintf("MSET %s %d", in.group, in.value)
		case rDel:
			return fmt.Sprintf("DEL %s -> %d", k, out.n)
		case rDelAny:
			return fmt.Sprintf("DEL %s -> ?", k)
		case rIncr:
			return fmt.Sprintf("INCR %s -> %d", k, out.vals[in.slot])
		default:
			return fmt.Sprintf("INCR %s -> ?", k)
		}
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.([2]int)) },
}

// keyName is the Redis key of a group's slot: the group name is
// "<prefix>/<id>", slot 0 lives in the first region and slot 1 in the
// second ("a"/"x" for shared groups, "b"/"z" for fresh pairs).
func keyName(group string, slot int) string {
	if rest, ok := strings.CutPrefix(group, "pair:"); ok {
		return [2]string{"b/", "z/"}[slot] + rest
	}
	return [2]string{"a/", "x/"}[slot] + group
}

// rhistory records operations from many goroutines.
type rhistory struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

func (h *rhistory) now() int64 { return int64(time.Since(h.start)) }

func (h *rhistory) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func (h *rhistory) snapshot() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// newRedis is a client for one gateway that never retries by itself: a
// retried write would be two writes recorded as one.
func newRedis(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second,
		ReadTimeout: 8 * time.Second, WriteTimeout: 8 * time.Second, PoolSize: 4,
	})
}

// notApplied reports replies after which the write surely did not happen:
// only the errors the gateway documents as "nothing was written". Every
// other failure (a broken connection, a timeout, "the write may or may not
// have been applied", an internal error) leaves the outcome unknown.
func notApplied(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	return strings.HasPrefix(msg, "ERR cluster unavailable, nothing was written") ||
		strings.HasPrefix(msg, "ERR too many concurrent writes to the same keys, nothing was written")
}

// connectionLost reports errors that say nothing about the gateway's
// state but that the client should try the other gateway.
func connectionLost(err error) bool {
	var re redis.Error
	return err != nil && !errors.As(err, &re)
}

// badReply is a reply no command of the workload can produce (every value
// written is an integer): a corrupted value, never a failed read.
type badReply struct{ error }

// do runs one command and returns its reply.
func do(ctx context.Context, rc *redis.Client, in rin) (rout, error) {
	k := keyName(in.group, in.slot)
	switch in.kind {
	case rGet:
		v, err := rc.Get(ctx, k).Result()
		out := rout{vals: [2]int{-1, -1}}
		if errors.Is(err, redis.Nil) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if out.vals[in.slot], err = strconv.Atoi(v); err != nil {
			return out, badReply{fmt.Errorf("GET %s = %q: %w", k, v, err)}
		}
		return out, nil
	case rMGet:
		vs, err := rc.MGet(ctx, keyName(in.group, 0), keyName(in.group, 1)).Result()
		out := rout{vals: [2]int{-1, -1}}
		if err != nil {
			return out, err
		}
		for i, v := range vs {
			if v == nil {
				continue
			}
			if out.vals[i], err = strconv.Atoi(v.(string)); err != nil {
				return out, badReply{fmt.Errorf("MGET %s = %q: %w", in.group, vs, err)}
			}
		}
		return out, nil
	case rSet:
		return rout{}, rc.Set(ctx, k, in.value, 0).Err()
	case rMSet:
		return rout{}, rc.MSet(ctx, keyName(in.group, 0), in.value, keyName(in.group, 1), in.value).Err()
	case rDel:
		n, err := rc.Del(ctx, k).Result()
		return rout{n: int(n)}, err
	default:
		n, err := rc.Incr(ctx, k).Result()
		out := rout{}
		out.vals[in.slot] = int(n)
		return out, err
	}
}

// workload is the clients of one round.
type workload struct {
	t       *testing.T
	c       *procCluster
	h       *rhistory
	groups  []string
	prefix  string
	stop    atomic.Bool
	wg      sync.WaitGroup
	nextVal atomic.Int64
	// acked counts completed writes, so the test can wait for progress.
	acked atomic.Int64
	// pairs is the number of fresh pairs handed out.
	pairs     atomic.Int64
	pairShare int
}

const clients = 6

// startWorkload starts the clients; pairShare is the percentage of their
// commands that are MSETs of fresh pairs.
func startWorkload(t *testing.T, c *procCluster, prefix string, pairShare int) *workload {
	w := &workload{t: t, c: c, h: &rhistory{start: time.Now()}, prefix: prefix, pairShare: pairShare}
	for g := range 3 {
		w.groups = append(w.groups, fmt.Sprintf("%s/g%d", prefix, g))
	}
	for id := range clients {
		w.wg.Add(1)
		go w.client(id)
	}
	return w
}

func (w *workload) client(id int) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	rcs := make([]*redis.Client, len(w.c.gwAddrs))
	for i, a := range w.c.gwAddrs {
		rcs[i] = newRedis(a)
		defer rcs[i].Close()
	}
	gw := id % len(rcs)
	for !w.stop.Load() {
		var in rin
		if rng.IntN(100) < w.pairShare {
			// A fresh pair, written once and read only at the end.
			in = rin{kind: rMSet, group: fmt.Sprintf("pair:%s/%d", w.prefix, w.pairs.Add(1))}
		} else {
			in = rin{group: w.groups[rng.IntN(len(w.groups))], slot: rng.IntN(2)}
			switch r := 15 + rng.IntN(85); {
			case r < 35:
				in.kind = rGet
			case r < 50:
				in.kind = rMGet
			case r < 65:
				in.kind = rSet
			case r < 70:
				in.kind = rDel
			case r < 85:
				in.kind = rIncr
			default:
				in.kind = rMSet
			}
		}
		if in.kind == rSet || in.kind == rMSet {
			in.value = 1_000_000 + int(w.nextVal.Add(1))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		call := w.h.now()
		out, err := do(ctx, rcs[gw], in)
		ret := w.h.now()
		cancel()
		w.record(id, in, out, err, call, ret)
		if connectionLost(err) {
			gw = (gw + 1) % len(rcs) // try the other gateway
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// record adds a command's outcome to the history.
func (w *workload) record(client int, in rin, out rout, err error, call, ret int64) {
	read := in.kind == rGet || in.kind == rMGet
	if errors.As(err, new(badReply)) {
		w.t.Errorf("client %d: %v", client, err)
		return
	}
	switch {
	case err == nil:
		w.h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		if !read {
			w.acked.Add(1)
		}
	case read || notApplied(err):
		// A failed read has no effect; a write refused before anything
		// was written neither.
	default:
		switch in.kind {
		case rDel:
			in.kind = rDelAny
		case rIncr:
			in.kind = rIncrAny
		}
		w.h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: rout{}, Return: math.MaxInt64})
	}
}

// waitProgress waits until n more writes are acknowledged.
func (w *workload) waitProgress(n int64, within time.Duration, what string) {
	w.t.Helper()
	target := w.acked.Load() + n
	deadline := time.Now().Add(within)
	for w.acked.Load() < target {
		if time.Now().After(deadline) {
			w.t.Errorf("%s: %d writes acknowledged in %v, wanted %d more: the cluster made no progress", what, w.acked.Load()-(target-n), within, n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish stops the clients, restarts the second gateway, reads every key
// through it, and checks the history.
func (w *workload) finish() {
	w.t.Helper()
	w.halt()
	w.c.stop(gatewayName(1))
	w.c.startGateway(1)
	w.c.waitGateway(1)
	ops := w.h.snapshot()
	// The final reads: every group, and every fresh pair a client wrote.
	groups := map[string]bool{}
	for _, g := range w.groups {
		groups[g] = true
	}
	for _, op := range ops {
		groups[op.Input.(rin).group] = true
	}
	rc := newRedis(w.c.gwAddrs[1])
	defer rc.Close()
	for g := range groups {
		in := rin{kind: rMGet, group: g}
		var (
			out       rout
			call, ret int64
		)
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			call = w.h.now()
			var err error
			out, err = do(ctx, rc, in)
			ret = w.h.now()
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				w.t.Fatalf("final read of %s after the faults healed: %v", g, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		w.h.add(porcupine.Operation{ClientId: clients, Input: in, Call: call, Output: out, Return: ret})
	}
	checkHistory(w.t, w.h.snapshot())
}

// checkHistory runs porcupine; on a violation it writes the visualization
// and fails naming the file.
func checkHistory(t *testing.T, ops []porcupine.Operation) {
	t.Helper()
	completed, unknown, writes := 0, 0, 0
	for _, op := range ops {
		switch in := op.Input.(rin); {
		case op.Return == math.MaxInt64:
			unknown++
		default:
			completed++
			if in.kind != rGet && in.kind != rMGet {
				writes++
			}
		}
	}
	if writes < 30 {
		t.Fatalf("only %d writes completed: the cluster made too little progress to check anything", writes)
	}
	res, info := porcupine.CheckOperationsVerbose(pairModel, ops, 120*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable: %d operations (%d completed, %d writes; %d of unknown outcome)", len(ops), completed, writes, unknown)
	case porcupine.Illegal:
		path := filepath.Join(artifactDir(t), "history.html")
		if err := porcupine.VisualizePath(pairModel, info, path); err != nil {
			t.Errorf("write the visualization: %v", err)
		}
		t.Fatalf("history of %d operations (%d of unknown outcome) is NOT linearizable: see %s", len(ops), unknown, path)
	default:
		t.Fatalf("linearizability check did not finish within its time limit (%d operations, %d of unknown outcome)", len(ops), unknown)
	}
}

// soak returns how long each scenario runs: 0 for the short CI version,
// else NOKV_SOAK_DURATION (default 10m) when NOKV_SOAK=1.
func soak(t *testing.T) time.Duration {
	if os.Getenv("NOKV_SOAK") != "1" {
		return 0
	}
	d := 10 * time.Minute
	if s := os.Getenv("NOKV_SOAK_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("NOKV_SOAK_DURATION: %v", err)
		}
	}
	return d
}

// TestPairModelCatchesTornAndLostWrites makes sure the model flags an MGET
// that sees half of a completed MSET, and a final read that misses an
// acknowledged write, and accepts a write of unknown outcome either way.
func TestPairModelCatchesTornAndLostWrites(t *testing.T) {
	g := "t/g"
	mset := porcupine.Operation{ClientId: 0, Input: rin{kind: rMSet, group: g, value: 7}, Call: 0, Output: rout{}, Return: 10}
	read := func(a, x int) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: rin{kind: rMGet, group: g}, Call: 20, Output: rout{vals: [2]int{a, x}}, Return: 30}
	}
	if porcupine.CheckOperations(pairModel, []porcupine.Operation{mset, read(7, -1)}) {
		t.Error("an MGET seeing half of a completed MSET passed")
	}
	if porcupine.CheckOperations(pairModel, []porcupine.Operation{mset, read(-1, -1)}) {
		t.Error("a read missing a completed MSET passed")
	}
	if !porcupine.CheckOperations(pairModel, []porcupine.Operation{mset, read(7, 7)}) {
		t.Error("a read of a completed MSET was rejected")
	}
	unknown := mset
	unknown.Return = math.MaxInt64
	for _, r := range []porcupine.Operation{read(7, 7), read(-1, -1)} {
		if !porcupine.CheckOperations(pairModel, []porcupine.Operation{unknown, r}) {
			t.Errorf("a read %v after an MSET of unknown outcome was rejected", r.Output)
		}
	}
	if porcupine.CheckOperations(pairModel, []porcupine.Operation{unknown, read(-1, 7)}) {
		t.Error("half of an MSET of unknown outcome passed")
	}
	incr := porcupine.Operation{ClientId: 0, Input: rin{kind: rIncr, group: g, slot: 1}, Call: 0, Output: rout{vals: [2]int{0, 2}}, Return: 10}
	if porcupine.CheckOperations(pairModel, []porcupine.Operation{incr}) {
		t.Error("INCR of an absent key answering 2 passed")
	}
}
