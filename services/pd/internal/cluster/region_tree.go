package cluster

import (
	"bytes"

	"github.com/google/btree"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

// regionEntry is one region of the catalog: the persisted metadata plus what
// the last heartbeat reported. Entries are never shared outside the package;
// fields are replaced, never mutated in place, under Cluster.mu.
type regionEntry struct {
	meta         *metapb.Region
	leader       *metapb.Peer
	downPeers    []*pdpb.PeerStats
	pendingPeers []*metapb.Peer
	approxSize   uint64
	approxKeys   uint64
	term         uint64
}

func (e *regionEntry) start() []byte { return e.meta.GetStartKey() }
func (e *regionEntry) end() []byte   { return e.meta.GetEndKey() }

// regionTree orders the catalog by start key. The regions in it never
// overlap, so the region containing a key is the one with the greatest start
// key not above it. Not safe for concurrent use: Cluster.mu guards it.
type regionTree struct {
	t *btree.BTreeG[*regionEntry]
}

func newRegionTree() *regionTree {
	return &regionTree{t: btree.NewG(32, func(a, b *regionEntry) bool {
		return bytes.Compare(a.start(), b.start()) < 0
	})}
}

func pivot(key []byte) *regionEntry {
	return &regionEntry{meta: &metapb.Region{StartKey: key}}
}

// endAfter reports whether a region ending at end extends past key: an empty
// end is +inf.
func endAfter(end, key []byte) bool {
	return len(end) == 0 || bytes.Compare(end, key) > 0
}

func (t *regionTree) len() int { return t.t.Len() }

// put inserts e, replacing the entry with the same start key if any.
func (t *regionTree) put(e *regionEntry) { t.t.ReplaceOrInsert(e) }

// remove deletes e if it is the entry at its start key.
func (t *regionTree) remove(e *regionEntry) {
	if cur, ok := t.t.Get(e); ok && cur == e {
		t.t.Delete(e)
	}
}

// find returns the region containing key, or nil.
func (t *regionTree) find(key []byte) *regionEntry {
	var found *regionEntry
	t.t.DescendLessOrEqual(pivot(key), func(e *regionEntry) bool {
		found = e
		return false
	})
	if found == nil || !endAfter(found.end(), key) {
		return nil
	}
	return found
}

// scan calls fn, in key order, for every region overlapping [start, end); an
// empty end is +inf. fn returns false to stop.
func (t *regionTree) scan(start, end []byte, fn func(*regionEntry) bool) {
	if first := t.find(start); first != nil && !bytes.Equal(first.start(), start) {
		// The region holding start begins before it; AscendGreaterOrEqual
		// below starts after it.
		if !fn(first) {
			return
		}
	}
	t.t.AscendGreaterOrEqual(pivot(start), func(e *regionEntry) bool {
		if len(end) > 0 && bytes.Compare(e.start(), end) >= 0 {
			return false
		}
		return fn(e)
	})
}

// overlaps returns the regions overlapping [start, end).
func (t *regionTree) overlaps(start, end []byte) []*regionEntry {
	var out []*regionEntry
	t.scan(start, end, func(e *regionEntry) bool {
		out = append(out, e)
		return true
	})
	return out
}
