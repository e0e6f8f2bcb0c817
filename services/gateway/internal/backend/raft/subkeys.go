package raft

import (
	"bytes"
	"fmt"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Sub-keys (keyspace.SubKey) are cluster keys like any other, with the raw
// element as value (no type byte: the metadata record has it). Their first
// byte has the top bit set, so no database's range holds one.

// subScanPage is ScanSub's first page: a big hash is read a page at a
// time, not into memory at once. The pages of one scan double up to
// subScanPageMax: each page is a request and a read index round through
// the region's replicas, ~1 ms of CPU over the cluster, which pages of
// 256 paid per 256 members of a whole-set scan (an SPOP sample), while a
// scan its caller stops early reads at most twice what it uses.
const (
	subScanPage    = 256
	subScanPageMax = 4096
)

// errSubRange is DeleteSubRange's refusal: a transaction cannot delete an
// unbounded range, and a region range delete is not atomic with it, so dead
// versions are reclaimed after the commit (docs/architecture.md,
// "Collections").
var errSubRange = fmt.Errorf("%w: the raft backend reclaims sub-key ranges after the commit, not inside a transaction", backend.ErrNotSupported)

func (x *txn) checkSub(sub []byte) error {
	if !keyspace.IsSubKey(sub) {
		return fmt.Errorf("raft backend: %q is not a sub-key", sub)
	}
	return nil
}

// GetSub implements backend.SubTxn: the transaction's own write, or a read
// at its start timestamp.
func (x *txn) GetSub(sub []byte) ([]byte, bool, error) {
	if err := x.checkSub(sub); err != nil {
		return nil, false, err
	}
	e, ok, err := x.getSub(sub)
	if err != nil || !ok {
		return nil, false, x.read(err)
	}
	return e.Value, true, nil
}

// GetSubs implements backend.SubTxn with one batch read (kvclient's
// BatchGet: the transaction's own writes, the rest at the start timestamp
// in one request per region), not a round trip per sub-key: a 100-field
// HSET over an existing hash read its fields one after the other.
func (x *txn) GetSubs(subs [][]byte) ([][]byte, []bool, error) {
	for _, sub := range subs {
		if err := x.checkSub(sub); err != nil {
			return nil, nil, err
		}
	}
	vals, found := make([][]byte, len(subs)), make([]bool, len(subs))
	remote := subs
	if x.ahead != nil {
		// What was read ahead (or, in the run ahead, guessed) answers;
		// the rest is read in one batch.
		remote = nil
		for i, sub := range subs {
			if x.ahead.running || x.isReadAhead(sub) {
				e, ok, err := x.getSub(sub)
				if err != nil {
					return nil, nil, x.read(err)
				}
				vals[i], found[i] = e.Value, ok
			} else {
				remote = append(remote, sub)
			}
		}
		if len(remote) == 0 {
			return vals, found, nil
		}
	}
	got, err := x.t.BatchGet(x.ctx, remote)
	if err != nil {
		return nil, nil, x.read(err)
	}
	for i, sub := range subs {
		if e, ok := got[string(sub)]; ok {
			vals[i], found[i] = e.Value, true
		}
	}
	return vals, found, nil
}

// SetSub implements backend.SubTxn.
func (x *txn) SetSub(sub, val []byte) {
	if x.err != nil {
		return
	}
	if x.err = x.checkSub(sub); x.err == nil {
		x.wrote(sub)
		x.err = x.t.Set(sub, val, 0)
	}
}

// DeleteSub implements backend.SubTxn.
func (x *txn) DeleteSub(sub []byte) {
	if x.err != nil {
		return
	}
	if x.err = x.checkSub(sub); x.err == nil {
		x.wrote(sub)
		x.err = x.t.Delete(sub)
	}
	if x.err == nil {
		x.notePointDelete(sub)
	}
}

// DeleteSubRange implements backend.SubTxn: refused (errSubRange).
func (x *txn) DeleteSubRange(start, end []byte) error { return errSubRange }

// ScanSub implements backend.SubTxn with kvclient's transactional scan
// (own writes merged over the start timestamp's snapshot), a page at a
// time.
func (x *txn) ScanSub(start, end []byte, limit int, fn func(key, val []byte) bool) error {
	if err := x.checkSub(start); err != nil {
		return err
	}
	if err := x.stopAhead(); err != nil {
		return err
	}
	seen := 0
	from := start
	defer func(visited uint64) {
		backend.SubKeysStepped.Add(int64(x.t.KeysVisited() - visited))
	}(x.t.KeysVisited())
	for next := subScanPage; ; next = min(2*next, subScanPageMax) {
		page := next
		if limit > 0 && limit-seen < page {
			page = limit - seen
		}
		if page <= 0 {
			return nil
		}
		entries, err := x.t.Scan(x.ctx, from, end, page)
		if err != nil {
			return x.read(err)
		}
		for _, e := range entries {
			seen++
			if !fn(e.Key, e.Value) {
				return nil
			}
		}
		if len(entries) < page {
			return nil
		}
		from = append(bytes.Clone(entries[len(entries)-1].Key), 0)
	}
}

var _ backend.SubTxn = (*txn)(nil)

// NewVersion implements backend.SubTxn: the start timestamp, from the TSO,
// is above every committed version and never handed out twice, so a dead
// version is never revived, even one not yet reclaimed. A transaction that
// creates the same key's collection twice (MULTI: HSET k, DEL k, HSET k)
// gets the same version again: every sub-key of that version was written
// by this transaction, so deleting them (through its own writes, never
// committed) makes the second incarnation start empty. The commands of a
// combined transaction (combine.go) share it the same way: versions are
// per key, so commands creating different keys' collections may share the
// timestamp, and one recreating a key an earlier command of the
// transaction created (LPUSH, RPOP of the last element, LPUSH) starts it
// empty as MULTI does. (A command rolled back to its savepoint takes its
// sub-key writes and its versioned entry with it.)
func (x *txn) NewVersion(key []byte) (uint64, error) {
	v := x.t.StartTS()
	if !x.versioned[string(key)] {
		if x.versioned == nil {
			x.versioned = map[string]bool{}
		}
		logUndo(x, x.versioned, string(key))
		x.versioned[string(key)] = true
		return v, nil
	}
	db, rkey, ok := keyspace.Split(key)
	if !ok {
		return 0, fmt.Errorf("raft backend: %q is not a stored key", key)
	}
	lo, hi := keyspace.VersionRange(db, rkey, v)
	var dead [][]byte
	err := x.ScanSub(lo, hi, 0, func(k, _ []byte) bool {
		dead = append(dead, bytes.Clone(k))
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("clear the earlier incarnation of %q: %w", rkey, err)
	}
	for _, k := range dead {
		x.DeleteSub(k)
	}
	return v, nil
}
