// Package txn_test runs pkg/kvclient against an in-process cluster: PD and
// three stores, two regions split at "m".
package txn_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// glog-style flush daemons and gRPC's resolver goroutines outlive tests briefly.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// startCluster starts three stores with regions (-inf, "m") and ["m", +inf).
func startCluster(t *testing.T) *cluster.Cluster {
	return cluster.Start(t, cluster.Options{Stores: 3, SplitKeys: []string{"m"}})
}

// newClient connects a kvclient to the cluster's PD; it is closed at
// cleanup. Unless opts says otherwise, retries are bounded by the cluster
// file's max_retries, as the gateway configures them.
func newClient(t *testing.T, c *cluster.Cluster, opts kvclient.Options) *kvclient.Client {
	t.Helper()
	if opts.MaxRetries == 0 {
		opts.MaxRetries = c.File().MaxRetries
		if opts.MaxRetries == 0 {
			opts.MaxRetries = kvclient.NoRetries
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc, err := kvclient.New(ctx, c.PDAddr(), opts)
	if err != nil {
		t.Fatalf("kvclient.New: %v", err)
	}
	t.Cleanup(kc.Close)
	return kc
}

// testCtx is a context for one step of a test, generous for -race on a busy
// machine: longer than a client's own retry budget (max_retries attempts
// of up to kvclient.DefaultRPCTimeout each, with backoffs), so that a step
// on a slow cluster ends with the client's own answer (unavailable,
// undetermined) rather than the test's clock. At load 15-27 on two cores a
// 6 MiB write, its leaders stepping down, took over 30 s.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// maxUndetermined bounds how often determined makes a write again.
const maxUndetermined = 5

// determined runs write, a blind write (one that reads nothing: the same
// values whatever the keys held), until its outcome is known, and returns
// its last error. An ErrCommitUndetermined answer is legitimate, not a
// failure: the leader changed or the attempt timed out while the commit
// was in flight, which a loaded machine causes, and the write may or may
// not have happened. As a linearizability checker would, the test takes
// both as possible, and makes the write again, which leaves the same
// values either way: an earlier attempt that applies late is refused (its
// start_ts lies below the later commit's, a write conflict), and one that
// applied is overwritten with the same values. Tests of the undetermined
// outcome itself (undetermined_test.go) do not use this.
func determined(t *testing.T, what string, write func(ctx context.Context) error) error {
	t.Helper()
	for i := 1; ; i++ {
		err := write(testCtx(t))
		if !errors.Is(err, kvclient.ErrCommitUndetermined) || i == maxUndetermined {
			return err
		}
		t.Logf("%s: attempt %d undetermined, writing again: %v", what, i, err)
	}
}

// mustSetBytes sets key to value (expiring at expiresAt, 0 never) as a
// setup step, writing again while the outcome is undetermined.
func mustSetBytes(t *testing.T, kc *kvclient.Client, key, value []byte, expiresAt int64) {
	t.Helper()
	err := determined(t, "set "+string(key[:min(len(key), 40)]), func(ctx context.Context) error {
		return kc.Set(ctx, key, value, expiresAt)
	})
	if err != nil {
		t.Fatalf("set %.40s: %v", key, err)
	}
}

func mustSet(t *testing.T, kc *kvclient.Client, key, value string) {
	t.Helper()
	mustSetBytes(t, kc, []byte(key), []byte(value), 0)
}

// mustGet reads key at a fresh timestamp; "" and false if absent.
func mustGet(t *testing.T, kc *kvclient.Client, key string) (string, bool) {
	t.Helper()
	e, found, err := kc.Get(testCtx(t), []byte(key))
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(e.Value), found
}

func wantValue(t *testing.T, kc *kvclient.Client, key, want string) {
	t.Helper()
	if got, found := mustGet(t, kc, key); !found || got != want {
		t.Fatalf("%s = %q (found %v), want %q", key, got, found, want)
	}
}

func wantAbsent(t *testing.T, kc *kvclient.Client, key string) {
	t.Helper()
	if got, found := mustGet(t, kc, key); found {
		t.Fatalf("%s = %q, want absent", key, got)
	}
}

// incr adds delta to the integer at key (absent: 0), keeping its expiry,
// as the gateway's INCRBY will.
func incr(ctx context.Context, kc *kvclient.Client, key []byte, delta int64) error {
	return kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
		e, found, err := txn.Get(ctx, key)
		if err != nil {
			return err
		}
		var n int64
		if found {
			if n, err = strconv.ParseInt(string(e.Value), 10, 64); err != nil {
				return fmt.Errorf("value of %q is not an integer: %w", key, err)
			}
		}
		return txn.Set(key, strconv.AppendInt(nil, n+delta, 10), e.ExpiresAt)
	})
}

// locksIn lists the locks left in the region holding key, as its leader
// sees them.
func locksIn(t *testing.T, c *cluster.Cluster, key string) []*kvrpcpb.LockInfo {
	t.Helper()
	var locks []*kvrpcpb.LockInfo
	cluster.Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvScanLock(testCtx(t), &kvrpcpb.ScanLockRequest{Context: rc, MaxVersion: ^uint64(0)})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("scan locks: region error %v", re)
		}
		locks = resp.GetLocks()
		return nil
	})
	return locks
}

func mustTS(t *testing.T, c *cluster.Cluster) uint64 {
	t.Helper()
	ts, err := c.PDClient.GetTS(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
