package embedded

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// stored is a key's state as committed before the Txn began, expired or not: the
// expiry index and counters must be corrected against it, not against the live view.
type stored struct {
	v     backend.Value
	found bool
}

type pending struct {
	v       backend.Value
	deleted bool
}

// entry is one key a txn has touched.
type entry struct {
	key     []byte // the caller's key, retained until the txn commits (see backend.Txn)
	base    stored
	hasBase bool
	// head is the committed state's head, when only that was read (hasHead
	// and not hasBase): a DEL of a huge value never copies it.
	head     backend.Head
	headOK   bool // the key was found
	hasHead  bool
	write    pending
	hasWrite bool
}

// linearEntries is how many keys a txn looks up by a linear scan before it
// indexes them in a map: commands name one key or a few, and a scan of those costs
// less than hashing them, and allocates no map keys.
const linearEntries = 8

// txn buffers a command's writes. It runs with the keys latched, so the committed
// state of those keys cannot change underneath it.
type txn struct {
	store *Store
	// group, if not nil, is the group the txn writes into: its writes are
	// the keys' current state.
	group *group
	// now is the clock, read on first use: a command on keys without expiry never
	// needs it.
	now    int64
	nowSet bool

	entries []entry
	index   map[string]int // entry by key, once there are more than linearEntries
	order   []int          // entries in first-write order, so batches are deterministic

	// sb holds the sub-key writes (subkeys.go), an indexed batch that the
	// txn's sub-key reads see through; nil until the first sub-key call.
	sb *pebble.Batch
	// subBase is how far the group's sub-key batch went before the txn
	// (under a group): what the txn wrote there is the rest.
	subBase subMark
	// latched are the keys an Update latched (nil under a group, which
	// holds every key): the collections whose filters it may build.
	latched [][]byte
	// kbuf is scratch space for an encoded sub-key (GetSub).
	kbuf []byte
	// subErr is the first failure of a sub-key write, reported by prepare.
	subErr error
	// created are the versions NewVersion handed out (subkeys.go): one
	// the txn itself then kills is reclaimed by fill.
	created []createdVersion
}

var txnPool = sync.Pool{New: func() any { return &txn{} }}

func (t *txn) release() {
	// Drop references to keys and values, and shed what a huge command grew.
	clear(t.entries)
	t.entries = t.entries[:0]
	if cap(t.entries) > 1024 {
		t.entries = nil
	}
	t.index = nil
	t.order = t.order[:0]
	if cap(t.order) > 1024 {
		t.order = nil
	}
	if t.sb != nil {
		t.sb.Close()
		t.sb = nil
	}
	t.subErr, t.subBase = nil, subMark{}
	if cap(t.kbuf) > 1024 {
		t.kbuf = nil
	}
	t.created = t.created[:0]
	t.store, t.group, t.now, t.nowSet, t.latched = nil, nil, 0, false, nil
	txnPool.Put(t)
}

func (t *txn) Now() int64 {
	if !t.nowSet {
		t.now, t.nowSet = t.store.now(), true
	}
	return t.now
}

// expired is v.Expired(t.Now()), reading the clock only for a value with an expiry.
func (t *txn) expired(v backend.Value) bool { return v.ExpiresAt != 0 && v.Expired(t.Now()) }

// find returns the index of key's entry, or -1.
func (t *txn) find(key []byte) int {
	if t.index != nil {
		if i, ok := t.index[string(key)]; ok {
			return i
		}
		return -1
	}
	for i := range t.entries {
		if bytes.Equal(t.entries[i].key, key) {
			return i
		}
	}
	return -1
}

// entry returns the index of key's entry, adding one if needed.
func (t *txn) entry(key []byte) int {
	if i := t.find(key); i >= 0 {
		return i
	}
	t.entries = append(t.entries, entry{key: key})
	i := len(t.entries) - 1
	switch {
	case t.index != nil:
		t.index[string(key)] = i
	case len(t.entries) > linearEntries:
		t.index = make(map[string]int, 2*len(t.entries))
		for j := range t.entries {
			t.index[string(t.entries[j].key)] = j
		}
	}
	return i
}

// base returns the committed state of entry i, reading it on first use.
func (t *txn) base(i int) (stored, error) {
	e := &t.entries[i]
	if e.hasBase {
		return e.base, nil
	}
	if t.group != nil {
		if ce, hit := t.group.lookup(e.key); hit {
			e.base, e.hasBase = stored{v: ce.v, found: ce.found}, true
			if ce.found {
				// Callers own what Get returns; the group's bytes are shared.
				e.base.v.Data = bytes.Clone(ce.v.Data)
			}
			return e.base, nil
		}
	}
	if st, hit := t.store.cache.get(e.key, nil); hit {
		e.base, e.hasBase = st, true
		return e.base, nil
	}
	v, ok, err := getStored(t.store.db, nil, e.key)
	if err != nil {
		return stored{}, err
	}
	e.base, e.hasBase = stored{v: v, found: ok}, true
	// The key is latched, so what Pebble showed is its committed state.
	t.store.cache.put(e.key, e.base)
	return e.base, nil
}

// baseHead returns the committed state of entry i without its data: from
// the full read if there was one, else from a header-only read.
func (t *txn) baseHead(i int) (backend.Head, bool, error) {
	e := &t.entries[i]
	switch {
	case e.hasBase:
		return headOf(e.base.v), e.base.found, nil
	case e.hasHead:
		return e.head, e.headOK, nil
	}
	ce, hit := (*cacheEntry)(nil), false
	if t.group != nil {
		ce, hit = t.group.lookup(e.key)
	}
	if hit {
		e.head, e.headOK = headOf(ce.v), ce.found
	} else if h, ok, hit := t.store.cache.head(e.key); hit {
		e.head, e.headOK = h, ok
	} else {
		h, ok, err := getStoredHead(t.store.db, e.key)
		if err != nil {
			return backend.Head{}, false, err
		}
		e.head, e.headOK = h, ok
	}
	e.hasHead = true
	return e.head, e.headOK, nil
}

// headOf is v's head.
func headOf(v backend.Value) backend.Head {
	return backend.Head{Type: v.Type, ExpiresAt: v.ExpiresAt, Len: int64(len(v.Data))}
}

func (t *txn) Head(key []byte) (backend.Head, bool, error) {
	i := t.entry(key)
	if e := &t.entries[i]; e.hasWrite {
		if e.write.deleted || t.expired(e.write.v) {
			return backend.Head{}, false, nil
		}
		return headOf(e.write.v), true, nil
	}
	h, ok, err := t.baseHead(i)
	if err != nil || !ok || (h.ExpiresAt != 0 && h.Expired(t.Now())) {
		return backend.Head{}, false, err
	}
	return h, true, nil
}

// invalidateCache removes the cache entries of the keys the txn writes; called
// before its batch becomes visible.
func (t *txn) invalidateCache() {
	for _, i := range t.order {
		t.store.cache.invalidate(t.entries[i].key)
	}
}

// publishCache records the written state of the txn's keys in the cache; called
// once its batch is visible, before the latches are released.
func (t *txn) publishCache() {
	for _, i := range t.order {
		e := &t.entries[i]
		t.store.cache.put(e.key, stored{v: e.write.v, found: !e.write.deleted})
	}
}

func (t *txn) Get(key []byte) (backend.Value, bool, error) {
	i := t.entry(key)
	if e := &t.entries[i]; e.hasWrite {
		if e.write.deleted || t.expired(e.write.v) {
			return backend.Value{}, false, nil
		}
		return e.write.v, true, nil
	}
	st, err := t.base(i)
	if err != nil || !st.found || t.expired(st.v) {
		return backend.Value{}, false, err
	}
	return st.v, true, nil
}

func (t *txn) Set(key []byte, v backend.Value) { t.put(key, pending{v: v}) }

func (t *txn) Delete(key []byte) { t.put(key, pending{deleted: true}) }

func (t *txn) put(key []byte, p pending) {
	i := t.entry(key)
	e := &t.entries[i]
	if !e.hasWrite {
		e.hasWrite = true
		t.order = append(t.order, i)
	}
	e.write = p
}

// checkSize refuses, before any batch is built, writes larger than one
// command may make (Options.MaxCommandBytes).
func (t *txn) checkSize() error {
	var n int64
	for _, i := range t.order {
		e := &t.entries[i]
		// The data key and the expiry index key, the value, and headers.
		n += 2*int64(len(e.key)) + int64(len(e.write.v.Data)) + 64
	}
	if t.sb != nil {
		n += int64(t.sb.Len())
	}
	if t.group != nil {
		n += int64(t.group.subGrowth(t.subBase))
	}
	if limit := t.store.opts.MaxCommandBytes; n > limit {
		return fmt.Errorf("%w: one command writes %d bytes, over the embedded store's limit of %d bytes", backend.ErrTooLarge, n, limit)
	}
	return nil
}

// fill turns the buffered writes into batch operations: data, expiry index entries
// and counter deltas, all in one batch. Keys and values are encoded straight into
// the batch.
func (t *txn) fill(b *pebble.Batch) error {
	var deltas counterDeltas
	// What the dead versions' reclamation scans: b merges the command's own
	// sub-key writes over the store when it holds any (it is then the
	// indexed batch they were written to); else the store, whose elements
	// of the latched keys no one else writes meanwhile.
	var r pebble.Reader = t.store.db
	if b.Indexed() {
		r = b
	}
	for _, i := range t.order {
		old, oldFound, err := t.baseHead(i)
		if err != nil {
			return err
		}
		e := &t.entries[i]
		oldV, oldColl, err := t.baseVersion(i)
		if err != nil {
			return err
		}
		if err := appendReclaim(b, r, e.key, oldV, oldColl, e.write.v, !e.write.deleted); err != nil {
			return err
		}
		dk, de := appendChange(b, e.key, oldFound, old.ExpiresAt, !e.write.deleted, e.write.v, changeData|changeIndex)
		deltas.add(e.key, dk, de)
	}
	if err := t.reclaimCreated(b, r); err != nil {
		return err
	}
	deltas.appendTo(b)
	return nil
}

// changeParts selects what appendChange writes.
type changeParts uint8

const (
	changeData  changeParts = 1 << iota // the data key
	changeIndex                         // the expiry index entries
)

// appendChange adds to b what takes key from its old state (present or not,
// with its expiry) to the new one (v, or absent): the data key and the expiry
// index entries, as parts selects. It returns the key and expiring-key counter
// deltas whatever parts says.
func appendChange(b *pebble.Batch, key []byte, oldFound bool, oldExpiresAt int64, found bool, v backend.Value, parts changeParts) (keysDelta, expiresDelta int64) {
	if !found && !oldFound {
		return 0, 0
	}
	sameExpiry := oldFound && found && oldExpiresAt == v.ExpiresAt
	if oldFound {
		keysDelta--
		if oldExpiresAt != 0 {
			expiresDelta--
			if !sameExpiry && parts&changeIndex != 0 {
				op := b.DeleteDeferred(expiryKeyLen(key))
				appendExpiryKey(op.Key[:0], oldExpiresAt, key)
				_ = op.Finish()
			}
		}
	}
	if !found {
		if parts&changeData != 0 {
			op := b.DeleteDeferred(1 + len(key))
			appendDataKey(op.Key[:0], key)
			_ = op.Finish()
		}
		return keysDelta, expiresDelta
	}
	if parts&changeData != 0 {
		op := b.SetDeferred(1+len(key), valueHeaderLen+len(v.Data))
		appendDataKey(op.Key[:0], key)
		appendValue(op.Value[:0], v)
		_ = op.Finish()
	}
	keysDelta++
	if v.ExpiresAt != 0 {
		expiresDelta++
		if !sameExpiry && parts&changeIndex != 0 {
			op := b.SetDeferred(expiryKeyLen(key), 0)
			appendExpiryKey(op.Key[:0], v.ExpiresAt, key)
			_ = op.Finish()
		}
	}
	return keysDelta, expiresDelta
}
