// Package limits holds the size limits the cluster's client (pkg/kvclient)
// and its stores (services/store) agree on, in one place, so that nothing a
// client may write is too large to replicate, snapshot or read back.
//
// The chain, from the smallest to the largest:
//
//   - A key is at most MaxKeySize and a value at most MaxValueSize
//     (kvclient refuses more before sending anything: ErrTooLarge). A
//     transaction writes at most MaxTxnSize of keys and values.
//   - kvclient cuts a transaction's prewrites and commits, per region, into
//     requests of about WriteBatchBytes (or one mutation when a single one
//     is larger), so the raft entry each produces stays below
//     RaftEntryMaxSize: the largest single mutation makes an entry of
//     about MaxValueSize + 3 x MaxKeySize.
//   - A store refuses to propose an entry larger than RaftEntryMaxSize
//     (TiKV's raft-entry-max-size) with the region error
//     raft_entry_too_large, so one oversized request never reaches the
//     log, the transport or a snapshot.
//   - Raft sends at most RaftMaxSizePerMsg of entries per append message,
//     or one entry when it is larger; the transport batches messages up to
//     RaftTransportBatchBytes (a larger single message goes alone).
//   - Read responses stop at ResponsePageBytes of keys and values, always
//     holding at least one entry, so the largest is about
//     ResponsePageBytes + MaxKeySize + MaxValueSize.
//   - Snapshots stream in chunks of about SnapshotChunkSize (a chunk ends
//     after the pair that passes it).
//   - Every gRPC connection between clients and stores, and between stores,
//     sends and receives messages up to GRPCMaxMessageSize: above all of
//     the above with room to spare.
//
// None of these is a setting: clients and stores must agree on them, so
// they are compiled in.
package limits

// Units.
const (
	KiB = 1 << 10
	MiB = 1 << 20
)

const (
	// RaftEntryMaxSize bounds one raft entry: a proposed command, marshalled.
	// A store refuses a larger proposal with RegionError.raft_entry_too_large.
	RaftEntryMaxSize = 8 * MiB

	// MaxKeySize bounds a key a client writes. Region boundaries are keys,
	// and every lock carries its transaction's primary key, so keys must
	// stay small next to RaftEntryMaxSize.
	MaxKeySize = 64 * KiB

	// MaxValuePayload is the value size callers are promised: TiDB's
	// default txn-entry-size-limit, 6 MiB.
	MaxValuePayload = 6 * MiB
	// ValueFramingRoom is room above MaxValuePayload for a caller's own
	// framing of its values (the gateway's raft backend stores a type byte
	// before each Redis value), so that payloads of MaxValuePayload fit.
	ValueFramingRoom = 1 * KiB
	// MaxValueSize bounds one value a client writes.
	MaxValueSize = MaxValuePayload + ValueFramingRoom

	// MaxTxnSize bounds the keys and values one transaction writes, summed
	// (TiDB's txn-total-size-limit is 100 MB). The client holds them all in
	// memory until the commit.
	MaxTxnSize = 64 * MiB

	// WriteBatchBytes is the target size of one write request's mutations
	// or keys (prewrite, commit, rollback, lock resolution) and of the
	// store's own batched writes (GC, lock resolution): one request makes
	// one raft entry.
	WriteBatchBytes = 4 * MiB

	// ResponsePageBytes is where a store stops filling a scan or batch-get
	// response; the client asks again for the rest.
	ResponsePageBytes = 4 * MiB

	// RaftMaxSizePerMsg bounds the entries of one raft append message
	// (etcd raft's MaxSizePerMsg); a larger entry is sent alone.
	RaftMaxSizePerMsg = 1 * MiB
	// RaftMaxInflightBytes bounds the entry bytes sent to a follower and not
	// yet acknowledged (etcd raft's MaxInflightBytes).
	RaftMaxInflightBytes = 8 * RaftEntryMaxSize
	// RaftMaxUncommittedSize bounds a leader's proposed but uncommitted
	// entries (etcd raft's MaxUncommittedEntriesSize); a proposal past it is
	// dropped and the client told the server is busy.
	RaftMaxUncommittedSize = 8 * RaftEntryMaxSize
	// RaftTransportBatchBytes bounds one batch of raft messages the
	// transport sends to another store.
	RaftTransportBatchBytes = 2 * RaftEntryMaxSize

	// SnapshotChunkSize is the data bytes of one snapshot stream message.
	SnapshotChunkSize = 1 * MiB

	// GRPCMaxMessageSize is the largest gRPC message clients and stores
	// send or receive, in either direction.
	GRPCMaxMessageSize = 64 * MiB
)

// Compile-time checks of the chain above: each conversion of a negative
// constant to uint fails to compile.
const (
	// The largest single mutation fits an entry, with a MiB to spare: the
	// value, its key twice (lock or write record, and the value's key, each
	// encoded at 9/8 of its length plus a little) and the primary key in
	// the lock.
	_ = uint(RaftEntryMaxSize - MiB - (MaxValueSize + 3*MaxKeySize + 4*KiB))
	// A full write batch fits an entry with room for one more key.
	_ = uint(RaftEntryMaxSize - WriteBatchBytes - 4*MaxKeySize)
	// Raft's limits hold whole entries.
	_ = uint(RaftMaxUncommittedSize - 2*RaftEntryMaxSize)
	_ = uint(RaftMaxInflightBytes - 2*RaftEntryMaxSize)
	_ = uint(RaftTransportBatchBytes - RaftEntryMaxSize - RaftMaxSizePerMsg)
	// gRPC carries the largest transport batch, request, response and
	// snapshot chunk, with room to spare.
	_ = uint(GRPCMaxMessageSize - 2*(RaftTransportBatchBytes+RaftEntryMaxSize))
	_ = uint(GRPCMaxMessageSize - 2*(ResponsePageBytes+MaxValueSize+MaxKeySize))
	_ = uint(GRPCMaxMessageSize - 2*(SnapshotChunkSize+MaxValueSize+MaxKeySize))
	_ = uint(MaxTxnSize - MaxValueSize - MaxKeySize)
)
