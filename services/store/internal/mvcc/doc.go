// Package mvcc is the Percolator transaction logic of a store (as in TiKV):
// pure functions that read a region's applied state through a pebble.Reader
// and return the engine writes ([]*raftserverpb.Modify) that carry out a
// request, plus per-key transaction errors (kvrpcpb.KeyError).
//
// Nothing here writes to the engine, takes latches or reads a clock. The
// leader calls a function while holding latches on the request's keys,
// proposes the modifies through raft, and every replica applies them verbatim
// (ApplyModifies) in one batch. So that every replica and every retry
// computes the same thing, "now" comes in as an argument: Unix milliseconds
// for value expiry, or a TSO timestamp whose physical part (ts >> 18, see
// PhysicalMs) is compared with lock TTLs. Go errors mean the engine failed or
// holds a record this package cannot have written (errors.Is(err,
// ErrCorrupt)); a transaction that cannot proceed is a KeyError, never a Go
// error.
//
// # Column families
//
// The keys are laid out by package keys: the lock of a raw key at
// LockKey(key), its committed versions at WriteKey(key, commit_ts) (newest
// first), and values too long to inline at DefaultKey(key, start_ts). A
// rollback record sits in the write column family at commit_ts = start_ts.
//
// # Record formats
//
// Both records start with a format byte (1 today) so that a later format can
// be told apart, then the kind and a flags byte. Timestamps are 8-byte
// big-endian (TSO timestamps are about 2^58, so a varint would be longer);
// small integers are unsigned LEB128 varints ("uvarint"); expires_at, an
// int64 of Unix milliseconds with 0 meaning "never", is a zig-zag varint
// ("varint"); byte strings are a uvarint length followed by the bytes.
//
// Lock (lock column family value):
//
//	0x01           format
//	op             0 PUT, 1 DEL, 2 LOCK (kvrpcpb.Op)
//	flags          0x01: the value is inline
//	start_ts       8 bytes
//	ttl            uvarint, milliseconds after start_ts's physical time
//	txn_size       uvarint
//	expires_at     varint
//	primary        uvarint length, bytes
//	value          uvarint length, bytes; present iff flags & 0x01
//
// Write (write column family value):
//
//	0x01           format
//	kind           0 PUT, 1 DEL, 2 LOCK, 3 ROLLBACK (kvrpcpb.Op)
//	flags          0x01: the value is inline; 0x02: overlapped rollback
//	start_ts       8 bytes
//	expires_at     varint
//	value          uvarint length, bytes; present iff flags & 0x01
//
// A PUT's value is inline when it is at most ShortValueMax (255) bytes;
// otherwise it is in the default column family at DefaultKey(key, start_ts),
// written by the prewrite and never moved, so a commit only rewrites small
// records. Only PUT records carry a value.
//
// "Overlapped rollback" marks a commit record whose commit_ts equals the
// start_ts of another transaction that was rolled back on the same key: both
// records want the same engine key, so the commit keeps the slot and carries
// the rollback as the flag. TSO timestamps are unique, so this needs a
// commit_ts not taken from the TSO, but the cost of losing a committed value
// or a rollback mark is too high to rely on that.
//
// Decoders reject an unknown format byte, unknown flag bits, a kind not
// allowed in the record, a value on a record that cannot have one, a length
// running past the end, and trailing bytes, all with ErrCorrupt; they never
// panic (there is a fuzz target for that).
//
// # Reading
//
// A read at ts sees the newest PUT or DEL committed at or below ts, skipping
// ROLLBACK and LOCK records, and is blocked (KeyError.Locked) by a PUT or DEL
// lock of a transaction started before ts: that transaction may still commit
// below ts, and only resolving the lock tells. A lock started at ts is the
// reader's own transaction and is ignored.
//
// # Writing
//
// Prewrite, Commit, BatchRollback, CheckTxnStatus, ResolveLock, Cleanup and
// TxnHeartBeat follow TiKV's semantics, including idempotent retries: running one again
// on the state its own modifies produced returns no modifies and no error
// (or the same answer). GC drops versions below a safe point.
package mvcc
