package txn_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// TestTransactions covers the client's reads and commits on one cluster
// with two regions, (-inf, "m") and ["m", +inf); each subtest uses its own
// keys.
func TestTransactions(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})

	t.Run("SetGetDelete", func(t *testing.T) {
		wantAbsent(t, kc, "basic/k")
		mustSet(t, kc, "basic/k", "v1")
		wantValue(t, kc, "basic/k", "v1")
		mustSet(t, kc, "basic/k", "v2")
		wantValue(t, kc, "basic/k", "v2")
		if err := kc.Delete(testCtx(t), []byte("basic/k")); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, kc, "basic/k")
		// An empty value is a value.
		mustSet(t, kc, "basic/empty", "")
		if v, found := mustGet(t, kc, "basic/empty"); !found || v != "" {
			t.Fatalf("empty value: %q, %v", v, found)
		}
		// Set then Delete in one transaction leaves nothing.
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			_ = txn.Set([]byte("basic/gone"), []byte("x"), 0)
			return txn.Delete([]byte("basic/gone"))
		})
		if err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, kc, "basic/gone")
	})

	t.Run("SingleRegionCommitsInOnePhase", func(t *testing.T) {
		before := kc.Stats()
		ctx := testCtx(t)
		txn, err := kc.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			_ = txn.Set(fmt.Appendf(nil, "onepc/%d", i), fmt.Appendf(nil, "v%d", i), 0)
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if txn.CommitTS() <= txn.StartTS() {
			t.Fatalf("commit ts %d not above start ts %d", txn.CommitTS(), txn.StartTS())
		}
		after := kc.Stats()
		if after.OnePC != before.OnePC+1 || after.TwoPC != before.TwoPC {
			t.Fatalf("one-phase commits %d → %d, two-phase %d → %d: want one more one-phase commit",
				before.OnePC, after.OnePC, before.TwoPC, after.TwoPC)
		}
		for i := range 10 {
			wantValue(t, kc, fmt.Sprintf("onepc/%d", i), fmt.Sprintf("v%d", i))
		}
		if locks := locksIn(t, c, "onepc/0"); len(locks) != 0 {
			t.Fatalf("one-phase commit left locks: %v", locks)
		}
	})

	t.Run("CrossRegionCommitsInTwoPhases", func(t *testing.T) {
		before := kc.Stats()
		keys := []string{"a/2pc", "b/2pc", "x/2pc", "y/2pc"} // two on each side of "m"
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			for _, k := range keys {
				if err := txn.Set([]byte(k), []byte("v-"+k), 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		after := kc.Stats()
		if after.TwoPC != before.TwoPC+1 || after.OnePC != before.OnePC {
			t.Fatalf("two-phase commits %d → %d, one-phase %d → %d: want one more two-phase commit",
				before.TwoPC, after.TwoPC, before.OnePC, after.OnePC)
		}
		got, err := kc.BatchGet(testCtx(t), [][]byte{[]byte("a/2pc"), []byte("b/2pc"), []byte("x/2pc"), []byte("y/2pc")})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if string(got[k].Value) != "v-"+k {
				t.Fatalf("%s = %q", k, got[k].Value)
			}
		}
		// Secondaries are committed before Commit returns: no lock is left
		// for readers to resolve.
		for _, k := range []string{"a/2pc", "x/2pc"} {
			if locks := locksIn(t, c, k); len(locks) != 0 {
				t.Fatalf("locks left in the region of %s: %v", k, locks)
			}
		}
	})

	t.Run("BatchGetAndScanAcrossRegions", func(t *testing.T) {
		// 40 keys on each side of "m".
		var keys [][]byte
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			keys = keys[:0]
			for _, side := range []string{"k", "n"} {
				for i := range 40 {
					k := fmt.Appendf(nil, "%s/scan/%02d", side, i)
					keys = append(keys, k)
					if err := txn.Set(k, k, 0); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := kc.BatchGet(testCtx(t), append(keys, []byte("k/scan/missing"), []byte("n/scan/missing")))
		if err != nil || len(got) != len(keys) {
			t.Fatalf("BatchGet: %d entries, %v; want %d", len(got), err, len(keys))
		}
		for _, k := range keys {
			if string(got[string(k)].Value) != string(k) {
				t.Fatalf("BatchGet %s = %q", k, got[string(k)].Value)
			}
		}
		all, err := kc.Scan(testCtx(t), []byte("k/scan/"), []byte("n/scan0"), 0)
		if err != nil || len(all) != len(keys) {
			t.Fatalf("Scan: %d entries, %v; want %d", len(all), err, len(keys))
		}
		for i, e := range all {
			if string(e.Key) != string(keys[i]) {
				t.Fatalf("Scan entry %d = %q, want %q", i, e.Key, keys[i])
			}
		}
		// Limits that stop before, at and after the region boundary.
		for _, limit := range []int{1, 39, 40, 41, 79, 80, 200} {
			part, err := kc.Scan(testCtx(t), []byte("k/scan/"), []byte("n/scan0"), limit)
			if err != nil || len(part) != min(limit, len(keys)) {
				t.Fatalf("Scan limit %d: %d entries, %v", limit, len(part), err)
			}
			for i, e := range part {
				if string(e.Key) != string(keys[i]) {
					t.Fatalf("Scan limit %d entry %d = %q, want %q", limit, i, e.Key, keys[i])
				}
			}
		}
		if part, err := kc.Scan(testCtx(t), []byte("k/scan/35"), []byte("n/scan/05"), 0); err != nil || len(part) != 10 {
			t.Fatalf("Scan [k/scan/35, n/scan/05): %d entries, %v; want 10", len(part), err)
		}
	})

	t.Run("SnapshotIsolation", func(t *testing.T) {
		// lsi/* sort before "m", msi/* after it.
		mustSet(t, kc, "lsi/a", "old")
		mustSet(t, kc, "msi/a", "old")
		ctx := testCtx(t)
		reader, err := kc.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// A transaction across both regions commits after reader started.
		err = kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
			_ = txn.Set([]byte("lsi/a"), []byte("new"), 0)
			_ = txn.Set([]byte("msi/a"), []byte("new"), 0)
			return txn.Set([]byte("lsi/b"), []byte("new"), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"lsi/a", "msi/a"} {
			if e, found, err := reader.Get(ctx, []byte(k)); err != nil || !found || string(e.Value) != "old" {
				t.Fatalf("reader sees %s = %q (%v, %v), want the old value", k, e.Value, found, err)
			}
		}
		if _, found, err := reader.Get(ctx, []byte("lsi/b")); err != nil || found {
			t.Fatalf("reader sees lsi/b (found %v, err %v), created after it started", found, err)
		}
		if got, err := reader.Scan(ctx, []byte("lsi/"), []byte("msi0"), 0); err != nil || len(got) != 2 ||
			string(got[0].Value) != "old" || string(got[1].Value) != "old" {
			t.Fatalf("reader scan = %v, %v; want the two old values", got, err)
		}
		if m, err := reader.BatchGet(ctx, [][]byte{[]byte("lsi/a"), []byte("lsi/b"), []byte("msi/a")}); err != nil || len(m) != 2 ||
			string(m["lsi/a"].Value) != "old" || string(m["msi/a"].Value) != "old" {
			t.Fatalf("reader batch get = %v, %v; want the two old values", m, err)
		}
		// A transaction started now sees everything.
		if got, err := kc.Scan(ctx, []byte("lsi/"), []byte("msi0"), 0); err != nil || len(got) != 3 {
			t.Fatalf("fresh scan = %v, %v; want 3 new values", got, err)
		}
		// Writing a key changed since it started is a conflict (no lost update).
		_ = reader.Set([]byte("lsi/a"), []byte("lost"), 0)
		if err := reader.Commit(ctx); !errors.Is(err, kvclient.ErrWriteConflict) {
			t.Fatalf("commit over a newer write = %v, want ErrWriteConflict", err)
		}
		wantValue(t, kc, "lsi/a", "new")
		wantValue(t, kc, "msi/a", "new")
		wantValue(t, kc, "lsi/b", "new")
	})

	t.Run("WriteConflict", func(t *testing.T) {
		// Two read-modify-write transactions of one key, both started
		// before either commits: the second to commit conflicts.
		ctx := testCtx(t)
		mustSet(t, kc, "w/k", "0")
		begin := func() *kvclient.Txn {
			txn, err := kc.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := txn.Get(ctx, []byte("w/k")); err != nil {
				t.Fatal(err)
			}
			return txn
		}
		t1, t2 := begin(), begin()
		_ = t1.Set([]byte("w/k"), []byte("t1"), 0)
		_ = t2.Set([]byte("w/k"), []byte("t2"), 0)
		if err := t1.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		err := t2.Commit(ctx)
		if !errors.Is(err, kvclient.ErrWriteConflict) || !kvclient.IsRetryable(err) {
			t.Fatalf("second commit = %v, want a retryable ErrWriteConflict", err)
		}
		var ke *kvclient.KeyError
		if !errors.As(err, &ke) || string(ke.Err.GetConflict().GetKey()) != "w/k" {
			t.Fatalf("conflict error %v does not name the key", err)
		}
		wantValue(t, kc, "w/k", "t1")

		// Racing read-modify-write transactions of one key that both read
		// it before either commits: exactly one of each pair commits.
		for round := range 5 {
			key := fmt.Appendf(nil, "w/race/%d", round)
			var wins atomic.Int32
			var wg sync.WaitGroup
			txns := make([]*kvclient.Txn, 2)
			for i := range txns {
				if txns[i], err = kc.Begin(ctx); err != nil {
					t.Fatal(err)
				}
				if _, _, err := txns[i].Get(ctx, key); err != nil {
					t.Fatal(err)
				}
				_ = txns[i].Set(key, fmt.Appendf(nil, "%d", i), 0)
			}
			for i := range txns {
				wg.Go(func() {
					err := txns[i].Commit(ctx)
					switch {
					case err == nil:
						wins.Add(1)
					case !errors.Is(err, kvclient.ErrWriteConflict):
						t.Errorf("round %d: commit = %v, want success or ErrWriteConflict", round, err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("round %d: %d commits, want exactly 1", round, wins.Load())
			}
		}

		// Blind writes (no read) of one key by transactions that both
		// started before either committed: a one-phase commit may land
		// below the other's start_ts, and then both commit, in commit
		// order. Whatever happens, the value is that of the last commit.
		for round := range 5 {
			key := fmt.Appendf(nil, "w/blind/%d", round)
			t1, err := kc.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t2, err := kc.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_ = t1.Set(key, []byte("t1"), 0)
			_ = t2.Set(key, []byte("t2"), 0)
			if err := t1.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			want := "t1"
			switch err := t2.Commit(ctx); {
			case err == nil:
				want = "t2"
				if t2.CommitTS() <= t1.CommitTS() {
					t.Fatalf("round %d: later commit at %d, not above %d", round, t2.CommitTS(), t1.CommitTS())
				}
			case !errors.Is(err, kvclient.ErrWriteConflict):
				t.Fatalf("round %d: commit = %v, want success or ErrWriteConflict", round, err)
			}
			wantValue(t, kc, string(key), want)
		}

		// Racing writers of keys in both regions: at most one commits, and
		// whatever commits is all there.
		for round := range 5 {
			ka, kz := fmt.Appendf(nil, "a/race/%d", round), fmt.Appendf(nil, "z/race/%d", round)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			txns := make([]*kvclient.Txn, 2)
			for i := range txns {
				if txns[i], err = kc.Begin(ctx); err != nil {
					t.Fatal(err)
				}
				v := fmt.Appendf(nil, "%d", i)
				_ = txns[i].Set(ka, v, 0)
				_ = txns[i].Set(kz, v, 0)
			}
			for i := range txns {
				wg.Go(func() { errs[i] = txns[i].Commit(ctx) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: both transactions committed", round)
				case err == nil:
					winner = i
				case !errors.Is(err, kvclient.ErrWriteConflict):
					t.Fatalf("round %d: commit = %v, want ErrWriteConflict", round, err)
				}
			}
			va, fa := mustGet(t, kc, string(ka))
			vz, fz := mustGet(t, kc, string(kz))
			if winner < 0 {
				if fa || fz {
					t.Fatalf("round %d: nothing committed but %s=%q %s=%q", round, ka, va, kz, vz)
				}
			} else if want := strconv.Itoa(winner); va != want || vz != want {
				t.Fatalf("round %d: %s=%q %s=%q, want both %q", round, ka, va, kz, vz, want)
			}
		}
	})

	t.Run("ConcurrentIncr", func(t *testing.T) {
		const workers, perWorker = 10, 20
		ctx := testCtx(t)
		key := []byte("counter/incr")
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range perWorker {
					if err := incr(ctx, kc, key, 1); err != nil {
						t.Errorf("incr: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		wantValue(t, kc, string(key), strconv.Itoa(workers*perWorker))
	})

	t.Run("BankTransfersStayBalanced", func(t *testing.T) {
		// Accounts on both sides of "m": transfers are two-phase commits,
		// and readers meet their locks.
		accounts := []string{"bank/a", "bank/b", "bank/c", "zbank/x", "zbank/y", "zbank/z"}
		const initial = 100
		for _, a := range accounts {
			mustSet(t, kc, a, strconv.Itoa(initial))
		}
		keys := make([][]byte, len(accounts))
		for i, a := range accounts {
			keys[i] = []byte(a)
		}
		ctx := testCtx(t)
		total := func(m map[string]kvclient.Entry) (int, error) {
			sum := 0
			for _, a := range accounts {
				e, ok := m[a]
				if !ok {
					return 0, fmt.Errorf("account %s missing", a)
				}
				n, err := strconv.Atoi(string(e.Value))
				if err != nil {
					return 0, err
				}
				sum += n
			}
			return sum, nil
		}
		var (
			wg        sync.WaitGroup
			done      atomic.Bool
			transfers atomic.Int32
		)
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				for range 15 {
					from, to := rng.IntN(len(accounts)), rng.IntN(len(accounts)-1)
					if to >= from {
						to++
					}
					amount := rng.IntN(20) + 1
					err := kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
						m, err := txn.BatchGet(ctx, [][]byte{keys[from], keys[to]})
						if err != nil {
							return err
						}
						a, _ := strconv.Atoi(string(m[accounts[from]].Value))
						b, _ := strconv.Atoi(string(m[accounts[to]].Value))
						_ = txn.Set(keys[from], []byte(strconv.Itoa(a-amount)), 0)
						return txn.Set(keys[to], []byte(strconv.Itoa(b+amount)), 0)
					})
					if err != nil {
						t.Errorf("transfer: %v", err)
						return
					}
					transfers.Add(1)
				}
			})
		}
		var readers sync.WaitGroup
		var reads atomic.Int32
		for r := range 2 {
			readers.Go(func() {
				for !done.Load() {
					var (
						m   map[string]kvclient.Entry
						err error
					)
					if r == 0 {
						m, err = kc.BatchGet(ctx, keys)
					} else {
						// Across both regions, among other tests' keys.
						var es []kvclient.Entry
						es, err = kc.Scan(ctx, []byte("bank/"), []byte("zbank0"), 0)
						m = map[string]kvclient.Entry{}
						for _, e := range es {
							if slices.Contains(accounts, string(e.Key)) {
								m[string(e.Key)] = e
							}
						}
					}
					if err != nil {
						t.Errorf("reader %d: %v", r, err)
						return
					}
					if sum, err := total(m); err != nil || sum != initial*len(accounts) {
						t.Errorf("reader %d: total %d (%v), want %d", r, sum, err, initial*len(accounts))
						return
					}
					reads.Add(1)
				}
			})
		}
		wg.Wait()
		done.Store(true)
		readers.Wait()
		if t.Failed() {
			return
		}
		m, err := kc.BatchGet(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := total(m); err != nil || sum != initial*len(accounts) {
			t.Fatalf("final total %d (%v), want %d", sum, err, initial*len(accounts))
		}
		t.Logf("%d transfers, %d consistent reads; stats %+v", transfers.Load(), reads.Load(), kc.Stats())
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx := testCtx(t)
		// Already expired when written: reads as absent everywhere.
		past := time.Now().UnixMilli() - 60_000
		if err := kc.Set(ctx, []byte("ttl/past"), []byte("v"), past); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, kc, "ttl/past")
		if m, err := kc.BatchGet(ctx, [][]byte{[]byte("ttl/past")}); err != nil || len(m) != 0 {
			t.Fatalf("BatchGet of an expired key = %v, %v", m, err)
		}
		if es, err := kc.Scan(ctx, []byte("ttl/past"), []byte("ttl/past0"), 0); err != nil || len(es) != 0 {
			t.Fatalf("Scan of an expired key = %v, %v", es, err)
		}

		// A clock the test controls: the value lives until it passes.
		var fakeNow atomic.Int64
		fakeNow.Store(time.Now().UnixMilli())
		fc := newClient(t, c, kvclient.Options{NowMs: fakeNow.Load})
		expiresAt := fakeNow.Load() + 10_000
		if err := fc.Set(ctx, []byte("ttl/fake"), []byte("v"), expiresAt); err != nil {
			t.Fatal(err)
		}
		e, found, err := fc.Get(ctx, []byte("ttl/fake"))
		if err != nil || !found || e.ExpiresAt != expiresAt {
			t.Fatalf("before expiry: %v, found %v, %v; want expires_at %d", e, found, err, expiresAt)
		}
		// INCR-style read-modify-write keeps the expiry.
		mustSet(t, fc, "ttl/counter", "1")
		err = fc.RunTxn(ctx, func(txn *kvclient.Txn) error {
			return txn.Set([]byte("ttl/counter"), []byte("1"), txn.Now()+10_000)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := incr(ctx, fc, []byte("ttl/counter"), 1); err != nil {
			t.Fatal(err)
		}
		if e, found, err := fc.Get(ctx, []byte("ttl/counter")); err != nil || !found || string(e.Value) != "2" || e.ExpiresAt == 0 {
			t.Fatalf("counter after incr = %+v, %v, %v; want 2 with its expiry", e, found, err)
		}
		fakeNow.Add(20_000)
		for _, k := range []string{"ttl/fake", "ttl/counter"} {
			wantAbsent(t, fc, k)
		}
		// An expired key can be written again.
		if err := incr(ctx, fc, []byte("ttl/counter"), 5); err != nil {
			t.Fatal(err)
		}
		wantValue(t, fc, "ttl/counter", "5")

		// Real time: a value set to expire shortly disappears by itself.
		if err := kc.Set(ctx, []byte("ttl/real"), []byte("v"), time.Now().UnixMilli()+200); err != nil {
			t.Fatal(err)
		}
		cluster.Eventually(t, 10*time.Second, func() error {
			_, found, err := kc.Get(ctx, []byte("ttl/real"))
			if err != nil {
				return err
			}
			if found {
				return errors.New("ttl/real still there")
			}
			return nil
		})
	})

	t.Run("ValuesAndKeys", func(t *testing.T) {
		ctx := testCtx(t)
		big := func(seed byte) []byte {
			v := make([]byte, 10_000) // above the store's 255-byte inline limit
			for i := range v {
				v[i] = seed + byte(i%251)
			}
			return v
		}
		// Binary keys, on both sides of "m".
		k1, k2 := []byte("b\x00in\xff/1"), []byte("z\x00in\xff/2")
		// One region (one phase), then two regions (two phases), big values.
		if err := kc.Set(ctx, k1, big(1), 0); err != nil {
			t.Fatal(err)
		}
		err := kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
			_ = txn.Set(k1, big(2), 0)
			return txn.Set(k2, big(3), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := kc.BatchGet(ctx, [][]byte{k1, k2})
		if err != nil || string(m[string(k1)].Value) != string(big(2)) || string(m[string(k2)].Value) != string(big(3)) {
			t.Fatalf("big values read back wrong (%d entries, %v)", len(m), err)
		}
		es, err := kc.Scan(ctx, []byte("b\x00"), []byte("z\x01"), 0)
		if err != nil {
			t.Fatal(err)
		}
		var seen int
		for _, e := range es {
			if string(e.Key) == string(k1) || string(e.Key) == string(k2) {
				seen++
				if len(e.Value) != 10_000 {
					t.Fatalf("scan %q: %d bytes", e.Key, len(e.Value))
				}
			}
		}
		if seen != 2 {
			t.Fatalf("scan saw %d of the 2 binary keys", seen)
		}
		// A conflicting transaction with big values leaves nothing behind.
		txn, err := kc.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := txn.Get(ctx, k2); err != nil {
			t.Fatal(err)
		}
		if err := incr(ctx, kc, []byte("zz/bump"), 1); err != nil {
			t.Fatal(err)
		}
		if err := kc.Set(ctx, k2, []byte("small"), 0); err != nil {
			t.Fatal(err)
		}
		_ = txn.Set(k1, big(4), 0)
		_ = txn.Set(k2, big(5), 0)
		if err := txn.Commit(ctx); !errors.Is(err, kvclient.ErrWriteConflict) {
			t.Fatalf("commit = %v, want a conflict", err)
		}
		if v, _ := mustGet(t, kc, string(k1)); v != string(big(2)) {
			t.Fatalf("k1 changed by a rolled-back transaction (%d bytes)", len(v))
		}
		wantValue(t, kc, string(k2), "small")
		if locks := locksIn(t, c, string(k1)); len(locks) != 0 {
			t.Fatalf("locks left: %v", locks)
		}
		// Deletes in two phases.
		if err := kc.Delete(ctx, k1, k2); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, kc, string(k1))
		wantAbsent(t, kc, string(k2))
		// Expiry travels through two-phase commit too.
		var fakeNow atomic.Int64
		fakeNow.Store(time.Now().UnixMilli())
		fc := newClient(t, c, kvclient.Options{NowMs: fakeNow.Load})
		err = fc.RunTxn(ctx, func(txn *kvclient.Txn) error {
			_ = txn.Set([]byte("a/exp2pc"), []byte("v"), txn.Now()+5_000)
			return txn.Set([]byte("z/exp2pc"), big(6), txn.Now()+5_000)
		})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := fc.BatchGet(ctx, [][]byte{[]byte("a/exp2pc"), []byte("z/exp2pc")}); err != nil || len(m) != 2 || m["z/exp2pc"].ExpiresAt == 0 {
			t.Fatalf("before expiry: %v, %v", m, err)
		}
		fakeNow.Add(10_000)
		if m, err := fc.BatchGet(ctx, [][]byte{[]byte("a/exp2pc"), []byte("z/exp2pc")}); err != nil || len(m) != 0 {
			t.Fatalf("after expiry: %v, %v", m, err)
		}
	})

	t.Run("RunTxnErrors", func(t *testing.T) {
		ctx := testCtx(t)
		mustSet(t, kc, "err/k", "not a number")
		if err := incr(ctx, kc, []byte("err/k"), 1); err == nil || kvclient.IsRetryable(err) {
			t.Fatalf("incr of a non-integer = %v, want the callback's error", err)
		}
		wantValue(t, kc, "err/k", "not a number")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := kc.Set(cctx, []byte("err/k"), []byte("x"), 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Set with a cancelled context = %v", err)
		}
	})
}
