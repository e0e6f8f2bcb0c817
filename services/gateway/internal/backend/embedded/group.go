package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// groupFlushBytes bounds the bytes of keys and values a group holds: past
// it the group is committed (without fsync) and a new one begins, so a
// flood of pipelined writes does not pile up in memory before the end of
// an iteration.
const groupFlushBytes = 4 << 20

// group gathers the writes of commands that one caller runs one at a time
// (the event loop) and commits them as one Pebble batch. While it holds
// writes it holds Store.writeMu exclusively: no other writer can change the
// store, so the committed state plus the group's own writes is the whole
// truth, and the group needs no key latches.
//
// The batch is built at commit, from each key's state before the group and
// its state now: a key written many times (a hot counter, a pipeline of
// SETs to one key) costs one memtable entry, not one per command.
type group struct {
	b *pebble.Batch
	// overlay holds every key the group wrote, keyed by the key bytes of
	// its current state's entry.
	overlay map[string]*groupEntry
	// order lists the overlay's entries, to be sorted by key at commit.
	order   []*groupEntry
	bytes   int  // key and value bytes written since the last commit
	holding bool // writeMu held
	// sub holds the sub-key writes of the group's commands (collection
	// elements): an indexed batch, through which their sub-key reads see
	// the writes of the commands before them, merged over the store. At
	// commit the whole-key writes join it and it is applied as the group's
	// one batch, so a collection write costs no Pebble commit of its own.
	// nil until the first sub-key write.
	sub *pebble.Batch
	// created are the collection versions the group's commands created:
	// one killed before the commit (RPUSH k x; DEL k in one iteration) is
	// reclaimed then, from what sub holds.
	created []groupVersion
	// subUncached: a command ranged-deleted elements (DeleteSubRange), so
	// the commit puts none of sub's elements into the cache.
	subUncached bool
	// err is the first failed commit since the last Sync, which must fail
	// too: commands before it were told their writes happened.
	err error
}

// groupEntry is one key the group wrote.
type groupEntry struct {
	// cur is the key's state now; it becomes the cache entry at commit.
	cur *cacheEntry
	// What the store held before the group: all the batch needs to fix
	// the expiry index and counters.
	baseFound     bool
	baseExpiresAt int64
	// The base's element version, if it was a collection: the commit
	// reclaims it if the final state kills it (appendReclaim).
	baseVersion uint64
	baseColl    bool
}

// groupVersion is a version a group's command created for key.
type groupVersion struct {
	key     []byte
	version uint64
}

// subMark is how far the group's sub-key batch went before a command:
// what the command added is dropped if it fails (rollbackSub).
type subMark struct {
	n     int // bytes of sub's representation
	count uint32
}

func (g *group) subMark() subMark {
	if g.sub == nil {
		return subMark{}
	}
	return subMark{n: g.sub.Len(), count: g.sub.Count()}
}

// subGrowth is the bytes of sub-key writes since m.
func (g *group) subGrowth(m subMark) int {
	if g.sub == nil {
		return 0
	}
	if m.n == 0 {
		return g.sub.Len()
	}
	return g.sub.Len() - m.n
}

// rollbackSub drops the sub-key writes made since m: a command that failed
// (or panicked) after writing elements must leave nothing of itself in the
// group. A Pebble batch cannot be cut short in place, so the group's batch
// is rebuilt from its representation up to m: O(the group's sub-key writes),
// paid only by a failing command that wrote elements.
func (g *group) rollbackSub(s *Store, m subMark) error {
	if g.sub == nil || g.sub.Len() == max(m.n, batchHeaderLen) {
		return nil
	}
	old := g.sub
	g.sub = nil
	defer old.Close()
	if m.n <= batchHeaderLen {
		return nil
	}
	repr := bytes.Clone(old.Repr()[:m.n])
	binary.LittleEndian.PutUint32(repr[8:batchHeaderLen], m.count)
	tmp := s.db.NewBatch()
	defer tmp.Close()
	if err := tmp.SetRepr(repr); err != nil {
		return fmt.Errorf("roll back sub-key writes: %w", err)
	}
	nb := s.db.NewIndexedBatch()
	if err := nb.Apply(tmp, nil); err != nil {
		nb.Close()
		return fmt.Errorf("roll back sub-key writes: %w", err)
	}
	g.sub = nb
	return nil
}

// batchHeaderLen is the length of a Pebble batch's header (sequence
// number, count).
const batchHeaderLen = 12

type groupKey struct{}

// Batch implements backend.Batcher.
func (s *Store) Batch(ctx context.Context) context.Context {
	return context.WithValue(ctx, groupKey{}, &group{overlay: map[string]*groupEntry{}})
}

// groupOf returns ctx's group, or nil.
func groupOf(ctx context.Context) *group {
	g, _ := ctx.Value(groupKey{}).(*group)
	return g
}

// mapKey is e's key as a string sharing e's immutable bytes.
func (e *cacheEntry) mapKey() string {
	if len(e.key) == 0 {
		return ""
	}
	return unsafe.String(&e.key[0], len(e.key))
}

// lookupHeld is lookup on a group that holds writes; nil or an idle group
// wrote nothing.
func (g *group) lookupHeld(key []byte) (*cacheEntry, bool) {
	if g == nil || !g.holding {
		return nil, false
	}
	return g.lookup(key)
}

// lookup returns the state the group gave key, if it wrote it.
func (g *group) lookup(key []byte) (*cacheEntry, bool) {
	if len(g.overlay) == 0 {
		return nil, false
	}
	if e, ok := g.overlay[string(key)]; ok {
		return e.cur, true
	}
	return nil, false
}

// updateGrouped is Update under a group: fn's writes join the group.
func (s *Store) updateGrouped(g *group, fn func(backend.Txn) error) error {
	g.hold(s)
	if !s.enter() {
		return backend.ErrClosed
	}
	defer s.leave()
	if g.err != nil {
		// An earlier commit of this iteration failed: its writes are lost,
		// and nothing may be built on top of them (Sync reports it).
		return g.err
	}
	tx := txnPool.Get().(*txn)
	defer tx.release()
	tx.store, tx.group = s, g
	// A failure (or a panic) must leave nothing of the command in the
	// group: its sub-key writes, made straight into the group's batch, are
	// rolled back; its whole-key writes join the overlay only at the end.
	mark := g.subMark()
	tx.subBase = mark
	kept := false
	defer func() {
		if !kept {
			if err := g.rollbackSub(s, mark); err != nil && g.err == nil {
				// What the group holds can no longer be trusted: fail the
				// iteration, as a failed commit does.
				g.err = err
			}
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if tx.subErr != nil {
		return tx.subErr
	}
	if err := tx.checkSize(); err != nil {
		return err
	}
	// Read every base state first: a failure must leave nothing of the
	// command in the group.
	for _, i := range tx.order {
		if _, _, err := tx.baseVersion(i); err != nil {
			return err
		}
	}
	kept = true
	g.bytes += g.subGrowth(mark)
	for _, c := range tx.created {
		g.created = append(g.created, groupVersion{key: bytes.Clone(tx.entries[c.entry].key), version: c.version})
	}
	for _, i := range tx.order {
		e := &tx.entries[i]
		base, baseFound, _ := tx.baseHead(i)
		cur := makeEntry(e.key, stored{v: e.write.v, found: !e.write.deleted})
		g.bytes += len(e.key) + len(e.write.v.Data)
		if ge, ok := g.overlay[string(e.key)]; ok {
			ge.cur = cur
			continue
		}
		// First write of the key in this group: what tx read is the
		// committed state.
		ge := &groupEntry{cur: cur, baseFound: baseFound, baseExpiresAt: base.ExpiresAt}
		ge.baseVersion, ge.baseColl, _ = tx.baseVersion(i)
		g.overlay[cur.mapKey()] = ge
		g.order = append(g.order, ge)
	}
	if g.bytes >= groupFlushBytes {
		return s.commitGroup(g, false)
	}
	return nil
}

// largeGroup is the number of keys past which a group's map and list are
// dropped rather than cleared: clearing a map costs time in proportion to
// its capacity, so after one huge iteration every later one would pay.
const largeGroup = 4096

// reset empties the group for the next batch.
func (g *group) reset() {
	if len(g.order) > largeGroup {
		g.overlay = map[string]*groupEntry{}
		g.order = nil
	} else {
		clear(g.overlay)
		clear(g.order)
		g.order = g.order[:0]
	}
	g.bytes = 0
	if g.sub != nil {
		g.sub.Close()
		g.sub = nil
	}
	g.subUncached = false
	clear(g.created)
	g.created = g.created[:0]
}

// hold takes writeMu for the group, if it does not hold it yet. The caller
// is not inside enter: writeMu comes before mu.
func (g *group) hold(s *Store) {
	if !g.holding {
		s.writeMu.Lock()
		g.holding = true
	}
}

// commitGroup writes the group's keys into one batch and applies it (with
// fsync if sync and the policy is always), then releases writeMu. The
// caller is inside enter.
func (s *Store) commitGroup(g *group, sync bool) error {
	if !g.holding {
		return nil
	}
	defer func() {
		g.reset()
		g.holding = false
		s.writeMu.Unlock()
	}()
	if len(g.overlay) == 0 && (g.sub == nil || g.sub.Empty()) {
		return nil
	}
	// The whole-key writes join the sub-key writes' batch when there are
	// any, and reclamation reads through it (the group's own pops and
	// deletions of elements are there).
	b, r := g.b, pebble.Reader(s.db)
	if g.sub != nil {
		b, r = g.sub, g.sub
	} else if b == nil {
		g.b = s.db.NewBatch()
		b = g.b
	}
	// Pebble inserts a batch into its memtable skiplist in order, starting
	// each search from where the last one ended: in key order most of each
	// search is skipped. Unsorted, random keys made the inserts cost more
	// than everything else a pipelined SET does.
	slices.SortFunc(g.order, func(a, b *groupEntry) int { return bytes.Compare(a.cur.key, b.cur.key) })
	var deltas counterDeltas
	for _, e := range g.order {
		if err := appendReclaim(b, r, e.cur.key, e.baseVersion, e.baseColl, e.cur.v, e.cur.found); err != nil {
			// The metadata written is corrupt (a command-layer bug): keep the
			// dead elements rather than fail the whole iteration's batch.
			s.log.Error("reclaim collection elements", "err", err)
		}
		dk, de := appendChange(b, e.cur.key, e.baseFound, e.baseExpiresAt, e.cur.found, e.cur.v, changeData)
		deltas.add(e.cur.key, dk, de)
	}
	for _, e := range g.order {
		appendChange(b, e.cur.key, e.baseFound, e.baseExpiresAt, e.cur.found, e.cur.v, changeIndex)
	}
	g.reclaimCreated(s, b, r)
	deltas.appendTo(b)
	if b.Empty() {
		return nil
	}
	// As Update does: the cache must not show the old state once the batch
	// is visible, and gets the new one after.
	for _, e := range g.order {
		s.cache.invalidate(e.cur.key)
	}
	wo := pebble.NoSync
	if sync && s.opts.Sync == SyncAlways {
		wo = pebble.Sync
	}
	target := s.unsynced.Load()
	s.applying.Add(1)
	defer s.applying.Add(-1)
	err := s.db.Apply(b, wo)
	if b == g.b {
		g.b.Reset()
	} // else reset closes sub
	if err != nil {
		if g.err == nil {
			g.err = fmt.Errorf("commit batch: %w", err)
		}
		return g.err
	}
	for _, e := range g.order {
		s.cache.put(e.cur.key, stored{v: e.cur.v, found: e.cur.found})
	}
	if b == g.sub && !g.subUncached {
		s.cacheElements(b)
	}
	if wo == pebble.Sync {
		// An fsync covers every WAL record before it.
		raiseTo(&s.synced, target)
	} else {
		s.unsynced.Add(1)
	}
	return nil
}

// reclaimCreated adds to b the deletion of every version the group's
// commands created that its final state does not keep (appendReclaim sees
// only the state before the group, which held none of them), reading r.
func (g *group) reclaimCreated(s *Store, b *pebble.Batch, r pebble.Reader) {
	for _, c := range g.created {
		if ge, ok := g.overlay[string(c.key)]; ok && ge.cur.found {
			v, coll, err := collectionVersion(ge.cur.v)
			if err == nil && coll && v == c.version {
				continue
			}
		}
		if err := reclaimVersion(b, r, c.key, c.version); err != nil {
			// As for appendReclaim above: keep dead elements rather than
			// fail the iteration.
			s.log.Error("reclaim collection elements", "err", err)
		}
	}
}

// flushGroup commits ctx's group, if any, without fsync: for operations
// that read the store as a whole (scans, counters, FLUSHALL), which do not
// look at the overlay.
func (s *Store) flushGroup(ctx context.Context) (*group, error) {
	g := groupOf(ctx)
	if g == nil || !g.holding {
		return g, nil
	}
	return g, s.commitGroup(g, false)
}

// syncGroup is Sync under a group: commit its batch with one fsync, which
// also covers any write committed without one before it.
func (s *Store) syncGroup(g *group) error {
	if !s.enter() {
		// Close came first: what the group held is dropped, as in a crash
		// before the replies; writers waiting on writeMu then see ErrClosed.
		if g.holding {
			g.reset()
			g.holding = false
			s.writeMu.Unlock()
		}
		return backend.ErrClosed
	}
	defer s.leave()
	err := s.commitGroup(g, true)
	if g.err != nil {
		err, g.err = g.err, nil
	}
	if err != nil {
		return err
	}
	if s.opts.Sync != SyncAlways {
		return nil
	}
	// The iteration's reads may have seen other writers' commits, counted
	// (unsynced) or still being applied: an fsync must cover them too.
	target := s.unsynced.Load()
	if s.applying.Load() == 0 && s.synced.Load() >= target {
		return nil
	}
	if err := s.logSync(); err != nil {
		return fmt.Errorf("sync wal: %w", err)
	}
	raiseTo(&s.synced, target)
	return nil
}

// raiseTo sets v to n unless it is already larger.
func raiseTo(v *atomic.Uint64, n uint64) {
	for {
		cur := v.Load()
		if cur >= n || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
