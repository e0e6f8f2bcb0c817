package txn_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// stall is a kvclient.TestingKnobs.BeforeCommit hook that holds a
// two-phase commit with all its locks in place: it reports the
// transaction's start_ts on prewritten and waits for release.
type stall struct {
	prewritten chan uint64
	release    chan struct{}
}

func newStall() *stall {
	return &stall{prewritten: make(chan uint64, 1), release: make(chan struct{})}
}

func (s *stall) hook(startTS uint64) {
	s.prewritten <- startTS
	<-s.release
}

// wait returns the start_ts of the stalled transaction.
func (s *stall) wait(t *testing.T) uint64 {
	t.Helper()
	select {
	case ts := <-s.prewritten:
		return ts
	case <-time.After(60 * time.Second):
		t.Fatal("the transaction never finished its prewrites")
		return 0
	}
}

// keepAlives counts the goroutines running a lock heartbeat.
func keepAlives() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "kvclient.(*keepAlive).run")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// wantNoKeepAlive fails unless every heartbeat goroutine has ended: a
// commit, a rollback and Close stop theirs before they return.
func wantNoKeepAlive(t *testing.T) {
	t.Helper()
	if n := keepAlives(); n != 0 {
		t.Fatalf("%d lock heartbeat goroutines still running", n)
	}
}

// commitAsync commits txn in the background; the result arrives on the
// channel.
func commitAsync(txn *kvclient.Txn) <-chan error {
	done := make(chan error, 1)
	go func() { done <- txn.Commit(context.Background()) }()
	return done
}

type readResult struct {
	value string
	found bool
	err   error
	at    time.Time
}

// readAsync reads key at a fresh timestamp in the background.
func readAsync(kc *kvclient.Client, key string) <-chan readResult {
	done := make(chan readResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		e, found, err := kc.Get(ctx, []byte(key))
		done <- readResult{value: string(e.Value), found: found, err: err, at: time.Now()}
	}()
	return done
}

func waitResult[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s never returned", what)
		var zero T
		return zero
	}
}

// rawRollback rolls the transaction startTS back on key at the key's
// leader, as a reader that found its lock expired or GC would.
func rawRollback(t *testing.T, c *cluster.Cluster, startTS uint64, key string) {
	t.Helper()
	cluster.Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvBatchRollback(testCtx(t), &kvrpcpb.BatchRollbackRequest{
			Context: rc, StartVersion: startTS, Keys: [][]byte{[]byte(key)},
		})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("rollback %s: region error %v", key, re)
		}
		if ke := resp.GetError(); ke != nil {
			t.Fatalf("rollback %s: %v", key, ke)
		}
		return nil
	})
}

// rawHeartBeat sends KvTxnHeartBeat for the lock of startTS on key to the
// key's leader.
func rawHeartBeat(t *testing.T, c *cluster.Cluster, key string, startTS, advise uint64) *kvrpcpb.TxnHeartBeatResponse {
	t.Helper()
	var out *kvrpcpb.TxnHeartBeatResponse
	cluster.Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvTxnHeartBeat(testCtx(t), &kvrpcpb.TxnHeartBeatRequest{
			Context: rc, PrimaryLock: []byte(key), StartVersion: startTS, AdviseLockTtl: advise,
		})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("heartbeat %s: region error %v", key, re)
		}
		out = resp
		return nil
	})
	return out
}

// rawCheckTxnStatus asks key's leader for the fate of startTS at a fresh
// timestamp, rolling it back if its lock has expired.
func rawCheckTxnStatus(t *testing.T, c *cluster.Cluster, key string, startTS uint64) *kvrpcpb.CheckTxnStatusResponse {
	t.Helper()
	var out *kvrpcpb.CheckTxnStatusResponse
	cluster.Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvCheckTxnStatus(testCtx(t), &kvrpcpb.CheckTxnStatusRequest{
			Context: rc, PrimaryKey: []byte(key), LockTs: startTS, CurrentTs: mustTS(t, c), RollbackIfNotExist: true,
		})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("check txn status %s: region error %v", key, re)
		}
		out = resp
		return nil
	})
	return out
}

// transferLeader moves the leadership of key's region to another store.
func transferLeader(t *testing.T, c *cluster.Cluster, key string) {
	t.Helper()
	region := c.RegionFor([]byte(key))
	old := c.WaitLeader(region.GetId())
	var target *metapb.Peer
	for _, p := range region.GetPeers() {
		if p.GetStoreId() != old.GetStoreId() {
			target = p
			break
		}
	}
	cluster.Eventually(t, 15*time.Second, func() error {
		leader := c.Leader(region.GetId())
		if leader != nil && leader.GetStoreId() == target.GetStoreId() {
			return nil
		}
		if leader != nil {
			resp, err := c.Client(leader.GetStoreId()).TransferLeader(testCtx(t), &raftserverpb.TransferLeaderRequest{
				RegionId: region.GetId(), Peer: target,
			})
			if err != nil {
				return err
			}
			if re := resp.GetRegionError(); re != nil {
				return fmt.Errorf("transfer: region error %v", re)
			}
		}
		return fmt.Errorf("leader of region %d is %v, want store %d", region.GetId(), leader, target.GetStoreId())
	})
}

func lockOf(locks []*kvrpcpb.LockInfo, startTS uint64, key string) *kvrpcpb.LockInfo {
	for _, l := range locks {
		if l.GetLockVersion() == startTS && string(l.GetKey()) == key {
			return l
		}
	}
	return nil
}

// TestLockHeartbeat is data-loss path 6 of issue 11: a transaction whose
// commit takes longer than its lock TTL kept its locks only for that TTL
// (3 s plus its age at prewrite), after which any reader rolled it back and
// its commit failed. The heartbeat (TxnHeartBeat every LockTTL/2 from the
// primary's prewrite to the commit point) keeps them alive, up to
// MaxTxnTTL. Primary keys sort before "m" and the transactions write past
// it, so they span both regions and commit in two phases.
func TestLockHeartbeat(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})

	// The RPC itself: a TTL raised by a heartbeat is replicated, so a new
	// leader keeps the lock alive past its prewrite's TTL; lower advice
	// changes nothing; a gone lock says why.
	t.Run("RaisedTTLSurvivesLeaderChange", func(t *testing.T) {
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "b/raw", 500, map[string]string{"b/raw": "v"})
		if resp := rawHeartBeat(t, c, "b/raw", startTS, 600_000); resp.GetError() != nil || resp.GetLockTtl() != 600_000 {
			t.Fatalf("heartbeat = %v", resp)
		}
		transferLeader(t, c, "b/raw")
		// Past the prewrite's 500 ms TTL by TSO time.
		cluster.Eventually(t, 15*time.Second, func() error {
			if age := kvclient.PhysicalMs(mustTS(t, c)) - kvclient.PhysicalMs(startTS); age < 1000 {
				return fmt.Errorf("only %d ms since the prewrite", age)
			}
			return nil
		})
		if resp := rawCheckTxnStatus(t, c, "b/raw", startTS); resp.GetLockTtl() != 600_000 || resp.GetAction() != kvrpcpb.Action_NO_ACTION {
			t.Fatalf("status at the new leader = %v; want alive with the heartbeat's TTL", resp)
		}
		if resp := rawHeartBeat(t, c, "b/raw", startTS, 5_000); resp.GetError() != nil || resp.GetLockTtl() != 600_000 {
			t.Fatalf("heartbeat with lower advice = %v; want the TTL unchanged", resp)
		}
		commitTS := mustTS(t, c)
		if kerr := c.RawCommit(t, startTS, commitTS, "b/raw"); kerr != nil {
			t.Fatal(kerr)
		}
		if resp := rawHeartBeat(t, c, "b/raw", startTS, 700_000); resp.GetError().GetAlreadyCommitted().GetCommitTs() != commitTS || resp.GetLockTtl() != 0 {
			t.Fatalf("heartbeat after the commit = %v; want already_committed at %d", resp, commitTS)
		}
		other := mustTS(t, c)
		c.RawPrewrite(t, other, "b/raw2", 500, map[string]string{"b/raw2": "v"})
		rawRollback(t, c, other, "b/raw2")
		if resp := rawHeartBeat(t, c, "b/raw2", other, 700_000); resp.GetError().GetAbort() == "" {
			t.Fatalf("heartbeat after the rollback = %v; want abort", resp)
		}
		if resp := rawHeartBeat(t, c, "b/none", other, 700_000); resp.GetError().GetTxnNotFound() == nil {
			t.Fatalf("heartbeat of a key never locked = %v; want txn_not_found", resp)
		}
	})

	// A large MSET: 300 keys (over the 256 a one-phase commit takes) in two
	// regions, held between its prewrites and its commit for several TTLs
	// while readers and a writer hit its primary and secondaries. Without
	// the heartbeat, the first reader after the TTL rolled the transaction
	// back and its commit failed with ErrTxnAborted.
	t.Run("LongCommitKeepsItsLocks", func(t *testing.T) {
		const ttl = 2 * time.Second
		st := newStall()
		w := newClient(t, c, kvclient.Options{LockTTL: ttl, Knobs: kvclient.TestingKnobs{BeforeCommit: st.hook}})
		keys := []string{"z/long"}
		for i := range 300 {
			keys = append(keys, fmt.Sprintf("a/long/%03d", i))
		}
		primary, secondary, remote := "a/long/000", "a/long/299", "z/long"
		for _, k := range []string{primary, secondary, remote} {
			mustSet(t, kc, k, "old")
		}
		txn, err := w.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := txn.Set([]byte(k), []byte("new"), 0); err != nil {
				t.Fatal(err)
			}
		}
		committed := commitAsync(txn)
		startTS := st.wait(t)

		reads := map[string]<-chan readResult{}
		for _, k := range []string{primary, secondary, remote} {
			reads[k] = readAsync(kc, k)
		}
		// Well past the TTL the prewrites gave the locks.
		time.Sleep(3 * ttl)
		for k, ch := range reads {
			select {
			case r := <-ch:
				t.Fatalf("a read of %s returned %q (err %v) while the transaction was alive and uncommitted: it rolled the transaction back", k, r.value, r.err)
			default:
			}
		}
		// A writer meets the live lock and conflicts; it must not roll the
		// transaction back.
		o := newClient(t, c, kvclient.Options{TxnRetries: kvclient.NoRetries})
		if err := o.Set(testCtx(t), []byte(remote), []byte("other"), 0); !errors.Is(err, kvclient.ErrWriteConflict) {
			t.Fatalf("a write of %s during the commit = %v, want ErrWriteConflict", remote, err)
		}
		l := lockOf(locksIn(t, c, remote), startTS, remote)
		if l == nil {
			t.Fatalf("the transaction's lock on %s is gone before its commit", remote)
		}
		if hb := w.Stats().LockHeartbeats; hb < 2 {
			t.Fatalf("%d heartbeats in %v of stall, want at least 2", hb, 3*ttl)
		}
		released := time.Now()
		close(st.release)
		if err := waitResult(t, "commit", committed); err != nil {
			t.Fatalf("the long transaction failed to commit: %v", err)
		}
		wantNoKeepAlive(t)
		for k, ch := range reads {
			r := waitResult(t, "read of "+k, ch)
			// The reads started below the commit timestamp: they waited for
			// the commit and see the snapshot before it.
			if r.err != nil || !r.found || r.value != "old" {
				t.Fatalf("read of %s = %q, %v, %v; want the old value", k, r.value, r.found, r.err)
			}
			if r.at.Before(released) {
				t.Fatalf("read of %s returned before the transaction was released", k)
			}
		}
		// Committed whole.
		bs := make([][]byte, len(keys))
		for i, k := range keys {
			bs[i] = []byte(k)
		}
		got, err := kc.BatchGet(testCtx(t), bs)
		if err != nil || len(got) != len(keys) {
			t.Fatalf("BatchGet of the %d keys = %d, %v", len(keys), len(got), err)
		}
		for k, e := range got {
			if string(e.Value) != "new" {
				t.Fatalf("%s = %q after the commit, want new", k, e.Value)
			}
		}
		// Heartbeats ended with the commit.
		hb := w.Stats().LockHeartbeats
		time.Sleep(ttl)
		if after := w.Stats().LockHeartbeats; after != hb {
			t.Fatalf("heartbeats went on after the commit: %d -> %d", hb, after)
		}
	})

	// A transaction rolled back while it ran (here by a raw rollback of its
	// primary, as GC's lock resolution or an operator would) learns it from
	// its heartbeat and fails with a clear, retryable error instead of
	// committing; its other locks are rolled back.
	t.Run("HeartbeatFindsTxnRolledBack", func(t *testing.T) {
		const ttl = time.Second
		st := newStall()
		w := newClient(t, c, kvclient.Options{LockTTL: ttl, Knobs: kvclient.TestingKnobs{BeforeCommit: st.hook}})
		mustSet(t, kc, "a/killed", "old")
		mustSet(t, kc, "z/killed", "old")
		txn, err := w.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = txn.Set([]byte("a/killed"), []byte("new"), 0)
		_ = txn.Set([]byte("z/killed"), []byte("new"), 0)
		committed := commitAsync(txn)
		startTS := st.wait(t)
		rawRollback(t, c, startTS, "a/killed")
		// Several heartbeat periods: one of them finds the rollback.
		time.Sleep(3 * ttl)
		close(st.release)
		err = waitResult(t, "commit", committed)
		if !errors.Is(err, kvclient.ErrTxnAborted) || !kvclient.IsRetryable(err) || !strings.Contains(err.Error(), "lost its primary lock") {
			t.Fatalf("commit after the rollback = %v; want a retryable ErrTxnAborted saying the primary lock was lost", err)
		}
		wantNoKeepAlive(t)
		if l := lockOf(locksIn(t, c, "z/killed"), startTS, "z/killed"); l != nil {
			t.Fatalf("the secondary lock was left behind: %v", l)
		}
		wantValue(t, kc, "a/killed", "old")
		wantValue(t, kc, "z/killed", "old")
	})

	// The heartbeats are bounded: once the transaction is MaxTxnTTL old
	// they stop, its locks expire and a reader rolls it back.
	t.Run("HeartbeatsEndAtMaxTxnTTL", func(t *testing.T) {
		const ttl, maxTTL = time.Second, 3 * time.Second
		st := newStall()
		w := newClient(t, c, kvclient.Options{LockTTL: ttl, MaxTxnTTL: maxTTL, Knobs: kvclient.TestingKnobs{BeforeCommit: st.hook}})
		mustSet(t, kc, "a/bounded", "old")
		mustSet(t, kc, "z/bounded", "old")
		txn, err := w.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = txn.Set([]byte("a/bounded"), []byte("new"), 0)
		_ = txn.Set([]byte("z/bounded"), []byte("new"), 0)
		committed := commitAsync(txn)
		startTS := st.wait(t)
		r := waitResult(t, "read of the secondary", readAsync(kc, "z/bounded"))
		if r.err != nil || r.value != "old" {
			t.Fatalf("read = %q, %v", r.value, r.err)
		}
		// The lock outlived the prewrite's TTL (about 1 s), so heartbeats
		// raised it, up to MaxTxnTTL after start_ts.
		if age := time.Duration(r.at.UnixMilli()-kvclient.PhysicalMs(startTS)) * time.Millisecond; age < maxTTL-300*time.Millisecond {
			t.Fatalf("the reader rolled the transaction back %v after it started, before MaxTxnTTL %v", age, maxTTL)
		}
		close(st.release)
		if err := waitResult(t, "commit", committed); !errors.Is(err, kvclient.ErrTxnAborted) {
			t.Fatalf("commit after MaxTxnTTL = %v, want ErrTxnAborted", err)
		}
		wantNoKeepAlive(t)
		wantValue(t, kc, "a/bounded", "old")
		wantValue(t, kc, "z/bounded", "old")
	})

	// Close stops the heartbeats of a commit in progress and waits for them.
	t.Run("CloseStopsHeartbeats", func(t *testing.T) {
		const ttl = time.Second
		st := newStall()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{LockTTL: ttl, Knobs: kvclient.TestingKnobs{BeforeCommit: st.hook}})
		if err != nil {
			t.Fatal(err)
		}
		txn, err := w.Begin(testCtx(t))
		if err != nil {
			w.Close()
			t.Fatal(err)
		}
		_ = txn.Set([]byte("a/closed"), []byte("new"), 0)
		_ = txn.Set([]byte("z/closed"), []byte("new"), 0)
		committed := commitAsync(txn)
		st.wait(t)
		cluster.Eventually(t, 30*time.Second, func() error {
			if w.Stats().LockHeartbeats == 0 {
				return errors.New("no heartbeat yet")
			}
			return nil
		})
		if n := keepAlives(); n != 1 {
			t.Fatalf("%d heartbeat goroutines during the commit, want 1", n)
		}
		w.Close()
		wantNoKeepAlive(t)
		close(st.release)
		if err := waitResult(t, "commit", committed); !errors.Is(err, kvclient.ErrClosed) {
			t.Fatalf("commit after Close = %v, want ErrClosed", err)
		}
		wantNoKeepAlive(t)
	})

	// A commit that fails at its prewrites stops the heartbeat its
	// primary's prewrite started.
	t.Run("FailedPrewriteStopsHeartbeats", func(t *testing.T) {
		mustSet(t, kc, "a/conflict", "old")
		w := newClient(t, c, kvclient.Options{LockTTL: time.Second, TxnRetries: kvclient.NoRetries})
		txn, err := w.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		// A commit after the transaction started: its prewrite of z conflicts.
		mustSet(t, kc, "z/conflict", "newer")
		_ = txn.Set([]byte("a/conflict"), []byte("new"), 0)
		_ = txn.Set([]byte("z/conflict"), []byte("new"), 0)
		if err := txn.Commit(testCtx(t)); !errors.Is(err, kvclient.ErrWriteConflict) {
			t.Fatalf("commit = %v, want ErrWriteConflict", err)
		}
		wantNoKeepAlive(t)
		wantValue(t, kc, "a/conflict", "old")
	})
}
