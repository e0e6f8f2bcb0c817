// Package kvclient is NoKV's transactional KV client: snapshot reads and
// optimistic Percolator transactions (as in TiKV) over the cluster's
// multi-raft stores, routed through PD.
//
//	c, err := kvclient.New(ctx, pdAddr, kvclient.Options{})
//	defer c.Close()
//	err = c.RunTxn(ctx, func(txn *kvclient.Txn) error {
//		e, found, err := txn.Get(ctx, key)
//		if err != nil {
//			return err
//		}
//		n := 0
//		if found {
//			n, _ = strconv.Atoi(string(e.Value))
//		}
//		return txn.Set(key, strconv.AppendInt(nil, int64(n+1), 10), e.ExpiresAt)
//	})
//
// [Client.RunTxn] is the building block for Redis commands: an atomic
// multi-key read-modify-write, retried from scratch on conflicts. Values
// carry an expiry (Unix milliseconds, 0 never), kept by [Entry.ExpiresAt];
// an expired value reads as absent. Any byte string is a key, the empty one
// included.
//
// # Sizes
//
// The client and the stores share the limits of package api/limits. A
// transaction refuses, before sending anything, a key longer than
// limits.MaxKeySize (64 KiB), a value longer than limits.MaxValueSize
// (6 MiB + 1 KiB) and writes over limits.MaxTxnSize (64 MiB) in all, with a
// [*TooLargeError] matching [ErrTooLarge]; a key that cannot have been
// written reads as absent without a request. Its prewrites and commits are
// cut per region by key count (256) and by the bytes they will add to the
// store's raft entry (about limits.WriteBatchBytes, 4 MiB), so no request
// makes an entry over limits.RaftEntryMaxSize (8 MiB), which a store would
// refuse (raft_entry_too_large, also [ErrTooLarge], not retried). Reads take
// responses up to limits.GRPCMaxMessageSize: a store stops a scan or batch
// get response at about limits.ResponsePageBytes and the client asks for
// the rest, so anything written can be read back.
//
// # Timestamps and reads
//
// Every transaction starts with one timestamp from PD's TSO (batched by
// pdclient), its start_ts; its reads see exactly the transactions committed
// at or below it ([Snapshot]). A transaction reads its own buffered writes
// first ([Txn.Get], [Txn.BatchGet] and [Txn.Scan] merge them in). Expiry is
// judged at the physical time of the read timestamp (TSO timestamps are
// physical_ms<<18 | logical), so every reader of a snapshot agrees whatever
// its own clock; [Txn.Now] exposes that instant and Options.NowMs overrides
// it for tests.
//
// Reads never answer from data GC has collected: a read at a timestamp
// below the cluster's GC safe point (a snapshot or transaction older than
// the GC life time) fails with an error matching [ErrDataNotAvailable],
// which is not retried (the same timestamp fails alike); a new snapshot
// reads.
//
// Reads never return a value that might still roll back: the store answers
// "locked" when a transaction that started below the read timestamp holds a
// lock on the key, and the client resolves the lock (below) and reads
// again. BatchGet groups its keys by region (at most 256 keys a request)
// and reads them in parallel, at most 16 requests in flight per call (more
// would only queue in the stores until they time out); Scan walks the
// regions in key order, resuming at a locked key once it is settled.
// [Snapshot.ScanFunc] streams a scan one store response at a time, can
// leave the values out (ScanOptions.KeysOnly) and bound the keys the
// stores look at, dead ones included (ScanOptions.MaxVisit), and returns
// where to continue.
//
// # Head reads
//
// [Snapshot.GetHead] and [Snapshot.BatchGetHeads] (and [Txn.GetHead],
// [Txn.BatchGetHeads], which answer from the transaction's own writes
// first, as Txn.Get does) read a key's [Head]: the value's length, its
// expiry and only its first prefixLen bytes (the gateway asks for one, its
// type byte). The store reads exactly as for a value (the request's
// head_only flag changes only what it sends back), so locks are met and
// resolved the same way and a head read and a value read at one snapshot
// agree; a 6 MiB value costs the store a Pebble lookup but crosses the
// network as its length. Batch reads, of values or heads, read a key named
// many times once, and a store's response page counts only the bytes it
// sends, so a page holds thousands of heads. [Stats] counts the read
// responses and the value bytes they carried.
//
// # Deleting ranges
//
// [Client.DeleteRange] removes a key range region by region, each part one
// raft command applied by every replica (like TiKV's UnsafeDestroyRange):
// fast whatever the number of keys, but not a transaction and not atomic
// across regions; see its documentation.
//
// # Commit
//
// Writes are buffered until [Txn.Commit]. The mutations are sorted by key;
// the first is the primary.
//
// One-phase commit: when every key is in one region (and fits one request,
// 256 keys), a single prewrite with try_one_pc commits the transaction in
// one raft round. Its proposed commit timestamp is start_ts+1, not a fresh
// TSO timestamp, and the store raises it above every read timestamp it has
// served (maxTS, synced from the TSO whenever it starts leading a region)
// and returns the one it chose. That is enough:
//
//   - no snapshot changes under a reader: a read at ts on one of the keys
//     either came first (then commit_ts > ts) or waits for the commit;
//   - no lost update: a transaction that read a key at its start_ts S
//     before this commit raised maxTS to S, so the commit lands above S and
//     its own prewrite of that key meets a write at or above S: conflict;
//   - real-time order: commit_ts is at most the largest timestamp PD had
//     issued when the commit returned, plus one, so a transaction that
//     starts afterwards reads it.
//
// A fresh timestamp would cost a PD round trip per write for nothing but
// one difference: two blind writes (no read) of one key by transactions
// that both started before either committed may both commit, the first at
// a commit_ts below the second's start_ts. That is a serial history in
// timestamp order and in real-time order (the later commit wins), so
// concurrent SETs of one key both succeed instead of one retrying. A
// transaction that read the key conflicts as usual.
//
// Two-phase commit otherwise: (1) prewrite every region's batches in
// parallel (16 requests in flight at most), the primary's batch in the
// calling goroutine, each batch locking its keys with the primary's name
// and a TTL of the transaction's age plus Options.LockTTL, and from the
// moment the primary's batch is locked its lock is kept alive by
// heartbeats (below); (2) take a commit timestamp from the TSO; (3)
// commit the primary alone: this is the commit point, and the heartbeats
// stop; (4) commit the
// secondaries, region batches in parallel. Failures of (4) do not fail the
// transaction: the secondaries are retried in the background (at most 8
// attempts over about 10 to 20 seconds with growing backoff, at most 256
// transactions at once, stopped by [Client.Close]; see
// Stats.SecondaryCommitFailures and the counters after it). A lock left
// all the same is committed by a reader that meets it (it finds the
// primary committed and commits the lock itself) or by GC, which resolves
// every lock at or below the GC safe point before it collects anything
// there ([Client.ResolveLocksForGC]).
//
// Conflicts: a prewrite that meets a write committed after start_ts fails
// with an error matching [ErrWriteConflict]; one that meets another
// transaction's lock resolves it and retries (at most three rounds), and
// fails with ErrWriteConflict if the lock is still alive. Everything the
// transaction may have prewritten is then rolled back (BatchRollback,
// leaving rollback records so that a late prewrite fails) before Commit
// returns. If the primary's commit is refused because the transaction was
// rolled back meanwhile (its lock expired and a reader rolled it back), the
// error matches [ErrTxnAborted] or [ErrTxnNotFound]. All of these match
// [IsRetryable]: nothing was committed, and RunTxn runs the transaction
// again with a new start_ts after a short jittered backoff, at most
// Options.TxnRetries times. If a one-phase commit or the primary's commit
// fails after an attempt whose outcome is unknown (the store answered
// undetermined, the attempt timed out, the connection broke, the context
// ended in flight) and no later attempt settled it, the error matches
// [ErrCommitUndetermined] and is neither retried nor rolled back: the
// transaction may have committed. Every other error of Commit means it did
// not: a prewrite whose outcome is unknown is never followed by a commit,
// so whatever it locked is rolled back, by the client or else by the next
// reader or GC.
//
// # Lock heartbeat
//
// A lock's TTL counts milliseconds from its start_ts's physical time, and a
// reader judges it by the physical time of a fresh TSO timestamp, so a
// transaction whose commit runs longer than its prewrite's TTL (a large
// MSET or DEL prewriting thousands of keys, a slow region) would be rolled
// back by the first reader that met one of its locks. As TiKV's ttlManager
// does, a two-phase commit keeps its primary lock alive: from the
// primary's prewrite until the primary's commit (or the rollback) a
// goroutine sends TxnHeartBeat every Options.LockTTL/2 (1.5 s by default),
// raising the primary lock's TTL to the transaction's age plus LockTTL
// (TiKV: every 10 s, age plus 20 s). Readers and writers meeting any of the
// transaction's locks ask the primary, find it alive and wait or conflict.
// A client that dies stops heartbeating, and its locks expire at most
// LockTTL later. The heartbeats stop once the transaction is
// Options.MaxTxnTTL old (1 h by default, TiKV's max-txn-ttl; the stores
// never grant more than an hour either), so a hung committer cannot hold
// its keys for ever; GC rolls back an uncommitted transaction older than
// the GC life time sooner. A heartbeat that finds the transaction rolled
// back (by GC, by a reader after a lapse, by a range deletion) makes Commit
// fail with a retryable error matching [ErrTxnAborted] ("lost its primary
// lock") instead of sending the commit. The heartbeat goroutine never
// outlives Commit, and [Client.Close] stops and waits for it;
// Stats.LockHeartbeats counts the heartbeats. A one-phase commit holds no
// lock and sends none.
//
// # Lock resolution
//
// A lock met by a read or a prewrite belongs to a transaction whose fate
// its primary key decides. The resolver asks the primary's region
// (CheckTxnStatus, with a fresh TSO timestamp as current_ts, and
// rollback_if_not_exist once the met lock's TTL has run out by that
// timestamp's physical time):
//
//   - committed at commit_ts: ResolveLock(commit_ts) commits the met locks;
//   - rolled back, or expired (the store rolls it back then): ResolveLock(0)
//     rolls the met locks back;
//   - alive (or its primary not prewritten yet while the met lock is
//     alive): the reader waits a backoff capped at the lock's remaining TTL
//     and tries again, for at most Options.MaxLockWait in all
//     ([ErrLockWaitTimeout]); a prewrite gives up with a write conflict.
//
// Decided fates never change, so they are cached for
// Options.ResolvedCacheTTL and the transaction's other locks resolve
// without asking its primary again.
//
// GC resolves locks too, with one difference: [Client.ResolveLocksForGC]
// (run by the store that drives GC) rolls back every transaction that
// started at or below the new safe point and has not committed, however
// long its locks' TTL, as TiKV's GC worker does: such a transaction is
// older than the GC life time, and the stores already refuse its
// prewrites. Its client then finds its primary rolled back and fails
// (ErrTxnAborted), having committed nothing.
//
// # Routing and retries
//
// Requests go to the leader of the region holding their keys, as PD's
// region cache (pdclient.RegionCache) knows it; requests with several keys
// are split by region. Every routing problem is handled in one place (the
// unexported send) against a per-request budget of Options.MaxRetries
// failed attempts, with jittered exponential backoff between
// Options.MinBackoff and Options.MaxBackoff:
//
//   - NotLeader with a leader hint: the cache learns the leader and the
//     request goes there at once (backing off if redirected again). A hint
//     that is not a peer of the cached region drops the region.
//   - NotLeader without a hint (election under way), or with a hint naming
//     a store this request could not reach (a stale hint), gRPC
//     Unavailable, or an attempt running out of Options.RPCTimeout: back
//     off and try the region's next peer; an unreachable store's address is
//     dropped so PD is asked again. These waits stay short (at most 400 ms)
//     so the request notices a new leader soon after an election, and only
//     every second one spends a retry, so the request stays as patient.
//   - EpochNotMatch: the regions the store reports are put in the cache
//     and the request's keys are split by region again and retried (at
//     once if the store's view is newer than ours).
//   - RegionNotFound, KeyNotInRegion, StoreNotMatch: drop the cached
//     route, back off, locate the keys again.
//   - ServerIsBusy (at least its backoff_ms): back off and retry the same
//     peer. For a write it means the store did not propose the command.
//   - Undetermined (and StaleCommand): the store proposed the command and
//     does not know its fate. Back off and send the same request again:
//     the store computes it only once the first one's fate is settled, so
//     the answer covers both; the attempt counts as one whose outcome is
//     unknown (below).
//
// Percolator requests are idempotent, so retrying one that may have
// applied is safe, and a later definitive answer (success, or a key error
// such as a rollback found) settles what an earlier attempt did. When the budget is spent the request fails with an error
// matching [ErrRegionUnavailable] that wraps the last cause (a
// [*RegionError], a gRPC status or a PD error). The caller's context
// bounds everything, backoffs included; [Client.Close] cuts calls short
// with [ErrClosed].
//
// # Errors
//
// Errors match the package's sentinels with errors.Is; a store's key error
// is a [*KeyError], which matches the sentinel of its kind ([ErrLocked],
// [ErrWriteConflict], [ErrRetryable], [ErrTxnAborted],
// [ErrAlreadyCommitted], [ErrTxnNotFound], [ErrDataNotAvailable]) and can
// be examined with errors.As.
package kvclient
