package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/nokv/nokv/pkg/latch"
	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// SyncPolicy says when writes reach the disk.
type SyncPolicy string

// Sync policies, named after Redis's appendfsync settings.
const (
	// SyncAlways fsyncs before a write is acknowledged.
	SyncAlways SyncPolicy = "always"
	// SyncEverySec fsyncs once a second: a crash of the machine loses at most about
	// a second of writes; a crash of the process alone loses at most what Pebble has
	// not yet handed to the OS.
	SyncEverySec SyncPolicy = "everysec"
	// SyncNo never fsyncs explicitly and leaves it to the OS.
	SyncNo SyncPolicy = "no"
)

// ParseSyncPolicy validates a policy name.
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch p := SyncPolicy(s); p {
	case SyncAlways, SyncEverySec, SyncNo:
		return p, nil
	}
	return "", fmt.Errorf("sync policy %q: want always, everysec or no", s)
}

// Options configures a Store.
type Options struct {
	Dir  string
	Sync SyncPolicy
	// CacheSize is Pebble's block cache in bytes (0: DefaultBlockCacheBytes()).
	CacheSize int64
	// KeyCacheBytes bounds the key cache in front of Pebble, its entries
	// and index (0: DefaultKeyCacheBytes(); at least ~68 KiB).
	KeyCacheBytes int64
	// SweepInterval is how often expired keys are deleted (0: 100ms, like Redis hz 10).
	SweepInterval time.Duration
	// SyncWindow is how long, after an fsync of the WAL, the next one waits for
	// more writes to join it while other writers are waiting for an fsync too
	// (0: DefaultSyncWindow; negative: never wait). With many clients it makes
	// each fsync cover more writes, which saves CPU and raises throughput; a lone
	// writer never waits.
	SyncWindow time.Duration
	// MaxCommandBytes bounds what one command may write (0:
	// DefaultMaxCommandBytes); see DefaultMaxCommandBytes.
	MaxCommandBytes int64
	// Now is the clock in Unix milliseconds (nil: wall clock). Tests inject one.
	Now    func() int64
	Logger *slog.Logger
}

// DefaultMaxCommandBytes is the default Options.MaxCommandBytes. A Pebble
// batch must stay under 4 GiB (past it Pebble panics), and a command's
// writes share a batch with at most groupFlushBytes of others'; each key is
// written twice (data and expiry index) with its value once.
const DefaultMaxCommandBytes = 2 << 30

// memTableBytes is Pebble's MemTableSize (see Open).
const memTableBytes = 64 << 20

// DefaultSyncWindow is the default Options.SyncWindow. It was tuned with
// scripts/bench-embedded.sh (50 clients, one SET each in flight): on a disk
// whose fdatasync takes ~150 µs, 50 µs gave ~10% more SETs/s than 150 µs
// (the gateway is CPU-bound there, so a longer wait only adds latency) and
// the same pipelined rate.
const DefaultSyncWindow = 50 * time.Microsecond

// Store is the embedded backend. See the package doc for the layout.
type Store struct {
	db      *pebble.DB
	opts    Options
	latches *latch.Latches
	cache   *cache
	now     func() int64
	log     *slog.Logger

	// mu is held shared by every operation and exclusively by FlushAll and Close:
	// FlushAll must not interleave with an Update that computed its counter deltas
	// against the keys being wiped.
	mu     sync.RWMutex
	closed bool
	// writeMu is held shared by every writer outside a group, and
	// exclusively by a group while it holds writes (see group). It is taken
	// before mu.
	writeMu sync.RWMutex

	// unsynced counts commits made without fsync; synced is the value of unsynced
	// that the last Sync covered. Sync skips the fsync when nothing is new.
	unsynced atomic.Uint64
	synced   atomic.Uint64
	// filters are the negative-lookup filters of hot collections' elements
	// (filter.go).
	filters *subFilters
	// lastVersion is the last collection version handed out (NewVersion).
	lastVersion atomic.Uint64
	// syncWaiters counts callers waiting for an fsync of the WAL.
	syncWaiters atomic.Int64
	// applying counts writes between entering Pebble and being either fsynced
	// (sync path) or counted in unsynced (deferred path). Together with
	// unsynced > synced it tells a reader that what it saw may not be durable yet.
	applying atomic.Int64

	expiredKeys atomic.Int64 // keys the sweeper deleted, for INFO

	stop chan struct{}
	wg   sync.WaitGroup
}

var (
	_ backend.Backend = (*Store)(nil)
	_ backend.Batcher = (*Store)(nil)
)

var errCorruptCounter = errors.New("embedded: corrupt counter")

// Open opens (creating if needed) the store in opts.Dir. A directory held by another
// process yields an error wrapping backend.ErrLocked.
func Open(opts Options) (*Store, error) {
	if opts.Sync == "" {
		opts.Sync = SyncAlways
	}
	if _, err := ParseSyncPolicy(string(opts.Sync)); err != nil {
		return nil, err
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultBlockCacheBytes()
	}
	if opts.KeyCacheBytes <= 0 {
		opts.KeyCacheBytes = DefaultKeyCacheBytes()
	}
	if opts.MaxCommandBytes <= 0 {
		opts.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = 100 * time.Millisecond
	}
	if opts.SyncWindow == 0 {
		opts.SyncWindow = DefaultSyncWindow
	}
	if opts.Now == nil {
		opts.Now = func() int64 { return time.Now().UnixMilli() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", opts.Dir, err)
	}
	if !claimDir(opts.Dir) {
		return nil, fmt.Errorf("open %s: %w", opts.Dir, backend.ErrLocked)
	}
	lock, err := pebble.LockDirectory(opts.Dir, vfs.Default)
	if err != nil {
		releaseDir(opts.Dir)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("open %s: %w", opts.Dir, backend.ErrLocked)
		}
		return nil, fmt.Errorf("lock data directory %s: %w", opts.Dir, err)
	}
	kc, err := newCache(opts.KeyCacheBytes)
	if err != nil {
		_ = lock.Close()
		releaseDir(opts.Dir)
		return nil, err
	}
	s := &Store{
		cache:   kc,
		filters: newSubFilters(defaultFilterBytes),
		opts:    opts,
		latches: latch.New(),
		now:     opts.Now,
		log:     opts.Logger,
		stop:    make(chan struct{}),
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:  cache,
		Lock:   lock,
		Merger: counterMerger,
		// 64 MiB, as CockroachDB and RocksDB's write_buffer_size. The
		// memtable is the write buffer in front of the LSM: with random
		// keys every flushed sstable overlaps all of Lbase, so each
		// L0->Lbase compaction rewrites Lbase whole, and its cost per
		// write falls as the memtable grows. At 10M keys 8 MiB spent a
		// third of a SET's CPU compacting; 64 MiB cut CPU per SET by a
		// quarter and costs nothing measurable at 100k keys (the skiplist
		// is a few levels deeper). Pebble starts small and doubles up to
		// it, so a small store's memtable stays small; a full one costs
		// its 64 MiB of RSS, and each WAL is preallocated to 1.1x it on disk.
		MemTableSize: memTableBytes,
		// Bloom filters spare reads of keys an sstable does not hold (every
		// SET of a new key reads it first, for the key counters).
		Levels: []pebble.LevelOptions{{FilterPolicy: bloom.FilterPolicy(10)}},
		Logger: pebbleLogger{opts.Logger},
		// The WAL is our durability; writes with Sync=false still reach the OS soon.
		BytesPerSync: 1 << 20,
		// Pebble asks after each fsync how long to hold off the next one.
		WALMinSyncInterval: s.syncWindow,
	}
	popts.EnsureDefaults()
	db, err := pebble.Open(opts.Dir, popts)
	if err != nil {
		_ = lock.Close()
		kc.close()
		releaseDir(opts.Dir)
		return nil, fmt.Errorf("open pebble in %s: %w", opts.Dir, err)
	}
	s.db = db
	// Pebble holds its own reference to the lock and drops it in Close; ours goes now.
	_ = lock.Close()
	if err := s.openFormat(); err != nil {
		_ = db.Close()
		kc.close()
		releaseDir(opts.Dir)
		return nil, fmt.Errorf("open %s: %w", opts.Dir, err)
	}
	s.wg.Add(1)
	go s.sweepLoop()
	if opts.Sync == SyncEverySec {
		s.wg.Add(1)
		go s.syncLoop()
	}
	return s, nil
}

// syncWindow is Pebble's WALMinSyncInterval, asked right after each fsync: when
// others than the writers that fsync released are waiting for one, hold the next
// fsync back briefly so that the writers being released, whose clients are about
// to send more, can join it. A lone writer (one client) never waits.
func (s *Store) syncWindow() time.Duration {
	if s.opts.SyncWindow > 0 && s.syncWaiters.Load() > 1 {
		return s.opts.SyncWindow
	}
	return 0
}

// logSync writes an empty WAL record and waits for an fsync covering it, and so
// every commit before it.
func (s *Store) logSync() error {
	s.syncWaiters.Add(1)
	defer s.syncWaiters.Add(-1)
	return s.db.LogData(nil, pebble.Sync)
}

// enter admits an operation; it returns false once the store is closed.
func (s *Store) enter() bool {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return false
	}
	return true
}

func (s *Store) leave() { s.mu.RUnlock() }

// Now returns the store's clock in Unix milliseconds.
func (s *Store) Now() int64 { return s.now() }

// Get implements backend.Backend.
func (s *Store) Get(ctx context.Context, key []byte) (backend.Value, bool, error) {
	return s.AppendGet(ctx, nil, key)
}

// AppendGet implements backend.Backend.
func (s *Store) AppendGet(ctx context.Context, dst, key []byte) (backend.Value, bool, error) {
	g := groupOf(ctx)
	if g != nil {
		// Exclusive, the group may fill the cache with what it reads (and
		// must take writeMu before mu).
		g.hold(s)
	}
	if !s.enter() {
		return backend.Value{}, false, backend.ErrClosed
	}
	defer s.leave()
	if g != nil {
		// The group syncs before replying: no wait for durability here.
		if e, hit := g.lookup(key); hit {
			return s.liveCopy(e, dst)
		}
		if st, hit := s.cache.get(key, dst); hit {
			return s.live(st)
		}
		v, ok, err := getStored(s.db, dst, key)
		if err != nil {
			return backend.Value{}, false, err
		}
		s.cache.put(key, stored{v: v, found: ok})
		if !ok || (v.ExpiresAt != 0 && v.Expired(s.now())) {
			return backend.Value{}, false, nil
		}
		return v, true, nil
	}
	v, ok, err := s.getLive(s.db, dst, key)
	if err == nil {
		err = s.awaitDurable()
	}
	return v, ok, err
}

// liveCopy returns e's state if live, its bytes appended to dst (copied
// even when dst is nil: entries are shared).
func (s *Store) liveCopy(e *cacheEntry, dst []byte) (backend.Value, bool, error) {
	if !e.found || (e.v.ExpiresAt != 0 && e.v.Expired(s.now())) {
		return backend.Value{}, false, nil
	}
	v := e.v
	if dst == nil {
		v.Data = bytes.Clone(v.Data)
	} else {
		v.Data = append(dst, v.Data...)[len(dst):]
	}
	return v, true, nil
}

// live returns st if it is a live value.
func (s *Store) live(st stored) (backend.Value, bool, error) {
	if !st.found || (st.v.ExpiresAt != 0 && st.v.Expired(s.now())) {
		return backend.Value{}, false, nil
	}
	return st.v, true, nil
}

// getLive reads key's live value from the cache or Pebble, reading the clock only
// for a value with an expiry; Data is appended to dst (see getStored).
func (s *Store) getLive(r reader, dst, key []byte) (backend.Value, bool, error) {
	if st, hit := s.cache.get(key, dst); hit {
		return s.live(st)
	}
	v, ok, err := getStored(r, dst, key)
	if err != nil {
		return backend.Value{}, false, err
	}
	if !ok || (v.ExpiresAt != 0 && v.Expired(s.now())) {
		return backend.Value{}, false, nil
	}
	return v, true, nil
}

// reader is what both *pebble.DB and *pebble.Snapshot offer.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// get reads key's live value; the result's Data is a private copy.
func (s *Store) get(r reader, key []byte, now int64) (backend.Value, bool, error) {
	v, ok, err := getStored(r, nil, key)
	if err != nil || !ok || v.Expired(now) {
		return backend.Value{}, false, err
	}
	return v, true, nil
}

// getStored reads key's stored value, expired or not. Data is appended to dst, so
// with a nil dst it is a private copy. Pebble keeps the key it is given, so the
// encoded key cannot live on the stack: it is built in dst's spare room and the
// value then moved over it, which spares an allocation per read.
func getStored(r reader, dst, key []byte) (backend.Value, bool, error) {
	start := len(dst)
	buf := appendDataKey(dst, key)
	raw, closer, err := r.Get(buf[start:])
	if errors.Is(err, pebble.ErrNotFound) {
		return backend.Value{}, false, nil
	}
	if err != nil {
		return backend.Value{}, false, fmt.Errorf("get: %w", err)
	}
	v, err := decodeValue(raw)
	if err != nil {
		_ = closer.Close()
		return backend.Value{}, false, fmt.Errorf("key %q: %w", key, err)
	}
	buf = append(buf, v.Data...)
	_ = closer.Close()
	n := copy(buf[start:], buf[start+1+len(key):])
	v.Data = buf[start : start+n]
	return v, true, nil
}

// getStoredHead reads key's stored head, expired or not, without copying its
// data.
func getStoredHead(r reader, key []byte) (backend.Head, bool, error) {
	var buf [64]byte
	raw, closer, err := r.Get(appendDataKey(buf[:0], key))
	if errors.Is(err, pebble.ErrNotFound) {
		return backend.Head{}, false, nil
	}
	if err != nil {
		return backend.Head{}, false, fmt.Errorf("get: %w", err)
	}
	defer closer.Close()
	v, err := decodeValue(raw)
	if err != nil {
		return backend.Head{}, false, fmt.Errorf("key %q: %w", key, err)
	}
	return headOf(v), true, nil
}

// Heads implements backend.Backend.
func (s *Store) Heads(ctx context.Context, keys [][]byte) ([]backend.Head, []bool, error) {
	if !s.enter() {
		return nil, nil, backend.ErrClosed
	}
	defer s.leave()
	heads := make([]backend.Head, len(keys))
	found := make([]bool, len(keys))
	g := groupOf(ctx)
	var r reader = s.db
	if g == nil || !g.holding {
		// No group holds the writers off: read a snapshot. (While one
		// does, the store itself is a consistent view.)
		snap := s.db.NewSnapshot()
		defer snap.Close()
		r = snap
	}
	now := s.now()
	// A key named many times is read once.
	var seen map[string]int
	if len(keys) > 1 {
		seen = make(map[string]int, min(len(keys), 1024))
	}
	for i, k := range keys {
		if j, ok := seen[string(k)]; ok {
			heads[i], found[i] = heads[j], found[j]
			continue
		}
		if seen != nil {
			seen[string(k)] = i
		}
		var (
			h   backend.Head
			ok  bool
			err error
		)
		if e, hit := g.lookupHeld(k); hit {
			h, ok = headOf(e.v), e.found // the group's writes come first
		} else if h, ok, err = getStoredHead(r, k); err != nil {
			return nil, nil, err
		}
		if ok && !h.Expired(now) {
			heads[i], found[i] = h, true
		}
	}
	if g == nil {
		if err := s.awaitDurable(); err != nil {
			return nil, nil, err
		}
	}
	return heads, found, nil
}

// MultiGet implements backend.Backend.
func (s *Store) MultiGet(ctx context.Context, keys [][]byte) ([]backend.Value, []bool, error) {
	if !s.enter() {
		return nil, nil, backend.ErrClosed
	}
	defer s.leave()
	vals := make([]backend.Value, len(keys))
	found := make([]bool, len(keys))
	if g := groupOf(ctx); g != nil && g.holding {
		// No other writer runs while the group holds writes, so the store
		// itself is a consistent view; the group's writes come first.
		for i, k := range keys {
			var err error
			if e, hit := g.lookup(k); hit {
				vals[i], found[i], err = s.liveCopy(e, nil)
			} else {
				vals[i], found[i], err = s.get(s.db, k, s.now())
			}
			if err != nil {
				return nil, nil, err
			}
		}
		return vals, found, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	now := s.now()
	// A key named many times is read and copied once; its values share it.
	var seen map[string]int
	if len(keys) > 8 {
		seen = make(map[string]int, min(len(keys), 1024))
	}
	for i, k := range keys {
		if j, ok := seen[string(k)]; ok {
			vals[i], found[i] = vals[j], found[j]
			continue
		}
		if seen != nil {
			seen[string(k)] = i
		}
		v, ok, err := s.get(snap, k, now)
		if err != nil {
			return nil, nil, err
		}
		vals[i], found[i] = v, ok
	}
	if groupOf(ctx) != nil {
		return vals, found, nil
	}
	if err := s.awaitDurable(); err != nil {
		return nil, nil, err
	}
	return vals, found, nil
}

// Update implements backend.Backend.
func (s *Store) Update(ctx context.Context, opts backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	if g := groupOf(ctx); g != nil {
		// Sub-key writes included: they join the group's batch too.
		return s.updateGrouped(g, fn)
	}
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if !s.enter() {
		return backend.ErrClosed
	}
	defer s.leave()
	var slotBuf [8]uint32
	slots := s.latches.Acquire(keys, slotBuf[:0])
	// The latches go as soon as the batch is visible (below), or on the way
	// out if fn panics: a leaked latch would wedge every later writer of
	// those keys.
	latched := true
	release := func() {
		if latched {
			latched = false
			s.latches.Release(slots)
		}
	}
	defer release()
	tx := txnPool.Get().(*txn)
	defer tx.release()
	tx.store, tx.latched = s, keys
	b, err := s.prepare(tx, fn)
	if err != nil || b == nil {
		release()
		// The outcome (an error, a condition not met) was decided on what fn read;
		// it must not be reported before that state is durable.
		if derr := s.awaitDurable(); derr != nil && err == nil {
			err = derr
		}
		return err
	}
	defer b.Close()
	s.applying.Add(1)
	defer s.applying.Add(-1)
	// The cache must not show the old state once the batch is visible, and gets
	// the new one before the latches go.
	tx.invalidateCache()
	if s.opts.Sync != SyncAlways || opts.DeferSync {
		err = s.db.Apply(b, pebble.NoSync)
		if err == nil {
			tx.publishCache()
		}
		release()
		if err != nil {
			return fmt.Errorf("commit batch: %w", err)
		}
		s.unsynced.Add(1)
		return nil
	}
	// The batch is visible once applied to the memtable, so the latches can go
	// before the fsync: a later writer of the same keys is ordered after us in the
	// WAL, so its own fsync covers ours. Holding them through the fsync would
	// serialise writers of a hot key at the disk's sync rate.
	s.syncWaiters.Add(1)
	defer s.syncWaiters.Add(-1)
	err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	if err == nil {
		tx.publishCache()
	}
	release()
	if err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	if err := b.SyncWait(); err != nil {
		return fmt.Errorf("sync batch: %w", err)
	}
	return nil
}

// prepare runs fn in tx and turns its writes into a batch; nil means nothing to
// write.
func (s *Store) prepare(tx *txn, fn func(backend.Txn) error) (*pebble.Batch, error) {
	if err := fn(tx); err != nil {
		return nil, err
	}
	if tx.subErr != nil {
		return nil, tx.subErr
	}
	if len(tx.order) == 0 && (tx.sb == nil || tx.sb.Empty()) {
		return nil, nil
	}
	if err := tx.checkSize(); err != nil {
		return nil, err
	}
	// Sub-key writes are already in the txn's indexed batch: the whole-key
	// writes join them there. The caller owns (and closes) what is returned.
	b := tx.sb
	tx.sb = nil
	if b == nil {
		b = s.db.NewBatch()
	}
	if err := tx.fill(b); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// commit applies b according to the sync policy (for callers without latches).
func (s *Store) commit(b *pebble.Batch) error {
	wo := pebble.NoSync
	if s.opts.Sync == SyncAlways {
		wo = pebble.Sync
	}
	if err := s.db.Apply(b, wo); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	if wo == pebble.NoSync {
		s.unsynced.Add(1)
	}
	return nil
}

// awaitDurable is called after a read under SyncAlways: if any write that the read
// may have seen is not yet fsynced, it waits for an fsync covering it. So no client
// is ever told about a write that a crash could still take back; Redis gives the
// same guarantee by sending replies only after its fsync. Without writes in flight
// it costs two atomic loads.
func (s *Store) awaitDurable() error {
	if s.opts.Sync != SyncAlways {
		return nil
	}
	if s.applying.Load() == 0 && s.unsynced.Load() <= s.synced.Load() {
		return nil
	}
	// Everything the read saw is in the WAL already (a batch is written to the WAL
	// before it becomes visible), so a sync record behind it covers it.
	if err := s.logSync(); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	return nil
}

// Sync implements backend.Backend. Under SyncAlways it fsyncs the WAL if any
// deferred write is not yet covered; under the other policies it is a no-op, since
// they promise no durability at reply time.
func (s *Store) Sync(ctx context.Context) error {
	if g := groupOf(ctx); g != nil {
		return s.syncGroup(g)
	}
	if s.opts.Sync != SyncAlways {
		return nil
	}
	if !s.enter() {
		return backend.ErrClosed
	}
	defer s.leave()
	return s.syncWAL()
}

func (s *Store) syncWAL() error {
	target := s.unsynced.Load()
	if s.synced.Load() >= target {
		return nil
	}
	if err := s.logSync(); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	raiseTo(&s.synced, target)
	return nil
}

func (s *Store) syncLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !s.enter() {
				return
			}
			if err := s.syncWAL(); err != nil {
				s.log.Error("everysec fsync failed", "err", err)
			}
			s.leave()
		}
	}
}

// Scan implements backend.Backend.
func (s *Store) Scan(ctx context.Context, opts backend.ScanOptions, fn func(backend.KeyInfo) bool) ([]byte, error) {
	if !s.enter() {
		return nil, backend.ErrClosed
	}
	defer s.leave()
	g, err := s.flushGroup(ctx)
	if err != nil {
		return nil, err
	}
	next, err := s.scan(opts.Prefix, opts.Start, opts.Limit, fn)
	if err == nil && g == nil {
		err = s.awaitDurable()
	}
	return next, err
}

func (s *Store) scan(prefix, start []byte, limit int, fn func(backend.KeyInfo) bool) ([]byte, error) {
	lower := appendDataKey(nil, prefix)
	if bytes.Compare(start, prefix) > 0 {
		lower = appendDataKey(nil, start)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(appendDataKey(nil, prefix))})
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer it.Close()
	now := s.now()
	visited := 0
	for it.First(); it.Valid(); it.Next() {
		if limit > 0 && visited >= limit {
			return bytes.Clone(it.Key()[1:]), nil
		}
		visited++
		v, err := decodeValue(it.Value())
		if err != nil {
			return nil, err
		}
		if v.Expired(now) {
			continue
		}
		if !fn(backend.KeyInfo{Key: it.Key()[1:], Value: v}) {
			if !it.Next() {
				return nil, it.Error()
			}
			return bytes.Clone(it.Key()[1:]), nil
		}
	}
	return nil, it.Error()
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// RandomKey implements backend.Backend: it seeks to a random point of the key space
// and takes the first live key after it, wrapping around once.
func (s *Store) RandomKey(ctx context.Context, prefix []byte) ([]byte, bool, error) {
	if !s.enter() {
		return nil, false, backend.ErrClosed
	}
	defer s.leave()
	g, err := s.flushGroup(ctx)
	if err != nil {
		return nil, false, err
	}
	k, ok, err := s.randomKey(prefix)
	if err == nil && g == nil {
		err = s.awaitDurable()
	}
	return k, ok, err
}

func (s *Store) randomKey(prefix []byte) ([]byte, bool, error) {
	lower := appendDataKey(nil, prefix)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, false, fmt.Errorf("randomkey: %w", err)
	}
	defer it.Close()
	now := s.now()
	seek := lower
	for i := 0; i < 8; i++ {
		seek = append(seek, byte(rand.IntN(256)))
	}
	for _, first := range []bool{false, true} {
		valid := false
		if first {
			valid = it.First()
		} else {
			valid = it.SeekGE(seek)
		}
		for ; valid; valid = it.Next() {
			v, err := decodeValue(it.Value())
			if err != nil {
				return nil, false, err
			}
			if !v.Expired(now) {
				return bytes.Clone(it.Key()[1:]), true, nil
			}
		}
		if err := it.Error(); err != nil {
			return nil, false, err
		}
	}
	return nil, false, nil
}

// Stats implements backend.Backend.
func (s *Store) Stats(ctx context.Context, db uint32) (backend.Stats, error) {
	if !s.enter() {
		return backend.Stats{}, backend.ErrClosed
	}
	defer s.leave()
	g, err := s.flushGroup(ctx)
	if err != nil {
		return backend.Stats{}, err
	}
	keys, err := s.counter(counterKey(db, 'k'))
	if err != nil {
		return backend.Stats{}, err
	}
	expires, err := s.counter(counterKey(db, 'e'))
	if err != nil {
		return backend.Stats{}, err
	}
	if g == nil {
		if err := s.awaitDurable(); err != nil {
			return backend.Stats{}, err
		}
	}
	return backend.Stats{Keys: keys, Expires: expires}, nil
}

// Keyspace implements backend.Backend from the counters: its cost grows
// with the number of databases that ever held keys, not with the keys.
func (s *Store) Keyspace(ctx context.Context) ([]backend.DBStats, error) {
	if !s.enter() {
		return nil, backend.ErrClosed
	}
	defer s.leave()
	g, err := s.flushGroup(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.keyspace()
	if err == nil && g == nil {
		err = s.awaitDurable()
	}
	return out, err
}

func (s *Store) keyspace() ([]backend.DBStats, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{familyCounter}, UpperBound: []byte{familyCounter + 1}})
	if err != nil {
		return nil, fmt.Errorf("keyspace: %w", err)
	}
	defer it.Close()
	var out []backend.DBStats
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 6 {
			return nil, fmt.Errorf("embedded: malformed counter key %q", k)
		}
		n, err := decodeCounter(it.Value())
		if err != nil {
			return nil, err
		}
		db, _, _ := keyspace.Split(k[1:])
		if len(out) == 0 || out[len(out)-1].DB != db {
			out = append(out, backend.DBStats{DB: db})
		}
		if k[5] == 'k' {
			out[len(out)-1].Keys = n
		} else {
			out[len(out)-1].Expires = n
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	// Databases emptied since they last held keys keep counters at 0.
	live := out[:0]
	for _, d := range out {
		if d.Keys != 0 {
			live = append(live, d)
		}
	}
	return live, nil
}

func (s *Store) counter(key []byte) (int64, error) {
	raw, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read counter %q: %w", key, err)
	}
	defer closer.Close()
	return decodeCounter(raw)
}

// ExpiredKeys is how many keys the sweeper has deleted since Open.
func (s *Store) ExpiredKeys() int64 { return s.expiredKeys.Load() }

// exclusive runs fn with every other operation of the store held off, after
// ctx's group (whose writes were acknowledged before) is committed: for the
// operations that rewrite whole databases.
func (s *Store) exclusive(ctx context.Context, fn func() error) error {
	if g := groupOf(ctx); g != nil && g.holding {
		// The group must let go of writeMu.
		if !s.enter() {
			return backend.ErrClosed
		}
		err := s.commitGroup(g, false)
		s.leave()
		if err != nil {
			return err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.ErrClosed
	}
	s.cache.clear()
	// SWAPDB moves sub-keys under another database's prefix without
	// SetSub; FLUSH* leaves the filters of dead versions behind.
	s.filters.reset()
	return fn()
}

// FlushAll implements backend.Backend.
func (s *Store) FlushAll(ctx context.Context) error {
	return s.exclusive(ctx, func() error {
		b := s.db.NewBatch()
		defer b.Close()
		for _, f := range []byte{familyData, familyExpiry, familyCounter} {
			_ = b.DeleteRange([]byte{f}, []byte{f + 1}, nil)
		}
		return s.commit(b)
	})
}

// FlushDB implements backend.Backend: the database's data range and its
// counters go, and so do its entries of the expiry index, which is ordered
// by time, not database, so it is walked.
func (s *Store) FlushDB(ctx context.Context, db uint32) error {
	return s.exclusive(ctx, func() error {
		b := s.db.NewBatch()
		defer b.Close()
		_ = b.DeleteRange(appendDataKey(nil, keyspace.Prefix(db)), dataEnd(db), nil)
		ss, se := keyspace.SubKeyRange(db)
		_ = b.DeleteRange(appendDataKey(nil, ss), appendDataKey(nil, se), nil)
		err := s.eachExpiryEntry(func(at int64, key []byte) {
			if keyspace.DB(key) == db {
				_ = b.Delete(appendExpiryKey(nil, at, key), nil)
			}
		})
		if err != nil {
			return err
		}
		_ = b.Delete(counterKey(db, 'k'), nil)
		_ = b.Delete(counterKey(db, 'e'), nil)
		return s.commit(b)
	})
}

// dataEnd is the end of database db's data range.
func dataEnd(db uint32) []byte {
	if end := keyspace.End(db); end != nil {
		return appendDataKey(nil, end)
	}
	return []byte{familyData + 1}
}

// eachExpiryEntry calls fn for every entry of the expiry index.
func (s *Store) eachExpiryEntry(fn func(at int64, key []byte)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{familyExpiry}, UpperBound: []byte{familyExpiry + 1}})
	if err != nil {
		return fmt.Errorf("walk expiry index: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		at, key, err := decodeExpiryKey(it.Key())
		if err != nil {
			it.Close()
			return err
		}
		fn(at, key)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("walk expiry index: %w", err)
	}
	return nil
}

// SwapDB implements backend.Backend: both databases are rewritten under
// each other's prefix in one batch, atomically (O(keys of both), as the
// stored key carries the database).
func (s *Store) SwapDB(ctx context.Context, a, b uint32) error {
	if a == b {
		return nil
	}
	return s.exclusive(ctx, func() error {
		batch := s.db.NewBatch()
		defer batch.Close()
		other := func(db uint32) uint32 {
			if db == a {
				return b
			}
			return a
		}
		// The range deletions come first in the batch: the writes after
		// them win. Each database has two ranges, its stored keys and its
		// collections' sub-keys; both begin with 4 bytes naming the database
		// (the sub-keys' with keyspace.SubKeyBit set), which are rewritten.
		type dbRange struct{ lower, upper []byte }
		ranges := func(db uint32) [2]dbRange {
			ss, se := keyspace.SubKeyRange(db)
			return [2]dbRange{
				{appendDataKey(nil, keyspace.Prefix(db)), dataEnd(db)},
				{appendDataKey(nil, ss), appendDataKey(nil, se)},
			}
		}
		for _, db := range []uint32{a, b} {
			for _, r := range ranges(db) {
				_ = batch.DeleteRange(r.lower, r.upper, nil)
			}
		}
		for _, db := range []uint32{a, b} {
			for fam, r := range ranges(db) {
				it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: r.lower, UpperBound: r.upper})
				if err != nil {
					return fmt.Errorf("swapdb: %w", err)
				}
				id := other(db)
				if fam == 1 {
					id |= keyspace.SubKeyBit
				}
				for it.First(); it.Valid(); it.Next() {
					k := appendDataKey(nil, keyspace.AppendKey(nil, id, it.Key()[1+keyspace.PrefixLen:]))
					_ = batch.Set(k, it.Value(), nil)
				}
				if err := it.Close(); err != nil {
					return fmt.Errorf("swapdb: %w", err)
				}
			}
		}
		var moved [][2][]byte
		err := s.eachExpiryEntry(func(at int64, key []byte) {
			if db := keyspace.DB(key); db == a || db == b {
				moved = append(moved, [2][]byte{
					appendExpiryKey(nil, at, key),
					appendExpiryKey(nil, at, keyspace.Key(other(db), keyspace.UserKey(key))),
				})
			}
		})
		if err != nil {
			return err
		}
		for _, m := range moved {
			_ = batch.Delete(m[0], nil)
		}
		for _, m := range moved {
			_ = batch.Set(m[1], nil, nil)
		}
		for _, kind := range []byte{'k', 'e'} {
			na, err := s.counter(counterKey(a, kind))
			if err != nil {
				return err
			}
			nb, err := s.counter(counterKey(b, kind))
			if err != nil {
				return err
			}
			_ = batch.Set(counterKey(a, kind), encodeCounter(nb), nil)
			_ = batch.Set(counterKey(b, kind), encodeCounter(na), nil)
		}
		return s.commit(batch)
	})
}

// Close implements backend.Backend.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.mu.Unlock()
	s.wg.Wait()
	// A clean shutdown leaves nothing unsynced, whatever the policy.
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		s.log.Error("final fsync failed", "err", err)
	}
	err := s.db.Close()
	// Nothing reads the key cache any more: every operation enters first.
	s.cache.close()
	releaseDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// openDirs holds the directories this process has open. Pebble's file lock is a
// POSIX lock, which does not exclude a second open from the same process; this
// set does, with the same ErrLocked as a second process gets.
var openDirs struct {
	sync.Mutex
	m map[string]bool
}

func dirKey(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return filepath.Clean(abs)
	}
	return filepath.Clean(dir)
}

func claimDir(dir string) bool {
	openDirs.Lock()
	defer openDirs.Unlock()
	if openDirs.m == nil {
		openDirs.m = map[string]bool{}
	}
	k := dirKey(dir)
	if openDirs.m[k] {
		return false
	}
	openDirs.m[k] = true
	return true
}

func releaseDir(dir string) {
	openDirs.Lock()
	defer openDirs.Unlock()
	delete(openDirs.m, dirKey(dir))
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
