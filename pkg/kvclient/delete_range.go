package kvclient

import (
	"bytes"
	"context"
	"errors"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/storepb"
)

// DeleteRange removes every key in [start, end) (an empty end: to the end
// of the key space), region by region in key order, as PD routes them: each
// region's part is one raft command (KvDeleteRange) that every replica
// applies, removing all versions, locks and values of its keys at once, in
// time independent of how many there are. A region error (a split, a new
// leader) is retried like any request, from the first key not yet deleted.
//
// It is not a transaction, and not atomic across regions (as FLUSHALL in a
// Redis Cluster, which flushes node by node): a reader may see some regions
// emptied and others not yet; a write that commits while it runs may
// survive it or not; a transaction in flight may lose its locks and fail to
// commit; and a snapshot taken before it may find keys gone that it saw.
// Within one region the deletion is ordered with every write of the region:
// no write computed before it lands after it.
func (c *Client) DeleteRange(ctx context.Context, start, end []byte) error {
	bo := c.newBackoffer()
	cur := bytes.Clone(start)
	if cur == nil {
		cur = []byte{}
	}
	for {
		if len(end) > 0 && bytes.Compare(cur, end) >= 0 {
			return nil
		}
		loc, err := c.locate(ctx, bo, cur)
		if err != nil {
			return err
		}
		regionEnd := loc.region.GetEndKey()
		reqEnd := end
		if len(regionEnd) > 0 && (len(end) == 0 || bytes.Compare(regionEnd, end) < 0) {
			reqEnd = regionEnd
		}
		_, err = send(ctx, c, bo, loc, "DeleteRange",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.DeleteRangeResponse, error) {
				return sc.KvDeleteRange(ctx, &kvrpcpb.DeleteRangeRequest{Context: rc, StartKey: cur, EndKey: reqEnd})
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return err
		}
		// Progress: the next region gets a fresh retry budget.
		bo = c.newBackoffer()
		if len(regionEnd) == 0 || (len(end) > 0 && bytes.Compare(regionEnd, end) >= 0) {
			return nil
		}
		cur = regionEnd
	}
}
