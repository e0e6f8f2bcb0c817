package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/tests/cluster"
)

// router sends single-key requests to whichever store leads the key's
// region, asking PD for the route and trying stores until one serves.
type router struct {
	pd     *pdclient.Client
	conns  []*grpc.ClientConn
	stores map[uint64]storepb.StoreClient
}

func newRouter(t *testing.T, c *procCluster) *router {
	r := &router{stores: map[uint64]storepb.StoreClient{}}
	pdConn, err := pdclient.Dial(c.pdAddr)
	if err != nil {
		t.Fatal(err)
	}
	if r.pd, err = pdclient.New(pdConn, pdclient.Options{MaxRetries: 30, MaxBackoff: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for id, addr := range c.stores {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		r.conns = append(r.conns, cc)
		r.stores[id] = storepb.NewStoreClient(cc)
	}
	t.Cleanup(func() {
		r.pd.Close()
		pdConn.Close()
		for _, cc := range r.conns {
			cc.Close()
		}
	})
	return r
}

var errNoLeader = errors.New("no store served the request")

// do runs call against the region leader of key.
func (r *router) do(ctx context.Context, key []byte, call func(storepb.StoreClient, *kvrpcpb.Context) (*kvrpcpb.RegionError, error)) error {
	region, _, err := r.pd.GetRegion(ctx, key)
	if err != nil {
		return err
	}
	for _, cl := range r.stores {
		rc := &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch()}
		re, err := call(cl, rc)
		if err != nil || re != nil {
			continue
		}
		return nil
	}
	return errNoLeader
}

func (r *router) put(ctx context.Context, key, value string) error {
	ts, err := r.pd.GetTS(ctx)
	if err != nil {
		return err
	}
	return r.do(ctx, []byte(key), func(cl storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.RegionError, error) {
		resp, err := cl.KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
			Context: rc, StartVersion: ts, PrimaryLock: []byte(key), LockTtl: 3000, TryOnePc: true, OnePcCommitTs: ts + 1,
			Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: []byte(key), Value: []byte(value)}},
		})
		if err != nil {
			return nil, err
		}
		if resp.GetRegionError() != nil {
			return resp.GetRegionError(), nil
		}
		if len(resp.GetErrors()) > 0 || resp.GetOnePcCommitTs() == 0 {
			return nil, fmt.Errorf("put %s: %v", key, resp.GetErrors())
		}
		return nil, nil
	})
}

func (r *router) get(ctx context.Context, key string) (string, bool, error) {
	ts, err := r.pd.GetTS(ctx)
	if err != nil {
		return "", false, err
	}
	var (
		v     string
		found bool
	)
	err = r.do(ctx, []byte(key), func(cl storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.RegionError, error) {
		resp, err := cl.KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte(key), Version: ts})
		if err != nil {
			return nil, err
		}
		if resp.GetRegionError() != nil {
			return resp.GetRegionError(), nil
		}
		if resp.GetError() != nil {
			return nil, fmt.Errorf("get %s: %v", key, resp.GetError())
		}
		v, found = string(resp.GetValue()), !resp.GetNotFound()
		return nil, nil
	})
	return v, found, err
}

// TestKill9KeepsAcknowledgedWrites writes under load while store processes
// are killed with SIGKILL: first one store, then all of them. Every write a
// store acknowledged must be readable after the restarts.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	c := startProcCluster(t)
	r := newRouter(t, c)
	var (
		acked sync.Map
		count atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				// Keys on both sides of the region boundary "m".
				k := fmt.Sprintf("%c-w%d-%05d", "cx"[i%2], w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if err := r.put(ctx, k, k); err == nil {
					acked.Store(k, true)
					count.Add(1)
				}
				cancel()
			}
		}()
	}

	waitCount(t, &count, 100, "writes")
	c.kill9("store-1")
	base := count.Load()
	waitCount(t, &count, base+100, "writes") // the two survivors elect leaders and go on
	c.startStore(1)
	waitCount(t, &count, count.Load()+50, "writes")
	for id := uint64(1); id <= 3; id++ {
		c.kill9(fmt.Sprintf("store-%d", id))
	}
	stop.Store(true)
	wg.Wait()
	for id := uint64(1); id <= 3; id++ {
		c.startStore(id)
	}
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		key := k.(string)
		cluster.Eventually(t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			v, ok, err := r.get(ctx, key)
			if err != nil {
				return err
			}
			if !ok || v != key {
				t.Fatalf("acknowledged write %s lost after kill -9: got %q, %v", key, v, ok)
			}
			return nil
		})
		return true
	})
	t.Logf("%d acknowledged writes verified after kill -9 of one store and then all", n)
}

// waitCount waits until a workload's counter of acknowledged operations
// reaches n.
func waitCount(t *testing.T, counter *atomic.Int64, n int64, what string) {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, func() error {
		if got := counter.Load(); got < n {
			return fmt.Errorf("%d %s acknowledged, waiting for %d", got, what, n)
		}
		return nil
	})
}
