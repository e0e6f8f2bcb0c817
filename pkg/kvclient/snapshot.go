package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
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
	// visited counts the keys the stores looked at for this snapshot's
	// scans, deleted ones included (KeysVisited).
	visited atomic.Uint64
}

// KeysVisited returns how many keys the stores looked at for this
// snapshot's scans so far, the deleted and expired ones they stepped over
// included: what a scan cost beyond the entries it returned.
func (s *Snapshot) KeysVisited() uint64 { return s.visited.Load() }

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
// first (see the package documentation), so what Get returns is final. A
// key longer than limits.MaxKeySize cannot have been written: it is absent
// without asking a store.
func (s *Snapshot) Get(ctx context.Context, key []byte) (e Entry, found bool, err error) {
	resp, err := s.get(ctx, key, false, 0)
	if err != nil || resp == nil {
		return Entry{}, false, err
	}
	return Entry{Key: key, Value: resp.GetValue(), ExpiresAt: resp.GetExpiresAt()}, true, nil
}

// Head is what a head read returns of a key's value: its length, its first
// bytes and its expiry, without the rest of the value.
type Head struct {
	Key []byte
	// Prefix holds the value's first bytes: as many as the read asked for,
	// fewer when the value is shorter.
	Prefix []byte
	// Len is the whole value's length.
	Len int
	// ExpiresAt is as in Entry.
	ExpiresAt int64
}

// GetHead reads key's head: Get without the value, of which only the
// length and the first prefixLen bytes travel. The store reads exactly as
// for Get (locks are met and resolved the same way), so a head and a value
// read at one snapshot always agree.
func (s *Snapshot) GetHead(ctx context.Context, key []byte, prefixLen int) (h Head, found bool, err error) {
	resp, err := s.get(ctx, key, true, prefixLen)
	if err != nil || resp == nil {
		return Head{}, false, err
	}
	return Head{Key: key, Prefix: resp.GetValue(), Len: int(resp.GetValueLen()), ExpiresAt: resp.GetExpiresAt()}, true, nil
}

// prefixLenField is prefixLen as a request carries it.
func prefixLenField(prefixLen int) uint32 { return uint32(min(max(prefixLen, 0), math.MaxUint32)) }

// get reads key (its head, with head), resolving the locks it meets. It
// returns nil without error when the key is absent.
func (s *Snapshot) get(ctx context.Context, key []byte, head bool, prefixLen int) (*kvrpcpb.GetResponse, error) {
	if len(key) > limits.MaxKeySize {
		return nil, nil
	}
	c := s.c
	bo, lw := c.newBackoffer(), c.newLockWaiter()
	for {
		loc, err := c.locate(ctx, bo, key)
		if err != nil {
			return nil, err
		}
		resp, err := send(ctx, c, bo, loc, "Get",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.GetResponse, error) {
				return sc.KvGet(ctx, &kvrpcpb.GetRequest{
					Context: rc, Key: key, Version: s.ts, NowMs: s.nowMs,
					HeadOnly: head, ValuePrefixLen: prefixLenField(prefixLen),
				})
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c.stats.countRead(len(resp.GetValue()))
		if ke := resp.GetError(); ke != nil {
			if l := ke.GetLocked(); l != nil {
				if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{l}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("kvclient: get %q: %w", key, &KeyError{Err: ke})
		}
		if resp.GetNotFound() {
			return nil, nil
		}
		return resp, nil
	}
}

// BatchGet reads keys and returns the entries found, by key; a key named
// more than once is read once. Keys are grouped by region and the regions
// read in parallel; a store answers with up to about
// limits.ResponsePageBytes of values at a time, and is asked again for the
// rest.
func (s *Snapshot) BatchGet(ctx context.Context, keys [][]byte) (map[string]Entry, error) {
	out := make(map[string]Entry, len(keys))
	var mu sync.Mutex
	err := s.batchGet(ctx, keys, false, 0, func(p *kvrpcpb.KvPair) {
		mu.Lock()
		out[string(p.GetKey())] = Entry{Key: p.GetKey(), Value: p.GetValue(), ExpiresAt: p.GetExpiresAt()}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// BatchGetHeads is BatchGet for heads (see GetHead): only the values'
// lengths and first prefixLen bytes travel, so a store's response holds
// many more keys, and a key named more than once is read once.
func (s *Snapshot) BatchGetHeads(ctx context.Context, keys [][]byte, prefixLen int) (map[string]Head, error) {
	out := make(map[string]Head, min(len(keys), 1<<16))
	var mu sync.Mutex
	err := s.batchGet(ctx, keys, true, prefixLen, func(p *kvrpcpb.KvPair) {
		mu.Lock()
		out[string(p.GetKey())] = Head{Key: p.GetKey(), Prefix: p.GetValue(), Len: int(p.GetValueLen()), ExpiresAt: p.GetExpiresAt()}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// batchGet reads keys (their heads, with head), calling found, from several
// goroutines, with each live pair once settled.
func (s *Snapshot) batchGet(ctx context.Context, keys [][]byte, head bool, prefixLen int, found func(*kvrpcpb.KvPair)) error {
	sorted := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if len(k) <= limits.MaxKeySize { // a longer one cannot exist
			sorted = append(sorted, k)
		}
	}
	if len(sorted) == 0 {
		return nil
	}
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)

	c := s.c
	return onRegions(ctx, c, c.newBackoffer(), sorted, identity, keyCost,
		func(ctx context.Context, bo *backoffer, loc *location, keys [][]byte) error {
			lw := c.newLockWaiter()
			for {
				resp, err := send(ctx, c, bo, loc, "BatchGet",
					func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.BatchGetResponse, error) {
						return sc.KvBatchGet(ctx, &kvrpcpb.BatchGetRequest{
							Context: rc, Keys: keys, Version: s.ts, NowMs: s.nowMs,
							HeadOnly: head, ValuePrefixLen: prefixLenField(prefixLen),
						})
					})
				if err != nil {
					return err
				}
				n := 0
				for _, p := range resp.GetPairs() {
					n += len(p.GetValue())
				}
				c.stats.countRead(n)
				if ke := resp.GetError(); ke != nil {
					return fmt.Errorf("kvclient: batch get: %w", &KeyError{Err: ke})
				}
				var locks []*kvrpcpb.LockInfo
				for _, p := range resp.GetPairs() {
					if ke := p.GetError(); ke != nil {
						if l := ke.GetLocked(); l != nil {
							locks = append(locks, l)
							continue
						}
						return fmt.Errorf("kvclient: batch get %q: %w", p.GetKey(), &KeyError{Err: ke})
					}
					found(p)
				}
				// The store stops at its response budget: the keys past
				// next_index were not read.
				var unread [][]byte
				if n := int(resp.GetNextIndex()); n > 0 && n < len(keys) {
					unread = keys[n:]
				}
				if len(locks) == 0 && len(unread) == 0 {
					return nil
				}
				if len(locks) > 0 {
					if err := c.waitLocks(ctx, bo, &lw, locks); err != nil {
						return err
					}
				} else {
					// Progress: the next request gets a fresh retry budget.
					bo = c.newBackoffer()
				}
				// Read again only the keys that were locked or not read.
				next := make([][]byte, 0, len(locks)+len(unread))
				for _, l := range locks {
					next = append(next, l.GetKey())
				}
				keys = append(next, unread...)
			}
		})
}

// scanBatch is the most pairs asked of a store in one scan request of an
// unbounded scan; a scan with a limit asks for up to maxScanBatch at once
// (its caller said it wants that many: every request is a read index
// round through the region's replicas, which a page of 256 paid per 256
// pairs).
const (
	scanBatch    = 256
	maxScanBatch = 4096
)

// ScanOptions shape a scan; the zero value reads everything, values
// included.
type ScanOptions struct {
	// Limit is the most entries returned; <= 0: no limit.
	Limit int
	// MaxVisit bounds the work: the stores look at no more than this many
	// keys in all, deleted and expired ones (and keys with only a lock)
	// included, so a scan over mostly dead keys still ends soon; <= 0: no
	// bound.
	MaxVisit int
	// KeysOnly leaves the values out: they are neither read nor sent, and
	// Entry.Value is nil (ExpiresAt is set).
	KeysOnly bool
}

// Scan reads the keys in [start, end) in key order, at most limit of them
// (limit <= 0: no limit; an empty end: to the end of the key space).
// Regions are read one after the other; a lock met stops the region's scan
// there until it is resolved. It holds every entry in memory: ScanFunc
// does not.
func (s *Snapshot) Scan(ctx context.Context, start, end []byte, limit int) ([]Entry, error) {
	var out []Entry
	_, err := s.ScanFunc(ctx, start, end, ScanOptions{Limit: limit}, func(e Entry) bool {
		out = append(out, e)
		return true
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ScanFunc calls fn with the live entries of [start, end) (an empty end: to
// the end of the key space) in key order, as they arrive from the stores,
// until fn returns false, the range ends or a bound of opts is reached. It
// returns the key to continue from (inclusive), or nil when the range is
// exhausted. Each store response holds at most scanBatch entries (with a
// limit, maxScanBatch) and about
// limits.ResponsePageBytes of keys and values (at least one entry), so
// memory stays bounded whatever the values' sizes; fn may keep the entries.
//
// Regions are read one after the other; a lock met stops the region's scan
// there until it is resolved, and the scan resumes at the locked key.
func (s *Snapshot) ScanFunc(ctx context.Context, start, end []byte, opts ScanOptions, fn func(Entry) bool) ([]byte, error) {
	c := s.c
	bo, lw := c.newBackoffer(), c.newLockWaiter()
	cur := bytes.Clone(start)
	if cur == nil {
		cur = []byte{}
	}
	returned, visited := 0, 0
	for {
		if len(end) > 0 && bytes.Compare(cur, end) >= 0 {
			return nil, nil
		}
		if (opts.Limit > 0 && returned >= opts.Limit) || (opts.MaxVisit > 0 && visited >= opts.MaxVisit) {
			return cur, nil
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
		req := &kvrpcpb.ScanRequest{StartKey: cur, EndKey: reqEnd, Limit: scanBatch, Version: s.ts, NowMs: s.nowMs, KeyOnly: opts.KeysOnly}
		if opts.Limit > 0 {
			req.Limit = uint32(min(maxScanBatch, opts.Limit-returned))
		}
		if opts.MaxVisit > 0 {
			req.VisitLimit = uint32(min(opts.MaxVisit-visited, math.MaxUint32))
		}
		resp, err := send(ctx, c, bo, loc, "Scan",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.ScanResponse, error) {
				req.Context = rc
				return sc.KvScan(ctx, req)
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		n := 0
		for _, p := range resp.GetPairs() {
			n += len(p.GetValue())
		}
		c.stats.countRead(n)
		if ke := resp.GetError(); ke != nil {
			if l := ke.GetLocked(); l != nil {
				if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{l}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("kvclient: scan: %w", &KeyError{Err: ke})
		}
		visited += int(resp.GetVisited())
		s.visited.Add(uint64(resp.GetVisited()))
		var lock *kvrpcpb.LockInfo
		for _, p := range resp.GetPairs() {
			if ke := p.GetError(); ke != nil {
				if lock = ke.GetLocked(); lock == nil {
					return nil, fmt.Errorf("kvclient: scan at %q: %w", p.GetKey(), &KeyError{Err: ke})
				}
				break
			}
			returned++
			if !fn(Entry{Key: p.GetKey(), Value: p.GetValue(), ExpiresAt: p.GetExpiresAt()}) {
				return append(bytes.Clone(p.GetKey()), 0), nil
			}
		}
		if lock != nil {
			// Resume at the locked key once it is settled.
			if err := c.waitLocks(ctx, bo, &lw, []*kvrpcpb.LockInfo{lock}); err != nil {
				return nil, err
			}
			cur = lock.GetKey()
			continue
		}
		// Progress: the next request gets a fresh retry budget.
		bo = c.newBackoffer()
		if resume := resp.GetResumeKey(); len(resume) > 0 {
			// The store stopped at a bound: the region may hold more.
			cur = resume
			continue
		}
		if len(regionEnd) == 0 || (len(end) > 0 && bytes.Compare(regionEnd, end) >= 0) {
			return nil, nil
		}
		// A copy: the region cache's own key may be returned to the
		// caller as the key to continue from.
		cur = bytes.Clone(regionEnd)
	}
}
