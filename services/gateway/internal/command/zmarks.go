package command

import (
	"bytes"
	"errors"
	"math"
	"slices"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// A sorted set's score index keeps its ends in the metadata record
// (keyspace.Meta.ZLow and ZHigh; docs/architecture.md, "Sorted sets' marks"),
// as a list keeps its head and tail: no live index entry sorts below ZLow
// or at or above ZHigh. Every scan of the index runs within them, so a
// pop's seek lands past the deletions earlier pops left (a Pebble memtable
// or the raft stores' MVCC keep them until compaction or GC, and a scan
// from the index's start stepped over all of them: pop k cost O(k)).
//
// Who moves them, all in the record write the command makes anyway (every
// write of a sorted set writes its record, which is also what makes two
// raft writers of it conflict, so the marks add no conflict):
//   - ZPOPMIN, BZPOPMIN, ZMPOP MIN and a removal of the lowest ranks or
//     scores raise ZLow past the last entry removed; the MAX forms and a
//     removal of the highest lower ZHigh to the last entry removed;
//   - an insert (ZADD, ZINCRBY, a new score) outside them widens them to
//     its entry;
//   - nothing else: a ZREM of the lowest member leaves ZLow below it,
//     which is still a bound (a later pop steps over that one deletion).
//
// RENAME, MOVE, COPY and RESTORE carry the record's marks or start
// without any (the whole index), records written before the marks have
// none, and a MULTI/EXEC or a failed command writes the record with its
// elements or not at all.

// zindexEnd returns the high mark as a scan's end (nil: the index's end).
func (c *coll) zindexEnd() []byte { return c.meta.ZHigh }

// zwiden widens the marks to an index entry being written.
func (c *coll) zwiden(elem []byte) {
	if c.meta.ZLow != nil && bytes.Compare(elem, c.meta.ZLow) < 0 {
		c.meta.ZLow = keyspace.ZMarkLow(elem)
	}
	if c.meta.ZHigh != nil && bytes.Compare(elem, c.meta.ZHigh) >= 0 {
		c.meta.ZHigh = keyspace.ZMarkHighAbove(elem)
	}
}

// zremovedLow notes that the entries up to and including elem are gone
// (the lowest ones were popped or removed).
func (c *coll) zremovedLow(elem []byte) { c.meta.ZLow = keyspace.ZMarkAbove(elem) }

// zremovedHigh notes that the entries from elem up are gone.
func (c *coll) zremovedHigh(elem []byte) { c.meta.ZHigh = keyspace.ZMarkHigh(elem) }

// zfirst returns the count lowest members, in order.
func (c *coll) zfirst(count int64) ([]zentry, error) {
	var es []zentry
	err := c.zscanIndex(nil, scanLimit(count), func(elem, val []byte) bool {
		m, s := decodeIndex(elem, val)
		es = append(es, zentry{bytesClone(m), s})
		return int64(len(es)) < count
	})
	return es, err
}

// scanLimit is a scan's limit for n entries (0, none, past an int's
// range).
func scanLimit(n int64) int {
	if n <= 0 || n > math.MaxInt32 {
		return 0
	}
	return int(n)
}

// fwdSearchMin is the least number of members per member popped for
// which the forward-seek search (lastBelowFwd: some 10-30 seeks, each a
// request on the raft backend) is used rather than one scan of the index
// within the marks, which reads up to this many members in one request
// (the raft backend's page of sub-keys).
const fwdSearchMin = 256

// zlast returns the count highest members, the highest first: one
// reverse seek each on the embedded backend, a search by forward seeks
// on the raft backend (lastBelowFwd) when the set holds fwdSearchMin
// members per member popped, else a scan of the index within the marks.
func (c *coll) zlast(count int64) ([]zentry, error) {
	if !c.found || count <= 0 {
		return nil, nil
	}
	it, iterOK := c.sub.(backend.SubIterTxn)
	iterOK = iterOK && useSubIter
	if count >= int64(c.meta.Count) || (!iterOK && (int64(c.meta.Count)-1)/fwdSearchMin < count) {
		es, err := c.zall()
		if int64(len(es)) > count {
			es = es[int64(len(es))-count:]
		}
		slices.Reverse(es)
		return es, err
	}
	base, end := keyspace.KindRange(c.db, c.key, c.meta.Version, keyspace.KindZSetScore)
	lo := append(bytesClone(base), c.meta.ZLow...)
	hi := end
	if c.meta.ZHigh != nil {
		hi = append(bytesClone(base), c.meta.ZHigh...)
	}
	var es []zentry
	add := func(k, v []byte) {
		m, s := decodeIndex(k[len(base):], v)
		es = append(es, zentry{bytesClone(m), s})
		hi = bytesClone(k)
	}
	if iterOK {
		sit, err := it.NewSubIter(lo, hi)
		if err != nil {
			return nil, err
		}
		for int64(len(es)) < count {
			k, ok, err := sit.LastBelow(lo, hi)
			if err != nil || !ok {
				return es, errors.Join(err, sit.Close())
			}
			// The entry's value (a -0's bits), on the same iterator.
			var val []byte
			if err := sit.SeekGE(k, nil, 1, func(_, v []byte) bool { val = bytesClone(v); return false }); err != nil {
				return es, errors.Join(err, sit.Close())
			}
			subKeysScanned.Add(1)
			add(k, val)
		}
		return es, sit.Close()
	}
	for int64(len(es)) < count {
		k, v, ok, err := lastBelowFwd(c.sub, lo, hi, len(base))
		if err != nil || !ok {
			return es, err
		}
		add(k, v)
	}
	return es, nil
}

// lastBelowFwd returns the last sub-key in [lo, hi) and its value with
// forward seeks only (the raft backend's store scans forward): the key is
// built byte by byte below the shared prefix base (its first baseLen
// bytes), each byte by a binary search of at most 8 seeks of two keys
// each; a seek that finds a key with no key after it below hi has found
// the last one, which ends the search early (usually a few bytes in).
// Every seek runs inside [lo, hi), so deletions outside it (earlier pops')
// are never stepped over.
func lastBelowFwd(sub backend.SubTxn, lo, hi []byte, baseLen int) ([]byte, []byte, bool, error) {
	type kv struct{ k, v []byte }
	seek := func(from []byte) (a, b *kv, err error) {
		if bytes.Compare(from, lo) < 0 {
			from = lo
		}
		n := 0
		err = sub.ScanSub(from, hi, 2, func(k, v []byte) bool {
			e := &kv{bytesClone(k), bytesClone(v)}
			if n == 0 {
				a = e
			} else {
				b = e
			}
			n++
			return true
		})
		subKeysScanned.Add(int64(n))
		return a, b, err
	}
	a, b, err := seek(lo)
	if err != nil || a == nil {
		return nil, nil, false, err
	}
	if b == nil {
		return a.k, a.v, true, nil
	}
	// Invariant: the last key has prefix p, and known is a key with
	// prefix p.
	p := bytesClone(b.k[:baseLen])
	known := b.k
	for {
		lowV, hiV := -1, 255 // -1: the key equal to p
		if len(known) > len(p) {
			lowV = int(known[len(p)])
		}
		for lowV < hiV {
			mid := (lowV + hiV + 1) / 2
			a, b, err := seek(append(bytesClone(p), byte(mid)))
			if err != nil {
				return nil, nil, false, err
			}
			if a == nil {
				hiV = mid - 1
				continue
			}
			if b == nil {
				return a.k, a.v, true, nil
			}
			// a >= p‖mid and a <= the last key, which has prefix p: so
			// has a.
			lowV, known = int(a.k[len(p)]), a.k
		}
		if lowV < 0 {
			// The last key is p itself.
			a, _, err := seek(p)
			if err != nil || a == nil || !bytes.Equal(a.k, p) {
				return nil, nil, false, errors.Join(err, errors.New("sorted-set index changed during a seek"))
			}
			return a.k, a.v, true, nil
		}
		p = append(p, byte(lowV))
	}
}

// zpopKey is the pop cache key of c's lowest (max: highest) entries.
func (c *coll) zpopKey(max bool) string {
	dir := byte('<')
	if max {
		dir = '>'
	}
	return c.popKey(keyspace.KindZSetScore, dir)
}

// zpopEntries returns the count lowest members (max: highest), in pop
// order, for a pop to remove, and the entries after them (nil: none kept)
// for the next pops (popcache.go): from the batch the last pop kept, if
// it was read at this state and holds enough, else read with zpopAhead
// entries more.
func (c *coll) zpopEntries(max bool, count int64) ([]zentry, *popBatch, error) {
	if !usePopBatches || c.pops == nil || !c.found || count <= 0 || count > zpopAhead {
		var es []zentry
		var err error
		if !max {
			es, err = c.zfirst(count)
		} else {
			es, err = c.zlast(count)
		}
		return es, nil, err
	}
	key := c.zpopKey(max)
	b := c.pops.take(key, c.meta.Version, c.meta.Stamp)
	if b != nil && int64(b.left()) >= count {
		popBatchHits.Add(1)
	} else {
		var err error
		if b, err = c.zreadAhead(max, int(count), int(count)+zpopAhead); err != nil {
			return nil, nil, err
		}
	}
	es := make([]zentry, 0, min(count, int64(b.left())))
	for int64(len(es)) < count && b.left() > 0 {
		val := b.vals[b.i]
		b.vals[b.i] = nil
		m, s := decodeIndex(b.next(), val)
		es = append(es, zentry{m, s})
	}
	return es, b, nil
}

// zreadAhead reads up to n of the lowest (max: highest) index entries
// within the marks, in pop order: one forward scan, or on a backend with
// sub-key iterators one reverse one (the raft backend's store scans
// forward only: zlast's search, as many as one pop needs, and no more).
// Past the need entries the pop takes it reads on only while they hold
// less than popBatchBytes: members of 100 MiB must not make one ZPOPMIN
// read 64 of them.
func (c *coll) zreadAhead(max bool, need, n int) (*popBatch, error) {
	b := &popBatch{}
	add := func(elem, val []byte) bool {
		b.elems = append(b.elems, bytesClone(elem))
		b.vals = append(b.vals, bytesClone(val))
		b.bytes += len(elem) + len(val) + 48
		return len(b.elems) < need || b.bytes < popBatchBytes
	}
	popBatchReads.Add(1)
	if !max {
		return b, c.zscanIndex(nil, n, add)
	}
	it, iterOK := c.sub.(backend.SubIterTxn)
	if !iterOK || !useSubIter {
		es, err := c.zlast(int64(n - zpopAhead))
		for _, e := range es {
			add(indexElem(e.s, e.m), indexVal(e.s))
		}
		return b, err
	}
	base, end := keyspace.KindRange(c.db, c.key, c.meta.Version, keyspace.KindZSetScore)
	lo := append(bytesClone(base), c.meta.ZLow...)
	hi := end
	if c.meta.ZHigh != nil {
		hi = append(bytesClone(base), c.meta.ZHigh...)
	}
	sit, err := it.NewSubIter(lo, hi)
	if err != nil {
		return nil, err
	}
	m := 0
	err = sit.SeekLT(lo, hi, n, func(k, v []byte) bool {
		m++
		return add(k[len(base):], v)
	})
	subKeysScanned.Add(int64(m))
	return b, errors.Join(err, sit.Close())
}
