package raft

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"sync"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// # Combined writes
//
// Every write is a transaction, and a transaction costs the cluster about
// the same whatever it writes: a timestamp, a prewrite RPC, a raft entry
// replicated and applied by three stores. So Update does not run each
// command in a transaction of its own when others are waiting: the
// commands queued for one region while that region's previous combined
// transactions were committing run one after another in one transaction
// (each seeing the writes of those before it, as if run serially in queue
// order), which commits in one 1PC prewrite: one RPC and one raft entry for
// all of them. Every command's caller is answered only after that commit,
// so each command takes effect at the commit, in queue order, within its
// own call: linearizable. Fifty INCRs of one key queued together read the
// key once and write it once.
//
// A command that fails by itself (WRONGTYPE, not an integer, too large) has
// its writes rolled back to the savepoint taken before it and gets its own
// error; the others commit. A command that needs a transaction of its own
// (read locks, more keys than maxCombinedKeys, or one that did not fit)
// runs alone after the combined one, as does every command of a
// combined transaction that failed for a reason no single command caused
// (a conflict that outlived RunTxn's retries, an unavailable region): no
// command fails for another's reason. Only an outcome all of them share
// (commit undetermined, the client closed) is every command's answer.
//
// Collection commands (WriteOptions.SubKeys) are combined too, under the
// region of their metadata records (the keys they name); their elements'
// sub-keys may sit in another region (all sub-keys sort after all
// records), which makes the commit a two-region 2PC, still one request per
// region while the transaction stays under maxCombinedMutations keys. The
// commands share one txn: what it tracks for the reclaim queue (reclaim.go:
// the collections read, the versions NewVersion created, the point
// deletions) is the whole transaction's, as for EXEC's commands, and the
// queue entries are written once, after the last command, for the versions
// the transaction as a whole kills. A command rolled back to its savepoint
// takes its tracking with it (txn.undo), so it leaves no queue entry, no
// version and no point deletion behind. Commands creating collections of
// different keys share the start timestamp as version (versions are per
// key); one recreating a key an earlier command created starts empty
// (NewVersion). Before the commands run, the sub-keys they will read are
// read in one batch (readahead.go), not one request per command.
//
// At most maxInFlight combined transactions per region run at once, each
// by the caller that arrived first (no goroutine of its own): while one
// commits, the next gathers callers, so under load each transaction
// carries about clients/maxInFlight commands, and an idle gateway runs a
// lone command at once, as before.

// Limits of one combined transaction.
const (
	// maxCombined bounds the commands in one transaction, and with
	// maxCombinedKeys the keys: 64*4 = 256 mutations fit one 1PC prewrite
	// (kvclient's batch of 256 keys).
	maxCombined     = 64
	maxCombinedKeys = 4
	// maxCombinedMutations bounds the keys one combined transaction
	// writes (locks included): a collection command writes a sub-key per
	// element besides its record, and past 256 a region's prewrite takes
	// a second request. A command that would take the transaction past
	// it runs alone instead.
	maxCombinedMutations = 256
	// combinedBytes: once the transaction writes this much, the remaining
	// commands run alone (well below kvclient's 4 MiB request, so the
	// combined commit stays one request).
	combinedBytes = 1 << 20
	// maxInFlight is how many combined transactions of one region run at
	// once: one gathers while the other commits.
	maxInFlight = 2
	// gatherWait is how long a leader with no one queued behind it waits
	// for company while another transaction of its region is in flight.
	gatherWait = 300 * time.Microsecond
)

// combineVars counts, for /debug/vars: commands that found nothing to
// combine with (single), transactions that combined
// commands, the commands they carried, commands run alone after all
// (needing their own transaction or a combined one failed), the
// combined transactions that failed so that all theirs ran alone, and
// the collection commands a combined transaction committed
// (collection_commands).
var combineVars = expvar.NewMap("nokv_raft_combine")

// errAlone is what a combined command's transaction answers when the
// command uses what only a transaction of its own may: it is rolled back
// and run alone.
var errAlone = errors.New("raft backend: the command needs a transaction of its own")

// errPanicked stands for a panic of a combined command's function
// (queued.panicked holds it).
var errPanicked = errors.New("raft backend: the command panicked")

// queued is one Update waiting to be combined.
type queued struct {
	keys [][]byte
	fn   func(backend.Txn) error
	// sub: a collection command (WriteOptions.SubKeys), counted apart;
	// ahead: it may be run ahead (WriteOptions.ReadAhead, readahead.go).
	sub, ahead bool
	// Set by the transaction that ran it, before wake: err is the
	// command's outcome; alone that it must run alone instead.
	err   error
	alone bool
	// panicked is what the command's function panicked with.
	panicked any
	// wake is signalled once a waiting caller's command is finished, or
	// when its caller is to lead the next combined transaction (lead set).
	waiter
}

// combiner queues one region's Updates.
type combiner = group[*queued]

// combiners maps a region id to its combiner. Entries stay: one small
// struct per region this gateway has written to.
type combiners = perKey[uint64, combiner]

// perKey holds one V per key, made on first use; entries stay (one small
// struct per region, or region and kind, this gateway has used).
type perKey[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*V
}

func (p *perKey[K, V]) get(k K) *V {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[K]*V{}
	}
	v := p.m[k]
	if v == nil {
		v = new(V)
		p.m[k] = v
	}
	return v
}

// combinedRegion returns the region all keys are in, if the command may be
// combined and the region cache knows one region holding them all.
func (s *Store) combinedRegion(opts backend.WriteOptions, keys [][]byte) (uint64, bool) {
	if s.noCombine || len(keys) == 0 || len(keys) > maxCombinedKeys {
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

// updateCombined runs fn in one of the region's combined transactions.
func (s *Store) updateCombined(ctx context.Context, region uint64, opts backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	cb := s.combiners.get(region)
	q := queuedPool.Get().(*queued)
	q.keys, q.fn, q.sub, q.ahead = keys, fn, opts.SubKeys, opts.ReadAhead
	if !cb.join(q, maxInFlight) {
		// Finished, or made the next leader: q's fields are set before
		// the wake, and no one else writes them after.
		<-q.wake
	}
	if q.lead {
		s.lead(ctx, cb, q)
	}
	if q.panicked != nil {
		panic(q.panicked)
	}
	alone, err := q.alone, q.err
	q.release()
	if alone {
		combineVars.Add("alone", 1)
		return s.wrap(s.runAlone(ctx, keys, fn))
	}
	return s.wrap(err)
}

// queuedPool recycles the queued of finished Updates with their wake
// channels: two allocations less per combined write.
var queuedPool = sync.Pool{New: func() any { return &queued{waiter: waiter{wake: make(chan struct{}, 1)}} }}

// release returns q to queuedPool once its caller has read its outcome.
// No one else refers to it by then: the leader that ran it signalled its
// wake last (handOff), the one send q.wake gets, which the caller
// received; a leader's own q was in no one else's batch.
func (q *queued) release() {
	wake := q.wake
	*q = queued{waiter: waiter{wake: wake}}
	queuedPool.Put(q)
}

// lead runs one combined transaction of the leader's command and those
// queued behind it, then hands the lead to the next queued caller (or
// gives the slot back) and wakes the callers it ran.
func (s *Store) lead(ctx context.Context, cb *combiner, self *queued) {
	taken := 1
	batch := cb.take(self, func(*queued) bool {
		taken++
		return taken <= maxCombined
	})

	finished := false
	defer func() {
		if !finished {
			// runCombined panicked outside any command's function (those
			// are recovered): the panic goes on in this caller; the others
			// cannot know what was written.
			for _, q := range batch[1:] {
				q.alone, q.panicked = false, nil
				q.err = fmt.Errorf("%w: the combined transaction of %d commands broke off (a gateway bug)", backend.ErrUndetermined, len(batch))
			}
		}
		cb.handOff(batch)
	}()
	s.runCombined(ctx, batch)
	finished = true
}

// run runs q's function in x, recovering a panic into q.panicked: the
// function belongs to another caller than the one running it, whose own
// goroutine panics with it once woken (updateCombined), so that the
// command layer contains it to that caller's connection.
func (q *queued) run(x *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			q.panicked = p
			err = errPanicked
		}
	}()
	return q.fn(x)
}

// runCombined runs batch in one transaction and sets every command's
// outcome.
func (s *Store) runCombined(ctx context.Context, batch []*queued) {
	if len(batch) == 1 {
		// Nothing to combine with: no savepoints, no wrapping.
		combineVars.Add("single", 1)
		batch[0].err = s.runAlone(ctx, batch[0].keys, batch[0].fn)
		return
	}
	var keyBuf [maxCombined * maxCombinedKeys][]byte
	all := keyBuf[:0]
	for _, q := range batch {
		all = append(all, q.keys...)
	}
	var slotBuf [64]uint32
	slots := s.latches.Acquire(all, slotBuf[:0])
	defer s.latches.Release(slots)
	// The transaction answers many callers: one caller's cancellation
	// must not fail the others (kvclient's own timeouts bound it).
	ctx = context.WithoutCancel(ctx)
	combineVars.Add("transactions", 1)
	combineVars.Add("commands", int64(len(batch)))
	err := s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		// One txn for all the commands: what it tracks for the reclaim
		// queue (the collections read, the versions created and killed,
		// the point deletions) is the whole transaction's, as for EXEC's
		// commands, and finish enqueues once, after the last command.
		x := &txn{ctx: ctx, t: t, combined: true}
		// The sub-keys the commands will read, in one batch read.
		x.runAhead(batch)
		for i, q := range batch {
			q.err, q.alone, q.panicked = nil, false, nil
			if i > 0 && (t.Size() >= combinedBytes || t.Len() >= maxCombinedMutations) {
				q.alone = true
				continue
			}
			sp := t.Savepoint()
			// The commands before this one stay: only this one's tracking
			// can be rolled back.
			clear(x.undo)
			x.undo = x.undo[:0]
			x.keys, x.heads, x.err, x.readErr = q.keys, nil, nil, nil
			err := q.run(x)
			if err == nil {
				err = x.err
			}
			if err == nil && len(q.keys) > 1 {
				// A command of several keys may have read one it does not
				// write at the start timestamp and another as an earlier
				// command wrote it, due at the commit: a lock-only mutation
				// on the former makes another gateway's write of it in
				// between a conflict, so the command still reads one
				// state. (A command of one key reads it either way.)
				for _, k := range q.keys {
					if len(k) <= maxStoredKey {
						if err = t.LockKey(k); err != nil {
							break
						}
					}
				}
			}
			if err == nil && i > 0 && (t.Size() > combinedBytes || t.Len() > maxCombinedMutations) {
				// It fits alone, not together with the others: the commit
				// stays one request per region (a collection's elements
				// may add a second region: the comment at the top).
				err = errAlone
			}
			if err == nil {
				continue
			}
			t.RollbackTo(sp)
			x.rollbackTracking(0)
			var tooLarge *kvclient.TooLargeError
			switch {
			case q.panicked != nil:
				q.err = err // nothing of it commits; its caller panics

			case x.readErr != nil:
				// The shared snapshot failed it, not the command: the
				// whole transaction is retried (or its commands run alone).
				return x.readErr
			case errors.Is(err, errAlone):
				q.alone = true
			case errors.As(err, &tooLarge) && tooLarge.What == "transaction" && t.Len() > 0:
				// Too large only together with the others.
				q.alone = true
			default:
				q.err = err // the command's own answer: nothing of it commits
			}
		}
		x.undo, x.keys, x.heads, x.err = nil, nil, nil, nil
		x.combined = false
		x.finish()
		if x.err != nil {
			// Not one command's: the queue entries of them all.
			return fmt.Errorf("enqueue the versions the combined transaction kills: %w", x.err)
		}
		return nil
	})
	if err == nil {
		for _, q := range batch {
			if q.sub && !q.alone && q.err == nil && q.panicked == nil {
				combineVars.Add("collection_commands", 1)
			}
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, kvclient.ErrCommitUndetermined) || errors.Is(err, kvclient.ErrClosed):
		// Every command in the commit shares its outcome.
		for _, q := range batch {
			if !q.alone && q.err == nil {
				q.err = fmt.Errorf("combined transaction of %d commands: %w", len(batch), err)
			}
		}
	default:
		// Not one command's fault: each runs alone, and gets its own
		// outcome.
		combineVars.Add("failed", 1)
		for _, q := range batch {
			q.alone, q.err = true, nil
		}
	}
}
