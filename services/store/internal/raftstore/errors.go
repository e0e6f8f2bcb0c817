package raftstore

import (
	"errors"
	"fmt"

	"github.com/nokv/nokv/api/metapb"
)

// Sentinels for conditions that carry no data.
var (
	// ErrStopped: the store is shutting down.
	ErrStopped = errors.New("raftstore: stopped")
	// ErrStaleCommand: the proposal was dropped or overtaken by a leader
	// change before it applied; it may or may not take effect.
	ErrStaleCommand = errors.New("raftstore: stale command")
	// ErrConfChangeRejected: a membership change was refused, at proposal
	// or at apply (where every replica refuses it alike and the region is
	// unchanged): it does not fit the region's membership, would remove or
	// demote the leader that proposed it, or the region is in a joint
	// configuration that must be left first.
	ErrConfChangeRejected = errors.New("raftstore: membership change rejected")
)

// NotLeaderError: this peer is not the region's leader. Leader is the leader
// it believes in, or nil.
type NotLeaderError struct {
	RegionID uint64
	Leader   *metapb.Peer
}

func (e *NotLeaderError) Error() string {
	if e.Leader == nil {
		return fmt.Sprintf("raftstore: region %d: not leader, leader unknown", e.RegionID)
	}
	return fmt.Sprintf("raftstore: region %d: not leader, leader is peer %d on store %d", e.RegionID, e.Leader.GetId(), e.Leader.GetStoreId())
}

// EpochNotMatchError: the request's region epoch is stale. Regions holds the
// store's current view of the region and, after a split, its new sibling.
type EpochNotMatchError struct {
	Message string
	Regions []*metapb.Region
}

func (e *EpochNotMatchError) Error() string { return "raftstore: epoch not match: " + e.Message }

// RegionNotFoundError: the store holds no peer of the region.
type RegionNotFoundError struct{ RegionID uint64 }

func (e *RegionNotFoundError) Error() string {
	return fmt.Sprintf("raftstore: region %d not found", e.RegionID)
}

// KeyNotInRegionError: a request key falls outside the region's range.
type KeyNotInRegionError struct {
	Key    []byte
	Region *metapb.Region
}

func (e *KeyNotInRegionError) Error() string {
	return fmt.Sprintf("raftstore: key %q not in region %d [%q, %q)", e.Key, e.Region.GetId(), e.Region.GetStartKey(), e.Region.GetEndKey())
}

// ServerBusyError: the store cannot take the request now; retry later.
// Returned for a write only when its command was not proposed (and never
// will be): a proposed one whose result is unknown is an UndeterminedError.
type ServerBusyError struct{ Reason string }

func (e *ServerBusyError) Error() string { return "raftstore: server is busy: " + e.Reason }

// UndeterminedError: the command was handed to raft, and its result is
// not known: it may apply (now or after a leader change) or never. Reason
// says why its proposer stopped waiting. Unlike ServerBusyError, which is
// returned only for commands that were not proposed, a client must not
// treat it as a failure: it may ask again with the same idempotent request
// (which is answered once the first one's fate is settled: the retry waits
// for its latches, or a new leader applies everything earlier terms
// committed before it computes), or report the outcome as unknown.
type UndeterminedError struct{ Reason string }

func (e *UndeterminedError) Error() string {
	return "raftstore: command result undetermined (it may or may not apply): " + e.Reason
}

// RaftEntryTooLargeError: a command marshals to more than a raft entry may
// hold (limits.RaftEntryMaxSize). It was not proposed, and the same request
// will never fit.
type RaftEntryTooLargeError struct {
	RegionID  uint64
	EntrySize uint64
	Limit     uint64
}

func (e *RaftEntryTooLargeError) Error() string {
	return fmt.Sprintf("raftstore: region %d: raft entry of %d bytes exceeds the limit of %d bytes", e.RegionID, e.EntrySize, e.Limit)
}

// StoreNotMatchError: the request was meant for another store.
type StoreNotMatchError struct{ Requested, Actual uint64 }

func (e *StoreNotMatchError) Error() string {
	return fmt.Sprintf("raftstore: request for store %d reached store %d", e.Requested, e.Actual)
}
