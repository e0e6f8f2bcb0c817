package embedded

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"expvar"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Negative-lookup filters of hot collections (docs/architecture.md,
// "Existence reads and the sub-key filter").
//
// SADD, HSET and ZADD read each element before writing it (is it new? what
// was its score?), and on a random workload most of those reads miss. A
// miss in Pebble's memtable is a skiplist seek, ~20 dependent cache misses
// over a 64 MiB arena: the largest item of a server ZADD profile. A filter
// of a collection's point-read sub-keys answers most misses without it.
//
// A filter belongs to one version of one collection: the sub-key prefix
// (db, key, version), which no other incarnation of the key shares
// (NewVersion), so DEL, an overwrite or an expiry leaves the old filter
// unused (it ages out) rather than wrong. It covers the sub-keys of the
// kinds read by point (hash fields, set members, sorted-set members), not
// list indexes or score-index entries, which are never read that way.
//
// The invariant: while a filter exists, every sub-key of its prefix and
// kinds that is committed, or pending in the batch of the txn or group
// that holds the key (its latch, or writeMu), is in it. It holds because
//   - a filter is built only by a holder of the key (a txn that latched
//     it, or the event loop's group, which holds writeMu and so excludes
//     every other writer), from a scan through the holder's own batch:
//     committed elements and the holder's pending ones; no other batch can
//     hold pending elements of a key it does not hold;
//   - every later write of such a sub-key (SetSub, the only writer of
//     elements outside SWAPDB and the format migration at open) adds it to
//     the prefix's filter before it reaches the batch;
//   - SWAPDB, which rewrites sub-keys under another database's prefix,
//     drops every filter while it holds the store exclusively.
// Writes that never commit (a command rolled back, a failed batch) and
// deletions leave extra bits: false positives, which cost a Pebble read,
// never a wrong answer. A filter whose observed false-positive rate or
// insert count says it has degraded is rebuilt by its next reader.

const (
	// filterMisses is how many Pebble misses a collection's point reads
	// take before it gets a filter: a cold or small collection never pays
	// for one.
	filterMisses = 64
	// filterBitsPerKey and a blocked Bloom filter of 7 probes in one
	// 64-byte block: ~1–2 % false positives at capacity, one cache line
	// per lookup.
	filterBitsPerKey = 10
	filterProbes     = 7
	// filterMinKeys is the smallest capacity a filter is built for.
	filterMinKeys = 1024
	// defaultFilterBytes bounds the filters' memory (bit arrays) together;
	// past it the least recently used go. 16 MiB cover ~13M elements.
	defaultFilterBytes = 16 << 20
	// filterMaxKeys bounds the keys of a filtered collection (maxKeys).
	filterMaxKeys = 1 << 18
	// filterCandidates is the number of slots counting misses of
	// prefixes without a filter, and bounds the prefixes remembered as
	// too big.
	filterCandidates = 4096
)

// Process-wide counters (expvar nokv_coll_filter), so that an operator can
// tell whether the filters earn their memory: reads they spared, false
// positives (reads they could not spare that then missed) and builds.
var (
	filterVars     = expvar.NewMap("nokv_coll_filter")
	filterSkipped  = new(expvar.Int)
	filterFalsePos = new(expvar.Int)
	filterBuilds   = new(expvar.Int)
)

func init() {
	filterVars.Set("reads_skipped", filterSkipped)
	filterVars.Set("false_positives", filterFalsePos)
	filterVars.Set("builds", filterBuilds)
}

// filterKinds are the sub-key kinds filters cover.
func filterKind(kind byte) bool {
	return kind == keyspace.KindHashField || kind == keyspace.KindSetMember || kind == keyspace.KindZSetMember
}

// filterSplit returns a sub-key's version prefix and the rest (kind ‖
// element), if its kind is filtered.
func filterSplit(sub []byte) (prefix, rest []byte, ok bool) {
	if len(sub) < 8 {
		return nil, nil, false
	}
	n := uint64(binary.BigEndian.Uint32(sub[4:8]))
	p := 8 + n + 8
	if uint64(len(sub)) <= p || !filterKind(sub[p]) {
		return nil, nil, false
	}
	return sub[:p], sub[p:], true
}

// subFilter is one collection version's blocked Bloom filter.
type subFilter struct {
	blocks   [][8]uint64
	capacity int // keys it was sized for
	keys     int // keys at build plus keys added since that set a new bit
	// Lookups the filter could not rule out that Pebble then did not find
	// (false positives), out of all lookups of absent keys.
	falsePos, negatives int
	// stale asks the next reader (a holder of the key) to rebuild it.
	stale   bool
	lastUse uint64
}

func (f *subFilter) bytes() int64 { return int64(len(f.blocks)) * 64 }

// probe returns the block and the 7 bit positions (9 bits each) of a
// key's hash: the block from its high half, the bits from a remix.
func (f *subFilter) probe(h uint64) (*[8]uint64, uint64) {
	b := &f.blocks[(h>>32)*uint64(len(f.blocks))>>32]
	return b, h * 0x9e3779b97f4a7c15
}

// add sets the bits of a key's hash and reports whether one was new.
func (f *subFilter) add(h uint64) bool {
	b, g := f.probe(h)
	changed := false
	for i := 0; i < filterProbes; i++ {
		pos := (g >> (9 * i)) & 511
		w, m := pos>>6, uint64(1)<<(pos&63)
		if b[w]&m == 0 {
			b[w] |= m
			changed = true
		}
	}
	return changed
}

// has reports whether the key of hash h may be in the filter.
func (f *subFilter) has(h uint64) bool {
	b, g := f.probe(h)
	for i := 0; i < filterProbes; i++ {
		pos := (g >> (9 * i)) & 511
		if b[pos>>6]&(1<<(pos&63)) == 0 {
			return false
		}
	}
	return true
}

func newSubFilter(keys int) *subFilter {
	capacity := max(2*keys, filterMinKeys)
	nb := (capacity*filterBitsPerKey + 511) / 512
	return &subFilter{blocks: make([][8]uint64, nb), capacity: capacity}
}

// filterAnswer is what a lookup learned.
type filterAnswer uint8

const (
	filterNone   filterAnswer = iota // no filter for the prefix
	filterAbsent                     // the key is certainly absent
	filterMaybe                      // the key may be present
	filterStale                      // a filter to rebuild first
)

// missSlot counts the misses of the prefix whose hash is tag.
type missSlot struct {
	tag uint64
	n   int
}

// subFilters is a store's filters.
type subFilters struct {
	mu   sync.Mutex
	seed maphash.Seed
	m    map[string]*subFilter
	// misses counts Pebble misses of prefixes without a filter, in slots
	// chosen and tagged by the prefix's hash: no allocation per miss on a
	// workload of many cold collections (HSET user:N ...), and a slot
	// another prefix takes over starts again from 1.
	misses [filterCandidates]missSlot
	// tooBig remembers prefixes whose scan passed maxKeys.
	tooBig  map[string]struct{}
	bytes   int64
	budget  int64
	clock   uint64
	enabled atomic.Bool // some filter exists: SetSub must look
	// builds counts the filters built (rebuilds included), for tests.
	builds atomic.Int64
}

func newSubFilters(budget int64) *subFilters {
	return &subFilters{
		seed:   maphash.MakeSeed(),
		m:      map[string]*subFilter{},
		tooBig: map[string]struct{}{},
		budget: budget,
	}
}

// maxKeys is the most keys one filter is built for: the scan that builds
// it runs inside a command (on the event loop, ~100–200 ns a key), so at
// most filterMaxKeys (tens of milliseconds, once per doubling), and at
// most a quarter of the budget, so that a few hot collections share it.
func (fs *subFilters) maxKeys() int {
	return min(filterMaxKeys, int(fs.budget/4*8/filterBitsPerKey)/2)
}

// check looks rest up in prefix's filter.
func (fs *subFilters) check(prefix, rest []byte) filterAnswer {
	if !fs.enabled.Load() {
		return filterNone
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[string(prefix)]
	if f == nil {
		return filterNone
	}
	fs.clock++
	f.lastUse = fs.clock
	if f.stale {
		return filterStale
	}
	if !f.has(maphash.Bytes(fs.seed, rest)) {
		f.negatives++
		filterSkipped.Add(1)
		return filterAbsent
	}
	return filterMaybe
}

// add records a write of rest under prefix in its filter, if there is one.
func (fs *subFilters) add(prefix, rest []byte) {
	if !fs.enabled.Load() {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[string(prefix)]
	if f == nil {
		return
	}
	if f.add(maphash.Bytes(fs.seed, rest)) {
		f.keys++
		if f.keys > f.capacity {
			f.stale = true
		}
	}
}

// missed records a Pebble miss of a key under prefix after answer, and
// reports whether the caller (a holder of the key) should build the
// prefix's filter.
func (fs *subFilters) missed(prefix []byte, answer filterAnswer) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	switch answer {
	case filterMaybe:
		f := fs.m[string(prefix)]
		if f == nil {
			return false
		}
		f.falsePos++
		f.negatives++
		filterFalsePos.Add(1)
		// A rebuild scans the collection: only when the misses it would
		// spare pay for it.
		if f.negatives >= max(512, f.keys/4) && f.falsePos*8 > f.negatives {
			f.stale = true
		}
		return false
	case filterNone:
		if _, ok := fs.tooBig[string(prefix)]; ok {
			return false
		}
		h := maphash.Bytes(fs.seed, prefix)
		slot := &fs.misses[h%filterCandidates]
		if slot.tag != h {
			*slot = missSlot{tag: h}
		}
		slot.n++
		return slot.n >= filterMisses
	}
	return false
}

// forgetMisses zeroes prefix's miss count (fs.mu held).
func (fs *subFilters) forgetMisses(prefix []byte) {
	h := maphash.Bytes(fs.seed, prefix)
	if slot := &fs.misses[h%filterCandidates]; slot.tag == h {
		*slot = missSlot{}
	}
}

// install makes f prefix's filter (replacing a stale one), evicting the
// least recently used filters past the budget.
func (fs *subFilters) install(prefix []byte, f *subFilter) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := string(prefix)
	fs.forgetMisses(prefix)
	if old := fs.m[key]; old != nil {
		fs.bytes -= old.bytes()
	}
	fs.clock++
	f.lastUse = fs.clock
	fs.m[key] = f
	fs.bytes += f.bytes()
	if fs.bytes > fs.budget {
		// The least recently used go until an eighth of the budget is
		// free: one sort per many installs, not a scan per install.
		type aged struct {
			key     string
			lastUse uint64
		}
		all := make([]aged, 0, len(fs.m))
		for k, g := range fs.m {
			if k != key {
				all = append(all, aged{k, g.lastUse})
			}
		}
		slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.lastUse, b.lastUse) })
		for _, a := range all {
			if fs.bytes <= fs.budget-fs.budget/8 {
				break
			}
			fs.bytes -= fs.m[a.key].bytes()
			delete(fs.m, a.key)
		}
	}
	fs.enabled.Store(true)
	fs.builds.Add(1)
	filterBuilds.Add(1)
}

// giveUp records that prefix is too big to filter, dropping a filter it
// had: the stale one would stay stale.
func (fs *subFilters) giveUp(prefix []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	key := string(prefix)
	fs.forgetMisses(prefix)
	if old := fs.m[key]; old != nil {
		fs.bytes -= old.bytes()
		delete(fs.m, key)
	}
	if len(fs.tooBig) >= filterCandidates {
		clear(fs.tooBig)
	}
	fs.tooBig[key] = struct{}{}
}

// reset drops every filter (SWAPDB, FLUSH*: the caller holds the store
// exclusively, so no reader is between a lookup and its read).
func (fs *subFilters) reset() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	clear(fs.m)
	fs.misses = [filterCandidates]missSlot{}
	clear(fs.tooBig)
	fs.bytes = 0
	fs.enabled.Store(false)
}

// filterKindsOrder are the filtered kinds in byte order, for the scan.
var filterKindsOrder = [...]byte{keyspace.KindHashField, keyspace.KindSetMember, keyspace.KindZSetMember}

// buildFilter scans prefix's filtered sub-keys through r (the holder's
// reader: committed elements and its own pending ones) into a new filter,
// installed unless the collection has more than maxKeys of them.
func (fs *subFilters) build(r pebble.Reader, prefix []byte) error {
	lo := appendDataKey(nil, prefix)
	hi := keyspace.PrefixEnd(lo)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("build a sub-key filter: %w", err)
	}
	limit := fs.maxKeys()
	var hashes []uint64
	seek := append(bytes.Clone(lo), 0)
	over := false
scan:
	for _, kind := range filterKindsOrder {
		seek[len(lo)] = kind
		for ok := it.SeekGE(seek); ok; ok = it.Next() {
			k := it.Key()
			if len(k) <= len(lo) || k[len(lo)] != kind {
				break
			}
			if len(hashes) >= limit {
				over = true
				break scan
			}
			hashes = append(hashes, maphash.Bytes(fs.seed, k[len(lo):]))
		}
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return fmt.Errorf("build a sub-key filter: %w", err)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("build a sub-key filter: %w", err)
	}
	if over {
		fs.giveUp(prefix)
		return nil
	}
	f := newSubFilter(len(hashes))
	for _, h := range hashes {
		if f.add(h) {
			f.keys++
		}
	}
	fs.install(prefix, f)
	return nil
}

// FilterStats returns how many collection filters the store holds and how
// many it has built since it opened (rebuilds included), for tests and
// introspection.
func (s *Store) FilterStats() (filters int, builds int64) {
	fs := s.filters
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.m), fs.builds.Load()
}
