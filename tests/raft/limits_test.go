package raft_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/tests/cluster"
)

// TestRaftEntryCap: a request whose command would make a raft entry over
// limits.RaftEntryMaxSize is refused by the leader with the typed region
// error raft_entry_too_large, nothing is written, and the region (its
// log, its followers' message streams) carries on; a request over the gRPC
// message limit is refused by gRPC, and the store carries on too. Entries
// just under the cap replicate to every store.
func TestRaftEntryCap(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	prewrite := func(key string, value []byte) (*kvrpcpb.PrewriteResponse, error) {
		t.Helper()
		var (
			resp *kvrpcpb.PrewriteResponse
			err  error
		)
		cluster.Eventually(t, 30*time.Second, func() error {
			rc, store, rerr := c.LeaderContext([]byte(key))
			if rerr != nil {
				return rerr
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ts, rerr := c.PDClient.GetTS(ctx)
			if rerr != nil {
				return rerr
			}
			resp, err = c.Client(store).KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
				Context: rc, Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: []byte(key), Value: value}},
				PrimaryLock: []byte(key), StartVersion: ts, LockTtl: 3000, TxnSize: 1, TryOnePc: true, OnePcCommitTs: ts + 1,
			})
			if re := resp.GetRegionError(); err == nil && re != nil && re.GetRaftEntryTooLarge() == nil {
				return fmt.Errorf("region error: %s", re.GetMessage()) // leadership moved: again
			}
			return nil
		})
		return resp, err
	}

	over := bytes.Repeat([]byte("o"), limits.RaftEntryMaxSize+1)
	resp, err := prewrite("over", over)
	if err != nil {
		t.Fatal(err)
	}
	tl := resp.GetRegionError().GetRaftEntryTooLarge()
	if tl == nil || tl.GetEntrySize() <= limits.RaftEntryMaxSize || tl.GetLimit() != limits.RaftEntryMaxSize || resp.GetOnePcCommitTs() != 0 {
		t.Fatalf("prewrite of %d bytes = %v, want raft_entry_too_large", len(over), resp)
	}
	t.Logf("refused: %s", resp.GetRegionError().GetMessage())
	if _, found := c.MustGet("over"); found {
		t.Fatal("the refused write is there")
	}

	// More than gRPC takes: refused before the store sees it.
	huge := make([]byte, limits.GRPCMaxMessageSize+1)
	if _, err := prewrite("huge", huge); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("prewrite of %d bytes: %v, want ResourceExhausted", len(huge), err)
	}

	// Just under the cap is fine, on every replica.
	under := bytes.Repeat([]byte("u"), limits.MaxValueSize)
	if resp, err := prewrite("under", under); err != nil || resp.GetRegionError() != nil || len(resp.GetErrors()) > 0 || resp.GetOnePcCommitTs() == 0 {
		t.Fatalf("prewrite of %d bytes = %v, %v", len(under), resp, err)
	}
	c.MustPut("after", "ok")
	if v, found := c.MustGet("under"); !found || v != string(under) {
		t.Fatalf("under: %d bytes, found %v", len(v), found)
	}
	region := c.RegionFor([]byte("under")).GetId()
	cluster.Eventually(t, 30*time.Second, func() error {
		var applied []uint64
		for _, id := range c.StoreIDs() {
			info, err := c.RegionInfo(id, region)
			if err != nil {
				return err
			}
			applied = append(applied, info.GetAppliedIndex())
		}
		for _, a := range applied {
			if a != applied[0] {
				return fmt.Errorf("applied indexes %v", applied)
			}
		}
		return nil
	})
	if v, found := c.MustGet("after"); !found || v != "ok" {
		t.Fatalf("after = %q %v", v, found)
	}
}
