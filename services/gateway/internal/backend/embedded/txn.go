package embedded

import (
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

// txn buffers a command's writes. It runs with the keys latched, so the committed
// state of those keys cannot change underneath it.
type txn struct {
	store  *Store
	now    int64
	reads  map[string]stored
	writes map[string]pending
	order  []string // write order, so batches are deterministic
}

var txnPool = sync.Pool{New: func() any {
	return &txn{reads: make(map[string]stored), writes: make(map[string]pending)}
}}

func (t *txn) release() {
	clear(t.reads)
	clear(t.writes)
	t.order = t.order[:0]
	t.store = nil
	txnPool.Put(t)
}

func (t *txn) Now() int64 { return t.now }

func (t *txn) base(key []byte) (stored, error) {
	if st, ok := t.reads[string(key)]; ok {
		return st, nil
	}
	v, ok, err := getStored(t.store.db, key)
	if err != nil {
		return stored{}, err
	}
	st := stored{v: v, found: ok}
	t.reads[string(key)] = st
	return st, nil
}

func (t *txn) Get(key []byte) (backend.Value, bool, error) {
	if p, ok := t.writes[string(key)]; ok {
		if p.deleted || p.v.Expired(t.now) {
			return backend.Value{}, false, nil
		}
		return p.v, true, nil
	}
	st, err := t.base(key)
	if err != nil || !st.found || st.v.Expired(t.now) {
		return backend.Value{}, false, err
	}
	return st.v, true, nil
}

func (t *txn) Set(key []byte, v backend.Value) { t.put(key, pending{v: v}) }

func (t *txn) Delete(key []byte) { t.put(key, pending{deleted: true}) }

func (t *txn) put(key []byte, p pending) {
	k := string(key)
	if _, ok := t.writes[k]; !ok {
		t.order = append(t.order, k)
	}
	t.writes[k] = p
}

// fill turns the buffered writes into batch operations: data, expiry index entries
// and counter deltas, all in one batch.
func (t *txn) fill(b *pebble.Batch) error {
	var keysDelta, expiresDelta int64
	var kbuf []byte
	for _, k := range t.order {
		key := []byte(k)
		p := t.writes[k]
		old, err := t.base(key)
		if err != nil {
			return err
		}
		if p.deleted && !old.found {
			continue
		}
		sameExpiry := old.found && !p.deleted && old.v.ExpiresAt == p.v.ExpiresAt
		if old.found {
			keysDelta--
			if old.v.ExpiresAt != 0 {
				expiresDelta--
				if !sameExpiry {
					kbuf = appendExpiryKey(kbuf[:0], old.v.ExpiresAt, key)
					_ = b.Delete(kbuf, nil)
				}
			}
		}
		kbuf = appendDataKey(kbuf[:0], key)
		if p.deleted {
			_ = b.Delete(kbuf, nil)
			continue
		}
		vbuf := appendValue(make([]byte, 0, valueHeaderLen+len(p.v.Data)), p.v)
		_ = b.Set(kbuf, vbuf, nil)
		keysDelta++
		if p.v.ExpiresAt != 0 {
			expiresDelta++
			if !sameExpiry {
				kbuf = appendExpiryKey(kbuf[:0], p.v.ExpiresAt, key)
				_ = b.Set(kbuf, nil, nil)
			}
		}
	}
	if keysDelta != 0 {
		_ = b.Merge(counterKeys, encodeCounter(keysDelta), nil)
	}
	if expiresDelta != 0 {
		_ = b.Merge(counterExpires, encodeCounter(expiresDelta), nil)
	}
	return nil
}
