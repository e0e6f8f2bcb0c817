package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/storepb"
)

// Entry is a key's value as read, with its expiry.
type Entry struct {
	Key   []byte
	Value []byte
	// ExpiresAt is when the value expires, in Unix milliseconds; 0 never.
	ExpiresAt int64
}

// Snapshot reads the cluster as of one timestamp: it sees every transaction
// committed at or below it and nothing else. It is safe for concurrent use.
type Snapshot struct {
	c     *Client
	ts    uint64
	nowMs int64
}

// Snapshot returns a view of the data as of ts, a timestamp from PD (for
// example CurrentTS). Values expire by the physical time of ts, or by
// Options.NowMs when set.
func (c *Client) Snapshot(ts uint64) *Snapshot {
	return &Snapshot{c: c, ts: ts, nowMs: c.nowMs(ts)}
}

// nowMs is the expiry clock for a read at ts.
func (c *Client) nowMs(ts uint64) int64 {
	if c.opts.NowMs != nil {
		return c.opts.NowMs()
	}
	return PhysicalMs(ts)
}

// TS returns the snapshot's timestamp.
func (s *Snapshot) TS() uint64 { return s.ts }

// waitLocks resolves locks met by a read and, if some are still live,
// waits a little before the read tries again.
func (c *Client) waitLocks(ctx context.Context, bo *backoffer, lw *lockWaiter, locks []*kvrpcpb.LockInfo) error {
	left, err := c.resolver.resolve(ctx, bo, locks)
	if err != nil || left == 0 {
		return err
	}
	return lw.wait(ctx, left, &KeyError{Err: &kvrpcpb.KeyError{Locked: locks[0]}})
}

// Get reads key. found is false if the key is absent, deleted or expired.
// A lock of a transaction that may commit below the snapshot is resolved
// first (see the package documentation), so what Get returns is final.
func (s *Snapshot) Get(ctx context.Context, key []byte) (e Entry, found bool, err error) {
	if len(key) == 0 {
		return Entry{}, false, ErrEmptyKey
	}
	c := s.c
	bo, lw := c.newBackoffer(), c.newLockWaiter()
	for {
		loc, err := c.locate(ctx, bo, key)
		if err != nil {
			return Entry{}, false, err
		}
		resp, err := send(ctx, c, bo, loc, "Get",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.GetResponse, error) {
				return sc.KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: key, Version: s.ts, NowMs: s.nowMs})
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return Entry{}, false, err
		}
		if ke := resp.GetError(); ke != nil {
			if l := ke.GetLocked(); l != nil {
				if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{l}); err != nil {
					return Entry{}, false, err
				}
				continue
			}
			return Entry{}, false, fmt.Errorf("kvclient: get %q: %w", key, &KeyError{Err: ke})
		}
		if resp.GetNotFound() {
			return Entry{}, false, nil
		}
		return Entry{Key: key, Value: resp.GetValue(), ExpiresAt: resp.GetExpiresAt()}, true, nil
	}
}

// BatchGet reads keys and returns the entries found, by key. Keys are
// grouped by region and the regions read in parallel.
func (s *Snapshot) BatchGet(ctx context.Context, keys [][]byte) (map[string]Entry, error) {
	out := make(map[string]Entry, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	sorted := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if len(k) == 0 {
			return nil, ErrEmptyKey
		}
		sorted = append(sorted, k)
	}
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)

	c := s.c
	var mu sync.Mutex
	err := onRegions(ctx, c, c.newBackoffer(), sorted, identity,
		func(ctx context.Context, bo *backoffer, loc *location, keys [][]byte) error {
			lw := c.newLockWaiter()
			for {
				resp, err := send(ctx, c, bo, loc, "BatchGet",
					func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.BatchGetResponse, error) {
						return sc.KvBatchGet(ctx, &kvrpcpb.BatchGetRequest{Context: rc, Keys: keys, Version: s.ts, NowMs: s.nowMs})
					})
				if err != nil {
					return err
				}
				if ke := resp.GetError(); ke != nil {
					return fmt.Errorf("kvclient: batch get: %w", &KeyError{Err: ke})
				}
				var locks []*kvrpcpb.LockInfo
				mu.Lock()
				for _, p := range resp.GetPairs() {
					if ke := p.GetError(); ke != nil {
						if l := ke.GetLocked(); l != nil {
							locks = append(locks, l)
							continue
						}
						mu.Unlock()
						return fmt.Errorf("kvclient: batch get %q: %w", p.GetKey(), &KeyError{Err: ke})
					}
					out[string(p.GetKey())] = Entry{Key: p.GetKey(), Value: p.GetValue(), ExpiresAt: p.GetExpiresAt()}
				}
				mu.Unlock()
				if len(locks) == 0 {
					return nil
				}
				if err := c.waitLocks(ctx, bo, &lw, locks); err != nil {
					return err
				}
				// Read again only the keys that were locked.
				keys = keys[:0:0]
				for _, l := range locks {
					keys = append(keys, l.GetKey())
				}
			}
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanBatch is the most pairs asked of a store in one scan request.
const scanBatch = 256

// Scan reads the keys in [start, end) in key order, at most limit of them
// (limit <= 0: no limit; an empty end: to the end of the key space).
// Regions are read one after the other; a lock met stops the region's scan
// there until it is resolved.
func (s *Snapshot) Scan(ctx context.Context, start, end []byte, limit int) ([]Entry, error) {
	c := s.c
	var out []Entry
	bo, lw := c.newBackoffer(), c.newLockWaiter()
	cur := bytes.Clone(start)
	for limit <= 0 || len(out) < limit {
		if len(end) > 0 && bytes.Compare(cur, end) >= 0 {
			break
		}
		loc, err := c.locate(ctx, bo, cur)
		if err != nil {
			return nil, err
		}
		regionEnd := loc.region.GetEndKey()
		reqEnd := end
		if len(regionEnd) > 0 && (len(end) == 0 || bytes.Compare(regionEnd, end) < 0) {
			reqEnd = regionEnd
		}
		n := scanBatch
		if limit > 0 {
			n = min(n, limit-len(out))
		}
		resp, err := send(ctx, c, bo, loc, "Scan",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.ScanResponse, error) {
				return sc.KvScan(ctx, &kvrpcpb.ScanRequest{
					Context: rc, StartKey: cur, EndKey: reqEnd, Limit: uint32(n), Version: s.ts, NowMs: s.nowMs,
				})
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ke := resp.GetError(); ke != nil {
			if l := ke.GetLocked(); l != nil {
				if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{l}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("kvclient: scan: %w", &KeyError{Err: ke})
		}
		var (
			lock *kvrpcpb.LockInfo
			got  int
		)
		for _, p := range resp.GetPairs() {
			if ke := p.GetError(); ke != nil {
				if lock = ke.GetLocked(); lock == nil {
					return nil, fmt.Errorf("kvclient: scan at %q: %w", p.GetKey(), &KeyError{Err: ke})
				}
				break
			}
			out = append(out, Entry{Key: p.GetKey(), Value: p.GetValue(), ExpiresAt: p.GetExpiresAt()})
			got++
		}
		if lock == nil {
			// Progress: the next request gets a fresh retry budget.
			bo = c.newBackoffer()
		}
		if lock != nil {
			// Resume at the locked key once it is settled.
			if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{lock}); err != nil {
				return nil, err
			}
			cur = lock.GetKey()
			continue
		}
		if got >= n {
			// The region may hold more: continue right after the last key.
			cur = append(bytes.Clone(out[len(out)-1].Key), 0)
			continue
		}
		if len(regionEnd) == 0 || (len(end) > 0 && bytes.Compare(regionEnd, end) >= 0) {
			break
		}
		cur = regionEnd
	}
	return out, nil
}
