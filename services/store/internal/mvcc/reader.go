package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/store/internal/keys"
)

// reader holds what the operations share while they look at one
// pebble.Reader: a write column family iterator reused across keys (its
// bounds narrowed to one key's versions for each lookup, so Pebble never
// wanders past them), and scratch buffers for encoded keys, so a point read
// costs a handful of allocations however many keys a request names.
type reader struct {
	r   pebble.Reader
	wit *pebble.Iterator
	// prefixLen is the length of 'W' enc(key) for the key wit is bounded to.
	prefixLen int
	// buf, lower and upper are carved from one arena, sized for the key at
	// hand: a CF byte, the key's encoding, a timestamp and one more byte.
	arena        []byte
	buf          []byte
	lower, upper []byte
}

// fit makes the scratch buffers big enough for keys of key's length, so the
// appends building engine keys never reallocate.
func (rd *reader) fit(key []byte) {
	n := 1 + (len(key)/8+1)*9 + 8 + 1
	if cap(rd.buf) >= n {
		return
	}
	if cap(rd.arena) < 3*n {
		rd.arena = make([]byte, 3*n)
	}
	rd.buf, rd.lower, rd.upper = rd.arena[:0:n], rd.arena[n:n:2*n], rd.arena[2*n:2*n:3*n]
}

// closeReader closes rd and reports a close failure through *err unless an
// earlier error is already there.
func closeReader(rd *reader, err *error) {
	if rd.wit == nil {
		return
	}
	if cerr := rd.wit.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("mvcc: close iterator: %w", cerr)
	}
	rd.wit = nil
}

// get is a point read that copies the value out before releasing Pebble's
// buffer.
func (rd *reader) get(k []byte) (v []byte, found bool, err error) {
	val, closer, err := rd.r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v = append(make([]byte, 0, len(val)), val...)
	return v, true, closer.Close()
}

// lock reads the lock on key, if any.
func (rd *reader) lock(key []byte) (Lock, bool, error) {
	rd.fit(key)
	rd.buf = keys.EncodeBytes(append(rd.buf[:0], keys.CFLock), key)
	v, found, err := rd.get(rd.buf)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("mvcc: read lock %q: %w", key, err)
		}
		return Lock{}, false, err
	}
	l, err := DecodeLock(v)
	if err != nil {
		return Lock{}, false, fmt.Errorf("mvcc: read lock %q: %w", key, err)
	}
	return l, true, nil
}

// writeAt reads the write record at exactly WriteKey(key, commitTS).
func (rd *reader) writeAt(key []byte, commitTS uint64) (Write, bool, error) {
	rd.fit(key)
	rd.buf = binary.BigEndian.AppendUint64(keys.EncodeBytes(append(rd.buf[:0], keys.CFWrite), key), ^commitTS)
	v, found, err := rd.get(rd.buf)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("mvcc: read write record %q@%d: %w", key, commitTS, err)
		}
		return Write{}, false, err
	}
	w, err := DecodeWrite(v)
	if err != nil {
		return Write{}, false, fmt.Errorf("mvcc: read write record %q@%d: %w", key, commitTS, err)
	}
	return w, true, nil
}

// value reads the default column family value a transaction wrote. Its
// absence is corruption: a PUT record without an inline value promises it.
func (rd *reader) value(key []byte, startTS uint64) ([]byte, error) {
	rd.fit(key)
	rd.buf = binary.BigEndian.AppendUint64(keys.EncodeBytes(append(rd.buf[:0], keys.CFDefault), key), ^startTS)
	v, found, err := rd.get(rd.buf)
	if err != nil {
		return nil, fmt.Errorf("mvcc: read value %q@%d: %w", key, startTS, err)
	}
	if !found {
		return nil, fmt.Errorf("mvcc: read value %q@%d: %w: value missing from the default column family", key, startTS, ErrCorrupt)
	}
	return v, nil
}

// valueHead reads the length and the first prefixLen bytes of the default
// column family value a transaction wrote, copying only those bytes.
func (rd *reader) valueHead(key []byte, startTS uint64, prefixLen int) ([]byte, int, error) {
	rd.fit(key)
	rd.buf = binary.BigEndian.AppendUint64(keys.EncodeBytes(append(rd.buf[:0], keys.CFDefault), key), ^startTS)
	val, closer, err := rd.r.Get(rd.buf)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, fmt.Errorf("mvcc: read value %q@%d: %w: value missing from the default column family", key, startTS, ErrCorrupt)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("mvcc: read value %q@%d: %w", key, startTS, err)
	}
	n := len(val)
	prefix := append([]byte{}, val[:min(max(prefixLen, 0), n)]...)
	if err := closer.Close(); err != nil {
		return nil, 0, fmt.Errorf("mvcc: read value %q@%d: %w", key, startTS, err)
	}
	return prefix, n, nil
}

// seekVersions positions the write iterator on the newest write record of
// key with minTS <= commit_ts <= maxTS; Next walks to older ones and the
// iterator turns invalid past minTS. The caller checks iterErr afterwards.
func (rd *reader) seekVersions(key []byte, maxTS, minTS uint64) (bool, error) {
	rd.fit(key)
	rd.lower = keys.EncodeBytes(append(rd.lower[:0], keys.CFWrite), key)
	rd.prefixLen = len(rd.lower)
	rd.upper = append(rd.upper[:0], rd.lower...)
	rd.lower = binary.BigEndian.AppendUint64(rd.lower, ^maxTS)
	// The successor of WriteKey(key, minTS): an inclusive bound.
	rd.upper = append(binary.BigEndian.AppendUint64(rd.upper, ^minTS), 0)
	if rd.wit == nil {
		it, err := rd.r.NewIter(&pebble.IterOptions{LowerBound: rd.lower, UpperBound: rd.upper})
		if err != nil {
			return false, fmt.Errorf("mvcc: open write iterator: %w", err)
		}
		rd.wit = it
	} else {
		rd.wit.SetBounds(rd.lower, rd.upper)
	}
	return rd.wit.First(), nil
}

// version decodes the record under the write iterator. The bounds set by
// seekVersions guarantee the key prefix; the length check catches a corrupt
// suffix. The record aliases the iterator's buffer: valid until it moves.
func (rd *reader) version(key []byte) (commitTS uint64, w Write, err error) {
	k := rd.wit.Key()
	if len(k) != rd.prefixLen+8 {
		return 0, Write{}, fmt.Errorf("mvcc: write key %x of %q: %w: bad timestamp suffix", k, key, ErrCorrupt)
	}
	commitTS = ^binary.BigEndian.Uint64(k[rd.prefixLen:])
	v, err := rd.wit.ValueAndErr()
	if err != nil {
		return 0, Write{}, fmt.Errorf("mvcc: read write record %q@%d: %w", key, commitTS, err)
	}
	if w, err = DecodeWrite(v); err != nil {
		return 0, Write{}, fmt.Errorf("mvcc: read write record %q@%d: %w", key, commitTS, err)
	}
	return commitTS, w, nil
}

func (rd *reader) iterErr(key []byte) error {
	if err := rd.wit.Error(); err != nil {
		return fmt.Errorf("mvcc: iterate versions of %q: %w", key, err)
	}
	return nil
}

// txnState is what the write column family says about one transaction on one key.
type txnState int

const (
	txnNone       txnState = iota // no record of the transaction
	txnCommitted                  // a commit record (PUT, DEL or LOCK) of it exists
	txnRolledBack                 // a rollback record of it exists
)

// txnRecord looks for startTS's own record among the write records of key
// with commit_ts >= startTS (a transaction cannot commit below its start):
// a commit record carrying its start_ts, or a rollback at commit_ts =
// startTS (a ROLLBACK record, or another transaction's commit flagged as
// overlapping it). The cost is the number of newer versions, which is small
// for the live transactions that ask.
func (rd *reader) txnRecord(key []byte, startTS uint64) (txnState, uint64, error) {
	ok, err := rd.seekVersions(key, ^uint64(0), startTS)
	if err != nil {
		return txnNone, 0, err
	}
	for ; ok; ok = rd.wit.Next() {
		commitTS, w, err := rd.version(key)
		if err != nil {
			return txnNone, 0, err
		}
		if commitTS == startTS && (w.Kind == opRollback || w.OverlappedRollback) {
			return txnRolledBack, 0, nil
		}
		if w.StartTS == startTS && w.Kind != opRollback {
			return txnCommitted, commitTS, nil
		}
	}
	return txnNone, 0, rd.iterErr(key)
}

// locks reads the locks of several keys in one ordered pass over the lock
// column family: the keys are visited in sorted order on one iterator, and a
// seek lands on the first lock at or after a key, which answers every key
// before that lock too ("no lock") without another seek. Locks are short-lived
// and few, so a request usually costs one seek however many keys it names,
// where a point read per key would descend the memtable's skiplist per key
// (the largest part of a combined prewrite's CPU in profiles). locks[i] is
// the lock of ks[i], nil if it has none.
//
// It positions rd's iterator; seekVersions resets its bounds afterwards. The
// iterator's view is that of its creation: the caller holds the latches of
// ks, so none of their locks changes in between.
func (rd *reader) locks(ks [][]byte) ([]*Lock, error) {
	out := make([]*Lock, len(ks))
	if len(ks) == 0 {
		return out, nil
	}
	// The encoded lock keys, carved from one arena.
	size := 0
	for _, k := range ks {
		size += 1 + (len(k)/8+1)*9
	}
	arena := make([]byte, 0, size+1)
	enc := make([][]byte, len(ks))
	order := make([]int, len(ks))
	for i, k := range ks {
		start := len(arena)
		arena = keys.EncodeBytes(append(arena, keys.CFLock), k)
		enc[i] = arena[start:len(arena):len(arena)]
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return bytes.Compare(enc[order[a]], enc[order[b]]) < 0 })
	lower := enc[order[0]]
	// The successor of the largest key: an inclusive bound.
	upper := append(append(make([]byte, 0, len(enc[order[len(order)-1]])+1), enc[order[len(order)-1]]...), 0)
	if rd.wit == nil {
		it, err := rd.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return nil, fmt.Errorf("mvcc: open lock iterator: %w", err)
		}
		rd.wit = it
	} else {
		rd.wit.SetBounds(lower, upper)
	}
	positioned, valid := false, false
	for _, i := range order {
		k := enc[i]
		// Seek only if the iterator is not already at or past k: a lock
		// found at or after an earlier key that lies beyond k says k has none.
		if !positioned || bytes.Compare(rd.wit.Key(), k) < 0 {
			valid, positioned = rd.wit.SeekGE(k), true
		}
		if !valid {
			break // no lock at or after k, so none for the keys after it
		}
		if !bytes.Equal(rd.wit.Key(), k) {
			continue
		}
		v, err := rd.wit.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("mvcc: read lock %q: %w", ks[i], err)
		}
		// Decoded from a copy: the record outlives the iterator's position.
		l, err := DecodeLock(append([]byte(nil), v...))
		if err != nil {
			return nil, fmt.Errorf("mvcc: read lock %q: %w", ks[i], err)
		}
		out[i] = &l
	}
	if err := rd.wit.Error(); err != nil {
		return nil, fmt.Errorf("mvcc: iterate locks: %w", err)
	}
	return out, nil
}
