package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/storepb"
)

type txnState uint8

const (
	txnActive txnState = iota
	txnCommitted
	txnRolledBack
)

// Txn is an optimistic Percolator transaction: it reads a snapshot at its
// start timestamp (plus its own buffered writes) and, at Commit, writes its
// buffered mutations atomically, failing with an error matching
// ErrWriteConflict if another transaction wrote one of its keys after it
// started. A Txn is not safe for concurrent use; Snapshot is.
type Txn struct {
	c     *Client
	snap  *Snapshot
	began time.Time
	muts  map[string]*kvrpcpb.Mutation
	// size is the bytes of keys and values in muts.
	size int
	// err is the first misuse of Set or Delete; Commit fails with it.
	err      error
	state    txnState
	commitTS uint64
	// undo records what each write replaced once a Savepoint was taken
	// (undoing), for RollbackTo.
	undo    []undoRecord
	undoing bool
	// keyArena and mutArena hold the copies of the keys written and the
	// mutations, a chunk at a time: a combined transaction of many
	// commands allocates a few chunks rather than three objects a write.
	keyArena []byte
	mutArena []kvrpcpb.Mutation
}

// Bounds of the arenas' chunks: the first is small (most transactions
// write a key or two), each next one twice the last, up to the max.
const (
	minKeyChunk, maxKeyChunk = 128, 8 << 10
	minMutChunk, maxMutChunk = 2, 64
)

// newMutation returns a zero mutation from the transaction's arena.
func (t *Txn) newMutation() *kvrpcpb.Mutation {
	if len(t.mutArena) == cap(t.mutArena) {
		t.mutArena = make([]kvrpcpb.Mutation, 0, min(max(2*cap(t.mutArena), minMutChunk), maxMutChunk))
	}
	t.mutArena = t.mutArena[:len(t.mutArena)+1]
	return &t.mutArena[len(t.mutArena)-1]
}

// copyKey returns two copies of key from the transaction's arena: a string
// (the key in muts) and bytes (the mutation's), apart, so that a caller
// modifying the bytes (buffered hands them out) cannot change the string.
// The string's bytes are written once, here, and never again.
func (t *Txn) copyKey(key []byte) (string, []byte) {
	n := len(key)
	if n == 0 {
		return "", []byte{}
	}
	if cap(t.keyArena)-len(t.keyArena) < 2*n {
		size := min(max(2*cap(t.keyArena), minKeyChunk), maxKeyChunk)
		t.keyArena = make([]byte, 0, max(size, 2*n))
	}
	off := len(t.keyArena)
	t.keyArena = append(append(t.keyArena, key...), key...)
	b := t.keyArena[off : off+2*n : off+2*n]
	return unsafe.String(&b[0], n), b[n:]
}

func (c *Client) newTxn(startTS uint64) *Txn {
	return &Txn{c: c, snap: c.Snapshot(startTS), began: time.Now(), muts: make(map[string]*kvrpcpb.Mutation)}
}

// StartTS returns the transaction's start timestamp: its reads see the
// transactions committed at or below it.
func (t *Txn) StartTS() uint64 { return t.snap.ts }

// CommitTS returns the timestamp the transaction committed at; 0 before a
// successful Commit and for a transaction that wrote nothing.
func (t *Txn) CommitTS() uint64 { return t.commitTS }

// Now is the clock, in Unix milliseconds, by which the transaction judges
// expiry: the physical time of its start timestamp (or Options.NowMs at
// Begin). Callers computing expiries relative to "now" use it so that they
// and the store agree.
func (t *Txn) Now() int64 { return t.snap.nowMs }

// Len returns the number of keys the transaction writes.
func (t *Txn) Len() int { return len(t.muts) }

// Size returns the bytes of keys and values the transaction writes, which
// limits.MaxTxnSize bounds.
func (t *Txn) Size() int { return t.size }

func (t *Txn) checkActive() error {
	if t.state != txnActive {
		return ErrTxnFinished
	}
	return nil
}

// buffered returns the transaction's own write of key: inBuffer tells
// whether it wrote key at all, found whether that write leaves a live
// value.
func (t *Txn) buffered(key string) (e Entry, found, inBuffer bool) {
	m, ok := t.muts[key]
	if !ok || m.GetOp() == kvrpcpb.Op_LOCK {
		return Entry{}, false, false
	}
	if m.GetOp() != kvrpcpb.Op_PUT || (m.GetExpiresAt() != 0 && m.GetExpiresAt() <= t.snap.nowMs) {
		return Entry{}, false, true
	}
	return Entry{Key: m.GetKey(), Value: m.GetValue(), ExpiresAt: m.GetExpiresAt()}, true, true
}

// Get reads key: the transaction's own write of it if any, otherwise the
// snapshot at the start timestamp.
func (t *Txn) Get(ctx context.Context, key []byte) (e Entry, found bool, err error) {
	if err := t.checkActive(); err != nil {
		return Entry{}, false, err
	}
	if e, found, ok := t.buffered(string(key)); ok {
		return e, found, nil
	}
	return t.snap.Get(ctx, key)
}

// BatchGet reads keys as Get does and returns the entries found, by key.
func (t *Txn) BatchGet(ctx context.Context, keys [][]byte) (map[string]Entry, error) {
	if err := t.checkActive(); err != nil {
		return nil, err
	}
	var remote [][]byte
	own := map[string]Entry{}
	for _, k := range keys {
		e, found, ok := t.buffered(string(k))
		switch {
		case !ok:
			remote = append(remote, k)
		case found:
			own[string(k)] = e
		}
	}
	out, err := t.snap.BatchGet(ctx, remote)
	if err != nil {
		return nil, err
	}
	for k, e := range own {
		out[k] = e
	}
	return out, nil
}

// GetHead reads key's head (see Snapshot.GetHead): from the transaction's
// own write of it if any, otherwise from the snapshot at the start
// timestamp.
func (t *Txn) GetHead(ctx context.Context, key []byte, prefixLen int) (h Head, found bool, err error) {
	if err := t.checkActive(); err != nil {
		return Head{}, false, err
	}
	if e, found, ok := t.buffered(string(key)); ok {
		return headOf(e, prefixLen), found, nil
	}
	return t.snap.GetHead(ctx, key, prefixLen)
}

// BatchGetHeads reads the heads of keys as GetHead does, the keys the
// transaction has not written in one Snapshot.BatchGetHeads, and returns
// those found, by key; a key named more than once is read once.
func (t *Txn) BatchGetHeads(ctx context.Context, keys [][]byte, prefixLen int) (map[string]Head, error) {
	if err := t.checkActive(); err != nil {
		return nil, err
	}
	var remote [][]byte
	own := map[string]Head{}
	for _, k := range keys {
		e, found, ok := t.buffered(string(k))
		switch {
		case !ok:
			remote = append(remote, k)
		case found:
			own[string(k)] = headOf(e, prefixLen)
		}
	}
	out, err := t.snap.BatchGetHeads(ctx, remote, prefixLen)
	if err != nil {
		return nil, err
	}
	for k, h := range own {
		out[k] = h
	}
	return out, nil
}

// headOf is e's head with the value's first prefixLen bytes.
func headOf(e Entry, prefixLen int) Head {
	return Head{Key: e.Key, Prefix: e.Value[:min(max(prefixLen, 0), len(e.Value))], Len: len(e.Value), ExpiresAt: e.ExpiresAt}
}

// Scan reads [start, end) in key order, at most limit keys (limit <= 0: no
// limit; empty end: to the end of the key space), merging the
// KeysVisited returns how many keys the stores looked at for the
// transaction's scans so far (Snapshot.KeysVisited): its own writes are
// not counted.
func (t *Txn) KeysVisited() uint64 { return t.snap.KeysVisited() }

// transaction's own writes into the snapshot.
func (t *Txn) Scan(ctx context.Context, start, end []byte, limit int) ([]Entry, error) {
	if err := t.checkActive(); err != nil {
		return nil, err
	}
	var own []string
	hidden := 0 // own writes that may hide a snapshot key
	for k, m := range t.muts {
		if k < string(start) || (len(end) > 0 && k >= string(end)) || m.GetOp() == kvrpcpb.Op_LOCK {
			continue
		}
		own = append(own, k)
		if _, found, _ := t.buffered(k); !found {
			hidden++
		}
	}
	slices.Sort(own)
	remoteLimit := limit
	if limit > 0 {
		// Each own delete hides at most one snapshot key, so at least
		// limit merged keys sort at or before the last snapshot key
		// fetched: the first limit merged keys are exact.
		remoteLimit += hidden
	}
	remote, err := t.snap.Scan(ctx, start, end, remoteLimit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(remote)+len(own))
	i, j := 0, 0
	for (i < len(remote) || j < len(own)) && (limit <= 0 || len(out) < limit) {
		var c int
		switch {
		case j == len(own):
			c = -1
		case i == len(remote):
			c = 1
		default:
			c = bytes.Compare(remote[i].Key, []byte(own[j]))
		}
		if c < 0 {
			out = append(out, remote[i])
			i++
			continue
		}
		if c == 0 {
			i++ // the own write replaces the snapshot's value
		}
		if e, found, _ := t.buffered(own[j]); found {
			out = append(out, e)
		}
		j++
	}
	return out, nil
}

// Set buffers a write of key=value, expiring at expiresAtMs (Unix
// milliseconds; 0 never; compare with Now). key is copied; value is kept
// until Commit returns, so the caller must not modify it before. Any key is
// allowed, the empty one too. A misuse (a finished transaction; a key,
// value or transaction larger than api/limits allows: a *TooLargeError
// matching ErrTooLarge) is returned and also makes Commit fail, so nothing
// is written.
func (t *Txn) Set(key, value []byte, expiresAtMs int64) error {
	m := t.newMutation()
	m.Op, m.Key, m.Value, m.ExpiresAt = kvrpcpb.Op_PUT, key, value, expiresAtMs
	return t.write(m)
}

// Delete buffers a deletion of key; deleting an absent key is fine. Misuse
// is reported as for Set.
func (t *Txn) Delete(key []byte) error {
	m := t.newMutation()
	m.Op, m.Key = kvrpcpb.Op_DEL, key
	return t.write(m)
}

func (t *Txn) write(m *kvrpcpb.Mutation) error {
	err := t.checkActive()
	size := t.size
	if err == nil {
		size += len(m.GetKey()) + len(m.GetValue())
		if old, ok := t.muts[string(m.GetKey())]; ok {
			size -= len(old.GetKey()) + len(old.GetValue())
		}
		switch {
		case len(m.GetKey()) > limits.MaxKeySize:
			err = &TooLargeError{What: "key", Size: len(m.GetKey()), Limit: limits.MaxKeySize}
		case len(m.GetValue()) > limits.MaxValueSize:
			err = &TooLargeError{What: "value", Size: len(m.GetValue()), Limit: limits.MaxValueSize}
		case size > limits.MaxTxnSize:
			err = &TooLargeError{What: "transaction", Size: size, Limit: limits.MaxTxnSize}
		}
	}
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return err
	}
	k, key := t.copyKey(m.GetKey())
	m.Key = key
	if m.GetValue() == nil && m.GetOp() == kvrpcpb.Op_PUT {
		m.Value = []byte{}
	}
	if t.undoing {
		t.undo = append(t.undo, undoRecord{key: k, old: t.muts[k]})
	}
	t.muts[k] = m
	t.size = size
	return nil
}

// Rollback abandons the transaction. Nothing is written before Commit, so
// this only discards the buffer; it is a no-op on a finished transaction.
func (t *Txn) Rollback() {
	if t.state == txnActive {
		t.state = txnRolledBack
		t.muts, t.size, t.undo = nil, 0, nil
		t.keyArena, t.mutArena = nil, nil
	}
}

// Commit writes the buffered mutations atomically (see the package
// documentation for one- and two-phase commit). On error nothing is
// committed, except with ErrCommitUndetermined, when the outcome is
// unknown. A retryable error (IsRetryable) means running the transaction
// again may succeed. The transaction is finished either way.
func (t *Txn) Commit(ctx context.Context) error {
	if err := t.checkActive(); err != nil {
		return err
	}
	if t.err != nil {
		t.Rollback()
		return t.err
	}
	if len(t.muts) == 0 {
		t.state = txnCommitted
		return nil
	}
	cm := &committer{c: t.c, startTS: t.snap.ts, muts: make([]*kvrpcpb.Mutation, 0, len(t.muts))}
	cm.ka = &keepAlive{cm: cm, began: t.began}
	for _, m := range t.muts {
		cm.muts = append(cm.muts, m)
	}
	slices.SortFunc(cm.muts, func(a, b *kvrpcpb.Mutation) int { return bytes.Compare(a.GetKey(), b.GetKey()) })
	cm.primary = cm.muts[0].GetKey()
	cm.ttl = uint64((time.Since(t.began) + t.c.opts.LockTTL).Milliseconds())
	err := cm.execute(ctx)
	t.muts, t.size, t.undo = nil, 0, nil
	t.keyArena, t.mutArena = nil, nil
	if err != nil {
		t.state = txnRolledBack
		if IsRetryable(err) {
			t.c.stats.conflicts.Add(1)
		}
		return err
	}
	t.state = txnCommitted
	t.commitTS = cm.commitTS
	t.c.stats.txns.Add(1)
	return nil
}

// committer carries out the commit of one transaction.
type committer struct {
	c        *Client
	startTS  uint64
	muts     []*kvrpcpb.Mutation // sorted by key
	primary  []byte
	ttl      uint64
	commitTS uint64
	// ka keeps the primary lock alive from its prewrite until the commit
	// point (nil for a committer that only commits secondaries).
	ka *keepAlive
}

// stopKeepAlive ends the primary lock's heartbeats, if any.
func (cm *committer) stopKeepAlive() {
	if cm.ka != nil {
		cm.ka.stop()
	}
}

// startKeepAlive starts the primary lock's heartbeats once the primary is
// prewritten.
func (cm *committer) startKeepAlive() {
	if cm.ka != nil {
		cm.ka.start()
	}
}

// lost reports why the transaction can no longer commit, if a heartbeat
// found it rolled back.
func (cm *committer) lost() error {
	if cm.ka == nil {
		return nil
	}
	return cm.ka.err()
}

func mutationKey(m *kvrpcpb.Mutation) []byte { return m.GetKey() }

// encodedKeyLen bounds the length of key as a store encodes it in a column
// family: a prefix byte, groups of 8 bytes with a marker each, a timestamp.
func encodedKeyLen(key []byte) int { return 1 + (len(key)/8+1)*9 + 8 }

// mutationCost bounds what m adds to the raft command of the prewrite (or
// one-phase commit) that carries it: the value, the key twice (the lock or
// write record, and the value's own key when it is not inline), the
// primary key the lock names, and the records' framing.
func (cm *committer) mutationCost(m *kvrpcpb.Mutation) int {
	return 2*encodedKeyLen(m.GetKey()) + len(m.GetValue()) + len(cm.primary) + 128
}

// keyCost bounds what a key adds to the raft command of a commit, rollback
// or lock resolution: a lock deletion, a value deletion and a write record
// with a short value inline.
func keyCost(key []byte) int { return 3*encodedKeyLen(key) + 384 }

// maxPrewriteResolveRounds bounds how often a prewrite resolves locks that
// turn out to be settled before it gives up with a write conflict.
const maxPrewriteResolveRounds = 3

// execute commits in one phase if every key is in one region (and fits one
// request: maxBatchKeys keys, maxBatchBytes), and in two phases otherwise.
func (cm *committer) execute(ctx context.Context) error {
	c := cm.c
	defer cm.stopKeepAlive()
	bo := c.newBackoffer()
	for len(cm.muts) <= maxBatchKeys {
		batches, err := groupByRegion(ctx, c, bo, cm.muts, mutationKey, cm.mutationCost)
		if err != nil {
			return err
		}
		if len(batches) != 1 {
			break
		}
		commitTS, err := cm.prewrite(ctx, bo, batches[0].loc, cm.muts, true)
		if errors.Is(err, errRegionMoved) {
			continue // maybe split: regroup
		}
		if err != nil {
			if bo.ambiguous && !isDefinitive(err) {
				return fmt.Errorf("%w: one-phase commit: %w", ErrCommitUndetermined, err)
			}
			return err
		}
		if commitTS != 0 {
			cm.commitTS = commitTS
			c.stats.onePC.Add(1)
			return nil
		}
		// The store locked the keys without committing them: finish in
		// two phases.
		cm.startKeepAlive()
		return cm.commit(ctx, bo)
	}
	err := onRegions(ctx, c, bo, cm.muts, mutationKey, cm.mutationCost,
		func(ctx context.Context, bo *backoffer, loc *location, muts []*kvrpcpb.Mutation) error {
			_, err := cm.prewrite(ctx, bo, loc, muts, false)
			if err == nil && bytes.Equal(muts[0].GetKey(), cm.primary) {
				// The primary (the first key, so first in its batch) is
				// locked: keep it alive while the other batches and the
				// commit run.
				cm.startKeepAlive()
			}
			return err
		})
	if err != nil {
		cm.rollback(ctx)
		return err
	}
	return cm.commit(ctx, bo)
}

// isDefinitive reports whether err is a store's answer that settles the
// outcome of a prewrite or commit: a write conflict, an abort, a retryable
// or txn-not-found answer (a retry that found the request applied would
// have succeeded instead), or a request too large to be proposed at all.
//
// A refusal because the request's timestamps are below the GC safe point
// (the store found no commit of this transaction on record) settles
// nothing: the first attempt may have applied, and GC may since have
// collected its record.
func isDefinitive(err error) bool {
	var ke *KeyError
	return (errors.As(err, &ke) && !errors.Is(err, ErrLocked) && !errors.Is(err, ErrDataNotAvailable)) || errors.Is(err, ErrTooLarge)
}

// prewrite locks muts, all in loc's region (or commits them at once when
// onePC is set; the store then returns the commit timestamp, 0 if it only
// locked them). Locks of other transactions are resolved and the prewrite
// retried, at most maxPrewriteResolveRounds times; a lock that stays alive
// makes it fail with ErrWriteConflict.
func (cm *committer) prewrite(ctx context.Context, bo *backoffer, loc *location, muts []*kvrpcpb.Mutation, onePC bool) (uint64, error) {
	c := cm.c
	req := &kvrpcpb.PrewriteRequest{
		Mutations: muts, PrimaryLock: cm.primary, StartVersion: cm.startTS,
		LockTtl: cm.ttl, TxnSize: uint64(len(cm.muts)),
	}
	if onePC {
		// The store raises this above every read it served (and start_ts),
		// so start_ts+1 is enough and saves a timestamp round trip; see the
		// package documentation.
		req.TryOnePc, req.OnePcCommitTs = true, cm.startTS+1
	}
	for round := 0; ; round++ {
		resp, err := send(ctx, c, bo, loc, "Prewrite",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.PrewriteResponse, error) {
				req.Context = rc
				return sc.KvPrewrite(ctx, req)
			})
		if err != nil {
			return 0, err
		}
		if len(resp.GetErrors()) == 0 {
			return resp.GetOnePcCommitTs(), nil
		}
		var locks []*kvrpcpb.LockInfo
		for _, ke := range resp.GetErrors() {
			if l := ke.GetLocked(); l != nil {
				locks = append(locks, l)
				continue
			}
			return 0, fmt.Errorf("kvclient: prewrite of transaction %d: %w", cm.startTS, &KeyError{Err: ke})
		}
		if round < maxPrewriteResolveRounds {
			left, err := c.resolver.resolve(ctx, bo, locks)
			if err != nil {
				return 0, err
			}
			if left == 0 {
				continue // every lock is settled: try again
			}
		}
		return 0, fmt.Errorf("%w: prewrite of transaction %d met a live lock: %w",
			ErrWriteConflict, cm.startTS, &KeyError{Err: &kvrpcpb.KeyError{Locked: locks[0]}})
	}
}

// commit is the second phase: take a commit timestamp, commit the primary
// (the commit point), then the secondaries.
func (cm *committer) commit(ctx context.Context, bo *backoffer) error {
	c := cm.c
	if k := c.opts.Knobs.BeforeCommit; k != nil {
		k(cm.startTS)
	}
	if err := cm.lost(); err != nil {
		cm.rollback(ctx)
		return err
	}
	commitTS, err := c.getTS(ctx, bo)
	if err != nil {
		cm.rollback(ctx)
		return err
	}
	cm.commitTS = commitTS
	if err := c.ctxErr(ctx); err != nil {
		cm.rollback(ctx)
		return err
	}
	// A heartbeat may have learnt meanwhile that the transaction was rolled
	// back: say so rather than send a commit the store refuses.
	if err := cm.lost(); err != nil {
		cm.rollback(ctx)
		return err
	}
	err = cm.commitKeys(ctx, bo, [][]byte{cm.primary})
	// Committed, refused or undetermined: either way the primary lock
	// needs no more heartbeats.
	cm.stopKeepAlive()
	if err != nil {
		if bo.ambiguous && !isDefinitive(err) {
			return fmt.Errorf("%w: commit of primary %q: %w", ErrCommitUndetermined, cm.primary, err)
		}
		// Not committed, and never will be: the primary is rolled back or
		// stays locked until it expires. Clean up now.
		cm.rollback(ctx)
		return fmt.Errorf("kvclient: commit of primary %q: %w", cm.primary, err)
	}
	c.stats.twoPC.Add(1)
	if len(cm.muts) == 1 {
		return nil
	}
	// The transaction is committed, whatever happens to its secondaries:
	// a failure here does not fail it (the caller's context no longer
	// matters either). The secondaries are retried in the background; one
	// left locked all the same is committed by the next reader that meets
	// it, or by GC's lock resolution.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.opts.RPCTimeout)
	defer cancel()
	secondaries := make([][]byte, 0, len(cm.muts)-1)
	for _, m := range cm.muts[1:] {
		secondaries = append(secondaries, m.GetKey())
	}
	if err := cm.commitKeys(sctx, c.newBackoffer(), secondaries); err != nil {
		c.stats.secondaryCommitErrors.Add(1)
		// Readers that meet these locks need not ask the primary.
		c.resolver.remember(cm.startTS, cm.commitTS)
		c.retrySecondaries(cm.startTS, cm.commitTS, secondaries, err)
	}
	return nil
}

// Background retries of secondary commits: at most secondaryRetries
// attempts per transaction, the n-th after a jittered wait of
// secondaryRetryMin doubled n-1 times (capped at secondaryRetryMax): 10 to
// 21 seconds of waits in all; at most maxSecondaryRetriers transactions at
// once.
const (
	secondaryRetries     = 8
	secondaryRetryMin    = 100 * time.Millisecond
	secondaryRetryMax    = 8 * time.Second
	maxSecondaryRetriers = 256
)

// retrySecondaries commits the secondaries of a committed transaction in
// the background after the first attempt failed with cause. Commits are
// idempotent, so every key is sent again, committed or not. It gives up
// (counting the transaction in SecondaryCommitsAbandoned) after
// secondaryRetries attempts, on a store's definitive answer (a key error:
// the locks were resolved otherwise, or the commit timestamp is below the
// GC safe point, whose lock resolution commits them), when
// maxSecondaryRetriers transactions are already being retried, and when the
// client closes; the locks are then left to readers and GC, which commit
// them from the primary.
func (c *Client) retrySecondaries(startTS, commitTS uint64, keys [][]byte, cause error) {
	log := c.opts.Logger.With("start_ts", startTS, "commit_ts", commitTS, "keys", len(keys))
	abandon := func(msg string, err error) {
		c.stats.secondaryAbandoned.Add(1)
		log.Warn("kvclient: "+msg+"; readers and GC will commit the secondaries", "err", err)
	}
	select {
	case c.bgSlots <- struct{}{}:
	default:
		abandon("too many secondary commits being retried", cause)
		return
	}
	c.bgMu.Lock()
	if c.life.Err() != nil {
		c.bgMu.Unlock()
		<-c.bgSlots
		abandon("client closed before retrying the commit of secondaries", cause)
		return
	}
	c.bg.Add(1)
	c.bgMu.Unlock()
	log.Debug("kvclient: commit of secondaries failed; retrying in the background", "err", cause)
	go func() {
		defer c.bg.Done()
		defer func() { <-c.bgSlots }()
		cm := &committer{c: c, startTS: startTS, commitTS: commitTS}
		err := cause
		for attempt := 1; ; attempt++ {
			if err := c.sleep(c.life, jitter(expBackoff(secondaryRetryMin, secondaryRetryMax, attempt)), nil); err != nil {
				abandon("client closed while retrying the commit of secondaries", err)
				return
			}
			ctx, cancel := context.WithTimeout(c.life, 2*c.opts.RPCTimeout)
			err = cm.commitKeys(ctx, c.newBackoffer(), keys)
			cancel()
			var ke *KeyError
			switch {
			case err == nil:
				c.stats.secondaryRecovered.Add(1)
				log.Debug("kvclient: secondaries committed in the background", "attempts", attempt+1)
				return
			case c.life.Err() != nil:
				abandon("client closed while retrying the commit of secondaries", err)
				return
			case errors.As(err, &ke) || errors.Is(err, ErrTooLarge):
				abandon("a store refused the commit of secondaries", err)
				return
			case attempt >= secondaryRetries:
				abandon(fmt.Sprintf("commit of secondaries failed %d times", attempt+1), err)
				return
			}
		}
	}()
}

// commitKeys commits the transaction's locks on keys, region by region.
func (cm *committer) commitKeys(ctx context.Context, bo *backoffer, keys [][]byte) error {
	return onRegions(ctx, cm.c, bo, keys, identity, keyCost,
		func(ctx context.Context, bo *backoffer, loc *location, keys [][]byte) error {
			resp, err := send(ctx, cm.c, bo, loc, "Commit",
				func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.CommitResponse, error) {
					return sc.KvCommit(ctx, &kvrpcpb.CommitRequest{
						Context: rc, StartVersion: cm.startTS, Keys: keys, CommitVersion: cm.commitTS,
					})
				})
			if err != nil {
				return err
			}
			if ke := resp.GetError(); ke != nil {
				return &KeyError{Err: ke}
			}
			return nil
		})
}

// rollback removes the transaction's locks from every key it may have
// prewritten and leaves rollback records so that a late prewrite fails.
// It is best effort (a lock left behind expires and is rolled back by its
// next reader) and does not depend on the caller's context.
func (cm *committer) rollback(ctx context.Context) {
	c := cm.c
	cm.stopKeepAlive()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*c.opts.RPCTimeout)
	defer cancel()
	keys := make([][]byte, len(cm.muts))
	for i, m := range cm.muts {
		keys[i] = m.GetKey()
	}
	err := onRegions(rctx, c, c.newBackoffer(), keys, identity, keyCost,
		func(ctx context.Context, bo *backoffer, loc *location, keys [][]byte) error {
			resp, err := send(ctx, c, bo, loc, "BatchRollback",
				func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.BatchRollbackResponse, error) {
					return sc.KvBatchRollback(ctx, &kvrpcpb.BatchRollbackRequest{Context: rc, StartVersion: cm.startTS, Keys: keys})
				})
			if err != nil {
				return err
			}
			if ke := resp.GetError(); ke != nil {
				return &KeyError{Err: ke}
			}
			return nil
		})
	if err != nil {
		c.stats.rollbackErrors.Add(1)
		c.opts.Logger.Warn("kvclient: rollback failed; the locks will expire", "start_ts", cm.startTS, "err", err)
	}
}
