package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
)

// RawPrewrite prewrites kvs (PUTs) for the transaction startTS at each
// key's leader, one request per key, bypassing kvclient: tests build
// half-finished transactions with it (a client that died mid-commit).
func (c *Cluster) RawPrewrite(t *testing.T, startTS uint64, primary string, ttl uint64, kvs map[string]string) {
	t.Helper()
	var muts []*kvrpcpb.Mutation
	for k, v := range kvs {
		muts = append(muts, &kvrpcpb.Mutation{Op: kvrpcpb.Op_PUT, Key: []byte(k), Value: []byte(v)})
	}
	c.RawPrewriteMutations(t, startTS, primary, ttl, muts)
}

// RawPrewriteMutations is RawPrewrite for any mutations.
func (c *Cluster) RawPrewriteMutations(t *testing.T, startTS uint64, primary string, ttl uint64, muts []*kvrpcpb.Mutation) {
	t.Helper()
	for _, m := range muts {
		Eventually(t, 15*time.Second, func() error {
			rc, store, err := c.LeaderContext(m.GetKey())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := c.Client(store).KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
				Context: rc, Mutations: []*kvrpcpb.Mutation{m},
				PrimaryLock: []byte(primary), StartVersion: startTS, LockTtl: ttl, TxnSize: uint64(len(muts)),
			})
			if err != nil {
				return err
			}
			if re := resp.GetRegionError(); re != nil {
				return fmt.Errorf("prewrite %s: region error %v", m.GetKey(), re)
			}
			if len(resp.GetErrors()) > 0 {
				t.Fatalf("prewrite %s: %v", m.GetKey(), resp.GetErrors())
			}
			return nil
		})
	}
}

// RawCommit commits the transaction startTS on key at commitTS at the
// key's leader and returns the store's key error, if any.
func (c *Cluster) RawCommit(t *testing.T, startTS, commitTS uint64, key string) *kvrpcpb.KeyError {
	t.Helper()
	var kerr *kvrpcpb.KeyError
	Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := c.Client(store).KvCommit(ctx, &kvrpcpb.CommitRequest{
			Context: rc, StartVersion: startTS, Keys: [][]byte{[]byte(key)}, CommitVersion: commitTS,
		})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("commit %s: region error %v", key, re)
		}
		kerr = resp.GetError()
		return nil
	})
	return kerr
}
