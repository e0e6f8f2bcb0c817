// Package backend defines the storage contract every Redis command is written against.
//
// A command reads the keys it names, computes, and writes back through one Txn; the
// backend makes the whole read-modify-write atomic. Two implementations exist or are
// planned: embedded (a local Pebble store, per-key latches) and raft (a Percolator
// transaction against the cluster). Because the raft backend retries a transaction on
// a write conflict, an Update callback must be free of side effects other than calls
// on its Txn: it may run more than once.
package backend

import (
	"context"
	"errors"
	"expvar"
)

// Type is the Redis type of a stored value. The byte is stored with every
// value; a collection's value is its metadata record (keyspace.Meta) and its
// elements are sub-keys (docs/architecture.md, "Collections").
type Type byte

// Value types, persisted: never renumber (Kvrocks' numbers).
const (
	TypeString Type = 1
	TypeHash   Type = 2
	TypeList   Type = 3
	TypeSet    Type = 4
	TypeZSet   Type = 5
)

// String returns the name TYPE replies with.
func (t Type) String() string {
	switch t {
	case TypeString:
		return "string"
	case TypeHash:
		return "hash"
	case TypeList:
		return "list"
	case TypeSet:
		return "set"
	case TypeZSet:
		return "zset"
	default:
		return "none"
	}
}

// IsCollection reports whether t's values are metadata records with
// sub-keys.
func (t Type) IsCollection() bool { return t >= TypeHash && t <= TypeZSet }

// Value is a stored Redis value with its metadata.
type Value struct {
	Type Type
	// ExpiresAt is the absolute expiry in Unix milliseconds; 0 means no expiry.
	ExpiresAt int64
	Data      []byte
}

// Head is what a command can know of a stored value without its data: EXISTS,
// TYPE, TTL, STRLEN and DEL need no more, and must not copy a 512 MB value to
// learn that it exists.
type Head struct {
	Type Type
	// ExpiresAt is as in Value.
	ExpiresAt int64
	// Len is the data's length in bytes.
	Len int64
}

// Expired reports whether h is past its expiry at nowMs.
func (h Head) Expired(nowMs int64) bool { return h.ExpiresAt != 0 && h.ExpiresAt <= nowMs }

// Expired reports whether v is past its expiry at nowMs.
func (v Value) Expired(nowMs int64) bool { return v.ExpiresAt != 0 && v.ExpiresAt <= nowMs }

// Txn is the view one atomic command runs against. Reads see the latest committed
// state plus the Txn's own writes; expired values read as absent. Keys and values
// passed in are retained until the Txn commits, so callers must not modify them.
type Txn interface {
	// Get returns the live value of key.
	Get(key []byte) (v Value, ok bool, err error)
	// Head returns the live value's Head without reading its data where the
	// backend can (a later Get of the key still reads it).
	Head(key []byte) (h Head, ok bool, err error)
	// Set stores v under key, replacing any previous value and its expiry.
	Set(key []byte, v Value)
	// Delete removes key; deleting an absent key is a no-op.
	Delete(key []byte)
	// Now is the clock, in Unix milliseconds, the Txn judges expiry by. Commands use
	// it so that "expired" means the same thing to them and to the backend.
	Now() int64
}

// SubTxn is implemented by every backend's Txn: the sub-keys of collections
// (keyspace.SubKey), read and written inside the transaction of the command
// that names their Redis key. Update's key list names Redis keys (metadata
// records) only: a sub-key is isolated by its Redis key's latch (embedded)
// or by the transaction's write of the metadata (raft, which every
// transaction writing sub-keys makes), never latched by itself. Sub-key
// values have no type or expiry: the metadata record holds them.
type SubTxn interface {
	// GetSub returns the value of sub-key sub.
	GetSub(sub []byte) (val []byte, ok bool, err error)
	// GetSubs reads subs as GetSub would, in one request where the backend
	// makes one per read (the raft backend: a batch read rather than a
	// round trip per element): vals[i], found[i] are subs[i]'s.
	GetSubs(subs [][]byte) (vals [][]byte, found []bool, err error)
	// SetSub stores val under sub. sub is copied (the caller may reuse it
	// once SetSub returns); val may be kept until the transaction ends.
	SetSub(sub, val []byte)
	// DeleteSub removes sub (copied, as SetSub's).
	DeleteSub(sub []byte)
	// DeleteSubRange removes every sub-key in [start, end): reclaiming a
	// dead version (keyspace.VersionRange). The embedded backend does it in
	// the command's batch; the raft backend refuses it inside a transaction
	// (ErrNotSupported) and reclaims in the background instead.
	DeleteSubRange(start, end []byte) error
	// ScanSub calls fn for the sub-keys in [start, end) in key order, the
	// transaction's own writes included, until fn returns false or limit
	// sub-keys were seen (limit <= 0: no limit). key and val are valid only
	// during the call.
	ScanSub(start, end []byte, limit int, fn func(key, val []byte) bool) error
	// NewVersion returns a version for a new incarnation of the collection
	// at key (a stored key the Update names): one that no sub-key of key
	// alive or awaiting reclamation carries, so the new incarnation starts
	// empty. The raft backend gives the transaction's start timestamp
	// (unique and increasing cluster-wide); the embedded backend a clock-based
	// number above the key's committed version, expired or not.
	NewVersion(key []byte) (uint64, error)
}

// SubKeysStepped counts the sub-keys the backends' sub-key scans and
// seeks stepped over, deleted ones included (published as the expvar
// nokv_subkeys_stepped): the embedded backend's Pebble iterators' internal
// seeks and steps (a deletion in the memtable or a not yet compacted
// table is one step), the raft backend's keys the stores' MVCC scans
// looked at (a deleted key not yet collected is one). It is what a scan
// really costs beyond what it returns: the sorted-set pops' bound
// (command/zmarks.go) is judged by it.
var SubKeysStepped = expvar.NewInt("nokv_subkeys_stepped")

// SubIterTxn is implemented by a SubTxn that can hold one iterator over
// a sub-key range for many seeks, forward and back: the embedded backend,
// where a seek on an open iterator costs far less than a new ScanSub.
// The raft backend's store scans forward only and every read is a request
// anyway, so callers must do without it (command/randpick.go walks with
// ScanSub there).
type SubIterTxn interface {
	// NewSubIter opens an iterator over the sub-keys in [start, end), the
	// transaction's writes up to now included. The caller must not write
	// sub-keys while it is open, and must close it.
	NewSubIter(start, end []byte) (SubIterator, error)
}

// SubIterator seeks in the range of a SubIterTxn's NewSubIter.
type SubIterator interface {
	// SeekGE calls fn for the sub-keys at or after key and below end (nil:
	// the range's end), in order, until fn returns false or limit were
	// seen (limit <= 0: no limit). key and val are valid during the call.
	SeekGE(key, end []byte, limit int, fn func(key, val []byte) bool) error
	// LastBelow returns the last sub-key at or after lower and below upper
	// (nil: the range's end), copied.
	LastBelow(lower, upper []byte) (key []byte, ok bool, err error)
	// SeekLT calls fn for the sub-keys below upper (nil: the range's end)
	// and at or after lower, in reverse order, until fn returns false or
	// limit were seen (limit <= 0: no limit). key and val are valid during
	// the call.
	SeekLT(lower, upper []byte, limit int, fn func(key, val []byte) bool) error
	Close() error
}

// WriteOptions tunes one Update.
type WriteOptions struct {
	// DeferSync lets the backend acknowledge the write before it is durable; the
	// caller promises to call Sync before it replies to the client. The gateway sets
	// it for every command of a pipeline but the last, so one fsync covers the lot.
	DeferSync bool
	// SubKeys says fn may use the Txn's SubTxn calls (a collection
	// command). Both backends serve sub-keys either way, and both combine
	// such commands with others (the embedded backend's event-loop batch,
	// the raft backend's combined transactions); the raft backend counts
	// them apart in /debug/vars.
	SubKeys bool
	// ReadAhead says fn may be run once more, ahead of its real run, with
	// everything it wrote undone and its sub-key reads answered with a
	// guess (present, empty), so that the backend learns which sub-keys it
	// will read: the raft backend then reads those of all the commands
	// combined in one transaction in one batch, before it runs them
	// (combine.go, "Read ahead"). Only for a fn whose effects outside the
	// transaction are its captured results, which its real run sets again
	// (no executor caches: the pops' batches are taken as they are read,
	// unless the fn asks AheadTxn and only looks at them in a run ahead),
	// and which names one key. The embedded backend ignores it.
	ReadAhead bool
}

// AheadTxn is implemented by a transaction that may run a command's fn
// ahead of its real run (WriteOptions.ReadAhead): RunningAhead tells the
// fn that this run's writes will be undone and its sub-key reads answered
// with a guess, so that it may look at an executor cache (SPOP's kept
// sample) to name the sub-keys its real run will read, without taking
// anything from it.
type AheadTxn interface {
	RunningAhead() bool
}

// KeyInfo describes one key met by Scan.
type KeyInfo struct {
	Key   []byte
	Value Value
}

// ScanOptions shapes one Scan.
type ScanOptions struct {
	// Prefix restricts the scan to keys that start with it.
	Prefix []byte
	// Start is the key to resume from (inclusive); nil starts at Prefix.
	Start []byte
	// Limit bounds the keys visited, expired and deleted ones included, so
	// that one call's work is bounded; <= 0 means no limit.
	Limit int
	// KeysOnly asks for keys and expiries without values: KeyInfo.Value then
	// has no Data and its Type may be 0. KEYS, DBSIZE and FLUSHALL need no
	// more, and a page of large values would otherwise travel for nothing.
	KeysOnly bool
}

// Stats is what INFO keyspace reports.
type Stats struct {
	Keys    int64 // keys stored, including expired keys not yet swept (as Redis counts)
	Expires int64 // of those, keys with an expiry
}

// DBStats is one database's line of INFO keyspace.
type DBStats struct {
	DB uint32
	Stats
}

// Backend is a durable, transactional key-value store of Redis values.
//
// Keys are stored keys (package keyspace): a logical database's prefix and
// the Redis key. A backend reads the database from the prefix where it keeps
// per-database state (counters).
//
// All methods are safe for concurrent use. After Close every method returns
// ErrClosed.
type Backend interface {
	// Update runs fn atomically. keys must name every key fn touches: the embedded
	// backend latches them, so concurrent Updates on the same keys serialise. If fn
	// returns an error nothing is written and Update returns that error. fn may be
	// called more than once.
	Update(ctx context.Context, opts WriteOptions, keys [][]byte, fn func(Txn) error) error
	// Get returns the live value of key.
	Get(ctx context.Context, key []byte) (Value, bool, error)
	// AppendGet is Get, except that the value's bytes are appended to dst and
	// v.Data aliases the result: a caller with a reusable buffer reads without
	// allocating.
	AppendGet(ctx context.Context, dst, key []byte) (v Value, ok bool, err error)
	// MultiGet returns the live values of keys read at one consistent point;
	// found[i] tells whether keys[i] exists.
	MultiGet(ctx context.Context, keys [][]byte) (vals []Value, found []bool, err error)
	// Heads is MultiGet without the data: a key named many times is read once,
	// and no value is copied where the backend can avoid it.
	Heads(ctx context.Context, keys [][]byte) (heads []Head, found []bool, err error)
	// Scan calls fn for live keys in key order, as opts describes, until fn
	// returns false or opts.Limit keys were visited. It returns the key to resume
	// from, or nil when the key space is exhausted.
	Scan(ctx context.Context, opts ScanOptions, fn func(KeyInfo) bool) (next []byte, err error)
	// RandomKey returns a live key with prefix chosen at random, or ok=false
	// when none exists.
	RandomKey(ctx context.Context, prefix []byte) (key []byte, ok bool, err error)
	// Stats returns database db's key counters, for DBSIZE.
	Stats(ctx context.Context, db uint32) (Stats, error)
	// Keyspace returns the counters of every database holding keys, in
	// database order, for INFO keyspace.
	Keyspace(ctx context.Context) ([]DBStats, error)
	// FlushDB deletes every key of database db, FlushAll of every database.
	// The embedded backend does it atomically; the raft backend deletes
	// region by region (not atomic across regions, as in Redis Cluster): a
	// write racing the flush may survive it.
	FlushDB(ctx context.Context, db uint32) error
	FlushAll(ctx context.Context) error
	// SwapDB exchanges the contents of databases a and b atomically, or
	// fails with ErrNotSupported.
	SwapDB(ctx context.Context, a, b uint32) error
	// Sync makes every write acknowledged so far durable.
	Sync(ctx context.Context) error
	// Close releases the store. It waits for in-flight calls to finish.
	Close() error
}

// ValueSizeChecker is implemented by a backend that stores values smaller
// than proto-max-bulk-len (the raft backend). A command that builds a value
// from a small request (SETRANGE at a large offset, APPEND) asks first, so
// that it never builds what the backend would refuse anyway.
type ValueSizeChecker interface {
	// CheckValueSize returns the ErrTooLarge a Set of an n-byte value would
	// fail with, or nil.
	CheckValueSize(n int64) error
}

// ReadLocker is implemented by a Txn whose reads are not isolated by
// themselves: the raft backend's transactions are snapshot isolated, so two
// of them that each read what the other writes can both commit. LockRead
// makes the commit fail with a write conflict (and Update run fn again) if
// another transaction committed a write of key after this one's snapshot,
// without writing key: EXEC and WATCH use it for the keys they read, which
// makes a MULTI/EXEC block serializable. The embedded backend's latches
// isolate every key an Update names, so it needs none.
type ReadLocker interface {
	LockRead(key []byte)
}

// Batcher is implemented by a backend that can gather the writes of many
// commands into one atomic commit. The gateway's event loop runs every
// command of an iteration under one batch context and syncs once at the
// end: one commit, one WAL record and one fsync, instead of one commit per
// command.
type Batcher interface {
	// Batch returns a context for one caller that runs commands one at a
	// time. Updates under it buffer their writes, which the same context's
	// reads see; they are committed, all or nothing, by Sync (or earlier,
	// when a command needs the whole store's view, such as a scan). The
	// caller makes no reply before Sync returns: reads under it do not wait
	// for durability themselves. Writers without the context wait while a
	// batch holds writes, so the caller must Sync promptly, and before it
	// stops.
	Batch(ctx context.Context) context.Context
}

// Errors the command layer translates into Redis replies.
var (
	// ErrNotSupported means the backend cannot run the command; the error
	// wrapping it says why.
	ErrNotSupported = errors.New("backend: not supported")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("backend: closed")
	// ErrLocked means another process holds the store's data directory.
	ErrLocked = errors.New("backend: data directory is locked by another process")
	// ErrUnavailable means the cluster could not serve the request within
	// its retries (no leader, stores down, PD unreachable). Nothing was
	// written.
	ErrUnavailable = errors.New("backend: cluster unavailable")
	// ErrConflict means the command kept conflicting with concurrent
	// writers and gave up. Nothing was written; the client may retry.
	ErrConflict = errors.New("backend: too many write conflicts")
	// ErrUndetermined means the write's commit was sent but its outcome is
	// unknown (a store or the network failed at that moment): it may or
	// may not have taken effect.
	ErrUndetermined = errors.New("backend: write outcome unknown")
	// ErrTooLarge means a value, or a whole request, is larger than the
	// backend can store or give back (the raft backend's entry and message
	// caps). Nothing was written. Wrap it with the size and the limit.
	ErrTooLarge = errors.New("backend: too large")
)
