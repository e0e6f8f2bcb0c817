package embedded

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Sub-keys (keyspace.SubKey) are stored under the data family, 'k' ‖ sub-key,
// with the raw element as value: no value header, since the metadata record
// holds the type and the expiry, and no counter or expiry-index entry, since
// only metadata records are Redis keys. Their first byte has the top bit set,
// so they sort after every database's stored keys and no scan, counter or
// FLUSHDB of a database range meets them.

// subBatch returns the batch the txn's sub-key writes go to: under a
// group (the event loop's batch context) the group's, shared by the
// iteration's commands, else the txn's own, created on first use.
func (t *txn) subBatch() (*pebble.Batch, error) {
	if g := t.group; g != nil {
		if g.sub == nil {
			g.sub = t.store.db.NewIndexedBatch()
		}
		return g.sub, nil
	}
	if t.sb == nil {
		t.sb = t.store.db.NewIndexedBatch()
	}
	return t.sb, nil
}

func checkSubKey(sub []byte) error {
	if !keyspace.IsSubKey(sub) {
		return fmt.Errorf("embedded: %q is not a sub-key", sub)
	}
	return nil
}

// subReader is what the txn's sub-key reads go to: the indexed batch its
// sub-key writes go to (subBatch) once there is one (the batch merges those writes over the store), else
// the store itself. A command that only reads (LRANGE, SISMEMBER) or reads
// before it writes (SADD's existence check) so never builds an indexed
// batch for its reads, and its iterators merge one level fewer. The Redis
// key is latched, so either shows the committed state of its elements.
func (t *txn) subReader() (pebble.Reader, error) {
	if g := t.group; g != nil {
		if g.sub != nil {
			return g.sub, nil
		}
		return t.store.db, nil
	}
	if t.sb != nil {
		return t.sb, nil
	}
	return t.store.db, nil
}

// GetSub implements backend.SubTxn. The Redis key is latched, so what Pebble
// shows under the txn's own writes is the committed state.
func (t *txn) GetSub(sub []byte) ([]byte, bool, error) {
	if err := checkSubKey(sub); err != nil {
		return nil, false, err
	}
	r, err := t.subReader()
	if err != nil {
		return nil, false, err
	}
	fs := t.store.filters
	prefix, rest, filtered := filterSplit(sub)
	answer := filterNone
	if filtered {
		answer = fs.check(prefix, rest)
		if answer == filterStale && t.holds(prefix) {
			if err := fs.build(r, prefix); err != nil {
				return nil, false, err
			}
			answer = fs.check(prefix, rest)
		}
		if answer == filterAbsent {
			return nil, false, nil
		}
	}
	if filtered {
		// A hit is the element's committed state, and no write of it is
		// pending in r: SetSub and DeleteSub drop the entry (subcache.go).
		if st, hit := t.store.cache.get(sub, nil); hit {
			if !st.found {
				return nil, false, nil
			}
			return st.v.Data, true, nil
		}
	}
	// The encoded key goes in the txn's scratch space (Pebble holds it
	// only until the closer is closed), sparing an allocation per read.
	t.kbuf = appendDataKey(t.kbuf[:0], sub)
	val, closer, err := r.Get(t.kbuf)
	if errors.Is(err, pebble.ErrNotFound) {
		if filtered && fs.missed(prefix, answer) && t.holds(prefix) {
			if err := fs.build(r, prefix); err != nil {
				return nil, false, err
			}
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get sub-key: %w", err)
	}
	out := append([]byte{}, val...)
	_ = closer.Close()
	return out, true, nil
}

// holds reports whether the txn holds the collection whose sub-key prefix
// this is: under the group (writeMu), or with its key latched. Only a
// holder may build the collection's filter (filter.go).
func (t *txn) holds(prefix []byte) bool {
	if t.group != nil {
		return true
	}
	n := binary.BigEndian.Uint32(prefix[4:8])
	db := binary.BigEndian.Uint32(prefix) &^ keyspace.SubKeyBit
	key := prefix[8 : 8+n]
	for _, k := range t.latched {
		if len(k) == keyspace.PrefixLen+len(key) && keyspace.DB(k) == db && bytes.Equal(k[keyspace.PrefixLen:], key) {
			return true
		}
	}
	return false
}

// GetSubs implements backend.SubTxn: reads from the local store cost no
// round trip, so one GetSub each.
func (t *txn) GetSubs(subs [][]byte) ([][]byte, []bool, error) {
	vals, found := make([][]byte, len(subs)), make([]bool, len(subs))
	for i, sub := range subs {
		var err error
		if vals[i], found[i], err = t.GetSub(sub); err != nil {
			return nil, nil, err
		}
	}
	return vals, found, nil
}

// SetSub implements backend.SubTxn. Key and value are encoded straight
// into the batch (no encoded key or closure allocated per element).
func (t *txn) SetSub(sub, val []byte) {
	b := t.subWriteBatch(sub)
	if b == nil {
		return
	}
	// Into the collection's filter before the batch (filter.go), and out
	// of the cache (subcache.go).
	if prefix, rest, ok := filterSplit(sub); ok {
		t.store.filters.add(prefix, rest)
		t.store.cache.invalidate(sub)
	}
	op := b.SetDeferred(1+len(sub), len(val))
	appendDataKey(op.Key[:0], sub)
	copy(op.Value, val)
	t.finishSubWrite(op)
}

// DeleteSub implements backend.SubTxn.
func (t *txn) DeleteSub(sub []byte) {
	b := t.subWriteBatch(sub)
	if b == nil {
		return
	}
	if _, _, ok := filterSplit(sub); ok {
		t.store.cache.invalidate(sub)
	}
	op := b.DeleteDeferred(1 + len(sub))
	appendDataKey(op.Key[:0], sub)
	t.finishSubWrite(op)
}

// subWriteBatch returns the batch a sub-key write goes to, or nil after
// recording why it cannot be written (reported by prepare).
func (t *txn) subWriteBatch(sub []byte) *pebble.Batch {
	if t.subErr != nil {
		return nil
	}
	if err := checkSubKey(sub); err != nil {
		t.subErr = err
		return nil
	}
	b, err := t.subBatch()
	if err != nil {
		t.subErr = fmt.Errorf("write sub-key: %w", err)
		return nil
	}
	return b
}

func (t *txn) finishSubWrite(op *pebble.DeferredBatchOp) {
	if err := op.Finish(); err != nil && t.subErr == nil {
		t.subErr = fmt.Errorf("write sub-key: %w", err)
	}
}

// DeleteSubRange implements backend.SubTxn with a Pebble range deletion in
// the command's batch: O(1) to write whatever the range holds.
func (t *txn) DeleteSubRange(start, end []byte) error {
	if err := checkSubKey(start); err != nil {
		return err
	}
	b, err := t.subBatch()
	if err != nil {
		return err
	}
	// The cache cannot drop a range: it drops everything, and the commit
	// caches none of this batch's elements (subcache.go).
	t.store.cache.clear()
	if t.group != nil {
		t.group.subUncached = true
	}
	if err := b.DeleteRange(appendDataKey(nil, start), subUpper(end), nil); err != nil {
		return fmt.Errorf("delete sub-key range: %w", err)
	}
	return nil
}

// subUpper is the data-family bound of a sub-key range's end (nil: the end
// of the family).
func subUpper(end []byte) []byte {
	if end == nil {
		return []byte{familyData + 1}
	}
	return appendDataKey(nil, end)
}

// ScanSub implements backend.SubTxn through the indexed batch's iterator,
// which merges the txn's writes (range deletions included) over Pebble, or
// the store's when the txn wrote no sub-key (subReader).
func (t *txn) ScanSub(start, end []byte, limit int, fn func(key, val []byte) bool) error {
	if err := checkSubKey(start); err != nil {
		return err
	}
	r, err := t.subReader()
	if err != nil {
		return err
	}
	// Both bounds in one buffer: the iterator keeps them until it is closed.
	bounds := appendDataKey(make([]byte, 0, 2+len(start)+len(end)), start)
	lo := bounds[:len(bounds):len(bounds)]
	var hi []byte
	if end == nil {
		hi = append(bounds, familyData+1)[len(bounds):]
	} else {
		hi = appendDataKey(bounds, end)[len(bounds):]
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("scan sub-keys: %w", err)
	}
	// The limit is checked before stepping, so a scan of n keys steps n-1
	// times, not n.
	seen := 0
	for ok := it.First(); ok; ok = it.Next() {
		seen++
		if !fn(it.Key()[1:], it.Value()) || (limit > 0 && seen >= limit) {
			break
		}
	}
	countSteps(it)
	if err := it.Error(); err != nil {
		_ = it.Close()
		return fmt.Errorf("scan sub-keys: %w", err)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan sub-keys: %w", err)
	}
	return nil
}

// countSteps adds the internal seeks and steps of it so far to
// backend.SubKeysStepped: a deleted key it skipped is one step.
func countSteps(it *pebble.Iterator) {
	st := it.Stats()
	k := pebble.InternalIterCall
	backend.SubKeysStepped.Add(int64(st.ForwardSeekCount[k] + st.ReverseSeekCount[k] + st.ForwardStepCount[k] + st.ReverseStepCount[k]))
}

// NewSubIter implements backend.SubIterTxn with one iterator of the
// indexed batch (own writes merged, as in ScanSub): a random pick's dozens
// of seeks then cost one iterator's creation, not one each.
func (t *txn) NewSubIter(start, end []byte) (backend.SubIterator, error) {
	if err := checkSubKey(start); err != nil {
		return nil, err
	}
	b, err := t.subBatch()
	if err != nil {
		return nil, err
	}
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: appendDataKey(nil, start), UpperBound: subUpper(end)})
	if err != nil {
		return nil, fmt.Errorf("sub-key iterator: %w", err)
	}
	return &subIter{it: it}, nil
}

// subIter is NewSubIter's iterator; buf holds the data-family form of the
// keys it is given.
type subIter struct {
	it       *pebble.Iterator
	buf, end []byte
}

// SeekGE implements backend.SubIterator.
func (s *subIter) SeekGE(key, end []byte, limit int, fn func(key, val []byte) bool) error {
	s.buf = appendDataKey(s.buf[:0], key)
	s.end = s.end[:0]
	if end != nil {
		s.end = appendDataKey(s.end, end)
	}
	seen := 0
	for ok := s.it.SeekGE(s.buf); ok && (limit <= 0 || seen < limit); ok = s.it.Next() {
		k := s.it.Key()
		if end != nil && bytes.Compare(k, s.end) >= 0 {
			break
		}
		seen++
		if !fn(k[1:], s.it.Value()) {
			break
		}
	}
	if err := s.it.Error(); err != nil {
		return fmt.Errorf("seek sub-keys: %w", err)
	}
	return nil
}

// seekBelow positions the iterator on the last sub-key below upper (nil:
// the last of all) and reports whether there is one.
func (s *subIter) seekBelow(upper []byte) bool {
	if upper == nil {
		return s.it.Last()
	}
	s.buf = appendDataKey(s.buf[:0], upper)
	return s.it.SeekLT(s.buf)
}

// LastBelow implements backend.SubIterator.
func (s *subIter) LastBelow(lower, upper []byte) ([]byte, bool, error) {
	ok := s.seekBelow(upper)
	if err := s.it.Error(); err != nil {
		return nil, false, fmt.Errorf("seek sub-keys: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	k := s.it.Key()[1:]
	if bytes.Compare(k, lower) < 0 {
		return nil, false, nil
	}
	return append([]byte(nil), k...), true, nil
}

// SeekLT implements backend.SubIterator.
func (s *subIter) SeekLT(lower, upper []byte, limit int, fn func(key, val []byte) bool) error {
	ok := s.seekBelow(upper)
	s.end = appendDataKey(s.end[:0], lower)
	for seen := 0; ok && (limit <= 0 || seen < limit); ok = s.it.Prev() {
		k := s.it.Key()
		if bytes.Compare(k, s.end) < 0 {
			break
		}
		seen++
		if !fn(k[1:], s.it.Value()) {
			break
		}
	}
	if err := s.it.Error(); err != nil {
		return fmt.Errorf("seek sub-keys: %w", err)
	}
	return nil
}

// Close implements backend.SubIterator.
func (s *subIter) Close() error {
	countSteps(s.it)
	if err := s.it.Close(); err != nil {
		return fmt.Errorf("close sub-key iterator: %w", err)
	}
	return nil
}

var _ backend.SubTxn = (*txn)(nil)
var _ backend.SubIterTxn = (*txn)(nil)

// collectionVersion returns the version of v's elements when v is a
// collection's metadata record.
func collectionVersion(v backend.Value) (uint64, bool, error) {
	if !v.Type.IsCollection() {
		return 0, false, nil
	}
	m, err := keyspace.DecodeMeta(v.Data)
	if err != nil {
		return 0, false, err
	}
	return m.Version, true, nil
}

// appendReclaim adds to b the deletion of the elements of key's old state
// that its new state leaves dead: the old value was a collection and the
// new one is absent, another type or another version. So on this backend
// no dead version outlives the batch that kills it (DEL, SET over a hash,
// RENAME's source, FLUSH aside, which deletes whole ranges), and versions
// never need a background pass. Expired collections are reclaimed by the
// sweeper, or by whichever write replaces them first. How the elements go
// is reclaimVersion's choice, on what r shows.
func appendReclaim(b *pebble.Batch, r pebble.Reader, key []byte, oldV uint64, oldColl bool, cur backend.Value, curFound bool) error {
	if !oldColl {
		return nil
	}
	if curFound {
		v, coll, err := collectionVersion(cur)
		if err != nil {
			return fmt.Errorf("metadata of %q: %w", key, err)
		}
		if coll && v == oldV {
			return nil
		}
	}
	return reclaimVersion(b, r, key, oldV)
}

// smallReclaim is the most elements a dead version may hold for its
// elements to be deleted one by one rather than by a range deletion.
const smallReclaim = 128

// rangeReclaims counts the range deletions reclaimVersion wrote, for tests.
var rangeReclaims atomic.Int64

// reclaimVersion adds to b the deletion of key's elements of version ver,
// as r shows them (r: the command's indexed batch, merging its own writes
// over the committed state, or the store; nil: always a range deletion).
//
// A range deletion is O(1) to write but not to live with: Pebble keeps a
// memtable's range deletions as one fragmented list, rebuilt after each
// new one and consulted by every iterator and Get, so a job queue (RPUSH
// one, LPOP one: the list dies and is reborn every cycle) left one per
// cycle and each command paid for all the earlier ones (7 MB and 15 ms
// per cycle after 30k cycles, BenchmarkQueueCycle). So: a version with no
// element left (emptied by the command's own pops, HDELs, SREMs, whose
// point deletions are in b already) needs nothing; a small one is deleted
// key by key; only a big one (more than smallReclaim elements) gets a
// range deletion. The scan is bounded by smallReclaim+1 keys.
func reclaimVersion(b *pebble.Batch, r pebble.Reader, key []byte, ver uint64) error {
	db, rkey, ok := keyspace.Split(key)
	if !ok {
		return fmt.Errorf("embedded: %q is not a stored key", key)
	}
	start, end := keyspace.VersionRange(db, rkey, ver)
	lo, hi := appendDataKey(nil, start), subUpper(end)
	if r != nil {
		keys, err := scanKeys(r, lo, hi, smallReclaim+1)
		if err != nil {
			return fmt.Errorf("reclaim the elements of %q: %w", rkey, err)
		}
		if len(keys) <= smallReclaim {
			for _, k := range keys {
				if err := b.Delete(k, nil); err != nil {
					return fmt.Errorf("reclaim the elements of %q: %w", rkey, err)
				}
			}
			return nil
		}
	}
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("reclaim the elements of %q: %w", rkey, err)
	}
	rangeReclaims.Add(1)
	return nil
}

// scanKeys returns up to limit keys of r in [lo, hi), copied (the caller
// may write them to the batch r reads).
func scanKeys(r pebble.Reader, lo, hi []byte, limit int) ([][]byte, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for it.First(); it.Valid() && len(keys) < limit; it.Next() {
		keys = append(keys, append([]byte{}, it.Key()...))
	}
	if err := it.Error(); err != nil {
		_ = it.Close()
		return nil, err
	}
	return keys, it.Close()
}

// baseVersion is the element version of entry i's committed state, if that
// is a collection (read in full: a metadata record is small).
func (t *txn) baseVersion(i int) (uint64, bool, error) {
	h, ok, err := t.baseHead(i)
	if err != nil || !ok || !h.Type.IsCollection() {
		return 0, false, err
	}
	st, err := t.base(i)
	if err != nil {
		return 0, false, err
	}
	return collectionVersion(st.v)
}

// versionShift leaves 2^20 versions per millisecond of the clock.
const versionShift = 20

// NewVersion implements backend.SubTxn: the clock in the high bits, made
// increasing within the process, and above the key's committed version
// (expired or not): a clock that went back across a restart can neither
// reuse the live version of this key nor one it has yet to sweep. (Dead
// versions of other incarnations are reclaimed in the batch that kills
// them, so none is left to collide with.)
func (t *txn) NewVersion(key []byte) (uint64, error) {
	i := t.entry(key)
	old, coll, err := t.baseVersion(i)
	if err != nil {
		return 0, err
	}
	s := t.store
	for {
		last := s.lastVersion.Load()
		v := max(last+1, uint64(max(s.now(), 0))<<versionShift)
		if coll && v <= old {
			v = old + 1
		}
		if s.lastVersion.CompareAndSwap(last, v) {
			t.created = append(t.created, createdVersion{entry: i, version: v})
			return v, nil
		}
	}
}

// createdVersion is a version NewVersion gave entry's key in this txn.
type createdVersion struct {
	entry   int
	version uint64
}

// reclaimCreated adds to b the deletion of every version this txn created
// and did not leave live (MULTI: HSET k, DEL k, HSET k creates two;
// appendReclaim sees only the committed state, which held neither). r is
// as for reclaimVersion: only b itself holds such a version's elements.
func (t *txn) reclaimCreated(b *pebble.Batch, r pebble.Reader) error {
	for _, c := range t.created {
		e := &t.entries[c.entry]
		if e.hasWrite && !e.write.deleted {
			v, coll, err := collectionVersion(e.write.v)
			if err != nil {
				return fmt.Errorf("metadata of %q: %w", e.key, err)
			}
			if coll && v == c.version {
				continue
			}
		}
		if err := reclaimVersion(b, r, e.key, c.version); err != nil {
			return fmt.Errorf("reclaim a version created and killed in one batch: %w", err)
		}
	}
	return nil
}
