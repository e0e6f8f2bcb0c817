package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
)

// These helpers drive single-key transactions straight at a region's leader,
// retrying on region errors, so raft tests need no client library.

// RegionFor returns the region holding key, as PD sees it.
func (c *Cluster) RegionFor(key []byte) *metapb.Region {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, _, err := c.PDClient.GetRegion(ctx, key)
	if err != nil {
		c.t.Fatalf("route %q: %v", key, err)
	}
	return r
}

// leaderContext routes a request for key to the current leader.
func (c *Cluster) leaderContext(key []byte) (*kvrpcpb.Context, uint64, error) {
	c.PDClient.Cache().InvalidateKey(key)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, _, err := c.PDClient.GetRegion(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	leader := c.Leader(r.GetId())
	if leader == nil {
		return nil, 0, fmt.Errorf("region %d has no leader", r.GetId())
	}
	info, err := c.RegionInfo(leader.GetStoreId(), r.GetId())
	if err != nil {
		return nil, 0, err
	}
	region := info.GetRegion()
	return &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch(), Peer: leader}, leader.GetStoreId(), nil
}

// TryPut writes key=value in one one-phase transaction.
func (c *Cluster) TryPut(ctx context.Context, key, value []byte) error {
	rc, store, err := c.leaderContext(key)
	if err != nil {
		return err
	}
	ts, err := c.PDClient.GetTS(ctx)
	if err != nil {
		return err
	}
	resp, err := c.Client(store).KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
		Context: rc, Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: key, Value: value}},
		PrimaryLock: key, StartVersion: ts, LockTtl: 3000, TxnSize: 1, TryOnePc: true, OnePcCommitTs: ts + 1,
	})
	if err != nil {
		return err
	}
	if re := resp.GetRegionError(); re != nil {
		return fmt.Errorf("region error: %s", re.GetMessage())
	}
	if len(resp.GetErrors()) > 0 {
		return fmt.Errorf("key error: %v", resp.GetErrors()[0])
	}
	if resp.GetOnePcCommitTs() == 0 {
		return errors.New("one-phase commit not taken")
	}
	return nil
}

// MustPut retries TryPut until it succeeds.
func (c *Cluster) MustPut(key, value string) {
	c.t.Helper()
	Eventually(c.t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return c.TryPut(ctx, []byte(key), []byte(value))
	})
}

// TryGet reads key at a fresh timestamp from the leader.
func (c *Cluster) TryGet(ctx context.Context, key []byte) (value []byte, found bool, err error) {
	rc, store, err := c.leaderContext(key)
	if err != nil {
		return nil, false, err
	}
	ts, err := c.PDClient.GetTS(ctx)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.Client(store).KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: key, Version: ts})
	if err != nil {
		return nil, false, err
	}
	if re := resp.GetRegionError(); re != nil {
		return nil, false, fmt.Errorf("region error: %s", re.GetMessage())
	}
	if resp.GetError() != nil {
		return nil, false, fmt.Errorf("key error: %v", resp.GetError())
	}
	return resp.GetValue(), !resp.GetNotFound(), nil
}

// MustGet reads key, retrying on errors; "" with found false if absent.
func (c *Cluster) MustGet(key string) (string, bool) {
	c.t.Helper()
	var (
		v     []byte
		found bool
	)
	Eventually(c.t, 15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var err error
		v, found, err = c.TryGet(ctx, []byte(key))
		return err
	})
	return string(v), found
}
