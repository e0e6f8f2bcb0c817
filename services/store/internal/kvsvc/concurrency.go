package kvsvc

import (
	"context"
	"sync"
)

// concurrency tracks maxTS and the one-phase commits in flight; see the
// package documentation for the protocol.
type concurrency struct {
	mu       sync.Mutex
	maxTS    uint64
	inflight map[*onePC]struct{}
	// synced maps a region to the leader term for which maxTS was raised
	// from the TSO.
	synced map[uint64]uint64
}

type onePC struct {
	regionID uint64
	keys     map[string]struct{}
	done     chan struct{}
}

func newConcurrency() *concurrency {
	return &concurrency{inflight: map[*onePC]struct{}{}, synced: map[uint64]uint64{}}
}

// observeRead records a read at ts and returns what it must wait for: the
// one-phase commits in flight in the region on any of keys (all of them if
// keys is nil, for range reads).
func (c *concurrency) observeRead(regionID, ts uint64, keys [][]byte) []chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxTS = max(c.maxTS, ts)
	var wait []chan struct{}
	for op := range c.inflight {
		if op.regionID != regionID {
			continue
		}
		if keys == nil {
			wait = append(wait, op.done)
			continue
		}
		for _, k := range keys {
			if _, ok := op.keys[string(k)]; ok {
				wait = append(wait, op.done)
				break
			}
		}
	}
	return wait
}

func waitAll(ctx context.Context, chans []chan struct{}) error {
	for _, ch := range chans {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// needsSync reports whether maxTS must be raised from the TSO before a
// one-phase commit in the region under the leader term.
func (c *concurrency) needsSync(regionID, term uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.synced[regionID] != term
}

// sync raises maxTS to ts, a fresh TSO timestamp, for the region's term.
func (c *concurrency) sync(regionID, term, ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxTS = max(c.maxTS, ts)
	c.synced[regionID] = term
}

// begin1PC registers a one-phase commit on keys and returns its commit
// timestamp: above maxTS, startTS and the client's proposal. end must be
// called once the commit applied or failed.
func (c *concurrency) begin1PC(regionID uint64, keys [][]byte, startTS, proposed uint64) (commitTS uint64, end func()) {
	op := &onePC{regionID: regionID, keys: make(map[string]struct{}, len(keys)), done: make(chan struct{})}
	for _, k := range keys {
		op.keys[string(k)] = struct{}{}
	}
	c.mu.Lock()
	c.inflight[op] = struct{}{}
	commitTS = max(proposed, c.maxTS+1, startTS+1)
	c.mu.Unlock()
	return commitTS, func() {
		c.mu.Lock()
		delete(c.inflight, op)
		c.mu.Unlock()
		close(op.done)
	}
}
