package raft

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"sync"

	"github.com/nokv/nokv/pkg/kvclient"
)

// # Combined reads
//
// A read outside a transaction (GET, MGET, EXISTS, TTL, TYPE, STRLEN...)
// costs the cluster about the same whatever it reads: a timestamp, a read
// request to the region's leader store, which confirms its leadership
// with a ReadIndex round before it reads its engine. So, as for writes
// (combine.go), the reads queued for one region while that region's
// previous combined read was in flight are sent together: one timestamp
// and one batch read request (one ReadIndex round on the store) for all of
// them. Each caller gets its own keys' values out of the shared answer.
//
// Linearizable: the timestamp is taken by the leader of the combined read
// after every read it carries arrived (they were queued before it took
// them), so it is above the commit timestamp of every write acknowledged
// before any of them started, and the store serves a read at it only once
// ReadIndex confirmed it still leads and applied everything committed
// before. A read that sees a write saw it committed, so every read after
// it sees it too.
//
// Only a read of at most maxReadKeys keys that the region cache places in
// one region is combined; others (and reads with combining off) are sent
// alone, as before. If the combined read fails, every read it carried is
// sent again alone and gets its own outcome (no read fails for another's
// key); only a closed client is everybody's answer. A lock met on one key
// (a transaction committing it) is resolved or waited for by the combined
// read as by a read of its own: the reads sharing it wait too, which costs
// them latency, never a stale value.

// Limits of combined reads.
const (
	// maxReadKeys is the most keys of one read that may be combined.
	maxReadKeys = 16
	// maxReadBatchKeys bounds the keys of one combined read: one request
	// of kvclient's batch (256 keys).
	maxReadBatchKeys = 256
	// maxReadsInFlight is how many combined reads of one region and kind
	// run at once. One: the readers arriving meanwhile all wait for the
	// next, which then carries about all of a region's concurrent readers
	// (a read's round trip is short, no raft commit or fsync, so the wait
	// costs little). With two, as for writes, 50 clients made combined
	// reads of ~19 GETs; with one, ~33, and a GET cost the cluster about
	// 15% less CPU at the same throughput (docs/benchmarks.md).
	maxReadsInFlight = 1
)

// readVars counts, for /debug/vars: reads that found nothing to combine
// with (single), combined reads (batches) and the reads (reads) and keys
// (keys) they carried, reads sent alone again after a combined read failed
// (alone), and the combined reads that failed (failed).
var readVars = expvar.NewMap("nokv_raft_read_combine")

// readKind tells what a combined read returns: values, or heads.
type readKind uint8

const (
	readValues readKind = iota
	readHeads
)

// readResult is what a combined read found, by key: entries for values,
// heads for heads. It is read-only once the callers are woken.
type readResult struct {
	entries map[string]kvclient.Entry
	heads   map[string]kvclient.Head
}

// readReq is one read waiting to be combined.
type readReq struct {
	keys [][]byte
	// Set by the leader that sent it, before wake: res is the shared
	// answer; err, an outcome every read of the batch shares; alone, that
	// the read must be sent again alone.
	res   *readResult
	err   error
	alone bool
	// wake is signalled once the read is answered, or when its caller is
	// to lead the next combined read (lead set).
	waiter
}

// readCombiner queues one region's reads of one kind.
type readCombiner = group[*readReq]

type readKey struct {
	region uint64
	kind   readKind
}

// readCombiners maps a region and kind to its combiner.
type readCombiners = perKey[readKey, readCombiner]

// readRegion returns the region all keys are in, if a read of them may be
// combined and the region cache knows one region holding them all.
func (s *Store) readRegion(keys [][]byte) (uint64, bool) {
	if s.noCombineReads || len(keys) == 0 || len(keys) > maxReadKeys {
		return 0, false
	}
	var region uint64
	for i, k := range keys {
		r, ok := s.c.CachedRegion(k)
		if !ok || (i > 0 && r != region) {
			return 0, false
		}
		region = r
	}
	return region, true
}

// wakePool recycles the wake channels of reads (one per GET otherwise).
// A channel goes back empty: its one signal was received.
var wakePool = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// readCombined reads keys (their heads, for readHeads) in one of the
// region's combined reads. A nil result and nil error: the read must be
// sent alone.
func (s *Store) readCombined(ctx context.Context, region uint64, kind readKind, keys [][]byte) (*readResult, error) {
	rc := s.readCombiners.get(readKey{region, kind})
	q := &readReq{keys: keys, waiter: waiter{wake: wakePool.Get().(chan struct{})}}
	if !rc.join(q, maxReadsInFlight) {
		<-q.wake
	}
	if q.lead {
		s.leadRead(ctx, rc, kind, q)
	}
	wakePool.Put(q.wake)
	if q.alone {
		readVars.Add("alone", 1)
		return nil, nil
	}
	return q.res, q.err
}

// leadRead sends one combined read of the leader's keys and those queued
// behind it, then hands the lead to the next queued caller (or gives the
// slot back) and wakes the callers it answered.
func (s *Store) leadRead(ctx context.Context, rc *readCombiner, kind readKind, self *readReq) {
	nkeys := len(self.keys)
	batch := rc.take(self, func(q *readReq) bool {
		if nkeys+len(q.keys) > maxReadBatchKeys {
			return false
		}
		nkeys += len(q.keys)
		return true
	})
	defer rc.handOff(batch)
	s.runReads(ctx, kind, batch, nkeys)
}

// runReads sends batch's reads as one read at one fresh timestamp and sets
// every read's outcome.
func (s *Store) runReads(ctx context.Context, kind readKind, batch []*readReq, nkeys int) {
	if len(batch) == 1 {
		// Nothing to combine with: the caller's own read, with its own
		// context.
		readVars.Add("single", 1)
		q := batch[0]
		q.res, q.err = s.readNow(ctx, kind, q.keys)
		return
	}
	all := make([][]byte, 0, nkeys)
	for _, q := range batch {
		all = append(all, q.keys...)
	}
	readVars.Add("batches", 1)
	readVars.Add("reads", int64(len(batch)))
	readVars.Add("keys", int64(nkeys))
	// The read answers many callers: one caller's cancellation must not
	// fail the others (kvclient's own timeouts bound it).
	res, err := s.readNow(context.WithoutCancel(ctx), kind, all)
	switch {
	case err == nil:
		for _, q := range batch {
			q.res = res
		}
	case errors.Is(err, kvclient.ErrClosed):
		for _, q := range batch {
			q.err = fmt.Errorf("combined read of %d reads: %w", len(batch), err)
		}
	default:
		// Maybe one key's fault (a key error): each read is sent again
		// alone and gets its own outcome.
		readVars.Add("failed", 1)
		for _, q := range batch {
			q.alone = true
		}
	}
}

// readNow reads keys at a fresh timestamp, taken now.
func (s *Store) readNow(ctx context.Context, kind readKind, keys [][]byte) (*readResult, error) {
	if kind == readHeads {
		got, err := s.c.BatchGetHeads(ctx, keys, typePrefix)
		if err != nil {
			return nil, err
		}
		return &readResult{heads: got}, nil
	}
	if len(keys) == 1 {
		e, ok, err := s.c.Get(ctx, keys[0])
		if err != nil {
			return nil, err
		}
		res := &readResult{entries: map[string]kvclient.Entry{}}
		if ok {
			res.entries[string(keys[0])] = e
		}
		return res, nil
	}
	got, err := s.c.BatchGet(ctx, keys)
	if err != nil {
		return nil, err
	}
	return &readResult{entries: got}, nil
}

// readEntries reads the values of keys at one fresh timestamp, combined
// with other reads of their region when it can; shared tells that the
// entries' values may be another caller's too (copy before changing).
func (s *Store) readEntries(ctx context.Context, keys [][]byte) (entries map[string]kvclient.Entry, shared bool, err error) {
	if region, ok := s.readRegion(keys); ok {
		res, err := s.readCombined(ctx, region, readValues, keys)
		if err != nil || res != nil {
			if res == nil {
				return nil, false, err
			}
			return res.entries, true, nil
		}
	}
	res, err := s.readNow(ctx, readValues, keys)
	if err != nil {
		return nil, false, err
	}
	return res.entries, false, nil
}

// readHeads reads the heads of keys at one fresh timestamp, combined with
// other reads of their region when it can.
func (s *Store) readHeads(ctx context.Context, keys [][]byte) (map[string]kvclient.Head, error) {
	if region, ok := s.readRegion(keys); ok {
		res, err := s.readCombined(ctx, region, readHeads, keys)
		if err != nil {
			return nil, err
		}
		if res != nil {
			return res.heads, nil
		}
	}
	return s.c.BatchGetHeads(ctx, keys, typePrefix)
}
