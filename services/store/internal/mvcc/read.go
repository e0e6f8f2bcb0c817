package mvcc

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// PhysicalShift is the number of logical bits below the physical
// milliseconds in a TSO timestamp.
const PhysicalShift = 18

// PhysicalMs returns the physical part of a TSO timestamp: Unix milliseconds.
func PhysicalMs(ts uint64) int64 { return int64(ts >> PhysicalShift) }

// Expired reports whether the lock's TTL has run out at currentTS, that is
// whether the physical time of currentTS is at least that of StartTS plus
// TTL. A lock with a zero TTL is always expired, so that a live lock always
// reports a nonzero TTL (a zero one would read as "rolled back").
func (l *Lock) Expired(currentTS uint64) bool {
	if l.TTL == 0 {
		return true
	}
	deadline := l.StartTS>>PhysicalShift + l.TTL
	if deadline < l.TTL { // overflow: the lock lives forever
		return false
	}
	return currentTS>>PhysicalShift >= deadline
}

// Info describes the lock on key for a KeyError or ScanLock. It copies, so
// the result outlives the buffer the lock was decoded from.
func (l *Lock) Info(key []byte) *kvrpcpb.LockInfo {
	return &kvrpcpb.LockInfo{
		PrimaryLock: bytes.Clone(l.Primary),
		LockVersion: l.StartTS,
		Key:         bytes.Clone(key),
		LockTtl:     l.TTL,
		LockType:    l.Op,
		TxnSize:     l.TxnSize,
	}
}

// blocksRead reports whether the lock hides the key's value from a reader at
// ts. A lock started after ts can only commit after ts, so the reader cannot
// see its write either way. A lock started at ts is the reader's own
// transaction (TSO timestamps are unique), which reads its own writes from
// its buffer. A LOCK-only lock writes no value, so it cannot change what the
// reader sees.
func (l *Lock) blocksRead(ts uint64) bool {
	return l.Op != opLock && l.StartTS < ts
}

// emptyRange reports whether the raw range [start, end) (empty end:
// unbounded) holds no key. A reversed range must not reach Pebble, whose
// iterators require lower <= upper.
func emptyRange(start, end []byte) bool { return len(end) > 0 && bytes.Compare(start, end) >= 0 }

func expired(expiresAt, nowMs int64) bool { return expiresAt != 0 && expiresAt <= nowMs }

func lockedError(l *Lock, key []byte) *kvrpcpb.KeyError {
	return &kvrpcpb.KeyError{Locked: l.Info(key)}
}

// Get reads key as of ts: a KeyError with Locked if a lock of a transaction
// started before ts (other than a LOCK-only one) may still commit below ts;
// otherwise the newest PUT or DEL committed at or below ts. A value whose
// expires_at is nonzero and <= nowMs reads as not found. The value is a copy
// the caller owns; found distinguishes an empty value from no value.
func Get(r pebble.Reader, key []byte, ts uint64, nowMs int64) (value []byte, expiresAt int64, found bool, keyErr *kvrpcpb.KeyError, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	return rd.read(key, ts, nowMs, lockRead{})
}

// Head is what a head read returns of a value: its length and its first
// bytes, without a copy of the rest.
type Head struct {
	// Prefix is a copy of the value's first bytes, as many as asked for
	// (fewer when the value is shorter); never nil for a value found.
	Prefix []byte
	// Len is the whole value's length.
	Len       int
	ExpiresAt int64
}

// GetHead reads key as Get does, with the same lock, version and expiry
// rules (a head read is a read: it must not see what a full read would not),
// but returns only the value's length and its first prefixLen bytes. A long
// value is still read from the engine, not copied.
func GetHead(r pebble.Reader, key []byte, ts uint64, nowMs int64, prefixLen int) (h Head, found bool, keyErr *kvrpcpb.KeyError, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	return rd.readHead(key, ts, nowMs, prefixLen, lockRead{})
}

// lockRead tells a read how it learns its key's lock: by a point read of
// its own (the zero value), or known already (known, with l nil for no
// lock) because an ordered pass over a batch's keys (reader.locks) read it.
type lockRead struct {
	known bool
	l     *Lock
}

// visible finds the version of key a reader at ts sees: a KeyError if a lock
// blocks it, otherwise the newest live PUT record (found), or nothing when
// the newest PUT or DEL at or below ts is a DEL or an expired PUT. The
// record aliases the write iterator's buffer: valid until it moves.
func (rd *reader) visible(key []byte, ts uint64, nowMs int64, lk lockRead) (Write, bool, *kvrpcpb.KeyError, error) {
	if !lk.known {
		l, locked, err := rd.lock(key)
		if err != nil {
			return Write{}, false, nil, err
		}
		if locked {
			lk.l = &l
		}
	}
	if lk.l != nil && lk.l.blocksRead(ts) {
		return Write{}, false, lockedError(lk.l, key), nil
	}
	ok, err := rd.seekVersions(key, ts, 0)
	if err != nil {
		return Write{}, false, nil, err
	}
	for ; ok; ok = rd.wit.Next() {
		_, w, err := rd.version(key)
		if err != nil {
			return Write{}, false, nil, err
		}
		switch w.Kind {
		case opPut:
			if expired(w.ExpiresAt, nowMs) {
				return Write{}, false, nil, nil
			}
			return w, true, nil, nil
		case opDel:
			return Write{}, false, nil, nil
		}
		// ROLLBACK and LOCK records change nothing: look further down.
	}
	return Write{}, false, nil, rd.iterErr(key)
}

func (rd *reader) read(key []byte, ts uint64, nowMs int64, lk lockRead) ([]byte, int64, bool, *kvrpcpb.KeyError, error) {
	w, found, kerr, err := rd.visible(key, ts, nowMs, lk)
	if err != nil || kerr != nil || !found {
		return nil, 0, false, kerr, err
	}
	v, err := rd.writeValue(key, &w)
	if err != nil {
		return nil, 0, false, nil, err
	}
	return v, w.ExpiresAt, true, nil, nil
}

func (rd *reader) readHead(key []byte, ts uint64, nowMs int64, prefixLen int, lk lockRead) (Head, bool, *kvrpcpb.KeyError, error) {
	w, found, kerr, err := rd.visible(key, ts, nowMs, lk)
	if err != nil || kerr != nil || !found {
		return Head{}, false, kerr, err
	}
	h := Head{ExpiresAt: w.ExpiresAt}
	if w.Inline {
		h.Len = len(w.Value)
		h.Prefix = append([]byte{}, w.Value[:min(max(prefixLen, 0), h.Len)]...)
		return h, true, nil, nil
	}
	if h.Prefix, h.Len, err = rd.valueHead(key, w.StartTS, prefixLen); err != nil {
		return Head{}, false, nil, err
	}
	return h, true, nil, nil
}

// writeValue returns a copy of the value of a PUT record.
func (rd *reader) writeValue(key []byte, w *Write) ([]byte, error) {
	if w.Inline {
		return append(make([]byte, 0, len(w.Value)), w.Value...), nil
	}
	return rd.value(key, w.StartTS)
}

// ReadOptions shape a batch read.
type ReadOptions struct {
	// MaxBytes stops the read once the pairs hold this many bytes of keys
	// and values (as sent: a head read's prefixes), after at least one key;
	// <= 0: no bound.
	MaxBytes int
	// HeadOnly makes it a head read (GetHead): each pair's Value holds the
	// value's first PrefixLen bytes and ValueLen its length.
	HeadOnly  bool
	PrefixLen int
}

// BatchGet reads each key as Get does. The pairs are in request order and
// hold only the keys found and the keys blocked by a lock (with Error set).
func BatchGet(r pebble.Reader, keyList [][]byte, ts uint64, nowMs int64) (pairs []*kvrpcpb.KvPair, err error) {
	pairs, _, err = BatchGetPage(r, keyList, ts, nowMs, ReadOptions{})
	return pairs, err
}

// BatchGetPage is BatchGet within opts: it stops once the pairs hold
// opts.MaxBytes, after at least one key (next is the index of the first key
// not read, 0 when every key was), and with opts.HeadOnly reads heads.
//
// The locks of several keys are read in one ordered pass (reader.locks)
// before the keys' versions: with no lock about, one seek of the lock
// column family for the whole batch instead of a point read per key (for a
// combined GET of ~20 keys, a memtable skiplist descent per key saved). The
// pass and the version reads share one iterator, so they see one state of
// the engine, taken after the caller's read index; a page that stops early
// has looked at the locks of keys it does not read, which costs a little
// and changes nothing.
func BatchGetPage(r pebble.Reader, keyList [][]byte, ts uint64, nowMs int64, opts ReadOptions) (pairs []*kvrpcpb.KvPair, next int, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var locks []*Lock
	if len(keyList) > 1 {
		if locks, err = rd.locks(keyList); err != nil {
			return nil, 0, err
		}
	}
	size := 0
	for i, key := range keyList {
		if opts.MaxBytes > 0 && i > 0 && size >= opts.MaxBytes {
			return pairs, i, nil
		}
		var lk lockRead
		if locks != nil {
			lk = lockRead{known: true, l: locks[i]}
		}
		var (
			p     *kvrpcpb.KvPair
			found bool
			kerr  *kvrpcpb.KeyError
			err   error
		)
		if opts.HeadOnly {
			var h Head
			h, found, kerr, err = rd.readHead(key, ts, nowMs, opts.PrefixLen, lk)
			if found {
				p = &kvrpcpb.KvPair{Key: key, Value: h.Prefix, ExpiresAt: h.ExpiresAt, ValueLen: uint64(h.Len)}
			}
		} else {
			var v []byte
			var exp int64
			v, exp, found, kerr, err = rd.read(key, ts, nowMs, lk)
			if found {
				p = &kvrpcpb.KvPair{Key: key, Value: v, ExpiresAt: exp}
			}
		}
		switch {
		case err != nil:
			return nil, 0, err
		case kerr != nil:
			pairs = append(pairs, &kvrpcpb.KvPair{Key: key, Error: kerr})
		case found:
			pairs = append(pairs, p)
			size += len(key) + len(p.Value) + pairOverhead
		}
	}
	return pairs, 0, nil
}

// Scan reads the raw key range [start, end) as of ts in key order (an empty
// end is unbounded), returning at most limit pairs (limit <= 0: no limit).
// It is ScanWith without the other bounds.
func Scan(r pebble.Reader, start, end []byte, limit int, ts uint64, keyOnly bool, nowMs int64) ([]*kvrpcpb.KvPair, error) {
	res, err := ScanWith(r, start, end, ts, nowMs, ScanOptions{Limit: limit, KeyOnly: keyOnly})
	return res.Pairs, err
}

// ScanOptions bound one ScanWith; zero fields do not bound.
type ScanOptions struct {
	// Limit is the most pairs returned.
	Limit int
	// MaxVisit is the most keys looked at: live ones, deleted or expired
	// ones (whose newest version is a DEL or has expired) and keys that only
	// have a lock. It bounds the work of a scan over mostly dead keys.
	MaxVisit int
	// MaxBytes stops the scan once the pairs returned hold this many bytes
	// of keys and values; at least one pair is returned first.
	MaxBytes int
	// KeyOnly leaves the values out (long values are not read at all).
	KeyOnly bool
}

// ScanResult is what ScanWith found.
type ScanResult struct {
	Pairs []*kvrpcpb.KvPair
	// Visited is the number of keys looked at.
	Visited int
	// Resume is set when the scan stopped at one of its bounds before the
	// end of the range: the key to continue from, inclusive (the successor
	// of the last key looked at). It is nil when the range is exhausted and
	// when the scan stopped at a lock.
	Resume []byte
}

// pairOverhead is what a pair costs in a response besides its key and value.
const pairOverhead = 16

// ScanWith reads the raw key range [start, end) as of ts in key order (an
// empty end is unbounded), within opts's bounds. Deleted and expired keys
// are skipped. A lock that would make Get fail ends the scan: it is reported
// as a last pair with Error set, so the caller can resolve it and resume from
// its key.
//
// ScanWith walks the lock and write column families side by side, seeking in
// the write column family to the version visible at ts and then past the
// key's older versions, so its cost follows the keys looked at rather than
// the number of versions. The lock iterator is moved only as far as the
// write key being looked at (pebble's limits): a range whose locks were all
// deleted (every key a 2PC transaction wrote leaves a deleted lock until
// compaction drops it) holds a tombstone per key, and positioning it on its
// next live lock stepped over all the range's tombstones, to the end of
// the range, for each page: a scan of n keys in pages cost O(n²/page) (an
// SPOP sample of 18 000 members on the raft backend, 5 µs per member here).
func ScanWith(r pebble.Reader, start, end []byte, ts uint64, nowMs int64, opts ScanOptions) (res ScanResult, err error) {
	if emptyRange(start, end) {
		return ScanResult{}, nil
	}
	lockLo, lockHi := keys.DataRange(keys.CFLock, start, end)
	lit, err := r.NewIter(&pebble.IterOptions{LowerBound: lockLo, UpperBound: lockHi})
	if err != nil {
		return ScanResult{}, fmt.Errorf("mvcc: scan: open lock iterator: %w", err)
	}
	defer closeIter(lit, "scan: lock iterator", &err)
	lo, hi := keys.DataRange(keys.CFWrite, start, end)
	wit, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return ScanResult{}, fmt.Errorf("mvcc: scan: open write iterator: %w", err)
	}
	defer closeIter(wit, "scan: write iterator", &err)
	rd := reader{r: r} // for long values only

	var (
		prefix, seek []byte
		last         []byte // the last key looked at, raw
		size         int    // bytes in res.Pairs
	)
	stop := func() bool {
		return (opts.Limit > 0 && len(res.Pairs) >= opts.Limit) ||
			(opts.MaxVisit > 0 && res.Visited >= opts.MaxVisit) ||
			(opts.MaxBytes > 0 && len(res.Pairs) > 0 && size >= opts.MaxBytes)
	}
	// lstate is the lock iterator's: IterAtLimit while it has not reached
	// the write key being looked at (or was not positioned yet: lstarted).
	var (
		lstate   = pebble.IterAtLimit
		lstarted bool
		limit    []byte
	)
	wok := wit.First()
	for {
		// Compare the user keys still encoded: the encoding keeps raw key
		// order and no encoding is a prefix of another.
		var lenc, wenc []byte
		if wok {
			k := wit.Key()
			if len(k) < 1+8 {
				return ScanResult{}, fmt.Errorf("mvcc: scan: write key %x: %w: too short", k, ErrCorrupt)
			}
			wenc = k[1 : len(k)-8]
		}
		// The locks up to the write key's (its lock key's successor is
		// the exclusive limit); with no write key left, all of them.
		limit = limit[:0]
		if wok {
			limit = append(append(append(limit, keys.CFLock), wenc...), 0)
		}
		lim := limit
		if !wok {
			lim = nil
		}
		switch {
		case !lstarted:
			lstate, lstarted = lit.SeekGEWithLimit(lockLo, lim), true
		case lstate == pebble.IterAtLimit:
			lstate = lit.NextWithLimit(lim)
		}
		lok := lstate == pebble.IterValid
		if !lok && !wok {
			break
		}
		if stop() {
			res.Resume = append(append(make([]byte, 0, len(last)+1), last...), 0)
			break
		}
		if lok {
			lenc = lit.Key()[1:]
		}
		c := 0
		switch {
		case !wok:
			c = -1
		case !lok:
			c = 1
		default:
			c = bytes.Compare(lenc, wenc)
		}
		if c <= 0 {
			v, err := lit.ValueAndErr()
			if err != nil {
				return ScanResult{}, fmt.Errorf("mvcc: scan: read lock %x: %w", lit.Key(), err)
			}
			l, err := DecodeLock(v)
			if err != nil {
				return ScanResult{}, fmt.Errorf("mvcc: scan: read lock %x: %w", lit.Key(), err)
			}
			if l.blocksRead(ts) || c < 0 {
				key, err := keys.DecodeLockKey(lit.Key())
				if err != nil {
					return ScanResult{}, fmt.Errorf("mvcc: scan: %w: lock key: %w", ErrCorrupt, err)
				}
				if l.blocksRead(ts) {
					res.Pairs = append(res.Pairs, &kvrpcpb.KvPair{Key: key, Error: lockedError(&l, key)})
					return res, nil
				}
				// A key with a lock and no version: looked at all the same.
				last = key
				res.Visited++
			}
			lstate = lit.NextWithLimit(lim)
		}
		if c < 0 {
			continue
		}

		k := wit.Key()
		prefix = append(prefix[:0], k[:len(k)-8]...)
		key, rest, err := keys.DecodeBytes(prefix[1:])
		if err != nil || len(rest) != 0 {
			return ScanResult{}, fmt.Errorf("mvcc: scan: write key %x: %w: bad key encoding", k, ErrCorrupt)
		}
		last = key
		res.Visited++
		// Versions sort newest first: jump to the newest at or below ts.
		if ^binary.BigEndian.Uint64(k[len(k)-8:]) > ts {
			seek = binary.BigEndian.AppendUint64(append(seek[:0], prefix...), ^ts)
			wok = wit.SeekGE(seek)
		}
		var pair *kvrpcpb.KvPair
	versions:
		for ; wok && bytes.HasPrefix(wit.Key(), prefix); wok = wit.Next() {
			k := wit.Key()
			if len(k) != len(prefix)+8 {
				return ScanResult{}, fmt.Errorf("mvcc: scan: write key %x: %w: bad timestamp suffix", k, ErrCorrupt)
			}
			v, err := wit.ValueAndErr()
			if err != nil {
				return ScanResult{}, fmt.Errorf("mvcc: scan: read write record %x: %w", k, err)
			}
			w, err := DecodeWrite(v)
			if err != nil {
				return ScanResult{}, fmt.Errorf("mvcc: scan: read write record %q@%d: %w", key, ^binary.BigEndian.Uint64(k[len(prefix):]), err)
			}
			switch w.Kind {
			case opPut:
				if !expired(w.ExpiresAt, nowMs) {
					pair = &kvrpcpb.KvPair{Key: key, ExpiresAt: w.ExpiresAt}
					if !opts.KeyOnly {
						if pair.Value, err = rd.writeValue(key, &w); err != nil {
							return ScanResult{}, err
						}
					}
				}
				break versions
			case opDel:
				break versions
			}
		}
		if pair != nil {
			res.Pairs = append(res.Pairs, pair)
			size += len(pair.Key) + len(pair.Value) + pairOverhead
		}
		// Past the key's older versions: most keys have none, so a step
		// first (a seek, which consults every level and range deletion,
		// cost a scan more than half its store CPU); then the successor
		// of the oldest possible version key.
		if wok && bytes.HasPrefix(wit.Key(), prefix) {
			if wok = wit.Next(); wok && bytes.HasPrefix(wit.Key(), prefix) {
				seek = append(binary.BigEndian.AppendUint64(append(seek[:0], prefix...), ^uint64(0)), 0)
				wok = wit.SeekGE(seek)
			}
		}
	}
	if err := lit.Error(); err != nil {
		return ScanResult{}, fmt.Errorf("mvcc: scan: lock iterator: %w", err)
	}
	if err := wit.Error(); err != nil {
		return ScanResult{}, fmt.Errorf("mvcc: scan: write iterator: %w", err)
	}
	return res, nil
}

// ScanLock lists the locks in the raw key range [start, end) (empty end:
// unbounded) whose start_ts is at most maxTS, in key order, at most limit of
// them (limit <= 0: no limit).
func ScanLock(r pebble.Reader, maxTS uint64, start, end []byte, limit int) (locks []*kvrpcpb.LockInfo, err error) {
	if emptyRange(start, end) {
		return nil, nil
	}
	lo, hi := keys.DataRange(keys.CFLock, start, end)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("mvcc: scan locks: open iterator: %w", err)
	}
	defer closeIter(it, "scan locks", &err)
	for ok := it.First(); ok && (limit <= 0 || len(locks) < limit); ok = it.Next() {
		key, l, err := iterLock(it)
		if err != nil {
			return nil, err
		}
		if l.StartTS <= maxTS {
			locks = append(locks, l.Info(key))
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("mvcc: scan locks: %w", err)
	}
	return locks, nil
}

// iterLock decodes the lock under a lock column family iterator. The lock
// aliases the iterator's buffers; the key is a fresh copy.
func iterLock(it *pebble.Iterator) ([]byte, Lock, error) {
	key, err := keys.DecodeLockKey(it.Key())
	if err != nil {
		return nil, Lock{}, fmt.Errorf("mvcc: %w: lock key: %w", ErrCorrupt, err)
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, Lock{}, fmt.Errorf("mvcc: read lock %q: %w", key, err)
	}
	l, err := DecodeLock(v)
	if err != nil {
		return nil, Lock{}, fmt.Errorf("mvcc: read lock %q: %w", key, err)
	}
	return key, l, nil
}

func closeIter(it *pebble.Iterator, what string, err *error) {
	if cerr := it.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("mvcc: %s: close: %w", what, cerr)
	}
}
