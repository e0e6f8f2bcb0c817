package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"expvar"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// The persisted layout (services/gateway/internal/keyspace), spelled out
// because the package is internal: a sub-key is (db|1<<31)(4) ‖ len(key)(4)
// ‖ key ‖ version(8) ‖ kind ‖ element; a reclaim-queue key starts with four
// 0xff bytes; a collection's record is its type byte, a format byte, a
// flags byte and the version (8 bytes) first.
var (
	subFamily    = []byte{0x80, 0, 0, 0}
	reclaimQueue = []byte{0xff, 0xff, 0xff, 0xff}
)

type keyVersion struct {
	db      uint32
	key     string
	version uint64
}

// subVersions returns how many sub-keys each (db, key, version) holds in
// the cluster now, read with kvclient's scan of the whole sub-key family.
func subVersions(ctx context.Context, kc *kvclient.Client) (map[keyVersion]int, error) {
	out := map[keyVersion]int{}
	_, err := kc.ScanFunc(ctx, subFamily, reclaimQueue, kvclient.ScanOptions{KeysOnly: true}, func(e kvclient.Entry) bool {
		k := e.Key
		n := int(binary.BigEndian.Uint32(k[4:8]))
		kv := keyVersion{db: binary.BigEndian.Uint32(k) &^ (1 << 31), key: string(k[8 : 8+n]), version: binary.BigEndian.Uint64(k[8+n:])}
		out[kv]++
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("scan the sub-key family: %w", err)
	}
	return out, nil
}

// liveVersion returns the version of the collection stored at key in db 0,
// or 0.
func liveVersion(ctx context.Context, kc *kvclient.Client, key string) (uint64, error) {
	e, ok, err := kc.Get(ctx, append([]byte{0, 0, 0, 0}, key...))
	if err != nil || !ok {
		return 0, err
	}
	if len(e.Value) < 11 || e.Value[0] < 2 || e.Value[0] > 5 {
		return 0, nil // a string
	}
	return binary.BigEndian.Uint64(e.Value[3:11]), nil
}

// deadVersions lists the (key, version)s holding sub-keys that are not
// their key's live version.
func deadVersions(ctx context.Context, kc *kvclient.Client) ([]string, error) {
	subs, err := subVersions(ctx, kc)
	if err != nil {
		return nil, err
	}
	var dead []string
	for kv, n := range subs {
		live, err := liveVersion(ctx, kc, kv.key)
		if err != nil {
			return nil, err
		}
		if kv.db != 0 || kv.version != live {
			dead = append(dead, fmt.Sprintf("%q version %d (%d sub-keys; live %d)", kv.key, kv.version, n, live))
		}
	}
	return dead, nil
}

func queueLen(ctx context.Context, kc *kvclient.Client) (int, error) {
	n := 0
	if _, err := kc.ScanFunc(ctx, reclaimQueue, nil, kvclient.ScanOptions{KeysOnly: true}, func(kvclient.Entry) bool {
		n++
		return true
	}); err != nil {
		return 0, fmt.Errorf("scan the reclaim queue: %w", err)
	}
	return n, nil
}

// mustQueueLen is queueLen, retried on the cluster's transient errors.
func mustQueueLen(ctx context.Context, t *testing.T, kc *kvclient.Client) int {
	t.Helper()
	var n int
	cluster.Eventually(t, time.Minute, func() (err error) {
		n, err = queueLen(ctx, kc)
		return err
	})
	return n
}

// settled checks that the queue is empty and no dead version holds
// sub-keys.
func settled(ctx context.Context, kc *kvclient.Client) error {
	n, err := queueLen(ctx, kc)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%d queue entries left", n)
	}
	dead, err := deadVersions(ctx, kc)
	if err != nil {
		return err
	}
	if len(dead) > 0 {
		return fmt.Errorf("dead versions left: %v", dead)
	}
	return nil
}

func reclaimVar(name string) int64 {
	m, _ := expvar.Get("nokv_raft_reclaim").(*expvar.Map)
	if m == nil {
		return 0
	}
	if v, ok := m.Get(name).(*expvar.Int); ok {
		return v.Value()
	}
	return 0
}

// Every way a collection's version dies on the raft backend — DEL of a
// 10k-field hash, SET over a set (a blind write), RENAME, a hash emptied by
// HDEL, HSET/DEL/HSET in one MULTI, expiry — leaves no sub-key of the dead
// version once the reclaimer has run, while live collections keep every
// element. The queue is drained by any gateway: one that wrote entries and
// never drains (as if it died after the commit) and a drain that stops
// between the range deletes and the entries' deletion (as if it died
// there) are finished by another gateway.
func TestRaftReclaimsDeadVersions(t *testing.T) {
	c := cluster.Start(t, cluster.Options{
		// The sub-key family and the queue in regions of their own: the
		// kills are multi-region transactions, the range deletes too.
		SplitKeys:  []string{"\x80", "\xc0", "\xff\xff\xff\xff"},
		GCInterval: 100 * time.Millisecond, GCLifeTime: 30 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()

	// The writer never reclaims.
	writer := startGateway(t, c, func(cfg *gatewayserver.Config) {
		cfg.RaftReclaimInterval, cfg.RaftSweepInterval = -1, -1
	})
	rc := redis.NewClient(&redis.Options{Addr: writer.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
	defer rc.Close()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fields := func(prefix string, n int) []any {
		var out []any
		for i := range n {
			out = append(out, prefix+strconv.Itoa(i), "v"+strconv.Itoa(i))
		}
		return out
	}
	// The 10k-field hash is written straight into the cluster in one
	// transaction, at a known version: what is under test is its
	// reclamation, not how HSET builds it.
	must(kc.RunTxn(ctx, func(tx *kvclient.Txn) error {
		ver := tx.StartTS()
		meta := []byte{2, 1, 1} // hash, meta format 1, encoding "big"
		meta = binary.BigEndian.AppendUint64(meta, ver)
		meta = binary.BigEndian.AppendUint64(meta, 10000)
		meta = binary.BigEndian.AppendUint64(meta, 1)
		if err := tx.Set(append([]byte{0, 0, 0, 0}, "big"...), meta, 0); err != nil {
			return err
		}
		for i := range 10000 {
			sub := append([]byte{0x80, 0, 0, 0, 0, 0, 0, 3}, "big"...)
			sub = binary.BigEndian.AppendUint64(sub, ver)
			sub = append(sub, 'f')
			sub = strconv.AppendInt(sub, int64(i), 10)
			if err := tx.Set(sub, []byte("v"), 0); err != nil {
				return err
			}
		}
		return nil
	}))
	if n, err := rc.HLen(ctx, "big").Result(); err != nil || n != 10000 {
		t.Fatalf("HLEN big = %d, %v", n, err)
	}
	must(rc.SAdd(ctx, "set", "a", "b", "c").Err())
	must(rc.HSet(ctx, "from", fields("r", 20)...).Err())
	must(rc.HSet(ctx, "emptied", "x", "1").Err())
	must(rc.RPush(ctx, "list", "a", "b").Err())
	must(rc.HSet(ctx, "expiring", fields("e", 20)...).Err())
	must(rc.HSet(ctx, "live", fields("l", 30)...).Err())
	must(rc.SAdd(ctx, "liveset", "m1", "m2").Err())
	must(rc.HSet(ctx, "part", "a", "1", "b", "2").Err())

	// The job-queue pattern: the list dies (its last element popped) and
	// is reborn every cycle.
	for i := range 20 {
		must(rc.RPush(ctx, "q", "job"+strconv.Itoa(i)).Err())
		if v, err := rc.LPop(ctx, "q").Result(); err != nil || v != "job"+strconv.Itoa(i) {
			t.Fatalf("LPOP q = %q, %v", v, err)
		}
	}
	must(rc.Del(ctx, "big").Err())
	must(rc.Set(ctx, "set", "string now", 0).Err())
	must(rc.Rename(ctx, "from", "to").Err())
	must(rc.HDel(ctx, "emptied", "x").Err())
	must(rc.Del(ctx, "list").Err())
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, "multi", "a", "1")
		p.Del(ctx, "multi")
		p.HSet(ctx, "multi", "b", "2")
		return nil
	})
	must(err)
	// Point deletions that leave an element: the DEL still queues.
	_, err = rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, "part", "a")
		p.Del(ctx, "part")
		return nil
	})
	must(err)
	must(rc.PExpire(ctx, "expiring", time.Millisecond).Err())

	// Known kills are queued: DEL big, RENAME from, DEL list, MULTI's
	// HDEL+DEL of part (not the blind SET nor the expiry; MULTI's two
	// incarnations share the live version, the first one's element
	// deleted in the transaction). A version emptied by the command's own
	// point deletions — the hash emptied by HDEL, each of the queue's 20
	// incarnations emptied by LPOP — is not: nothing is left to reclaim.
	if n := mustQueueLen(ctx, t, kc); n != 4 {
		t.Fatalf("reclaim queue holds %d entries, want 4", n)
	}
	var dead []string
	cluster.Eventually(t, time.Minute, func() (err error) {
		dead, err = deadVersions(ctx, kc)
		return err
	})
	// big, set, from, list, expiring, part (the emptied hash's and the
	// queue's elements were deleted by HDEL and LPOP: their versions hold
	// nothing visible).
	if len(dead) != 6 {
		t.Fatalf("before reclamation, dead versions %v: want 6", dead)
	}

	// A gateway whose drain stops after its first range deletes, as if it
	// died there: the entries stay, the next drain (here by the same
	// gateway) finishes them.
	var failDrain atomic.Int32
	failDrain.Store(1)
	startGateway(t, c, func(cfg *gatewayserver.Config) {
		cfg.RaftReclaimInterval, cfg.RaftSweepInterval = 100*time.Millisecond, 100*time.Millisecond
		cfg.TestingKnobs.ReclaimHook = func(stage string) error {
			if failDrain.Load() == 1 {
				failDrain.Store(2)
				return errors.New("test: the gateway dies between range delete and entry delete")
			}
			return nil
		}
	})
	cluster.Eventually(t, time.Minute, func() error {
		if failDrain.Load() != 2 {
			return errors.New("no drain has reached the range deletes yet")
		}
		return nil
	})
	if n := mustQueueLen(ctx, t, kc); n == 0 {
		t.Fatal("the drain stopped before deleting entries, yet the queue is empty")
	}
	before := reclaimVar("versions")
	cluster.Eventually(t, 2*time.Minute, func() error { return settled(ctx, kc) })
	if got := reclaimVar("versions") - before; got < 1 {
		t.Errorf("nokv_raft_reclaim.versions grew by %d", got)
	}
	if reclaimVar("orphans") < 2 {
		t.Errorf("nokv_raft_reclaim.orphans = %d, want the blind SET's and the expiry's versions", reclaimVar("orphans"))
	}

	// Live collections kept every element.
	got, err := rc.HGetAll(ctx, "live").Result()
	must(err)
	if len(got) != 30 || got["l29"] != "v29" {
		t.Fatalf("live hash has %d fields after reclamation", len(got))
	}
	if got, err := rc.HGetAll(ctx, "to").Result(); err != nil || len(got) != 20 {
		t.Fatalf("renamed hash: %d fields, %v", len(got), err)
	}
	if got, err := rc.HGetAll(ctx, "multi").Result(); err != nil || len(got) != 1 || got["b"] != "2" {
		t.Fatalf("MULTI's hash: %v, %v", got, err)
	}
	if n, err := rc.SCard(ctx, "liveset").Result(); err != nil || n != 2 {
		t.Fatalf("live set: %d, %v", n, err)
	}
	// The queue is nobody's key.
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 5 {
		t.Fatalf("DBSIZE %d, %v: want 5 (set, to, live, liveset, multi)", n, err)
	}
}

// HSETs racing DELs of the same hash, through two gateways that both
// reclaim: every HSET acknowledged after the last DEL was acknowledged is
// visible at the end, and the reclaimer leaves no dead version and takes
// no live element.
func TestRaftReclaimRacingWrites(t *testing.T) {
	c := cluster.Start(t, cluster.Options{
		SplitKeys:  []string{"\x80", "\xff\xff\xff\xff"},
		GCInterval: 100 * time.Millisecond, GCLifeTime: 10 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	var clients []*redis.Client
	for range 2 {
		srv := startGateway(t, c, func(cfg *gatewayserver.Config) {
			cfg.RaftReclaimInterval, cfg.RaftSweepInterval = 50*time.Millisecond, 50*time.Millisecond
		})
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
		defer rc.Close()
		clients = append(clients, rc)
	}

	var (
		mu      sync.Mutex
		lastDel time.Time
		acked   = map[string]time.Time{} // field -> when its HSET started
	)
	stopDel := time.Now().Add(4 * time.Second)
	delDone := make(chan struct{})
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := clients[w%2]
			after := 0 // HSETs since the DELs stopped
			for i := 0; after < 20; i++ {
				select {
				case <-delDone:
					after++
				default:
				}
				f := fmt.Sprintf("w%d-%d", w, i)
				start := time.Now()
				if err := rc.HSet(ctx, "hot", f, f).Err(); err != nil {
					errc <- fmt.Errorf("HSET %s: %w", f, err)
					return
				}
				mu.Lock()
				acked[f] = start
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(delDone)
		for i := 0; time.Now().Before(stopDel); i++ {
			if err := clients[i%2].Del(ctx, "hot").Err(); err != nil {
				errc <- fmt.Errorf("DEL: %w", err)
				return
			}
			mu.Lock()
			lastDel = time.Now()
			mu.Unlock()
			time.Sleep(30 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	var want []string
	for f, start := range acked {
		if start.After(lastDel) {
			want = append(want, f)
		}
	}
	if len(want) == 0 {
		t.Fatal("no HSET started after the last DEL: the test proves nothing")
	}
	check := func() error {
		got, err := clients[0].HGetAll(ctx, "hot").Result()
		if err != nil {
			return err
		}
		for _, f := range want {
			if got[f] != f {
				return fmt.Errorf("field %s, acknowledged after the last DEL, reads %q (hash of %d fields)", f, got[f], len(got))
			}
		}
		return nil
	}
	if err := check(); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, func() error { return settled(ctx, kc) })
	// Two more sweeps after the last kill: still nothing live taken.
	sweeps := reclaimVar("sweeps")
	cluster.Eventually(t, time.Minute, func() error {
		if reclaimVar("sweeps") < sweeps+4 {
			return errors.New("waiting for sweeps")
		}
		return nil
	})
	if err := check(); err != nil {
		t.Fatal(err)
	}
	var live map[keyVersion]int
	cluster.Eventually(t, time.Minute, func() (err error) {
		live, err = subVersions(ctx, kc)
		return err
	})
	if len(live) != 1 {
		t.Fatalf("sub-key versions at the end: %v, want the live one only", live)
	}
	for kv, n := range live {
		if hlen, err := clients[1].HLen(ctx, "hot").Result(); err != nil || int64(n) != hlen {
			t.Fatalf("%v holds %d sub-keys, HLEN %d (%v)", kv, n, hlen, err)
		}
	}
}
