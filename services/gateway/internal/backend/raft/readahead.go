package raft

import (
	"bytes"
	"errors"
	"expvar"

	"github.com/nokv/nokv/pkg/kvclient"
)

// # Read ahead
//
// A combined transaction (combine.go) runs its commands one after another,
// and each collection command reads the sub-key of the element it adds,
// sets or pops (SADD's member, HSET's field, ZADD's member's score, RPOP's
// last element) at the start timestamp: one Get request to the region's
// leader per command, in a row, ~1000 a second on one key. So before it
// runs them, the transaction runs the commands that allow it
// (WriteOptions.ReadAhead) once ahead, in queue order, each seeing the
// writes of those before it as in the real run, but with every sub-key
// read that would ask a store answered with a guess (present, empty) and
// noted instead: the sub-keys the commands will read. Everything the run
// ahead wrote and tracked is then undone, the noted sub-keys are read in
// one batch at the start timestamp (kvclient's BatchGet: one request per
// region), and the commands run for real, each read of a sub-key that the
// transaction has not written answered from that batch.
//
// The batch only ever answers with what the start timestamp's snapshot
// holds, which is what the read it replaces would have returned: a key the
// transaction wrote (in the run ahead, or in the real run, even if rolled
// back since) is never answered from it, but from the transaction's own
// writes or the store, as before. So a guess that was wrong (a RPOP after
// an SREM that emptied the key, say) costs the read it would have cost
// anyway, never a wrong answer. The guess "present" keeps a run of pops
// walking down the list (each pop of the run ahead removes the guessed
// element, the next reads the one below); for adds it only skips a write.
//
// The records the commands name are read for real in the run ahead, and
// kept the same way, so the real run does not read them again. A command
// whose run ahead would read anything else of the cluster (a scan, a
// head, several keys' heads) stops there and is rolled back: it is run
// for real as before, and the commands after it are guessed without its
// writes.

// readAheadVars counts, for /debug/vars: combined transactions that read
// ahead (batches), the sub-keys they read in those batches (keys), the
// reads of the real run the batches answered (hits), and the commands
// whose run ahead stopped at a read it may not make (stopped).
var readAheadVars = expvar.NewMap("nokv_raft_read_ahead")

// errStopAhead stops a command's run ahead at a read it may not make.
var errStopAhead = errors.New("raft backend: the run ahead stops here")

// snapRead is what the start timestamp's snapshot holds of a key.
type snapRead struct {
	e     kvclient.Entry
	found bool
}

// readAhead is a combined transaction's read-ahead state.
type readAhead struct {
	// snap holds what the snapshot holds of keys read ahead (the sub-keys
	// and the records), answered while the transaction has not written
	// them (written).
	snap    map[string]snapRead
	written map[string]struct{}
	// running: the run ahead is on; wanted collects the sub-keys it would
	// have read from a store.
	running bool
	wanted  [][]byte
}

// snapshotOnly returns what the snapshot holds of key, if it was read
// ahead and the transaction has not written it since.
func (x *txn) snapshotOnly(key []byte) (snapRead, bool) {
	ra := x.ahead
	if ra == nil {
		return snapRead{}, false
	}
	if _, w := ra.written[string(key)]; w {
		return snapRead{}, false
	}
	r, ok := ra.snap[string(key)]
	return r, ok
}

// isReadAhead tells whether the snapshot answers for key from what was
// read ahead.
func (x *txn) isReadAhead(key []byte) bool {
	_, ok := x.snapshotOnly(key)
	return ok
}

// answer is r for one read: its own copy of the value, which the reader
// may change (the next read of the key gets the snapshot's again).
func (r snapRead) answer() (kvclient.Entry, bool, error) {
	if r.found {
		r.e.Value = bytes.Clone(r.e.Value)
	}
	return r.e, r.found, nil
}

// wrote notes a write of key: from now on the transaction's own writes,
// not the snapshot, answer for it.
func (x *txn) wrote(key []byte) {
	if ra := x.ahead; ra != nil {
		if _, ok := ra.written[string(key)]; !ok {
			ra.written[string(key)] = struct{}{}
		}
	}
}

// get reads key in the transaction (its own write, or the snapshot),
// from what was read ahead when it can. A read of the snapshot (a key
// not written) is kept for the real run when reading ahead.
func (x *txn) get(key []byte) (kvclient.Entry, bool, error) {
	if r, ok := x.snapshotOnly(key); ok {
		if ra := x.ahead; !ra.running {
			readAheadVars.Add("hits", 1)
		}
		return r.answer()
	}
	e, found, err := x.t.Get(x.ctx, key)
	if err == nil && x.ahead != nil && x.ahead.running {
		if _, w := x.ahead.written[string(key)]; !w {
			x.ahead.snap[string(key)] = snapRead{e, found}
		}
	}
	return e, found, err
}

// getSub reads sub-key sub as get does; in the run ahead, a sub-key
// neither read ahead nor written is noted and guessed present and empty.
func (x *txn) getSub(sub []byte) (kvclient.Entry, bool, error) {
	if ra := x.ahead; ra != nil && ra.running {
		if _, w := ra.written[string(sub)]; !w {
			if r, ok := ra.snap[string(sub)]; ok {
				return r.answer()
			}
			ra.wanted = append(ra.wanted, append([]byte(nil), sub...))
			return kvclient.Entry{Key: sub, Value: []byte{}}, true, nil
		}
	}
	return x.get(sub)
}

// RunningAhead tells a command's fn that this is its run ahead
// (backend.AheadTxn).
func (x *txn) RunningAhead() bool {
	return x.ahead != nil && x.ahead.running
}

// stopAhead is the error of a read the run ahead may not make, nil
// outside it.
func (x *txn) stopAhead() error {
	if x.ahead != nil && x.ahead.running {
		return errStopAhead
	}
	return nil
}

// runAhead runs the batch's commands that allow it ahead (the comment at
// the top), undoes all they wrote and tracked, and reads the sub-keys
// they would have read in one batch. x's transaction has written nothing
// yet.
func (x *txn) runAhead(batch []*queued) {
	n := 0
	for _, q := range batch {
		if q.ahead && len(q.keys) == 1 {
			n++
		}
	}
	if n < 2 {
		return
	}
	ra := &readAhead{snap: map[string]snapRead{}, written: map[string]struct{}{}, running: true}
	x.ahead = ra
	start := x.t.Savepoint()
	for _, q := range batch {
		if !q.ahead || len(q.keys) != 1 {
			continue
		}
		sp, mark := x.t.Savepoint(), len(x.undo)
		x.keys, x.heads, x.err, x.readErr = q.keys, nil, nil, nil
		err := q.runAhead(x)
		if err == nil {
			err = x.err
		}
		if err != nil {
			if errors.Is(err, errStopAhead) {
				readAheadVars.Add("stopped", 1)
			}
			x.t.RollbackTo(sp)
			x.rollbackTracking(mark)
		}
		if x.readErr != nil {
			break // the real run meets it again, and fails as before
		}
	}
	x.t.RollbackTo(start)
	x.rollbackTracking(0)
	x.keys, x.heads, x.err, x.readErr = nil, nil, nil, nil
	// The transaction holds no write again: the snapshot answers for
	// every key until the real run writes it.
	clear(ra.written)
	ra.running = false
	wanted := ra.wanted[:0]
	for _, k := range ra.wanted {
		if _, ok := ra.snap[string(k)]; !ok {
			ra.snap[string(k)] = snapRead{} // dedup; set below
			wanted = append(wanted, k)
		}
	}
	ra.wanted = nil
	if len(wanted) == 0 {
		return
	}
	got, err := x.t.BatchGet(x.ctx, wanted)
	if err != nil {
		// Each command reads for itself, and meets the error if it lasts.
		for _, k := range wanted {
			delete(ra.snap, string(k))
		}
		return
	}
	readAheadVars.Add("batches", 1)
	readAheadVars.Add("keys", int64(len(wanted)))
	for _, k := range wanted {
		e, found := got[string(k)]
		ra.snap[string(k)] = snapRead{e, found}
	}
}

// runAhead runs q's function ahead; a panic is the run ahead's failure
// (the real run panics again, and is dealt with there).
func (q *queued) runAhead(x *txn) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errPanicked
		}
	}()
	return q.fn(x)
}
