package kvclient

import "github.com/nokv/nokv/api/kvrpcpb"

// LockKey makes the transaction conflict on key as if it wrote it, without
// writing it: Commit fails with a write conflict if another transaction
// committed a write of key after this one's start timestamp (or holds a
// lock on it). Snapshot isolation alone lets two transactions that each
// read what the other writes both commit; locking what was read makes them
// serializable. A key the transaction writes (before or after) needs no
// lock, and the write wins. Misuse is reported as for Set.
func (t *Txn) LockKey(key []byte) error {
	if _, ok := t.muts[string(key)]; ok {
		return t.checkActive()
	}
	m := t.newMutation()
	m.Op, m.Key = kvrpcpb.Op_LOCK, key
	return t.write(m)
}
