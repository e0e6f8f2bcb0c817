// Package raft is the gateway's cluster backend: every Redis command runs
// as a Percolator transaction against the nokv-store cluster through
// pkg/kvclient, so the same command layer serves both backends.
//
// Values are stored as one type byte followed by the data; the expiry
// travels in the transaction layer's expires_at, which the stores
// enforce on every read and collect in GC. Expiry is judged by one clock:
// the physical time of each transaction's or read's TSO timestamp
// (Txn.Now), never the gateway's wall clock.
//
// # Heads
//
// backend.Head (type, expiry, length) is read with the stores' head-only
// reads: a value's length and its type byte cross the network, not the
// value. An Update naming several keys reads the heads of all of them in
// one batch at its first read (heads.go), so commands over many keys make
// a few requests per 256 keys and region, not one per key.
//
// # Limits
//
// What the cluster cannot replicate in one raft entry or give back in one
// response is refused when it is written, before anything is sent, with an
// error wrapping backend.ErrTooLarge that names the size and the limit: a
// key over MaxKeySize, a value over MaxValueSize, a command writing more
// than MaxCommandSize. So everything accepted can be read back. Keys too
// long to have been written read as absent.
package raft

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/pkg/latch"
	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Options configure the backend.
type Options struct {
	// PDAddr is the placement driver's address.
	PDAddr string
	// MaxRetries bounds retries of one request on region errors (the
	// cluster file's max_retries; 0 means none).
	MaxRetries int
	// NowMs replaces the wall clock for expiry decisions (tests).
	NowMs func() int64
	// TestingMigrateBatchKeys, if positive, bounds MigrateFormat's batches
	// (tests: many small batches).
	TestingMigrateBatchKeys int
	// TestingMigrateBatchDone, if set, is called after each batch
	// MigrateFormat commits; an error stops it there, as a crash would.
	TestingMigrateBatchDone func(batches int) error
	// TestingFormatCheckFoundNoRecord, if set, is called at Open inside the
	// format check's transaction once it found no record.
	TestingFormatCheckFoundNoRecord func()
	// ReclaimInterval is how often the reclaimer drains the reclaim queue
	// (reclaim.go; 0: DefaultReclaimInterval, negative: never, which
	// leaves it to other gateways). SweepInterval is the least time between
	// two orphan sweeps (0: DefaultSweepInterval, negative: none).
	ReclaimInterval, SweepInterval time.Duration
	// TestingReclaimHook, if set, is called by the queue's drain between
	// deleting a page's ranges and deleting its entries; an error stops the
	// drain there, as a crash would.
	TestingReclaimHook func(stage string) error
	// Log receives the reclaimer's warnings (nil: slog.Default()).
	Log *slog.Logger
	// NoCombine runs every Update in a transaction of its own instead of
	// combining concurrent ones (combine.go), and sends every read alone
	// (readcombine.go): benchmarks' baseline.
	NoCombine bool
	// NoCombineReads sends every read alone, whether or not Updates are
	// combined.
	NoCombineReads bool
}

// Store implements backend.Backend over the cluster.
type Store struct {
	c *kvclient.Client
	// latches serialise this gateway's own updates of the same keys: they
	// would only conflict in the cluster and retry, each retry a wasted
	// timestamp, read and prewrite. Other gateways still race optimistically.
	latches *latch.Latches
	// formatHook is Options.TestingFormatCheckFoundNoRecord.
	formatHook func()
	// combiners queue each region's Updates into combined transactions
	// (combine.go), unless noCombine (Options.NoCombine).
	combiners combiners
	noCombine bool
	// reclaim is the background reclaimer (reclaim.go), nil if off.
	reclaim *reclaimer
	// readCombiners queue each region's reads into combined reads
	// (readcombine.go), unless noCombineReads.
	readCombiners  readCombiners
	noCombineReads bool
}

var _ backend.Backend = (*Store)(nil)

// Open connects to PD and checks that it answers.
func Open(ctx context.Context, opts Options) (*Store, error) {
	retries := opts.MaxRetries
	if retries == 0 {
		retries = kvclient.NoRetries
	}
	c, err := kvclient.New(ctx, opts.PDAddr, kvclient.Options{MaxRetries: retries, NowMs: opts.NowMs})
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster through PD at %s: %w", opts.PDAddr, err)
	}
	s := &Store{c: c, latches: latch.New(), formatHook: opts.TestingFormatCheckFoundNoRecord, noCombine: opts.NoCombine,
		noCombineReads: opts.NoCombine || opts.NoCombineReads}
	// ctx bounds reaching PD; the format check may wait longer for a
	// cluster that is up but momentarily unavailable (formatWait).
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), formatWait)
	defer cancel()
	if err := s.checkFormat(fctx); err != nil {
		c.Close()
		return nil, err
	}
	s.startReclaimer(opts)
	return s, nil
}

// Limits of the raft backend, from kvclient's (api/limits).
const (
	// MaxKeySize is the longest Redis key: 64 KiB less the database prefix
	// the stored key carries (keyspace.PrefixLen).
	MaxKeySize = kvclient.MaxKeySize - keyspace.PrefixLen
	// maxStoredKey is the longest stored key.
	maxStoredKey = kvclient.MaxKeySize
	// MaxValueSize is the largest value (6 MiB). kvclient takes a little
	// more, for the type byte stored in front.
	MaxValueSize = kvclient.MaxValuePayload
	// MaxCommandSize bounds the keys and values one command writes
	// (64 MiB): the transaction's limit.
	MaxCommandSize = kvclient.MaxTxnSize
)

// The type byte must fit in kvclient's room for framing.
const _ = uint(kvclient.MaxValueSize - 1 - MaxValueSize)

// tooLargeError is what the raft backend cannot store; its text is the
// reply's (after "ERR ").
type tooLargeError struct{ msg string }

func (e *tooLargeError) Error() string { return e.msg }
func (e *tooLargeError) Unwrap() error { return backend.ErrTooLarge }

func errTooLarge(what string, size, limit int) error {
	return &tooLargeError{fmt.Sprintf("%s of %d bytes exceeds the raft backend's limit of %d bytes", what, size, limit)}
}

// CheckValueSize returns the error a Set of a value of n bytes fails its
// command with, or nil. A command that builds a value from a small request
// (SETRANGE at a large offset, APPEND) can ask first, and not build a value
// this backend refuses anyway.
func (s *Store) CheckValueSize(n int64) error {
	if n > MaxValueSize {
		return errTooLarge("value", int(min(n, math.MaxInt)), MaxValueSize)
	}
	return nil
}

func encode(v backend.Value) []byte {
	out := make([]byte, 0, 1+len(v.Data))
	return append(append(out, byte(v.Type)), v.Data...)
}

var errCorrupt = errors.New("raft backend: stored value has no type byte")

func decode(e kvclient.Entry) (backend.Value, error) {
	if len(e.Value) == 0 {
		return backend.Value{}, fmt.Errorf("%w (key %q)", errCorrupt, e.Key)
	}
	return backend.Value{Type: backend.Type(e.Value[0]), ExpiresAt: e.ExpiresAt, Data: e.Value[1:]}, nil
}

// txn adapts a cluster transaction to backend.Txn.
type txn struct {
	ctx context.Context
	t   *kvclient.Txn
	err error
	// keys are the keys the command named (Update's); heads, once
	// prefetched (heads.go), what the start timestamp's snapshot holds of
	// those the transaction has not written since.
	keys  [][]byte
	heads map[string]known
	// versioned: keys NewVersion gave the start timestamp to (subkeys.go).
	versioned map[string]bool
	// colls: the collections keys held as the transaction read them;
	// final: the collection version a written key holds at the end, 0 for
	// none (reclaim.go).
	colls map[string]collKnown
	final map[string]uint64
	// pointDeleted: how many sub-keys of a version the transaction deleted
	// one by one (DeleteSub), by version (reclaim.go).
	pointDeleted map[versionOf]int
	// combined: the transaction carries other commands too (combine.go);
	// readErr is the first error a read of the cluster returned, which
	// fails the whole combined transaction rather than this command.
	combined bool
	readErr  error
	// undo restores versioned, colls, final and pointDeleted as they were
	// before the current command of a combined transaction, should it be
	// rolled back to its savepoint (combine.go): a command rolled back
	// leaves no trace in what finish enqueues. Appended to only when
	// combined.
	undo []func()
	// ahead: what a combined transaction read ahead for its commands
	// (readahead.go); nil when it did not.
	ahead *readAhead
}

// logUndo records how to restore a tracking map's entry for k, before it
// is changed, in a combined transaction.
func logUndo[V any](x *txn, m map[string]V, k string) {
	if !x.combined {
		return
	}
	old, had := m[k]
	x.undo = append(x.undo, func() {
		if had {
			m[k] = old
		} else {
			delete(m, k)
		}
	})
}

// rollbackTracking undoes the tracking of the writes since the undo log
// held mark entries, latest first.
func (x *txn) rollbackTracking(mark int) {
	for i := len(x.undo) - 1; i >= mark; i-- {
		x.undo[i]()
	}
	clear(x.undo[mark:])
	x.undo = x.undo[:mark]
}

// read notes err, a read's, for combined transactions.
func (x *txn) read(err error) error {
	if err != nil && x.readErr == nil {
		x.readErr = err
	}
	return err
}

// Get implements backend.Txn: the whole value, from the transaction's own
// write or one read at the start timestamp; a key the prefetch found
// absent is absent without asking again.
func (x *txn) Get(key []byte) (backend.Value, bool, error) {
	if err := x.prefetch(); err != nil {
		return backend.Value{}, false, err
	}
	if kn, ok := x.heads[string(key)]; ok && !kn.found {
		return backend.Value{}, false, nil
	}
	e, ok, err := x.get(key)
	if err != nil || !ok {
		return backend.Value{}, false, x.read(err)
	}
	v, err := decode(e)
	if err == nil {
		x.noteRead(key, v)
	}
	return v, err == nil, err
}

// Set checks the sizes before it builds anything: a refused write fails the
// command, and nothing of it is sent.
func (x *txn) Set(key []byte, v backend.Value) {
	if x.err != nil {
		return
	}
	switch {
	case len(key) > maxStoredKey:
		x.err = errTooLarge("key", len(key)-keyspace.PrefixLen, MaxKeySize)
	case len(v.Data) > MaxValueSize:
		x.err = errTooLarge("value", len(v.Data), MaxValueSize)
	default:
		if x.err = x.beforeWrite(key); x.err != nil {
			return
		}
		// kvclient refuses a transaction past its total (a TooLargeError).
		x.forget(key)
		x.wrote(key)
		x.noteWrite(key, v)
		x.err = x.t.Set(key, encode(v), v.ExpiresAt)
	}
}

func (x *txn) Delete(key []byte) {
	if x.err != nil || len(key) > maxStoredKey {
		return // a key that long cannot exist
	}
	if x.err = x.beforeWrite(key); x.err != nil {
		return
	}
	x.forget(key)
	x.wrote(key)
	x.noteWrite(key, backend.Value{})
	x.err = x.t.Delete(key)
}

func (x *txn) Now() int64 { return x.t.Now() }

// LockRead implements backend.ReadLocker with a Percolator lock-only
// mutation: it conflicts like a write and commits no value.
func (x *txn) LockRead(key []byte) {
	if x.err != nil || len(key) > maxStoredKey {
		return
	}
	if x.combined {
		x.err = errAlone // EXEC's: many keys, its own transaction
		return
	}
	x.err = x.t.LockKey(key)
}

// Update implements backend.Backend: fn runs in a transaction that is
// retried from scratch on a write conflict. Replies are sent after the
// commit, which raft made durable on a majority of stores.
//
// When the command names several keys, its first read (Head or Get)
// fetches the heads of all of them in one head-only batch read at the
// transaction's start timestamp, the snapshot every read of the
// transaction sees anyway: DEL or MSETNX of 100k keys makes a few hundred
// requests in parallel, not 100k in a row. Write conflicts are still found
// at prewrite, as for any Percolator transaction.
//
// Concurrent Updates of one region are combined into one transaction
// (combine.go).
func (s *Store) Update(ctx context.Context, opts backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	if region, ok := s.combinedRegion(opts, keys); ok {
		return s.updateCombined(ctx, region, opts, keys, fn)
	}
	return s.wrap(s.runAlone(ctx, keys, fn))
}

// runAlone runs fn in a transaction of its own.
func (s *Store) runAlone(ctx context.Context, keys [][]byte, fn func(backend.Txn) error) error {
	var buf [8]uint32
	slots := s.latches.Acquire(keys, buf[:0])
	defer s.latches.Release(slots)
	return s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		x := &txn{ctx: ctx, t: t, keys: keys}
		if err := fn(x); err != nil {
			return err
		}
		x.finish()
		return x.err
	})
}

// Get implements backend.Backend: concurrent reads of a region are
// combined into one (readcombine.go).
func (s *Store) Get(ctx context.Context, key []byte) (backend.Value, bool, error) {
	e, ok, shared, err := s.getEntry(ctx, key)
	if err != nil || !ok {
		return backend.Value{}, false, s.wrap(err)
	}
	v, err := decode(e)
	if err == nil && shared {
		// Another caller may hold the same bytes.
		v.Data = bytes.Clone(v.Data)
	}
	return v, err == nil, err
}

// getEntry reads key alone, or in a combined read (shared: the value's
// bytes may be another caller's too).
func (s *Store) getEntry(ctx context.Context, key []byte) (e kvclient.Entry, found, shared bool, err error) {
	if s.noCombineReads {
		e, found, err = s.c.Get(ctx, key)
		return e, found, false, err
	}
	keys := [1][]byte{key}
	got, shared, err := s.readEntries(ctx, keys[:])
	if err != nil {
		return kvclient.Entry{}, false, false, err
	}
	e, found = got[string(key)]
	return e, found, shared, nil
}

// AppendGet implements backend.Backend.
func (s *Store) AppendGet(ctx context.Context, dst, key []byte) (backend.Value, bool, error) {
	e, ok, _, err := s.getEntry(ctx, key)
	if err != nil || !ok {
		return backend.Value{}, false, s.wrap(err)
	}
	v, err := decode(e)
	if err != nil {
		return backend.Value{}, false, err
	}
	v.Data = append(dst, v.Data...)
	return v, true, nil
}

// MultiGet implements backend.Backend: one snapshot for all keys (a few
// keys of one region combined with other reads of it, readcombine.go).
func (s *Store) MultiGet(ctx context.Context, keys [][]byte) ([]backend.Value, []bool, error) {
	got, shared, err := s.readEntries(ctx, keys)
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	vals, found := make([]backend.Value, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		e, ok := got[string(k)]
		if !ok {
			continue
		}
		if vals[i], err = decode(e); err != nil {
			return nil, nil, err
		}
		if shared {
			vals[i].Data = bytes.Clone(vals[i].Data)
		}
		found[i] = true
	}
	return vals, found, nil
}

// Scan implements backend.Backend: one snapshot for the whole scan,
// streamed one store response at a time (at most 256 keys and about 4 MiB
// of values each), so memory stays bounded whatever the values' sizes.
// opts.Limit bounds the keys the stores look at, dead ones included.
func (s *Store) Scan(ctx context.Context, opts backend.ScanOptions, fn func(backend.KeyInfo) bool) ([]byte, error) {
	prefix := opts.Prefix
	if len(prefix) > maxStoredKey {
		return nil, nil // no key is that long
	}
	from := prefix
	if bytes.Compare(opts.Start, prefix) > 0 {
		from = opts.Start
	}
	var decodeErr error
	next, err := s.c.ScanFunc(ctx, from, prefixEnd(prefix),
		kvclient.ScanOptions{MaxVisit: opts.Limit, KeysOnly: opts.KeysOnly},
		func(e kvclient.Entry) bool {
			v := backend.Value{ExpiresAt: e.ExpiresAt}
			if !opts.KeysOnly {
				if v, decodeErr = decode(e); decodeErr != nil {
					return false
				}
			}
			return fn(backend.KeyInfo{Key: e.Key, Value: v})
		})
	if decodeErr != nil {
		return nil, decodeErr
	}
	if err != nil {
		return nil, s.wrap(err)
	}
	return next, nil
}

// prefixEnd is the smallest key greater than every key with prefix p, or
// nil (unbounded) for an empty or all-0xff prefix.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// RandomKey implements backend.Backend: the first key at or after a random
// point of the prefix's range, wrapping around.
func (s *Store) RandomKey(ctx context.Context, prefix []byte) ([]byte, bool, error) {
	var random [8]byte
	_, _ = rand.Read(random[:])
	pivot := append(bytes.Clone(prefix), random[:]...)
	end := prefixEnd(prefix)
	for _, from := range [][]byte{pivot, prefix} {
		var key []byte
		_, err := s.c.ScanFunc(ctx, from, end, kvclient.ScanOptions{Limit: 1, KeysOnly: true}, func(e kvclient.Entry) bool {
			key = e.Key
			return false
		})
		if err != nil {
			return nil, false, s.wrap(err)
		}
		if key != nil {
			return key, true, nil
		}
	}
	return nil, false, nil
}

// Stats implements backend.Backend by counting the database's live keys,
// without their values: DBSIZE costs a scan of the database's keys here,
// unlike in Redis.
func (s *Store) Stats(ctx context.Context, db uint32) (backend.Stats, error) {
	var st backend.Stats
	_, err := s.Scan(ctx, backend.ScanOptions{Prefix: keyspace.Prefix(db), KeysOnly: true}, func(ki backend.KeyInfo) bool {
		st.Keys++
		if ki.Value.ExpiresAt != 0 {
			st.Expires++
		}
		return true
	})
	return st, err
}

// Keyspace implements backend.Backend with one keys-only scan of every
// database, at one snapshot.
func (s *Store) Keyspace(ctx context.Context) ([]backend.DBStats, error) {
	var out []backend.DBStats
	// Up to the first sub-key: every database's range, no collection element.
	subStart, _ := keyspace.SubKeyRange(0)
	_, err := s.c.ScanFunc(ctx, keyspace.Prefix(0), subStart, kvclient.ScanOptions{KeysOnly: true}, func(e kvclient.Entry) bool {
		db := keyspace.DB(e.Key)
		if len(out) == 0 || out[len(out)-1].DB != db {
			out = append(out, backend.DBStats{DB: db})
		}
		out[len(out)-1].Keys++
		if e.ExpiresAt != 0 {
			out[len(out)-1].Expires++
		}
		return true
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	return out, nil
}

// FlushAll implements backend.Backend by deleting every database's key
// range region by region, each region in one raft command applied by every
// replica (kvclient.DeleteRange): its cost does not grow with the number
// of keys. As FLUSHALL in a Redis Cluster, it is not atomic across regions:
// another client may see some regions emptied and others not yet, and a
// write that commits while it runs may survive it. The format record (the
// empty key, below every database) stays.
//
// A failure part way may have emptied some regions already, so it is never
// reported as "nothing was written": it is undetermined, and the client may
// run FLUSHALL again.
func (s *Store) FlushAll(ctx context.Context) error {
	return s.deleteRange(ctx, keyspace.Prefix(0), nil)
}

// FlushDB implements backend.Backend as FlushAll does, over one database's
// range.
func (s *Store) FlushDB(ctx context.Context, db uint32) error {
	if err := s.deleteRange(ctx, keyspace.Prefix(db), keyspace.End(db)); err != nil {
		return err
	}
	// The database's collections' elements: unreachable once their metadata
	// records are gone, deleted for their space.
	start, end := keyspace.SubKeyRange(db)
	return s.deleteRange(ctx, start, end)
}

func (s *Store) deleteRange(ctx context.Context, start, end []byte) error {
	err := s.c.DeleteRange(ctx, start, end)
	if err == nil || errors.Is(err, kvclient.ErrClosed) {
		return s.wrap(err)
	}
	return fmt.Errorf("%w: flush stopped part way, some regions may be emptied already: %v", backend.ErrUndetermined, err)
}

// errSwapDB is SWAPDB's refusal: the stored key carries the database, so a
// swap would rewrite both databases, which one transaction cannot do for
// databases of any size, and which would not be atomic otherwise.
var errSwapDB = fmt.Errorf("%w: SWAPDB is not supported by the raft backend (it would rewrite both databases, not atomically)", backend.ErrNotSupported)

// SwapDB implements backend.Backend: refused (errSwapDB).
func (s *Store) SwapDB(context.Context, uint32, uint32) error { return errSwapDB }

// Sync implements backend.Backend. A cluster write is durable when its
// commit returns (raft fsyncs the log on a majority first), so there is
// nothing left to do.
func (s *Store) Sync(context.Context) error { return nil }

// Close implements backend.Backend.
func (s *Store) Close() error {
	if s.reclaim != nil {
		s.reclaim.stop()
	}
	s.c.Close()
	return nil
}

// wrap maps the client's errors onto the backend's, which the command
// layer turns into replies.
func (s *Store) wrap(err error) error {
	if err == nil {
		// Before tooLarge, whose address errors.As takes: declared first,
		// it is on the heap for every command, failed or not.
		return nil
	}
	var tooLarge *kvclient.TooLargeError
	switch {
	case errors.As(err, new(*tooLargeError)):
		return err
	case errors.As(err, &tooLarge) && tooLarge.What == "transaction":
		return &tooLargeError{fmt.Sprintf("one command writes %d bytes, over the raft backend's limit of %d bytes", tooLarge.Size, tooLarge.Limit)}
	case errors.As(err, &tooLarge):
		return errTooLarge(tooLarge.What, tooLarge.Size, tooLarge.Limit)
	case errors.Is(err, kvclient.ErrTooLarge):
		// A store refused a request as too large: the limits above keep
		// the gateway's own requests below that.
		return &tooLargeError{"request too large for the cluster: " + err.Error()}
	case errors.Is(err, kvclient.ErrClosed):
		return fmt.Errorf("%w: %v", backend.ErrClosed, err)
	case errors.Is(err, kvclient.ErrCommitUndetermined):
		return fmt.Errorf("%w: %v", backend.ErrUndetermined, err)
	case errors.Is(err, kvclient.ErrRegionUnavailable):
		return fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
	case errors.Is(err, kvclient.ErrDataNotAvailable):
		// The command stalled past the GC life time: its snapshot is
		// gone. Nothing was written; a retry reads afresh.
		return fmt.Errorf("%w (the command's snapshot fell below the GC safe point; retry): %v", backend.ErrUnavailable, err)
	case kvclient.IsRetryable(err):
		return fmt.Errorf("%w: %v", backend.ErrConflict, err)
	}
	return err
}
