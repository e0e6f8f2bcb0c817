package raft

import (
	"bytes"
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// # Reclaiming dead collection versions
//
// DEL, a SET over a collection, RENAME, a type change or expiry kill a
// collection's version by replacing or deleting its metadata record alone;
// its sub-keys stay, invisible (docs/architecture.md, "Reclamation of old
// versions"). A transaction cannot delete a range, so the raft backend
// reclaims them afterwards, in two ways:
//
//   - The reclaim queue. A transaction that kills a version it knows (it
//     read the key's record, as DEL, RENAME or a SET with a read do)
//     writes a queue key for it (keyspace.ReclaimKey) in the same
//     transaction, so the entry exists iff the kill committed. A version
//     the transaction's own point deletions emptied (the last LPOP, HDEL,
//     SREM) needs none (emptiedByPoints). Every gateway's reclaimer drains the queue:
//     for each entry visible at the GC safe point it deletes the version's
//     sub-key range (kvclient.DeleteRange, one raft command per region)
//     and then the entry. An entry left by a gateway that died, or by a
//     drain stopped between the two steps, is drained again by any gateway
//     (deleting a deleted range is harmless).
//   - The orphan sweep. A blind write (a plain SET over a hash) kills a
//     version it never read, and the store's GC removes an expired
//     collection's record by itself: no transaction knows to enqueue those.
//     A slow pass over the sub-key family deletes every (key, version) range
//     whose version is not the key's live version.
//
// Both wait for the GC safe point, which costs the space of a dead version
// one GC life time (10 minutes by default): a command whose snapshot is
// older than the kill may still be reading the dead version's elements
// (an HGETALL paging through a hash DEL'd meanwhile), and a range delete is
// not MVCC, it would cut such a read short. Commands older than the safe
// point fail instead (kvclient.ErrDataNotAvailable), as they do for GC.
// As for GC, a store that has not yet learnt a new safe point still serves
// such an old snapshot, which could then find a reclaimed version empty
// rather than fail: it takes a command that outlived the GC life time.
//
// Safety: a dead version is never written again. Versions are start
// timestamps (NewVersion), never handed out twice; every command that
// writes sub-keys writes the metadata record in the same transaction
// (command/collection.go's coll.save, copyColl's caller), so one that read
// the old version conflicts with the killing write of the record and
// aborts (first committer wins); locks such a writer left in the range go
// with the range, or with its rollback.

// Defaults of the reclaimer's intervals (Options).
const (
	DefaultReclaimInterval = 10 * time.Second
	DefaultSweepInterval   = time.Hour
)

// reclaimPage bounds the queue entries drained per transaction that deletes
// them.
const reclaimPage = 256

// reclaimVars, for /debug/vars: "versions" the queue entries reclaimed,
// "orphans" the versions the sweep reclaimed, "sweeps" the completed
// sweeps, "errors" the drains and sweeps stopped by an error, and
// "queue_length" the entries in the queue when this gateway last drained
// it (left waiting for the safe point or a failed drain included).
var (
	reclaimVars = expvar.NewMap("nokv_raft_reclaim")
	queueLength = new(expvar.Int)
)

func init() { reclaimVars.Set("queue_length", queueLength) }

// collKnown is what a transaction knows of a key's collection at its start
// timestamp: found a collection, and its version once read.
type collKnown struct {
	version uint64
	known   bool
}

// noteRead records that key holds the collection v as the transaction read
// it. The first version learnt is kept: the start timestamp's, if read
// before the transaction wrote the key; any later one is the transaction's
// own (NewVersion's, in versioned).
func (x *txn) noteRead(key []byte, v backend.Value) {
	if !v.Type.IsCollection() || x.colls[string(key)].known {
		return
	}
	if m, err := keyspace.DecodeMeta(v.Data); err == nil {
		x.setColl(key, collKnown{version: m.Version, known: true})
	}
}

// noteHead records that key holds a collection of a version not read yet.
func (x *txn) noteHead(key []byte, h backend.Head) {
	if !h.Type.IsCollection() {
		return
	}
	if _, ok := x.colls[string(key)]; !ok {
		x.setColl(key, collKnown{})
	}
}

func (x *txn) setColl(key []byte, c collKnown) {
	if x.colls == nil {
		x.colls = map[string]collKnown{}
	}
	logUndo(x, x.colls, string(key))
	x.colls[string(key)] = c
}

// beforeWrite runs before a write of key: if the key held a collection as
// far as the transaction read it (a head, or the prefetch), its version is
// read now, so that finish can enqueue it. Nothing is allocated for other
// keys (the string commands' hot path).
func (x *txn) beforeWrite(key []byte) error {
	c, isColl := x.colls[string(key)]
	if kn, ok := x.heads[string(key)]; ok && kn.found && kn.head.Type.IsCollection() {
		isColl = true
	}
	if !isColl || c.known {
		return nil
	}
	// Before the transaction's first write of the key, the read gives the
	// start timestamp's record; in a combined transaction, after an
	// earlier command's write of it, that command's record, whose version
	// is the start timestamp's or one this transaction created
	// (NewVersion): either is a version the transaction may kill, which
	// finish enqueues once all commands ran.
	e, ok, err := x.get(key)
	if err != nil {
		return x.read(err)
	}
	if ok {
		if v, err := decode(e); err == nil {
			x.noteRead(key, v)
		}
	}
	return nil
}

// noteWrite records the collection version key holds after a write (0:
// none), for the keys finish looks at.
func (x *txn) noteWrite(key []byte, v backend.Value) {
	var ver uint64
	if v.Type.IsCollection() {
		if m, err := keyspace.DecodeMeta(v.Data); err == nil {
			ver = m.Version
		}
	} else if _, ok := x.colls[string(key)]; !ok && !x.versioned[string(key)] {
		return
	}
	if x.final == nil {
		x.final = map[string]uint64{}
	}
	logUndo(x, x.final, string(key))
	x.final[string(key)] = ver
}

// versionOf names one version of a key's collection.
type versionOf struct {
	key     string // the stored key (keyspace.Key)
	version uint64
}

// maxEmptiedCheck bounds the point deletions of a version after which
// finish still checks whether they emptied it: the check reads as many
// sub-keys as the transaction deleted.
const maxEmptiedCheck = 1024

// notePointDelete counts a DeleteSub of sub for its version.
func (x *txn) notePointDelete(sub []byte) {
	p, err := keyspace.SplitSubKey(sub)
	if err != nil {
		return
	}
	if x.pointDeleted == nil {
		x.pointDeleted = map[versionOf]int{}
	}
	v := versionOf{string(keyspace.Key(p.DB, p.Key)), p.Version}
	if x.combined {
		m := x.pointDeleted
		x.undo = append(x.undo, func() {
			if m[v]--; m[v] <= 0 {
				delete(m, v)
			}
		})
	}
	x.pointDeleted[v]++
}

// emptiedByPoints reports whether the transaction's own point deletions
// left version ver of key without a sub-key, so that killing it needs no
// reclaim-queue entry (LPOP of a queue's last job, HDEL of a hash's last
// field: the job-queue pattern would otherwise cost an entry and a region
// range deletion per cycle). It reads the version's range at the start
// timestamp merged with the transaction's writes; an error or too many
// deletions to check says no (the entry is written, as before).
//
// Why the read at the start timestamp is enough: a sub-key of ver that it
// does not show would have been written by a transaction committing after
// our start timestamp, or concurrently with us. Every transaction that
// writes a collection's sub-keys writes its metadata record too
// (command/collection.go's coll.save), and this one writes the record (it
// kills the version by deleting or replacing it): of two such concurrent
// transactions only the first committer commits (a write conflict on the
// record at prewrite). So if we commit, no sub-key of ver was written
// after our start timestamp, except by us; a transaction starting after
// our commit reads the new record and never writes ver again (versions
// are start timestamps, never reused). The deletions leave MVCC
// tombstones, which the store's GC collects like any other; should
// anything be left all the same (a command-layer bug), the orphan sweep
// still finds the version dead and reclaims it.
func (x *txn) emptiedByPoints(key string, ver uint64) bool {
	n := x.pointDeleted[versionOf{key, ver}]
	if n == 0 || n > maxEmptiedCheck {
		return false
	}
	db, rkey, ok := keyspace.Split([]byte(key))
	if !ok {
		return false
	}
	lo, hi := keyspace.VersionRange(db, rkey, ver)
	left, err := x.t.Scan(x.ctx, lo, hi, 1)
	return err == nil && len(left) == 0
}

// finish writes a reclaim-queue key for every version the transaction
// kills: the version a written key held as it first read it, and the one
// NewVersion gave it (the start timestamp), unless the key holds it at the
// end or the transaction's own point deletions emptied it
// (emptiedByPoints).
func (x *txn) finish() {
	if x.err != nil || (len(x.colls) == 0 && len(x.versioned) == 0) {
		return
	}
	id := x.t.StartTS()
	enqueue := func(key string, ver uint64) {
		final, written := x.final[key]
		if !written || final == ver || x.emptiedByPoints(key, ver) {
			return
		}
		db, rkey, ok := keyspace.Split([]byte(key))
		if !ok {
			return
		}
		q := keyspace.ReclaimKey(id, db, rkey, ver)
		if len(q) > maxStoredKey {
			return // a key this long is left to the orphan sweep
		}
		if x.err == nil {
			x.err = x.t.Set(q, []byte{0}, 0)
		}
	}
	for key, c := range x.colls {
		if c.known {
			enqueue(key, c.version)
		}
	}
	for key := range x.versioned {
		enqueue(key, id)
	}
}

// reclaimer drains the queue and sweeps orphans in the background.
type reclaimer struct {
	s        *Store
	interval time.Duration
	sweep    time.Duration
	hook     func(stage string) error
	log      *slog.Logger
	cancel   context.CancelFunc
	done     chan struct{}

	// The sweep's pending round (see sweepOrphans): bound is a safe point
	// read before after, a timestamp taken then; the sweep runs once the
	// safe point has passed after. lastSweep is when one last ended.
	pending       bool
	bound, after  uint64
	sweepFrom     []byte
	lastSweep     time.Time
	sweepReclaims int
}

// startReclaimer runs the reclaimer until Close.
func (s *Store) startReclaimer(opts Options) {
	interval, sweep := opts.ReclaimInterval, opts.SweepInterval
	if interval == 0 {
		interval = DefaultReclaimInterval
	}
	if sweep == 0 {
		sweep = DefaultSweepInterval
	}
	if interval < 0 {
		return
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &reclaimer{s: s, interval: interval, sweep: sweep, hook: opts.TestingReclaimHook, log: log, cancel: cancel, done: make(chan struct{})}
	s.reclaim = r
	go r.run(ctx)
}

func (r *reclaimer) stop() {
	r.cancel()
	<-r.done
}

func (r *reclaimer) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.s.drainQueue(ctx, r.hook); err != nil && ctx.Err() == nil {
			reclaimVars.Add("errors", 1)
			r.log.Warn("raft backend: reclaim queue not drained", "err", err)
		}
		if r.sweep > 0 {
			if err := r.sweepStep(ctx); err != nil && ctx.Err() == nil {
				reclaimVars.Add("errors", 1)
				r.log.Warn("raft backend: orphan sweep stopped", "err", err)
			}
		}
	}
}

// safePoint returns PD's GC safe point (0: GC has not run yet).
func (s *Store) safePoint(ctx context.Context) (uint64, error) {
	sp, err := s.c.PD().GetGCSafePoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the GC safe point: %w", err)
	}
	return sp, nil
}

// drainQueue reclaims every queue entry that committed at or below the GC
// safe point (the entries a snapshot at the safe point sees): for each, the
// version's sub-key range is deleted, then the entries, a page at a time.
// hook, if set, is called after a page's ranges are deleted and before its
// entries are; an error stops the drain there (tests: a gateway dying in
// between). It returns the entries reclaimed.
func (s *Store) drainQueue(ctx context.Context, hook func(string) error) (int, error) {
	start, end := keyspace.ReclaimRange()
	var total int64
	_, err := s.c.ScanFunc(ctx, start, end, kvclient.ScanOptions{KeysOnly: true}, func(kvclient.Entry) bool {
		total++
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("count the reclaim queue: %w", err)
	}
	queueLength.Set(total)
	if total == 0 {
		return 0, nil
	}
	sp, err := s.safePoint(ctx)
	if err != nil || sp == 0 {
		return 0, err
	}
	snap := s.c.Snapshot(sp)
	n := 0
	for from := start; from != nil; {
		var page [][]byte
		from, err = snap.ScanFunc(ctx, from, end, kvclient.ScanOptions{Limit: reclaimPage, KeysOnly: true}, func(e kvclient.Entry) bool {
			page = append(page, e.Key)
			return true
		})
		if err != nil {
			return n, fmt.Errorf("read the reclaim queue at the safe point %d: %w", sp, err)
		}
		for _, q := range page {
			e, err := keyspace.SplitReclaimKey(q)
			if err != nil {
				// Unreadable (only this file writes the prefix, so a
				// damaged entry): no range is deleted for it, and the
				// entry is dropped with the page, not retried forever.
				continue
			}
			lo, hi := keyspace.VersionRange(e.DB, e.Key, e.Version)
			if err := s.c.DeleteRange(ctx, lo, hi); err != nil {
				return n, fmt.Errorf("reclaim version %d of %q (db %d): %w", e.Version, e.Key, e.DB, err)
			}
		}
		if hook != nil {
			if err := hook("ranges-deleted"); err != nil {
				return n, err
			}
		}
		if len(page) > 0 {
			if err := s.c.Delete(ctx, page...); err != nil {
				return n, fmt.Errorf("delete %d reclaim-queue entries: %w", len(page), err)
			}
		}
		n += len(page)
		reclaimVars.Add("versions", int64(len(page)))
		queueLength.Add(-int64(len(page)))
	}
	return n, nil
}

// sweepStep advances the orphan sweep. A (key, version) of the sub-key
// family is an orphan, safe to delete, when
//
//   - the version's creator is settled: version <= bound, a safe point read
//     before the timestamp after was taken, so the transaction that started
//     at version either committed before after or never will (the stores
//     refuse its prewrites and commits, and GC rolled back its locks, before
//     PD stored bound); and
//   - at the snapshot X of a safe point >= after, the key's record is not
//     that version: if it ever was live, it died at or before X, so no
//     command reading it is still running (older snapshots fail), and it
//     can never be live again.
//
// So a sweep notes (bound, after), and runs once the safe point has passed
// after, one GC life time later.
func (r *reclaimer) sweepStep(ctx context.Context) error {
	s := r.s
	if !r.pending {
		if time.Since(r.lastSweep) < r.sweep && !r.lastSweep.IsZero() {
			return nil
		}
		sp, err := s.safePoint(ctx)
		if err != nil || sp == 0 {
			return err
		}
		after, err := s.c.CurrentTS(ctx)
		if err != nil {
			return fmt.Errorf("orphan sweep: timestamp: %w", err)
		}
		r.pending, r.bound, r.after, r.sweepFrom = true, sp, after, nil
		return nil
	}
	sp, err := s.safePoint(ctx)
	if err != nil || sp < r.after {
		return err
	}
	n, next, err := s.sweepOrphans(ctx, r.sweepFrom, r.bound, sp)
	r.sweepReclaims += n
	if err != nil {
		r.sweepFrom = next // resume there at the next step
		return err
	}
	reclaimVars.Add("sweeps", 1)
	r.pending, r.lastSweep, r.sweepReclaims = false, time.Now(), 0
	return nil
}

// sweepOrphans deletes, from from (nil: the start) to the end of the sub-key
// family, every (key, version) range whose version is at most bound and is
// not the key's live version at snapshot sp (see sweepStep for why that is
// safe). It seeks from one version's range to the next: its cost is a scan
// and a read per version, not per element. It returns the ranges deleted
// and, on error, where to resume.
func (s *Store) sweepOrphans(ctx context.Context, from []byte, bound, sp uint64) (int, []byte, error) {
	start, end := keyspace.SubKeyFamilyRange()
	if from == nil {
		from = start
	}
	snap := s.c.Snapshot(sp)
	n := 0
	for {
		var first []byte
		_, err := snap.ScanFunc(ctx, from, end, kvclient.ScanOptions{Limit: 1, KeysOnly: true}, func(e kvclient.Entry) bool {
			first = e.Key
			return false
		})
		if errors.Is(err, kvclient.ErrDataNotAvailable) {
			// The safe point moved past sp while the sweep ran: a newer
			// one is as good (it is still past the sweep's after).
			if sp, err = s.safePoint(ctx); err != nil {
				return n, from, err
			}
			snap = s.c.Snapshot(sp)
			continue
		}
		if err != nil {
			return n, from, fmt.Errorf("orphan sweep: scan at %q: %w", from, err)
		}
		if first == nil {
			return n, nil, nil
		}
		p, err := keyspace.SplitSubKey(first)
		if err != nil {
			from = append(bytes.Clone(first), 0) // not a sub-key: skip it
			continue
		}
		lo, hi := keyspace.VersionRange(p.DB, p.Key, p.Version)
		if p.Version <= bound {
			live, err := s.liveVersion(ctx, snap, keyspace.Key(p.DB, p.Key), p.Version)
			if err != nil {
				return n, from, err
			}
			if !live {
				if err := s.c.DeleteRange(ctx, lo, hi); err != nil {
					return n, from, fmt.Errorf("orphan sweep: reclaim version %d of %q (db %d): %w", p.Version, p.Key, p.DB, err)
				}
				n++
				reclaimVars.Add("orphans", 1)
			}
		}
		if hi == nil {
			return n, nil, nil
		}
		from = hi
	}
}

// liveVersion reports whether the stored key holds, at snap, a collection
// whose version is ver. A record it cannot decode counts as live: the sweep
// deletes only what it knows is dead.
func (s *Store) liveVersion(ctx context.Context, snap *kvclient.Snapshot, key []byte, ver uint64) (bool, error) {
	e, ok, err := snap.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("orphan sweep: read %q: %w", key, err)
	}
	if !ok {
		return false, nil
	}
	v, err := decode(e)
	if err != nil {
		return true, nil
	}
	if !v.Type.IsCollection() {
		return false, nil
	}
	m, err := keyspace.DecodeMeta(v.Data)
	if err != nil {
		return true, nil
	}
	return m.Version == ver, nil
}
