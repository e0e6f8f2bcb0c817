package gc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/tests/cluster"
)

// put commits key=value (expiring at expiresAt, 0 = never) in one phase at
// the leader and returns the commit timestamp.
func put(t *testing.T, c *cluster.Cluster, key, value string, expiresAt int64) uint64 {
	t.Helper()
	var commitTS uint64
	cluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rc, store := route(t, c, key)
		ts, err := c.PDClient.GetTS(ctx)
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
			Context: rc, StartVersion: ts, PrimaryLock: []byte(key), LockTtl: 3000, TryOnePc: true, OnePcCommitTs: ts + 1,
			Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: []byte(key), Value: []byte(value), ExpiresAt: expiresAt}},
		})
		if err != nil {
			return err
		}
		if resp.GetRegionError() != nil || len(resp.GetErrors()) > 0 || resp.GetOnePcCommitTs() == 0 {
			return fmt.Errorf("put: %v %v", resp.GetRegionError(), resp.GetErrors())
		}
		commitTS = resp.GetOnePcCommitTs()
		return nil
	})
	return commitTS
}

func route(t *testing.T, c *cluster.Cluster, key string) (*kvrpcpb.Context, uint64) {
	r := c.RegionFor([]byte(key))
	leader := c.WaitLeader(r.GetId())
	info, err := c.RegionInfo(leader.GetStoreId(), r.GetId())
	if err != nil {
		t.Fatal(err)
	}
	return &kvrpcpb.Context{RegionId: r.GetId(), RegionEpoch: info.GetRegion().GetRegionEpoch(), Peer: leader}, leader.GetStoreId()
}

// getAt reads key at version from the leader.
func getAt(t *testing.T, c *cluster.Cluster, key string, version uint64) (string, bool) {
	t.Helper()
	var (
		v     string
		found bool
	)
	cluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rc, store := route(t, c, key)
		resp, err := c.Client(store).KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte(key), Version: version})
		if err != nil {
			return err
		}
		if resp.GetRegionError() != nil || resp.GetError() != nil {
			return fmt.Errorf("get: %v %v", resp.GetRegionError(), resp.GetError())
		}
		v, found = string(resp.GetValue()), !resp.GetNotFound()
		return nil
	})
	return v, found
}

// getErrAt reads key at version from the leader and returns the key error
// the store answers with (nil if none).
func getErrAt(t *testing.T, c *cluster.Cluster, key string, version uint64) *kvrpcpb.KeyError {
	t.Helper()
	var kerr *kvrpcpb.KeyError
	cluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rc, store := route(t, c, key)
		resp, err := c.Client(store).KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte(key), Version: version})
		if err != nil {
			return err
		}
		if resp.GetRegionError() != nil {
			return fmt.Errorf("get: %v", resp.GetRegionError())
		}
		kerr = resp.GetError()
		return nil
	})
	return kerr
}

func TestGCRemovesOldVersionsBelowTheSafePoint(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	ctx := context.Background()
	put(t, c, "k", "v1", 0)
	mid, err := c.PDClient.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "k", "v2", 0)
	if v, ok := getAt(t, c, "k", mid); !ok || v != "v1" {
		t.Fatalf("before GC, k at the middle timestamp = %q, %v; want v1", v, ok)
	}
	safe, err := c.PDClient.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PDClient.UpdateGCSafePoint(ctx, safe); err != nil {
		t.Fatal(err)
	}
	// The version v1 goes; a read at the middle timestamp, below the safe
	// point, is refused rather than answered from half-collected data.
	leader := c.WaitLeader(c.RegionFor([]byte("k")).GetId()).GetStoreId()
	cluster.Eventually(t, 10*time.Second, func() error {
		if n, _ := c.StoreStats(leader)["gc_deleted_keys"].(int64); n == 0 {
			return fmt.Errorf("GC deleted nothing yet")
		}
		return nil
	})
	if kerr := getErrAt(t, c, "k", mid); kerr.GetDataNotAvailable().GetSafePoint() < safe {
		t.Fatalf("a read below the safe point answered %v; want data_not_available at safe point %d", kerr, safe)
	}
	// At the safe point itself, GC kept what a reader sees.
	if v, ok := getAt(t, c, "k", safe); !ok || v != "v2" {
		t.Fatalf("at the safe point k = %q, %v; want v2", v, ok)
	}
	now, err := c.PDClient.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := getAt(t, c, "k", now); !ok || v != "v2" {
		t.Fatalf("after GC k = %q, %v; want v2 (the newest version must survive)", v, ok)
	}
}

func TestGCRemovesExpiredValues(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	ctx := context.Background()
	expires := time.Now().Add(300 * time.Millisecond).UnixMilli()
	put(t, c, "ttl", "soon-gone", expires)
	put(t, c, "keep", "stays", 0)
	for time.Now().UnixMilli() <= expires {
		time.Sleep(20 * time.Millisecond)
	}
	safe, err := c.PDClient.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PDClient.UpdateGCSafePoint(ctx, safe); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(c.RegionFor([]byte("ttl")).GetId()).GetStoreId()
	cluster.Eventually(t, 10*time.Second, func() error {
		if n, _ := c.StoreStats(leader)["gc_deleted_keys"].(int64); n == 0 {
			return fmt.Errorf("GC deleted nothing yet")
		}
		return nil
	})
	now, err := c.PDClient.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := getAt(t, c, "ttl", now); ok {
		t.Fatal("expired value readable")
	}
	if v, ok := getAt(t, c, "keep", now); !ok || v != "stays" {
		t.Fatalf("keep = %q, %v", v, ok)
	}
}
