package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// GC removes the versions no reader at or above safePoint can see, for the
// raw keys in [start, end) (empty end: unbounded). Per key, among the write
// records with commit_ts <= safePoint: the newest PUT or DEL is what such a
// reader sees, so it stays if it is a PUT that has not expired by nowMs; a
// DEL or an expired PUT is removed, as it reads as "not found" just like no
// version at all. Every older version goes, and so do the ROLLBACK and LOCK
// records at or below safePoint, each with its default column family value.
// Records above safePoint are never touched.
//
// GC never touches locks or the values they point to, but pending locks
// still depend on what it removes: a lock is resolved from its
// transaction's primary key, and GC drops the primary's commit (or
// rollback) record once the primary has a newer version at or below
// safePoint, or was deleted. A reader of a secondary still locked would
// then find no record at the primary and roll a committed transaction
// back. So safePoint must come after a lock resolution of the whole
// cluster: every lock with start_ts <= safePoint settled first, as the
// store's GC driver does before it stores a safe point in PD (see package
// kvsvc). The safe point must also guarantee that no transaction with
// start_ts <= safePoint will still prewrite or commit at or below it: GC
// removes the rollback records that would stop such a late prewrite, and a
// commit at or below safePoint would slip a version under readers that
// already passed it. The service enforces this by rejecting a Prewrite
// whose start_ts, or a Commit whose commit_ts, is at or below the last safe
// point it collected with. nowMs must be no later than the instant by which
// any reader at or above safePoint judges expiry: an expired PUT is gone for
// all of them. The service passes safePoint's physical time, never a local
// clock (readers judge by their timestamp's physical time).
//
// GC returns about limit modifies at most (limit <= 0: no limit), taking
// about maxBytes at most in a raft command (maxBytes <= 0: no limit; keys
// can be long, so a count alone does not bound a command), and the raw key
// to continue from, nil when the range is done. A key with more garbage
// than limit is cut in the middle and next is that key again; the newest
// version, when it is to be removed, is removed only in the batch that
// removes the last version below it, so a cut never lets an older value
// reappear. The caller must therefore apply the modifies before the next
// call reads; computed again from the same state they are simply the same.
func GC(r pebble.Reader, start, end []byte, safePoint uint64, nowMs int64, limit, maxBytes int) (mods []*raftserverpb.Modify, next []byte, err error) {
	return GCSummarized(r, start, end, safePoint, nowMs, limit, maxBytes, nil)
}

// GCSummary is what one GC call saw of the range it walked, for a caller
// that wants to know whether a later GC of the same data, plus write
// records put since, could find anything (see Idle).
type GCSummary struct {
	// NewestCommit is the highest commit_ts of any write record walked,
	// including records above the safe point (0: none).
	NewestCommit uint64
	// OldestAbove is the lowest commit_ts above the safe point of any write
	// record in the range (0: none is above it).
	OldestAbove uint64
	// NextExpiry is the earliest ExpiresAt of a PUT kept as the newest
	// version of its key (0: none has a TTL).
	NextExpiry int64
}

// Idle reports whether GC at safePoint2 and nowMs2 is sure to find
// nothing in a range that a GC call at safePoint walked (returning no
// modifies and next nil, with this summary) if, since that call read the
// range, write records were only put (never deleted), none committed
// below putSince (math.MaxUint64: none put). It is when no record walked
// or put since lies in (safePoint, safePoint2]: then the records at or
// below safePoint2 are the ones the call saw at or below safePoint, and so
// is every decision GC takes on them (records above its safe point GC
// never looks at), but one: a kept value that expires by nowMs2.
//
// A cluster younger than the GC life time is the common case: every record
// is above the safe point and stays above the next one, so no pass walks
// the data until the oldest record comes within reach.
func (s GCSummary) Idle(safePoint, safePoint2 uint64, nowMs2 int64, putSince uint64) bool {
	return safePoint2 >= safePoint &&
		(s.OldestAbove == 0 || s.OldestAbove > safePoint2) &&
		putSince > safePoint2 &&
		!expired(s.NextExpiry, nowMs2)
}

// gcWalkAbove is how many versions of a key above the safe point GC steps
// over one by one to find the oldest (for GCSummary.OldestAbove) before it
// seeks instead: a key rewritten often would cost a step per version.
const gcWalkAbove = 8

// GCSummarized is GC that also fills sum (if not nil) with what it walked.
// The summary covers the whole range only when the call returns next nil.
func GCSummarized(r pebble.Reader, start, end []byte, safePoint uint64, nowMs int64, limit, maxBytes int, sum *GCSummary) (mods []*raftserverpb.Modify, next []byte, err error) {
	if sum == nil {
		sum = &GCSummary{}
	}
	if emptyRange(start, end) {
		return nil, nil, nil
	}
	lo, hi := keys.DataRange(keys.CFWrite, start, end)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, fmt.Errorf("mvcc: gc: open iterator: %w", err)
	}
	defer closeIter(it, "gc", &err)
	var m modifies
	full := func() bool {
		return (limit > 0 && len(m.list) >= limit) || (maxBytes > 0 && m.size >= maxBytes)
	}
	var prefix, seek []byte
	ok := it.First()
	for ok {
		k := it.Key()
		if len(k) < 1+8 {
			return nil, nil, fmt.Errorf("mvcc: gc: write key %x: %w: too short", k, ErrCorrupt)
		}
		prefix = append(prefix[:0], k[:len(k)-8]...)
		key, rest, err := keys.DecodeBytes(prefix[1:])
		if err != nil || len(rest) != 0 {
			return nil, nil, fmt.Errorf("mvcc: gc: write key %x: %w: bad key encoding", k, ErrCorrupt)
		}
		if full() {
			return m.list, key, nil
		}
		// The first record of a key is its newest.
		ts := ^binary.BigEndian.Uint64(k[len(k)-8:])
		if ts > sum.NewestCommit {
			sum.NewestCommit = ts
		}
		if ts > safePoint {
			// Move to the newest record at or below the safe point (or
			// past the key), noting the oldest one above it.
			seek = binary.BigEndian.AppendUint64(append(seek[:0], prefix...), ^safePoint)
			oldest, err := gcSkipAbove(it, prefix, seek, safePoint, ts, &ok)
			if err != nil {
				return nil, nil, fmt.Errorf("mvcc: gc: key %q: %w", key, err)
			}
			if sum.OldestAbove == 0 || oldest < sum.OldestAbove {
				sum.OldestAbove = oldest
			}
		}
		// Otherwise the iterator already is on the newest record at or
		// below the safe point.

		var (
			seenData   bool      // met the newest PUT or DEL at or below safePoint
			dropNewest *modifies // its removal, held back until the older versions are gone
		)
		for ; ok && bytes.HasPrefix(it.Key(), prefix); ok = it.Next() {
			k := it.Key()
			if len(k) != len(prefix)+8 {
				return nil, nil, fmt.Errorf("mvcc: gc: write key %x: %w: bad timestamp suffix", k, ErrCorrupt)
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, nil, fmt.Errorf("mvcc: gc: read write record %x: %w", k, err)
			}
			commitTS := ^binary.BigEndian.Uint64(k[len(prefix):])
			w, err := DecodeWrite(v)
			if err != nil {
				return nil, nil, fmt.Errorf("mvcc: gc: read write record %q@%d: %w", key, commitTS, err)
			}
			isData := w.Kind == opPut || w.Kind == opDel
			if isData && !seenData {
				seenData = true
				if w.Kind == opDel || expired(w.ExpiresAt, nowMs) {
					dropNewest = &modifies{}
					dropVersion(dropNewest, key, commitTS, &w)
				} else if w.ExpiresAt != 0 && (sum.NextExpiry == 0 || w.ExpiresAt < sum.NextExpiry) {
					sum.NextExpiry = w.ExpiresAt
				}
				continue
			}
			if full() {
				// Cut inside the key, keeping any held-back removal of the
				// newest version for the batch that finishes the key.
				return m.list, key, nil
			}
			dropVersion(&m, key, commitTS, &w)
		}
		if dropNewest != nil {
			m.list = append(m.list, dropNewest.list...)
			m.size += dropNewest.size
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("mvcc: gc: %w", err)
	}
	return m.list, nil, nil
}

// gcSkipAbove moves it, which is on the newest record of a key (prefix is
// the write records' key prefix) committed at newest > safePoint, to the
// first record at or below the safe point, or past the key's records (seek
// is the key's record at safePoint), as it.SeekGE(seek) would, and returns
// the lowest commit_ts above the safe point of its records. *ok is the
// iterator's state after the move.
func gcSkipAbove(it *pebble.Iterator, prefix, seek []byte, safePoint, newest uint64, ok *bool) (oldest uint64, err error) {
	oldest = newest
	for steps := 0; ; steps++ {
		if *ok = it.Next(); !*ok {
			return oldest, nil
		}
		k := it.Key()
		if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
			// Another key (a bad suffix is the caller's to report).
			return oldest, nil
		}
		ts := ^binary.BigEndian.Uint64(k[len(prefix):])
		if ts <= safePoint {
			return oldest, nil
		}
		if steps == gcWalkAbove {
			// Many versions above the safe point: seek to the last of them
			// and then past them.
			if !it.SeekLT(seek) {
				return 0, fmt.Errorf("%w: no version above the safe point on a seek back", ErrCorrupt)
			}
			k := it.Key()
			if !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
				return 0, fmt.Errorf("write key %x: %w: bad timestamp suffix", k, ErrCorrupt)
			}
			oldest = ^binary.BigEndian.Uint64(k[len(prefix):])
			*ok = it.SeekGE(seek)
			return oldest, nil
		}
		oldest = ts
	}
}

// dropVersion removes one write record and its default column family value.
func dropVersion(m *modifies, key []byte, commitTS uint64, w *Write) {
	m.del(keys.WriteKey(key, commitTS))
	if w.Kind == opPut && !w.Inline {
		m.del(keys.DefaultKey(key, w.StartTS))
	}
}

// ApplyModifies adds mods to the batch, in order. It is the whole apply step
// of a replicated write: every replica applies the same list verbatim, and
// the list must go into one batch (one raft entry) to be atomic.
func ApplyModifies(b *pebble.Batch, mods []*raftserverpb.Modify) error {
	for i, md := range mods {
		var err error
		switch md.GetOp() {
		case raftserverpb.ModifyOp_MODIFY_PUT:
			err = b.Set(md.GetKey(), md.GetValue(), nil)
		case raftserverpb.ModifyOp_MODIFY_DELETE:
			err = b.Delete(md.GetKey(), nil)
		default:
			return fmt.Errorf("mvcc: apply modify %d (key %x): unknown op %v", i, md.GetKey(), md.GetOp())
		}
		if err != nil {
			return fmt.Errorf("mvcc: apply modify %d (key %x): %w", i, md.GetKey(), err)
		}
	}
	return nil
}
