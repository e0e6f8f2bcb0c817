package raft_test

import (
	"context"
	"fmt"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/tests/cluster"
)

type kvContext = kvrpcpb.Context

// putVia sends a one-phase put to one store with a fixed route, no retries.
func putVia(ctx context.Context, c *cluster.Cluster, store uint64, rc *kvrpcpb.Context, key, value string) error {
	ts, err := c.PDClient.GetTS(ctx)
	if err != nil {
		return err
	}
	resp, err := c.Client(store).KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
		Context: rc, Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: []byte(key), Value: []byte(value)}},
		PrimaryLock: []byte(key), StartVersion: ts, LockTtl: 3000, TryOnePc: true, OnePcCommitTs: ts + 1,
	})
	if err != nil {
		return err
	}
	if re := resp.GetRegionError(); re != nil {
		return fmt.Errorf("region error: %s", re.GetMessage())
	}
	if len(resp.GetErrors()) > 0 {
		return fmt.Errorf("key error: %v", resp.GetErrors())
	}
	return nil
}
