package kvclient

import "github.com/nokv/nokv/api/kvrpcpb"

// Savepoint marks a point in a transaction's buffered writes that
// RollbackTo returns to. It lets one transaction carry several independent
// units of work (the gateway runs many clients' commands in one
// transaction) and drop one of them without dropping the others.
type Savepoint struct {
	undo, size int
	err        error
}

// undoRecord is a key's buffered mutation before a write after a savepoint
// replaced it (nil: the key had none).
type undoRecord struct {
	key string
	old *kvrpcpb.Mutation
}

// Savepoint returns the transaction's current state of buffered writes.
// From the first call on, every write keeps what it replaces, so that
// RollbackTo can restore it.
func (t *Txn) Savepoint() Savepoint {
	t.undoing = true
	return Savepoint{undo: len(t.undo), size: t.size, err: t.err}
}

// RollbackTo undoes every write (and misuse error) buffered since sp was
// taken; reads since then are not undone, and need not be: a read changes
// nothing that commits. sp must come from this transaction, and a later
// savepoint is invalid once an earlier one is rolled back to.
func (t *Txn) RollbackTo(sp Savepoint) {
	if t.state != txnActive || sp.undo > len(t.undo) {
		return
	}
	for i := len(t.undo) - 1; i >= sp.undo; i-- {
		u := t.undo[i]
		if u.old == nil {
			delete(t.muts, u.key)
		} else {
			t.muts[u.key] = u.old
		}
	}
	clear(t.undo[sp.undo:])
	t.undo = t.undo[:sp.undo]
	t.size, t.err = sp.size, sp.err
}
