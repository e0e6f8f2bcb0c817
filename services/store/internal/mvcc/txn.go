package mvcc

import (
	"bytes"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// ForceRollbackTS, as CheckTxnStatus's currentTS, rolls back a transaction
// that has not committed whatever its lock's TTL.
const ForceRollbackTS = math.MaxUint64

// modifies accumulates the engine writes of one operation. Keys and values
// are fresh or copied buffers (or the caller's request values), never
// Pebble's, so the list stays valid after the reader moves on.
type modifies struct {
	list []*raftserverpb.Modify
	// size estimates the bytes list takes in a raft command.
	size int
}

// modifyOverhead bounds what a Modify costs in a command besides its key
// and value (tags, lengths, op).
const modifyOverhead = 16

func (m *modifies) put(k, v []byte) {
	m.list = append(m.list, &raftserverpb.Modify{Op: raftserverpb.ModifyOp_MODIFY_PUT, Key: k, Value: v})
	m.size += len(k) + len(v) + modifyOverhead
}

func (m *modifies) del(k []byte) {
	m.list = append(m.list, &raftserverpb.Modify{Op: raftserverpb.ModifyOp_MODIFY_DELETE, Key: k})
	m.size += len(k) + modifyOverhead
}

func abortf(format string, args ...any) *kvrpcpb.KeyError {
	return &kvrpcpb.KeyError{Abort: fmt.Sprintf(format, args...)}
}

// Prewrite locks every mutation of req for the transaction started at
// req.StartVersion, or, if onePCCommitTS is nonzero, commits them at once at
// that timestamp (one-phase commit: write records, no locks). Only the
// caller knows whether 1PC is allowed (every key of the transaction in this
// region, and onePCCommitTS above every timestamp this region has served a
// read at), so it decides by passing onePCCommitTS.
//
// Per key: a lock of another transaction gives Locked; this transaction's
// own lock means a retry, and the key is left as it is (under 1PC the lock
// is committed). Then the key's write records at or above start_ts: this
// transaction's commit means a retry after commit, skipped; its rollback
// gives an abort error; any other commit (PUT, DEL or LOCK) above start_ts
// gives WriteConflict (one at start_ts is in the transaction's snapshot). Other transactions' rollback records are not conflicts:
// they change no data.
//
// All or nothing: if any key fails, Prewrite returns every key error and no
// modifies, so a transaction never holds a partial set of locks from one
// request. Key errors are reported for all failing keys at once, so the
// client can resolve every blocking lock in one round.
func Prewrite(r pebble.Reader, req *kvrpcpb.PrewriteRequest, onePCCommitTS uint64) (mods []*raftserverpb.Modify, keyErrs []*kvrpcpb.KeyError, err error) {
	startTS := req.GetStartVersion()
	if startTS == 0 {
		return nil, []*kvrpcpb.KeyError{abortf("prewrite: start_version is 0")}, nil
	}
	if onePCCommitTS != 0 && onePCCommitTS <= startTS {
		return nil, []*kvrpcpb.KeyError{abortf("prewrite: one-phase commit_ts %d is not above start_version %d", onePCCommitTS, startTS)}, nil
	}
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	muts := req.GetMutations()
	locks, err := rd.locks(mutationKeys(muts))
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[string]struct{}, len(muts))
	for i, mut := range muts {
		if _, dup := seen[string(mut.GetKey())]; dup {
			keyErrs = append(keyErrs, abortf("prewrite: key %q appears twice in one request", mut.GetKey()))
			continue
		}
		seen[string(mut.GetKey())] = struct{}{}
		kerr, err := rd.prewriteKey(&m, req, mut, locks[i], onePCCommitTS)
		if err != nil {
			return nil, nil, err
		}
		if kerr != nil {
			keyErrs = append(keyErrs, kerr)
		}
	}
	if len(keyErrs) > 0 {
		return nil, keyErrs, nil
	}
	return m.list, nil, nil
}

// mutationKeys lists the keys of ms.
func mutationKeys(ms []*kvrpcpb.Mutation) [][]byte {
	ks := make([][]byte, len(ms))
	for i, m := range ms {
		ks[i] = m.GetKey()
	}
	return ks
}

// prewriteKey prewrites one mutation; l is the key's lock (nil: none), read
// for all the request's keys at once by reader.locks.
func (rd *reader) prewriteKey(m *modifies, req *kvrpcpb.PrewriteRequest, mut *kvrpcpb.Mutation, l *Lock, onePCCommitTS uint64) (*kvrpcpb.KeyError, error) {
	key, op, startTS := mut.GetKey(), mut.GetOp(), req.GetStartVersion()
	if op != opPut && op != opDel && op != opLock {
		return abortf("prewrite: key %q: mutation op %v", key, op), nil
	}
	if l != nil {
		if l.StartTS != startTS {
			return lockedError(l, key), nil
		}
		if onePCCommitTS != 0 {
			return rd.commitLock(m, key, l, onePCCommitTS)
		}
		return nil, nil
	}

	ok, err := rd.seekVersions(key, ^uint64(0), startTS)
	if err != nil {
		return nil, err
	}
	var conflictTS uint64
	// A one-phase commit lands at onePCCommitTS, above startTS, so this scan
	// also passes the slot it takes: what sits there (nothing, or another
	// transaction's rollback record) is noted here instead of read again
	// with a point lookup (putCommit's writeAt), one skiplist descent less
	// per key.
	var slotTaken, slotRollback bool
	for ; ok; ok = rd.wit.Next() {
		commitTS, w, err := rd.version(key)
		if err != nil {
			return nil, err
		}
		if onePCCommitTS != 0 && commitTS == onePCCommitTS {
			slotTaken, slotRollback = true, w.Kind == opRollback
		}
		switch {
		case commitTS == startTS && (w.Kind == opRollback || w.OverlappedRollback):
			return abortf("prewrite: transaction %d already rolled back on key %q", startTS, key), nil
		case w.StartTS == startTS && w.Kind != opRollback:
			return nil, nil // committed already: this is a late retry
		case w.Kind != opRollback && conflictTS == 0 && commitTS > startTS:
			// The newest; keep looking for our own record. A commit at
			// exactly start_ts is in this transaction's snapshot (reads see
			// commit_ts <= start_ts), so it is no conflict; one-phase
			// commits, whose timestamps the store picks, can land there.
			conflictTS = commitTS
		}
	}
	if err := rd.iterErr(key); err != nil {
		return nil, err
	}
	if conflictTS != 0 {
		return &kvrpcpb.KeyError{Conflict: &kvrpcpb.WriteConflict{
			StartTs: startTS, ConflictTs: conflictTS, Key: key, Primary: req.GetPrimaryLock(),
		}}, nil
	}

	value := mut.GetValue()
	inline := op == opPut && len(value) <= ShortValueMax
	var expiresAt int64
	if op == opPut {
		expiresAt = mut.GetExpiresAt()
		if !inline {
			m.put(keys.DefaultKey(key, startTS), value)
		}
	}
	if !inline {
		value = nil
	}
	if onePCCommitTS != 0 {
		w := Write{Kind: op, StartTS: startTS, ExpiresAt: expiresAt, Inline: inline, Value: value}
		if slotTaken && !slotRollback {
			// Another transaction's commit there would have been a
			// conflict above; let putCommit read and judge it anyway.
			return rd.putCommit(m, key, w, onePCCommitTS)
		}
		// As putCommit: a rollback in the slot becomes the commit's flag.
		w.OverlappedRollback = slotRollback
		m.put(keys.WriteKey(key, onePCCommitTS), w.Encode())
		return nil, nil
	}
	nl := Lock{
		Op: op, Primary: req.GetPrimaryLock(), StartTS: startTS, TTL: req.GetLockTtl(), TxnSize: req.GetTxnSize(),
		ExpiresAt: expiresAt, Inline: inline, Value: value,
	}
	m.put(keys.LockKey(key), nl.Encode())
	return nil, nil
}

// putCommit writes the commit record w of a transaction at commitTS. If a
// rollback record of another transaction (started at commitTS) sits in that
// slot, the commit takes it over and carries the rollback as a flag.
func (rd *reader) putCommit(m *modifies, key []byte, w Write, commitTS uint64) (*kvrpcpb.KeyError, error) {
	prev, found, err := rd.writeAt(key, commitTS)
	if err != nil {
		return nil, err
	}
	if found {
		switch {
		case prev.Kind != opRollback && prev.StartTS == w.StartTS:
			return nil, nil // committed here already
		case prev.Kind == opRollback:
			w.OverlappedRollback = true
		default:
			return abortf("commit: commit_ts %d of transaction %d on key %q collides with the commit of transaction %d",
				commitTS, w.StartTS, key, prev.StartTS), nil
		}
	}
	m.put(keys.WriteKey(key, commitTS), w.Encode())
	return nil, nil
}

// commitLock turns the transaction's lock on key into a commit record.
func (rd *reader) commitLock(m *modifies, key []byte, l *Lock, commitTS uint64) (*kvrpcpb.KeyError, error) {
	w := Write{Kind: l.Op, StartTS: l.StartTS, ExpiresAt: l.ExpiresAt, Inline: l.Inline, Value: l.Value}
	if kerr, err := rd.putCommit(m, key, w, commitTS); kerr != nil || err != nil {
		return kerr, err
	}
	m.del(keys.LockKey(key))
	return nil, nil
}

// rollbackLock removes the transaction's lock on key and its long value, and
// leaves a rollback record.
func (rd *reader) rollbackLock(m *modifies, key []byte, l *Lock) error {
	m.del(keys.LockKey(key))
	if l.Op == opPut && !l.Inline {
		m.del(keys.DefaultKey(key, l.StartTS))
	}
	return rd.putRollback(m, key, l.StartTS)
}

// putRollback leaves the mark that the transaction started at startTS is
// rolled back on key, so that a prewrite of it arriving late fails. If
// another transaction committed at exactly startTS, its record keeps the
// slot and gets the OverlappedRollback flag instead.
func (rd *reader) putRollback(m *modifies, key []byte, startTS uint64) error {
	prev, found, err := rd.writeAt(key, startTS)
	if err != nil {
		return err
	}
	if found {
		if prev.Kind == opRollback || prev.OverlappedRollback {
			return nil
		}
		prev.OverlappedRollback = true
		m.put(keys.WriteKey(key, startTS), prev.Encode())
		return nil
	}
	m.put(keys.WriteKey(key, startTS), (&Write{Kind: opRollback, StartTS: startTS}).Encode())
	return nil
}

// Commit commits the transaction started at startTS on keys at commitTS:
// each lock of it becomes a write record carrying the lock's kind, expiry
// and inline value. A key without its lock is fine if the transaction
// already committed there (a retry); if it was rolled back the result is an
// abort error, and if it left no record, TxnNotFound. The first key error
// wins and then no modifies are returned.
func Commit(r pebble.Reader, startTS uint64, keyList [][]byte, commitTS uint64) (mods []*raftserverpb.Modify, keyErr *kvrpcpb.KeyError, err error) {
	if commitTS <= startTS {
		return nil, abortf("commit: commit_version %d is not above start_version %d", commitTS, startTS), nil
	}
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	seen := make(map[string]struct{}, len(keyList))
	for _, key := range keyList {
		if _, dup := seen[string(key)]; dup {
			continue
		}
		seen[string(key)] = struct{}{}
		kerr, err := rd.commitKey(&m, key, startTS, commitTS)
		if kerr != nil || err != nil {
			return nil, kerr, err
		}
	}
	return m.list, nil, nil
}

func (rd *reader) commitKey(m *modifies, key []byte, startTS, commitTS uint64) (*kvrpcpb.KeyError, error) {
	l, locked, err := rd.lock(key)
	if err != nil {
		return nil, err
	}
	if locked && l.StartTS == startTS {
		return rd.commitLock(m, key, &l, commitTS)
	}
	state, _, err := rd.txnRecord(key, startTS)
	switch {
	case err != nil:
		return nil, err
	case state == txnCommitted:
		return nil, nil
	case state == txnRolledBack:
		return abortf("commit: transaction %d is rolled back on key %q", startTS, key), nil
	}
	return &kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{StartTs: startTS, PrimaryKey: key}}, nil
}

// BatchRollback rolls back the transaction started at startTS on keys:
// removes its locks (and their long values) and leaves rollback records, also
// on keys it never locked, so that a late prewrite fails. Rolling back twice
// is fine. A key the transaction already committed gives AlreadyCommitted
// (the first key error wins and then no modifies are returned).
func BatchRollback(r pebble.Reader, startTS uint64, keyList [][]byte) (mods []*raftserverpb.Modify, keyErr *kvrpcpb.KeyError, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	seen := make(map[string]struct{}, len(keyList))
	for _, key := range keyList {
		if _, dup := seen[string(key)]; dup {
			continue
		}
		seen[string(key)] = struct{}{}
		kerr, err := rd.rollbackKey(&m, key, startTS)
		if kerr != nil || err != nil {
			return nil, kerr, err
		}
	}
	return m.list, nil, nil
}

func (rd *reader) rollbackKey(m *modifies, key []byte, startTS uint64) (*kvrpcpb.KeyError, error) {
	l, locked, err := rd.lock(key)
	if err != nil {
		return nil, err
	}
	if locked && l.StartTS == startTS {
		return nil, rd.rollbackLock(m, key, &l)
	}
	state, commitTS, err := rd.txnRecord(key, startTS)
	switch {
	case err != nil:
		return nil, err
	case state == txnCommitted:
		return &kvrpcpb.KeyError{AlreadyCommitted: &kvrpcpb.AlreadyCommitted{CommitTs: commitTS}}, nil
	case state == txnRolledBack:
		return nil, nil
	}
	return nil, rd.putRollback(m, key, startTS)
}

// TxnStatus is the outcome of CheckTxnStatus. Its fields mean what the
// CheckTxnStatusResponse fields of the same names mean; when Modifies is not
// empty the answer holds only once they are applied.
type TxnStatus struct {
	Modifies []*raftserverpb.Modify
	// LockTTL is nonzero while the primary lock is alive.
	LockTTL uint64
	// CommitTS is nonzero once the transaction committed. LockTTL and
	// CommitTS both zero (and Error nil): rolled back.
	CommitTS uint64
	Action   kvrpcpb.Action
	// Lock describes the live primary lock.
	Lock  *kvrpcpb.LockInfo
	Error *kvrpcpb.KeyError
}

// Response returns the status as a CheckTxnStatusResponse.
func (s *TxnStatus) Response() *kvrpcpb.CheckTxnStatusResponse {
	return &kvrpcpb.CheckTxnStatusResponse{
		Error: s.Error, LockTtl: s.LockTTL, CommitVersion: s.CommitTS, Action: s.Action, LockInfo: s.Lock,
	}
}

// CheckTxnStatus decides the fate of the transaction started at lockTS from
// its primary key. A live lock (by the physical time of currentTS, see
// Lock.Expired) is reported with its TTL; an expired one is rolled back
// (TTL_EXPIRE_ROLLBACK). Without the lock: a commit record gives the commit
// timestamp, a rollback record gives zeros, and no record gives either a
// rollback record (rollbackIfNotExist: LOCK_NOT_EXIST_ROLLBACK, so that the
// transaction can never commit) or TxnNotFound. A lock of lockTS whose
// primary is not primary gives an abort error: the caller asked the wrong
// key, and rolling the lock back from there would break the rule that only
// the primary decides.
//
// currentTS = math.MaxUint64 (ForceRollbackTS) rolls a live lock back
// whatever its TTL: GC's lock resolution kills every transaction older than
// the safe point that has not committed, as TiKV's does.
func CheckTxnStatus(r pebble.Reader, primary []byte, lockTS, currentTS uint64, rollbackIfNotExist bool) (st TxnStatus, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	l, locked, err := rd.lock(primary)
	if err != nil {
		return TxnStatus{}, err
	}
	if locked && l.StartTS == lockTS {
		if !bytes.Equal(l.Primary, primary) {
			st.Error = abortf("check txn status: lock of transaction %d on %q names primary %q", lockTS, primary, l.Primary)
			return st, nil
		}
		if currentTS != ForceRollbackTS && !l.Expired(currentTS) {
			st.LockTTL, st.Lock = l.TTL, l.Info(primary)
			return st, nil
		}
		if err := rd.rollbackLock(&m, primary, &l); err != nil {
			return TxnStatus{}, err
		}
		st.Modifies, st.Action = m.list, kvrpcpb.Action_TTL_EXPIRE_ROLLBACK
		return st, nil
	}
	state, commitTS, err := rd.txnRecord(primary, lockTS)
	switch {
	case err != nil:
		return TxnStatus{}, err
	case state == txnCommitted:
		st.CommitTS = commitTS
	case state == txnRolledBack:
	case rollbackIfNotExist:
		if err := rd.putRollback(&m, primary, lockTS); err != nil {
			return TxnStatus{}, err
		}
		st.Modifies, st.Action = m.list, kvrpcpb.Action_LOCK_NOT_EXIST_ROLLBACK
	default:
		st.Error = &kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{StartTs: lockTS, PrimaryKey: bytes.Clone(primary)}}
	}
	return st, nil
}

// ResolveLock commits (commitTS > 0) or rolls back (commitTS == 0) the
// transaction started at startTS, once its fate is known from the primary.
//
// With keyList it acts on those keys exactly as Commit or BatchRollback do
// (so a retry after the locks are gone succeeds), and next is nil. Without,
// it scans the lock column family over the raw range [start, end) (empty
// end: unbounded) and resolves the transaction's locks found there, at most
// limit of them (limit <= 0: no limit); next is the raw key to resume the
// scan from, nil when the range holds no more of its locks. Resuming from a
// reader that has not yet applied the modifies would redo the same keys,
// harmlessly. Every lock resolved contributes a MODIFY_DELETE of its lock
// key, so a caller can compute a scan without latches and learn from the
// modifies which keys to latch and resolve by key.
func ResolveLock(r pebble.Reader, startTS, commitTS uint64, keyList [][]byte, start, end []byte, limit int) (mods []*raftserverpb.Modify, next []byte, keyErr *kvrpcpb.KeyError, err error) {
	if commitTS != 0 && commitTS <= startTS {
		return nil, nil, abortf("resolve lock: commit_version %d is not above start_version %d", commitTS, startTS), nil
	}
	if len(keyList) > 0 {
		if commitTS != 0 {
			mods, keyErr, err = Commit(r, startTS, keyList, commitTS)
		} else {
			mods, keyErr, err = BatchRollback(r, startTS, keyList)
		}
		return mods, nil, keyErr, err
	}
	if emptyRange(start, end) {
		return nil, nil, nil, nil
	}

	lo, hi := keys.DataRange(keys.CFLock, start, end)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mvcc: resolve lock: open iterator: %w", err)
	}
	defer closeIter(it, "resolve lock", &err)
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	resolved := 0
	for ok := it.First(); ok; ok = it.Next() {
		key, l, err := iterLock(it)
		if err != nil {
			return nil, nil, nil, err
		}
		if l.StartTS != startTS {
			continue
		}
		if limit > 0 && resolved >= limit {
			next = key
			break
		}
		if commitTS != 0 {
			if kerr, err := rd.commitLock(&m, key, &l, commitTS); kerr != nil || err != nil {
				return nil, nil, kerr, err
			}
		} else if err := rd.rollbackLock(&m, key, &l); err != nil {
			return nil, nil, nil, err
		}
		resolved++
	}
	if err := it.Error(); err != nil {
		return nil, nil, nil, fmt.Errorf("mvcc: resolve lock: %w", err)
	}
	return m.list, next, nil, nil
}

// Cleanup rolls back the transaction started at startTS on key if its lock
// there has expired by currentTS (currentTS == 0: regardless of the TTL); a
// live lock gives Locked. Without the lock: if the transaction committed on
// key, commitTS reports when (not an error: the caller puts it in
// CleanupResponse.commit_version); if it rolled back, nothing happens; if it
// left nothing, a rollback record is written so it can never commit.
func Cleanup(r pebble.Reader, key []byte, startTS, currentTS uint64) (mods []*raftserverpb.Modify, commitTS uint64, keyErr *kvrpcpb.KeyError, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	var m modifies
	l, locked, err := rd.lock(key)
	if err != nil {
		return nil, 0, nil, err
	}
	if locked && l.StartTS == startTS {
		if currentTS != 0 && !l.Expired(currentTS) {
			return nil, 0, lockedError(&l, key), nil
		}
		if err := rd.rollbackLock(&m, key, &l); err != nil {
			return nil, 0, nil, err
		}
		return m.list, 0, nil, nil
	}
	state, commitTS, err := rd.txnRecord(key, startTS)
	switch {
	case err != nil:
		return nil, 0, nil, err
	case state == txnCommitted:
		return nil, commitTS, nil, nil
	case state == txnRolledBack:
		return nil, 0, nil, nil
	}
	if err := rd.putRollback(&m, key, startTS); err != nil {
		return nil, 0, nil, err
	}
	return m.list, 0, nil, nil
}

// MaxLockTTL bounds the TTL a heartbeat gives a lock, in milliseconds after
// its start_ts's physical time: one hour, TiKV's max-txn-ttl. A client that
// keeps heartbeating (hung, or looping) cannot hold its keys longer; its
// locks then expire and the next reader rolls the transaction back. GC's
// lock resolution ends it sooner if the GC life time is shorter.
const MaxLockTTL = uint64(60 * 60 * 1000)

// TxnHeartBeat keeps the transaction started at startTS alive: if primary
// holds its lock, the lock's TTL becomes max(TTL, adviseTTL), adviseTTL
// capped at MaxLockTTL, and ttl is the lock's TTL afterwards. A TTL is
// never lowered, so a heartbeat and its retries, in any order, leave the
// largest TTL advised; a heartbeat that raises nothing writes nothing.
//
// It does not check whether the lock has expired: an expired lock that is
// still there has not been rolled back (a rollback removes it), so the
// transaction can still commit and may as well live on.
//
// Without the lock the transaction is over, and the key error tells the
// client how: AlreadyCommitted (committed at commitTS), an abort error
// (rolled back: by a reader that found the lock expired, or by GC), or
// TxnNotFound (no record at all: the range was deleted, or it never locked
// primary). A lock of startTS naming another primary gives an abort error,
// as for CheckTxnStatus: only the primary's lock speaks for the
// transaction.
func TxnHeartBeat(r pebble.Reader, primary []byte, startTS, adviseTTL uint64) (mods []*raftserverpb.Modify, ttl uint64, keyErr *kvrpcpb.KeyError, err error) {
	if startTS == 0 {
		return nil, 0, abortf("txn heartbeat: start_version is 0"), nil
	}
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	l, locked, err := rd.lock(primary)
	if err != nil {
		return nil, 0, nil, err
	}
	if locked && l.StartTS == startTS {
		if !bytes.Equal(l.Primary, primary) {
			return nil, 0, abortf("txn heartbeat: lock of transaction %d on %q names primary %q", startTS, primary, l.Primary), nil
		}
		adviseTTL = min(adviseTTL, MaxLockTTL)
		if adviseTTL <= l.TTL {
			return nil, l.TTL, nil, nil
		}
		l.TTL = adviseTTL
		var m modifies
		m.put(keys.LockKey(primary), l.Encode())
		return m.list, l.TTL, nil, nil
	}
	state, commitTS, err := rd.txnRecord(primary, startTS)
	switch {
	case err != nil:
		return nil, 0, nil, err
	case state == txnCommitted:
		return nil, 0, &kvrpcpb.KeyError{AlreadyCommitted: &kvrpcpb.AlreadyCommitted{CommitTs: commitTS}}, nil
	case state == txnRolledBack:
		return nil, 0, abortf("txn heartbeat: transaction %d is rolled back on its primary %q", startTS, primary), nil
	}
	return nil, 0, &kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{StartTs: startTS, PrimaryKey: bytes.Clone(primary)}}, nil
}

// CommittedAt reports whether the transaction started at startTS committed
// key, and at which timestamp, from its write record. A retry of a request
// the store can no longer serve (its timestamps are below the GC safe
// point) asks it to learn whether the first attempt applied.
func CommittedAt(r pebble.Reader, key []byte, startTS uint64) (commitTS uint64, committed bool, err error) {
	rd := reader{r: r}
	defer closeReader(&rd, &err)
	state, commitTS, err := rd.txnRecord(key, startTS)
	if err != nil || state != txnCommitted {
		return 0, false, err
	}
	return commitTS, true, nil
}
