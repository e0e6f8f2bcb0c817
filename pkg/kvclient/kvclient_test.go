package kvclient

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// oneRegion is a world with every key in region 1, led by store 1.
func oneRegion(t *testing.T) *world {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 1})
	return w
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{MinBackoff: -1},
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
		{RPCTimeout: -1},
		{LockTTL: -1},
		{LockTTL: time.Microsecond},
		{MaxLockWait: -1},
		{ResolvedCacheTTL: -1},
		{MaxRetries: -2},
		{TxnRetries: -2},
	}
	for _, o := range bad {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	d := Options{MaxRetries: NoRetries, TxnRetries: NoRetries}.withDefaults()
	if d.MaxRetries != 0 || d.TxnRetries != 0 || d.MinBackoff != DefaultMinBackoff || d.LockTTL != DefaultLockTTL || d.Logger == nil {
		t.Errorf("defaults: %+v", d)
	}
	if d := (Options{MaxBackoff: time.Millisecond}).withDefaults(); d.MinBackoff != time.Millisecond {
		t.Errorf("MinBackoff %v, want capped at MaxBackoff", d.MinBackoff)
	}
}

func TestKeyErrorMatchesSentinels(t *testing.T) {
	cases := []struct {
		ke        *kvrpcpb.KeyError
		want      error
		retryable bool
	}{
		{&kvrpcpb.KeyError{Locked: &kvrpcpb.LockInfo{Key: []byte("k")}}, ErrLocked, false},
		{&kvrpcpb.KeyError{Conflict: &kvrpcpb.WriteConflict{Key: []byte("k")}}, ErrWriteConflict, true},
		{&kvrpcpb.KeyError{Retryable: "again"}, ErrRetryable, true},
		{&kvrpcpb.KeyError{Abort: "rolled back"}, ErrTxnAborted, true},
		{&kvrpcpb.KeyError{AlreadyCommitted: &kvrpcpb.AlreadyCommitted{CommitTs: 5}}, ErrAlreadyCommitted, false},
		{&kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{StartTs: 5}}, ErrTxnNotFound, true},
	}
	all := []error{ErrLocked, ErrWriteConflict, ErrRetryable, ErrTxnAborted, ErrAlreadyCommitted, ErrTxnNotFound}
	for _, tc := range cases {
		err := fmt.Errorf("wrapped: %w", &KeyError{Err: tc.ke})
		for _, s := range all {
			if got := errors.Is(err, s); got != (s == tc.want) {
				t.Errorf("%v: errors.Is(%v) = %v", err, s, got)
			}
		}
		if got := IsRetryable(err); got != tc.retryable {
			t.Errorf("%v: IsRetryable = %v, want %v", err, got, tc.retryable)
		}
		var ke *KeyError
		if !errors.As(err, &ke) || ke.Err != tc.ke {
			t.Errorf("%v: errors.As failed", err)
		}
	}
	undetermined := fmt.Errorf("%w: %w", ErrCommitUndetermined, &KeyError{Err: &kvrpcpb.KeyError{Abort: "x"}})
	if IsRetryable(undetermined) {
		t.Error("an undetermined commit must not be retryable")
	}
}

func TestBackoffBounds(t *testing.T) {
	for n := 1; n < 12; n++ {
		d := expBackoff(10*time.Millisecond, time.Second, n)
		want := min(10*time.Millisecond<<(n-1), time.Second)
		if d != want {
			t.Errorf("expBackoff(%d) = %v, want %v", n, d, want)
		}
		for range 20 {
			if j := jitter(d); j < d/2 || j > d {
				t.Fatalf("jitter(%v) = %v", d, j)
			}
			if r := randDuration(d); r < 0 || r > d {
				t.Fatalf("randDuration(%v) = %v", d, r)
			}
		}
	}
}

func TestLockLeft(t *testing.T) {
	ts := func(ms int64) uint64 { return uint64(ms) << physicalShift }
	if got := lockLeft(ts(1000), 500, ts(1200)|7); got != 300*time.Millisecond {
		t.Errorf("lockLeft = %v, want 300ms", got)
	}
	if got := lockLeft(ts(1000), 500, ts(1500)); got > 0 {
		t.Errorf("lockLeft at expiry = %v, want <= 0", got)
	}
	if got := lockLeft(ts(1000), 0, ts(1000)); got > 0 {
		t.Errorf("zero TTL: lockLeft = %v, want <= 0", got)
	}
}

func TestGetFollowsNotLeaderHint(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 1})
	w.data["k"] = []byte("v")
	w.setTruth([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 2}) // leader moved
	c := w.client(Options{})
	ctx := testCtx(t)
	e, found, err := c.Get(ctx, []byte("k"))
	if err != nil || !found || string(e.Value) != "v" {
		t.Fatalf("Get = %q, %v, %v", e.Value, found, err)
	}
	gets := w.callsOf("Get")
	if len(gets) != 2 || gets[0].store != 1 || gets[1].store != 2 {
		t.Fatalf("Get calls %+v, want store 1 then store 2", gets)
	}
	if _, leader, ok := c.PD().Cache().Lookup([]byte("k")); !ok || leader.GetStoreId() != 2 {
		t.Fatalf("cached leader %v, want store 2", leader)
	}
	// The next read goes straight to the new leader.
	if _, _, err := c.Get(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if gets := w.callsOf("Get"); len(gets) != 3 || gets[2].store != 2 {
		t.Fatalf("Get calls %+v, want the third on store 2", gets)
	}
}

func TestBatchGetResplitsOnEpochNotMatch(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 1})
	for _, k := range []string{"a", "f", "n", "z"} {
		w.data[k] = []byte("v" + k)
	}
	// The region split at "m"; PD still reports the old layout.
	w.setTruth([]*metapb.Region{region(1, "", "m", 2), region(2, "m", "", 2)}, map[uint64]uint64{1: 1, 2: 1})
	c := w.client(Options{})
	got, err := c.BatchGet(testCtx(t), [][]byte{[]byte("z"), []byte("a"), []byte("n"), []byte("f"), []byte("missing"), []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("BatchGet returned %d entries, want 4: %v", len(got), got)
	}
	for _, k := range []string{"a", "f", "n", "z"} {
		if string(got[k].Value) != "v"+k {
			t.Errorf("%s = %q", k, got[k].Value)
		}
	}
	gets := w.callsOf("BatchGet")
	if len(gets) != 3 {
		t.Fatalf("BatchGet calls %+v, want one refused and one per new region", gets)
	}
	regions := map[uint64][]string{}
	for _, g := range gets[1:] {
		regions[g.region] = g.keys
	}
	if fmt.Sprint(regions[1]) != "[a f]" || fmt.Sprint(regions[2]) != "[missing n z]" {
		t.Fatalf("regrouped batches %v", regions)
	}
}

func TestScanAcrossRegions(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	var want []string
	for i := range 600 {
		k := fmt.Sprintf("%c%03d", 'a'+i%26, i)
		w.data[k] = []byte("x")
	}
	for k := range w.data {
		want = append(want, k)
	}
	c := w.client(Options{})
	ctx := testCtx(t)
	all, err := c.Scan(ctx, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("Scan returned %d keys, want %d", len(all), len(want))
	}
	for i := 1; i < len(all); i++ {
		if string(all[i-1].Key) >= string(all[i].Key) {
			t.Fatalf("keys out of order at %d: %q, %q", i, all[i-1].Key, all[i].Key)
		}
	}
	part, err := c.Scan(ctx, []byte("k"), []byte("p"), 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(part) != 30 || string(part[0].Key) < "k" || string(part[29].Key) >= "p" {
		t.Fatalf("Scan [k, p) limit 30: %d keys from %q", len(part), part[0].Key)
	}
}

func TestServerBusyIsRetried(t *testing.T) {
	w := oneRegion(t)
	w.data["k"] = []byte("v")
	var busy atomic.Int32
	w.inject = func(_ uint64, method string, _ *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method == "Get" && busy.Add(1) <= 2 {
			return &kvrpcpb.RegionError{ServerIsBusy: &kvrpcpb.ServerIsBusy{BackoffMs: 1}}, nil
		}
		return nil, nil
	}
	c := w.client(Options{})
	if _, found, err := c.Get(testCtx(t), []byte("k")); err != nil || !found {
		t.Fatalf("Get = %v, %v", found, err)
	}
	if got := c.Stats().RegionRetries; got != 2 {
		t.Fatalf("RegionRetries = %d, want 2", got)
	}
}

func TestUnreachableLeaderTriesNextPeer(t *testing.T) {
	w := newWorld(t, 3, 1) // store 1 is down
	w.setRegions([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 1})
	w.setTruth([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 3})
	w.data["k"] = []byte("v")
	c := w.client(Options{})
	if _, found, err := c.Get(testCtx(t), []byte("k")); err != nil || !found {
		t.Fatalf("Get = %v, %v", found, err)
	}
	// Store 2 answered NotLeader with the hint, store 3 served.
	gets := w.callsOf("Get")
	if len(gets) != 2 || gets[0].store != 2 || gets[1].store != 3 {
		t.Fatalf("Get calls %+v", gets)
	}
}

func TestRetriesExhausted(t *testing.T) {
	w := oneRegion(t)
	w.inject = func(uint64, string, *kvrpcpb.Context, proto.Message) (*kvrpcpb.RegionError, error) {
		return &kvrpcpb.RegionError{NotLeader: &kvrpcpb.NotLeader{RegionId: 1}}, nil
	}
	c := w.client(Options{MaxRetries: 3})
	_, _, err := c.Get(testCtx(t), []byte("k"))
	if !errors.Is(err, ErrRegionUnavailable) {
		t.Fatalf("Get = %v, want ErrRegionUnavailable", err)
	}
	var re *RegionError
	if !errors.As(err, &re) || re.Err.GetNotLeader() == nil {
		t.Fatalf("Get = %v, want it to wrap the NotLeader region error", err)
	}
	// A region without a leader is polled: every second attempt after
	// the first spends a retry.
	if n := len(w.callsOf("Get")); n != 7 {
		t.Fatalf("%d attempts, want 2*MaxRetries+1 = 7", n)
	}
}

func TestNonRetryableRPCError(t *testing.T) {
	w := oneRegion(t)
	w.inject = func(uint64, string, *kvrpcpb.Context, proto.Message) (*kvrpcpb.RegionError, error) {
		return nil, status.Error(codes.InvalidArgument, "bad")
	}
	c := w.client(Options{})
	_, _, err := c.Get(testCtx(t), []byte("k"))
	if status.Code(err) != codes.InvalidArgument || errors.Is(err, ErrRegionUnavailable) {
		t.Fatalf("Get = %v, want the InvalidArgument status", err)
	}
	if n := len(w.callsOf("Get")); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
}

func TestContextEndsBackoff(t *testing.T) {
	w := oneRegion(t)
	w.inject = func(uint64, string, *kvrpcpb.Context, proto.Message) (*kvrpcpb.RegionError, error) {
		return &kvrpcpb.RegionError{StaleCommand: &kvrpcpb.StaleCommand{}}, nil
	}
	c := w.client(Options{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := c.Get(ctx, []byte("k"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want the context's deadline", err)
	}
}

func TestCloseCutsCallsShort(t *testing.T) {
	w := oneRegion(t)
	w.inject = func(uint64, string, *kvrpcpb.Context, proto.Message) (*kvrpcpb.RegionError, error) {
		return &kvrpcpb.RegionError{StaleCommand: &kvrpcpb.StaleCommand{}}, nil
	}
	c := w.client(Options{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Get(context.Background(), []byte("k"))
		done <- err
	}()
	for len(w.callsOf("Get")) == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Begin(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Begin after Close = %v, want ErrClosed", err)
	}
}

func TestSingleRegionCommitsInOnePhase(t *testing.T) {
	w := oneRegion(t)
	c := w.client(Options{})
	ctx := testCtx(t)
	txn, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = txn.Set([]byte("b"), []byte("2"), 0)
	_ = txn.Set([]byte("a"), []byte("1"), 0)
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	pw := w.callsOf("Prewrite")
	if len(pw) != 1 || len(w.callsOf("Commit")) != 0 {
		t.Fatalf("prewrites %+v, commits %d: want one one-phase prewrite", pw, len(w.callsOf("Commit")))
	}
	if txn.CommitTS() != txn.StartTS()+1 {
		t.Fatalf("commit ts %d, want the proposed start_ts+1 = %d", txn.CommitTS(), txn.StartTS()+1)
	}
	if s := c.Stats(); s.OnePC != 1 || s.TwoPC != 0 || s.Txns != 1 {
		t.Fatalf("stats %+v", s)
	}
	if err := txn.Commit(ctx); !errors.Is(err, ErrTxnFinished) {
		t.Fatalf("second Commit = %v, want ErrTxnFinished", err)
	}
}

func TestTwoRegionsCommitPrimaryFirst(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	c := w.client(Options{})
	ctx := testCtx(t)
	err := c.RunTxn(ctx, func(txn *Txn) error {
		for _, k := range []string{"z", "b", "a", "n"} {
			if err := txn.Set([]byte(k), []byte("v"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	commits := w.callsOf("Commit")
	if len(commits) != 3 || fmt.Sprint(commits[0].keys) != "[a]" {
		t.Fatalf("commits %+v, want the primary a alone first, then one per region", commits)
	}
	if len(w.callsOf("Prewrite")) != 2 || len(w.data) != 4 {
		t.Fatalf("prewrites %+v, data %v", w.callsOf("Prewrite"), w.data)
	}
	if s := c.Stats(); s.TwoPC != 1 || s.OnePC != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPrewriteConflictRollsBack(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	c := w.client(Options{TxnRetries: NoRetries})
	// Region 2's prewrite answers a conflict.
	w.inject = (&conflictOn{key: "z"}).inject
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		_ = txn.Set([]byte("a"), []byte("1"), 0)
		return txn.Set([]byte("z"), []byte("1"), 0)
	})
	if !errors.Is(err, ErrWriteConflict) || !IsRetryable(err) {
		t.Fatalf("RunTxn = %v, want a write conflict", err)
	}
	rb := w.callsOf("BatchRollback")
	if len(rb) != 2 {
		t.Fatalf("rollbacks %+v, want both regions", rb)
	}
	if len(w.callsOf("Commit")) != 0 {
		t.Fatal("committed after a conflict")
	}
	if s := c.Stats(); s.Conflicts != 1 || s.Txns != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// conflictOn makes prewrites of key fail with a write conflict, through a
// Prewrite response the fake store builds from the injected error.
type conflictOn struct{ key string }

func (c *conflictOn) inject(_ uint64, method string, _ *kvrpcpb.Context, req proto.Message) (*kvrpcpb.RegionError, error) {
	if method != "Prewrite" {
		return nil, nil
	}
	for _, m := range req.(*kvrpcpb.PrewriteRequest).GetMutations() {
		if string(m.GetKey()) == c.key {
			return nil, errConflict
		}
	}
	return nil, nil
}

// errConflict, returned by inject, makes the fake store answer a write
// conflict key error.
var errConflict = errors.New("conflict")

func TestRunTxnRetriesConflicts(t *testing.T) {
	w := oneRegion(t)
	var failures atomic.Int32
	w.inject = func(_ uint64, method string, _ *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method == "Prewrite" && failures.Add(1) <= 3 {
			return nil, errConflict
		}
		return nil, nil
	}
	c := w.client(Options{})
	runs := 0
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		runs++
		return txn.Set([]byte("k"), []byte("v"), 0)
	})
	if err != nil || runs != 4 {
		t.Fatalf("RunTxn = %v after %d runs, want success on the 4th", err, runs)
	}
	if s := c.Stats(); s.TxnRetries != 3 || s.Conflicts != 3 {
		t.Fatalf("stats %+v", s)
	}
	// A non-retryable error of fn is returned at once.
	boom := errors.New("boom")
	runs = 0
	if err := c.RunTxn(testCtx(t), func(*Txn) error { runs++; return boom }); !errors.Is(err, boom) || runs != 1 {
		t.Fatalf("RunTxn = %v after %d runs, want boom once", err, runs)
	}
}

func TestPrimaryCommitUndetermined(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	w.inject = func(_ uint64, method string, _ *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method == "Commit" {
			return nil, status.Error(codes.DeadlineExceeded, "slow")
		}
		return nil, nil
	}
	c := w.client(Options{MaxRetries: 2, RPCTimeout: time.Second})
	runs := 0
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		runs++
		_ = txn.Set([]byte("a"), []byte("1"), 0)
		return txn.Set([]byte("z"), []byte("1"), 0)
	})
	if !errors.Is(err, ErrCommitUndetermined) || IsRetryable(err) || runs != 1 {
		t.Fatalf("RunTxn = %v after %d runs, want ErrCommitUndetermined without retry", err, runs)
	}
	if len(w.callsOf("BatchRollback")) != 0 {
		t.Fatal("rolled back a transaction that may have committed")
	}
}

// TestStoreUndeterminedIsNotAFailure: a store that answers undetermined
// (the command was proposed, its fate unknown) for a one-phase commit or a
// primary's commit, at every attempt, makes the commit
// ErrCommitUndetermined, never retried and never rolled back; "server is
// busy" (not proposed) stays a failure, and the transaction is rolled back.
func TestStoreUndeterminedIsNotAFailure(t *testing.T) {
	undetermined := &kvrpcpb.RegionError{Undetermined: &kvrpcpb.Undetermined{Reason: "timed out"}}
	busy := &kvrpcpb.RegionError{ServerIsBusy: &kvrpcpb.ServerIsBusy{Reason: "not proposed"}}
	for _, tc := range []struct {
		name         string
		keys         []string
		method       string
		answer       *kvrpcpb.RegionError
		retries      int
		undetermined bool
	}{
		{"OnePCOneAttempt", []string{"a", "b"}, "Prewrite", undetermined, NoRetries, true},
		{"OnePCRetries", []string{"a", "b"}, "Prewrite", undetermined, 2, true},
		{"PrimaryOneAttempt", []string{"a", "z"}, "Commit", undetermined, NoRetries, true},
		{"PrimaryRetries", []string{"a", "z"}, "Commit", undetermined, 2, true},
		{"PrimaryBusy", []string{"a", "z"}, "Commit", busy, NoRetries, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, 3)
			w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
			w.inject = func(_ uint64, method string, _ *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
				if method == tc.method {
					return tc.answer, nil
				}
				return nil, nil
			}
			c := w.client(Options{MaxRetries: tc.retries, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
			runs := 0
			err := c.RunTxn(testCtx(t), func(txn *Txn) error {
				runs++
				for _, k := range tc.keys {
					_ = txn.Set([]byte(k), []byte("1"), 0)
				}
				return nil
			})
			if runs != 1 || err == nil || IsRetryable(err) {
				t.Fatalf("RunTxn = %v after %d runs, want a final error after one run", err, runs)
			}
			if got := errors.Is(err, ErrCommitUndetermined); got != tc.undetermined {
				t.Fatalf("RunTxn = %v: undetermined %v, want %v", err, got, tc.undetermined)
			}
			// A two-phase transaction is rolled back exactly when it
			// surely did not commit.
			if rolledBack := len(w.callsOf("BatchRollback")) != 0; tc.method == "Commit" && rolledBack == tc.undetermined {
				t.Fatalf("RunTxn = %v: rolled back %v", err, rolledBack)
			}
		})
	}
}

func TestTxnReadsOwnWrites(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	for _, k := range []string{"a", "c", "e", "n", "p"} {
		w.data[k] = []byte("old")
	}
	c := w.client(Options{})
	ctx := testCtx(t)
	txn, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = txn.Set([]byte("b"), []byte("new"), 0)
	_ = txn.Set([]byte("c"), []byte("new"), 0)
	_ = txn.Delete([]byte("e"))
	_ = txn.Delete([]byte("n"))
	_ = txn.Set([]byte("o"), []byte("gone"), txn.Now()-1) // already expired
	_ = txn.Set([]byte("q"), []byte("new"), txn.Now()+60_000)

	if e, found, err := txn.Get(ctx, []byte("c")); err != nil || !found || string(e.Value) != "new" {
		t.Fatalf("Get c = %q, %v, %v", e.Value, found, err)
	}
	for _, k := range []string{"e", "o"} {
		if _, found, err := txn.Get(ctx, []byte(k)); err != nil || found {
			t.Fatalf("Get %s = %v, %v; want absent", k, found, err)
		}
	}
	m, err := txn.BatchGet(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("e"), []byte("p")})
	if err != nil || len(m) != 3 || string(m["a"].Value) != "old" || string(m["b"].Value) != "new" {
		t.Fatalf("BatchGet = %v, %v", m, err)
	}
	keys := func(es []Entry) string {
		var s []string
		for _, e := range es {
			s = append(s, string(e.Key)+"="+string(e.Value))
		}
		return fmt.Sprint(s)
	}
	all, err := txn.Scan(ctx, nil, nil, 0)
	if err != nil || keys(all) != "[a=old b=new c=new p=old q=new]" {
		t.Fatalf("Scan = %s, %v", keys(all), err)
	}
	for limit := 1; limit <= 6; limit++ {
		got, err := txn.Scan(ctx, nil, nil, limit)
		if err != nil || len(got) != min(limit, len(all)) || keys(got) != keys(all[:len(got)]) {
			t.Fatalf("Scan limit %d = %s, %v", limit, keys(got), err)
		}
	}
	if got, err := txn.Scan(ctx, []byte("c"), []byte("q"), 0); err != nil || keys(got) != "[c=new p=old]" {
		t.Fatalf("Scan [c, q) = %s, %v", keys(got), err)
	}
	if err := txn.Set(make([]byte, limits.MaxKeySize+1), []byte("x"), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of a key over the limit = %v", err)
	}
	if err := txn.Commit(ctx); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Commit after a misuse = %v, want ErrTooLarge", err)
	}
}

func TestSecondaryCommitFailureDoesNotFailTxn(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	w.inject = func(_ uint64, method string, rc *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method == "Commit" && rc.GetRegionId() == 2 {
			return nil, status.Error(codes.Internal, "disk on fire")
		}
		return nil, nil
	}
	c := w.client(Options{})
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		_ = txn.Set([]byte("a"), []byte("1"), 0)
		return txn.Set([]byte("z"), []byte("1"), 0)
	})
	if err != nil {
		t.Fatalf("RunTxn = %v; a failed secondary must not fail the transaction", err)
	}
	if s := c.Stats(); s.SecondaryCommitFailures != 1 || s.Txns != 1 || s.TwoPC != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestOnePhaseFallsBackAfterSplit(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "", 1)}, map[uint64]uint64{1: 1})
	// Split at "m" behind PD's back: the one-phase attempt meets a stale
	// epoch and the keys now span two regions.
	w.setTruth([]*metapb.Region{region(1, "", "m", 2), region(2, "m", "", 2)}, map[uint64]uint64{1: 1, 2: 1})
	c := w.client(Options{})
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		_ = txn.Set([]byte("a"), []byte("1"), 0)
		return txn.Set([]byte("z"), []byte("1"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	pw := w.callsOf("Prewrite")
	if len(pw) != 3 || pw[0].region != 1 || len(pw[0].keys) != 2 {
		t.Fatalf("prewrites %+v, want the refused one-phase attempt, then one per region", pw)
	}
	if s := c.Stats(); s.OnePC != 0 || s.TwoPC != 1 {
		t.Fatalf("stats %+v", s)
	}
	if string(w.data["a"]) != "1" || string(w.data["z"]) != "1" {
		t.Fatalf("data %v", w.data)
	}
}
