package command

import (
	"fmt"
	"math/rand/v2"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// A collection key is a metadata record at the Redis key plus one sub-key
// per element (docs/architecture.md, "Collections"). coll is one such key
// opened inside a command's transaction: it reads the record once, keeps
// the count and the encoding flag as the command changes them, and writes
// the record back (or deletes the key when it became empty) in save.
//
// Every write of elements also writes the metadata record, even when only
// an element's value changed: on the raft backend the record's write is
// what makes two transactions writing the same collection conflict (and
// what MULTI/WATCH see as the key's modification); on the embedded backend
// it rides in the same batch.
type coll struct {
	tx  backend.Txn
	sub backend.SubTxn
	typ backend.Type
	// found and changed share typ's word: coll is allocated per command,
	// and the padding of two words kept it in the 448-byte size class
	// when lim came.
	found, changed bool
	db             uint32
	key            []byte
	// expiresAt is kept across writes, as Redis keeps a key's expiry when
	// its elements change.
	expiresAt int64
	meta      keyspace.Meta
	buf       []byte
	// ebuf is scratch space for an element being built (a score-index
	// entry), which put and remove copy.
	ebuf []byte
	// scratch backs buf and ebuf at first: one allocation (the coll's)
	// rather than a few per command as they grow.
	scratch [128]byte
	// known: elements' states read ahead in one batch (prefetch) and kept
	// up to date by put and remove, by sub-key; nil unless prefetched.
	known map[string]subState
	// pickers keeps random draws' walks across commands (pickerCache);
	// nil: none kept.
	pickers *pickerCache
	// pops keeps the elements the next pops take (popcache.go); nil:
	// none kept.
	pops *popCache
	// listAhead is what a list pop read ahead for the next pops at its
	// end (popElems), kept by save if the list's ends are still where
	// that pop left them (aheadHead, aheadTail): a push at the same end
	// later in the command would put an element before them.
	// popKeyStr is popKey's last answer, for popKeyKind and popKeyDir.
	popKeyStr             string
	popKeyKind, popKeyDir byte
	listAhead             *popBatch
	aheadLeft             bool
	aheadHead, aheadTail  int64
	// lim: the encoding thresholds a write judges meta.Big by.
	lim *encLimits
}

// subState is an element's value as the command sees it.
type subState struct {
	val   []byte
	found bool
}

// errNoSubKeys means the backend cannot store collections; both backends
// can, so this is a wiring bug (a Txn wrapper hiding the SubTxn).
var errNoSubKeys = fmt.Errorf("%w: this backend does not store collections", backend.ErrNotSupported)

// openColl reads key's metadata in tx as a collection of type typ: a key
// of another type is WRONGTYPE; an absent key opens empty (found false).
func (r *Request) openColl(tx backend.Txn, key []byte, typ backend.Type) (*coll, error) {
	sub := subTxn(tx)
	if sub == nil {
		return nil, errNoSubKeys
	}
	c := &coll{tx: tx, sub: sub, typ: typ, db: r.c.db, key: key, pickers: &r.e.pickers, pops: &r.e.pops, lim: &r.e.limits}
	c.buf, c.ebuf = c.scratch[:0:96], c.scratch[96:96:128]
	v, ok, err := tx.Get(key)
	if err != nil || !ok {
		return c, err
	}
	if v.Type != typ {
		return nil, errWrongType
	}
	if c.meta, err = keyspace.DecodeMeta(v.Data); err != nil {
		return nil, fmt.Errorf("key %q: %w", key, err)
	}
	c.found, c.expiresAt = true, v.ExpiresAt
	return c, nil
}

// newColl is a collection of type typ at key that replaces whatever the
// key holds (RESTORE): it is created at the first write.
func (r *Request) newColl(tx backend.Txn, key []byte, typ backend.Type) (*coll, error) {
	sub := subTxn(tx)
	if sub == nil {
		return nil, errNoSubKeys
	}
	return &coll{tx: tx, sub: sub, typ: typ, db: r.c.db, key: key, lim: &r.e.limits}, nil
}

// subKey returns the sub-key of element elem of kind kind, in scratch
// space valid until the next call.
func (c *coll) subKey(kind byte, elem []byte) []byte {
	c.buf = keyspace.AppendSubKey(c.buf[:0], c.db, c.key, c.meta.Version, kind, elem)
	return c.buf
}

// create gives an absent key a fresh version, so that no element of an
// earlier incarnation (dead, awaiting reclamation) is visible in it.
func (c *coll) create() error {
	if c.found {
		return nil
	}
	v, err := c.sub.NewVersion(keyspace.Key(c.db, c.key))
	if err != nil {
		return fmt.Errorf("new version of %q: %w", c.key, err)
	}
	c.meta = keyspace.Meta{Version: v}
	c.found, c.changed = true, true
	return nil
}

// get returns an element's value.
func (c *coll) get(kind byte, elem []byte) ([]byte, bool, error) {
	if !c.found {
		return nil, false, nil
	}
	sub := c.subKey(kind, elem)
	if st, ok := c.known[string(sub)]; ok {
		return st.val, st.found, nil
	}
	return c.sub.GetSub(sub)
}

// prefetch reads the elements elems of kind in one batch (SubTxn.GetSubs)
// for the get calls that follow: a command writing many elements (HSET,
// SADD, ZADD) reads each one's old state first, which on the raft backend
// was a round trip per element. Only a command that opens the key once may
// use it: the states are kept current by this coll's put and remove only.
func (c *coll) prefetch(kind byte, elems [][]byte) error {
	if !c.found || len(elems) < 2 {
		return nil
	}
	subs := make([][]byte, 0, len(elems))
	for _, e := range elems {
		subs = append(subs, bytesClone(c.subKey(kind, e)))
	}
	vals, found, err := c.sub.GetSubs(subs)
	if err != nil {
		return err
	}
	if c.known == nil {
		c.known = make(map[string]subState, len(subs))
	}
	for i, sub := range subs {
		if _, ok := c.known[string(sub)]; !ok {
			c.known[string(sub)] = subState{val: vals[i], found: found[i]}
		}
	}
	return nil
}

// put stores an element (the caller counts it). SetSub copies the sub-key
// and the value (backend.SubTxn), so both may be scratch space.
func (c *coll) put(kind byte, elem, val []byte) {
	sub := c.subKey(kind, elem)
	c.sub.SetSub(sub, val)
	if c.known != nil {
		c.known[string(sub)] = subState{val: bytesClone(val), found: true}
	}
	c.changed = true
}

// remove deletes an element (the caller counts it).
func (c *coll) remove(kind byte, elem []byte) {
	sub := c.subKey(kind, elem)
	c.sub.DeleteSub(sub)
	if c.known != nil {
		c.known[string(sub)] = subState{}
	}
	c.changed = true
}

// scan calls fn for the elements of kind, in byte order of the element,
// from the element start (nil: the first) until fn returns false or limit
// elements were seen (<= 0: no limit). elem and val are valid during the
// call only.
func (c *coll) scan(kind byte, start []byte, limit int, fn func(elem, val []byte) bool) error {
	return c.scanTo(kind, start, nil, limit, fn)
}

// scanTo is scan below the element end (nil: to the kind's end). A tight
// end is cheaper to read than the limit alone: the store's iterator then
// leaves out every memtable and sstable that holds nothing below it (a
// list's older elements, pushed to earlier memtables), instead of merging
// their next key at every step (LRANGE, docs/benchmarks.md).
func (c *coll) scanTo(kind byte, start, end []byte, limit int, fn func(elem, val []byte) bool) error {
	if !c.found {
		return nil
	}
	lo, hi := keyspace.KindRange(c.db, c.key, c.meta.Version, kind)
	prefix := len(lo)
	if end != nil {
		hi = append(lo[:prefix:prefix], end...)
	}
	lo = append(lo, start...)
	n := 0
	err := c.sub.ScanSub(lo, hi, limit, func(k, v []byte) bool {
		n++
		return fn(k[prefix:], v)
	})
	subKeysScanned.Add(int64(n))
	return err
}

// save writes the metadata record back when the command changed anything:
// the key is deleted when its last element went (Redis never keeps an
// empty collection), its elements then being reclaimed with the version.
func (c *coll) save() {
	if !c.changed {
		return
	}
	if c.meta.Count == 0 {
		c.tx.Delete(c.key)
		return
	}
	c.meta.Stamp = rand.Uint64()
	if b := c.listAhead; b != nil {
		c.listAhead = nil
		if c.meta.Head == c.aheadHead && c.meta.Tail == c.aheadTail {
			c.pops.put(c.listPopKey(c.aheadLeft), c.meta.Version, c.meta.Stamp, b)
		}
	}
	// Sized for the whole record at once (its fixed part is under 64 bytes).
	data := keyspace.AppendMeta(make([]byte, 0, 64+len(c.meta.ZLow)+len(c.meta.ZHigh)), c.meta)
	c.tx.Set(c.key, backend.Value{Type: c.typ, ExpiresAt: c.expiresAt, Data: data})
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

// updateSub is update for a command that reads or writes sub-keys: the
// backend is told (WriteOptions.SubKeys).
func (r *Request) updateSub(keys [][]byte, fn func(backend.Txn) error) error {
	r.subKeys = true
	defer func() { r.subKeys = false }()
	return r.update(keys, fn)
}

// updateSubAhead is updateSub for a command whose fn may be run ahead
// (backend.WriteOptions.ReadAhead): it writes one key, reads its elements
// with get (GetSub, GetSubs), and changes nothing outside the transaction
// but the results it sets afresh at each run and the keys it signals as
// ready (a spurious wake-up costs the waiter a retry, nothing more). Not
// for a command that uses the executor's caches (pops' batches, random
// pickers): a run ahead would take their entries, unless it asks
// runningAhead and then only looks at them (SPOP's spopAhead).
func (r *Request) updateSubAhead(key []byte, fn func(backend.Txn) error) error {
	r.readAhead = true
	defer func() { r.readAhead = false }()
	return r.updateSub([][]byte{key}, fn)
}

// copyColl copies the elements of the collection whose metadata record is
// v, stored at from, to a fresh version of the stored key to, and returns
// the record to store at to (RENAME, MOVE, COPY: O(n), as COPY is in
// Redis). The source's elements stay; a RENAME or MOVE that deletes the
// source's record leaves them to reclamation with its version.
func copyColl(tx backend.Txn, v backend.Value, from, to []byte) (backend.Value, error) {
	sub := subTxn(tx)
	if sub == nil {
		return backend.Value{}, errNoSubKeys
	}
	meta, err := keyspace.DecodeMeta(v.Data)
	if err != nil {
		return backend.Value{}, fmt.Errorf("key %q: %w", from, err)
	}
	fdb, fkey, ok1 := keyspace.Split(from)
	tdb, tkey, ok2 := keyspace.Split(to)
	if !ok1 || !ok2 {
		return backend.Value{}, fmt.Errorf("copy %q to %q: not stored keys", from, to)
	}
	ver, err := sub.NewVersion(to)
	if err != nil {
		return backend.Value{}, fmt.Errorf("new version of %q: %w", tkey, err)
	}
	lo, hi := keyspace.VersionRange(fdb, fkey, meta.Version)
	// Read first, write after: the embedded backend's iterator runs over
	// the batch the writes go to.
	var keys, vals [][]byte
	err = sub.ScanSub(lo, hi, 0, func(k, val []byte) bool {
		keys = append(keys, bytesClone(k[len(lo):]))
		vals = append(vals, bytesClone(val))
		return true
	})
	if err != nil {
		return backend.Value{}, fmt.Errorf("read the elements of %q: %w", fkey, err)
	}
	prefix := keyspace.AppendSubKeyPrefix(nil, tdb, tkey, ver)
	for i, k := range keys {
		sub.SetSub(append(append(make([]byte, 0, len(prefix)+len(k)), prefix...), k...), vals[i])
	}
	meta.Version, meta.Stamp = ver, rand.Uint64()
	return backend.Value{Type: v.Type, ExpiresAt: v.ExpiresAt, Data: keyspace.AppendMeta(nil, meta)}, nil
}

// readColl runs fn on key's collection of type typ in a transaction that
// writes nothing (a missing key opens empty), counting the keyspace hit or
// miss.
func (r *Request) readColl(key []byte, typ backend.Type, fn func(c *coll) error) error {
	var found bool
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		c, err := r.openColl(tx, key, typ)
		if err != nil {
			return err
		}
		found = c.found
		return fn(c)
	})
	if err == nil {
		r.hit(found)
	}
	return err
}
