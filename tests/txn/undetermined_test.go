package txn_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/store/storeserver"
	"github.com/nokv/nokv/tests/cluster"
)

// TestUndeterminedCommitIsNeverAFailure: a store applies a command but
// hands the result to the request that proposed it only after the request
// has given up waiting (its proposal timeout, 500 ms, is shorter than the
// client's RPC timeout), as a slow apply or a stalled raft loop would.
// INCRs (one-phase in one region, two-phase across both) run one after
// another while every other commit command touching a counter is held so.
// Whatever the client answers, no INCR may apply twice or be reported
// failed and still apply: with n acknowledged and u reported undetermined,
// the counter ends between n and n+u (and the two-phase pair stays equal).
//
// With one attempt per request (a cluster file's max_retries of 0) the
// answer for a held commit must be ErrCommitUndetermined; with retries, the
// client asks again and learns that the command applied. Before the store
// told "proposed, fate unknown" (undetermined) from "not proposed" (server
// is busy), a held commit came back as "server is busy", the client rolled
// back and reported a failure, and the counter ended above n+u.
func TestUndeterminedCommitIsNeverAFailure(t *testing.T) {
	var (
		holding atomic.Bool
		commits atomic.Int64 // counter commits seen while holding
		held    atomic.Int64
	)
	c := cluster.Start(t, cluster.Options{
		Stores: 3, SplitKeys: []string{"m"},
		StoreConfig: func(id uint64, cfg *storeserver.Config) {
			cfg.TestingKnobs.ProposalTimeout = 500 * time.Millisecond
			cfg.TestingKnobs.HoldResult = func(_ uint64, cmd *raftserverpb.RaftCmdRequest) time.Duration {
				if !holding.Load() || !commitsCounter(cmd) {
					return 0
				}
				if commits.Add(1)%2 == 1 {
					held.Add(1)
					return 1500 * time.Millisecond
				}
				return 0
			}
		},
	})
	const incrs = 6
	for _, mode := range []struct {
		name    string
		retries int
	}{
		{"OneAttempt", kvclient.NoRetries},
		{"Retries", 0}, // the cluster file's max_retries
	} {
		t.Run(mode.name, func(t *testing.T) {
			// The client waits longer than the store: the store's answer
			// is what the client goes by.
			kc := newClient(t, c, kvclient.Options{MaxRetries: mode.retries, RPCTimeout: 10 * time.Second})
			one := []byte("a/ctr-" + mode.name)
			twoA, twoZ := []byte("a/ctr2-"+mode.name), []byte("z/ctr2-"+mode.name)
			var acked, undetermined, failed [2]int
			count := func(kind int, err error) {
				switch {
				case err == nil:
					acked[kind]++
				case errors.Is(err, kvclient.ErrCommitUndetermined):
					undetermined[kind]++
					if kvclient.IsRetryable(err) {
						t.Errorf("an undetermined commit is retryable: %v", err)
					}
				default:
					failed[kind]++
					t.Logf("failed (so it must not have applied): %v", err)
				}
			}
			holding.Store(true)
			start := held.Load()
			for range incrs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				count(0, incr(ctx, kc, one, 1))
				count(1, incrBoth(ctx, kc, twoA, twoZ))
				cancel()
			}
			holding.Store(false)
			n := held.Load() - start
			t.Logf("%d commits held; one-phase: %d acknowledged, %d undetermined, %d failed; two-phase: %d, %d, %d",
				n, acked[0], undetermined[0], failed[0], acked[1], undetermined[1], failed[1])
			if n == 0 {
				t.Fatal("no commit was held: the fault did not happen")
			}

			check := func(kind int, key []byte) int {
				v := readInt(t, kc, key)
				if v < acked[kind] || v > acked[kind]+undetermined[kind] {
					t.Errorf("%s = %d after %d acknowledged and %d undetermined INCRs (%d reported failed): "+
						"an INCR reported failed was applied, or one applied twice", key, v, acked[kind], undetermined[kind], failed[kind])
				}
				return v
			}
			check(0, one)
			if a, z := check(1, twoA), check(1, twoZ); a != z {
				t.Errorf("the two-phase counters differ: %s = %d, %s = %d", twoA, a, twoZ, z)
			}
			if mode.retries == kvclient.NoRetries && undetermined[0]+undetermined[1] == 0 {
				t.Error("with one attempt per request, no held commit was reported undetermined")
			}
		})
	}
}

// commitsCounter reports whether cmd writes a commit record (one-phase
// commit, commit, lock resolution) of a counter key of this test.
func commitsCounter(cmd *raftserverpb.RaftCmdRequest) bool {
	for _, m := range cmd.GetWrites() {
		k := m.GetKey()
		if m.GetOp() == raftserverpb.ModifyOp_MODIFY_PUT && len(k) > 0 && k[0] == 'W' && bytes.Contains(k, []byte("ctr")) {
			return true
		}
	}
	return false
}

// incrBoth adds one to the integers at a and z in one transaction (two
// regions: a two-phase commit).
func incrBoth(ctx context.Context, kc *kvclient.Client, a, z []byte) error {
	return kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
		got, err := txn.BatchGet(ctx, [][]byte{a, z})
		if err != nil {
			return err
		}
		for _, k := range [][]byte{a, z} {
			n := 0
			if e, ok := got[string(k)]; ok {
				if n, err = strconv.Atoi(string(e.Value)); err != nil {
					return err
				}
			}
			if err := txn.Set(k, strconv.AppendInt(nil, int64(n+1), 10), 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// readInt reads the integer at key (absent: 0).
func readInt(t *testing.T, kc *kvclient.Client, key []byte) int {
	t.Helper()
	var v int
	cluster.Eventually(t, 20*time.Second, func() error {
		e, found, err := kc.Get(testCtx(t), key)
		if err != nil {
			return err
		}
		v = 0
		if found {
			if v, err = strconv.Atoi(string(e.Value)); err != nil {
				t.Fatalf("%s = %q: %v", key, e.Value, err)
			}
		}
		return nil
	})
	return v
}

// TestLeaderLostAfterProposing: the leader that proposed a counter's commit
// (a one-phase commit or a primary's commit) is cut off from the other
// stores as the commit's first append leaves it, so the entry never
// replicates; the leader steps down (check quorum) and the majority elects
// another. Its request must end undetermined (one attempt per request) or
// be sent again to the new leader and acknowledged (retries); either way
// no INCR is applied twice or reported failed and applied.
func TestLeaderLostAfterProposing(t *testing.T) {
	var (
		armed    atomic.Bool
		cl       atomic.Pointer[cluster.Cluster]
		isolated atomic.Int64
	)
	c := cluster.Start(t, cluster.Options{
		Stores: 3, SplitKeys: []string{"m"},
		StoreConfig: func(id uint64, cfg *storeserver.Config) {
			drop := cfg.TestingKnobs.DropMessage
			cfg.TestingKnobs.DropMessage = func(m *raftserverpb.RaftMessage) bool {
				// A write record of a counter in the first region: the
				// commit of its primary, or its one-phase commit.
				if armed.Load() && bytes.Contains(m.GetMessage(), []byte("Wa/ctr")) && armed.CompareAndSwap(true, false) {
					if c := cl.Load(); c != nil {
						c.Isolate(m.GetFromPeer().GetStoreId())
						isolated.Add(1)
					}
					return true
				}
				return drop(m)
			}
		},
	})
	cl.Store(c)
	const incrs = 3
	for _, mode := range []struct {
		name    string
		retries int
	}{
		{"OneAttempt", kvclient.NoRetries},
		{"Retries", 0},
	} {
		t.Run(mode.name, func(t *testing.T) {
			kc := newClient(t, c, kvclient.Options{MaxRetries: mode.retries})
			one := []byte("a/ctr-" + mode.name)
			twoA, twoZ := []byte("a/ctr2-"+mode.name), []byte("z/ctr2-"+mode.name)
			var acked, undetermined, failed [2]int
			count := func(kind int, err error) {
				switch {
				case err == nil:
					acked[kind]++
				case errors.Is(err, kvclient.ErrCommitUndetermined):
					undetermined[kind]++
				default:
					failed[kind]++
					t.Logf("failed (so it must not have applied): %v", err)
				}
			}
			start := isolated.Load()
			for i := range 2 * incrs {
				kind := i % 2
				before := isolated.Load()
				armed.Store(true)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if kind == 0 {
					count(0, incr(ctx, kc, one, 1))
				} else {
					count(1, incrBoth(ctx, kc, twoA, twoZ))
				}
				cancel()
				armed.Store(false)
				if isolated.Load() != before {
					c.Heal()
				}
				for _, r := range []string{"a", "z"} {
					c.WaitLeader(c.RegionFor([]byte(r)).GetId())
				}
			}
			t.Logf("%d leaders cut off; one-phase: %d acknowledged, %d undetermined, %d failed; two-phase: %d, %d, %d",
				isolated.Load()-start, acked[0], undetermined[0], failed[0], acked[1], undetermined[1], failed[1])
			if isolated.Load() == start {
				t.Fatal("no leader was cut off: the fault did not happen")
			}
			check := func(kind int, key []byte) int {
				v := readInt(t, kc, key)
				if v < acked[kind] || v > acked[kind]+undetermined[kind] {
					t.Errorf("%s = %d after %d acknowledged and %d undetermined INCRs (%d reported failed): "+
						"an INCR reported failed was applied, or one applied twice", key, v, acked[kind], undetermined[kind], failed[kind])
				}
				return v
			}
			check(0, one)
			if a, z := check(1, twoA), check(1, twoZ); a != z {
				t.Errorf("the two-phase counters differ: %s = %d, %s = %d", twoA, a, twoZ, z)
			}
		})
	}
}
