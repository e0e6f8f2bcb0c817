package raft

import (
	"fmt"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// A combined transaction's command rolled back to its savepoint rolls back
// what the txn tracked for the reclaim queue too (combine.go): the
// collections it read, the versions it wrote and created, its point
// deletions; what the commands before it tracked stays.
func TestRollbackTrackingRestoresTheCommandsBefore(t *testing.T) {
	x := &txn{combined: true}
	key := keyspace.Key(0, []byte("h"))
	other := keyspace.Key(0, []byte("l"))
	hash := func(ver uint64) backend.Value {
		return backend.Value{Type: backend.TypeHash, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: ver, Count: 1})}
	}
	sub := func(k string, ver uint64, elem string) []byte {
		return keyspace.AppendSubKey(nil, 0, []byte(k), ver, 'f', []byte(elem))
	}
	// The first command: reads h at version 5, deletes an element, writes
	// it back.
	x.noteRead(key, hash(5))
	x.notePointDelete(sub("h", 5, "a"))
	x.noteWrite(key, hash(5))
	want := fmt.Sprint(x.colls, x.final, x.pointDeleted, x.versioned)
	x.undo = x.undo[:0] // the first command stays

	// The second, rolled back: deletes another element of h and one of l,
	// replaces h by a new version, reads l.
	mark := len(x.undo)
	x.notePointDelete(sub("h", 5, "b"))
	x.noteRead(other, backend.Value{Type: backend.TypeList, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: 7, Count: 1})})
	x.notePointDelete(sub("l", 7, "x"))
	x.versioned = map[string]bool{}
	logUndo(x, x.versioned, string(key))
	x.versioned[string(key)] = true
	x.noteWrite(key, hash(9))
	x.noteWrite(other, backend.Value{})
	if got := fmt.Sprint(x.colls, x.final, x.pointDeleted, x.versioned); got == want {
		t.Fatalf("the second command tracked nothing: %s", got)
	}
	x.rollbackTracking(mark)
	if got := fmt.Sprint(x.colls, x.final, x.pointDeleted, map[string]bool(nil)); got != want {
		t.Fatalf("after the rollback: %s\nwant %s", got, want)
	}
	if len(x.versioned) != 0 || len(x.undo) != mark {
		t.Fatalf("versioned %v, undo %d entries after the rollback", x.versioned, len(x.undo))
	}
}
