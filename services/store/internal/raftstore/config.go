package raftstore

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
)

// Config tunes the raft store. Zero fields take the defaults of
// DefaultConfig when passed through WithDefaults.
type Config struct {
	// StoreID is the store's id; 0 only with Join, which gets one from PD
	// on the first start.
	StoreID uint64
	// Join: on the first start of an empty data directory, ask PD for a
	// new store id instead of claiming StoreID.
	Join bool
	// ClaimTimeout bounds how long the first start of an empty data
	// directory waits for PD to answer its claim; 0 means two minutes.
	ClaimTimeout time.Duration
	// TickInterval is the length of one raft logical clock tick.
	TickInterval time.Duration
	// ElectionTicks and HeartbeatTicks are in ticks.
	ElectionTicks  int
	HeartbeatTicks int
	// MaxSizePerMsg bounds the entries of one append message, in bytes; a
	// larger entry (up to limits.RaftEntryMaxSize) goes alone.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds unacknowledged append messages per follower.
	MaxInflightMsgs int
	// RaftLogKeep is how many applied entries a peer keeps behind its
	// applied index, so that briefly lagging followers catch up from the log
	// instead of a snapshot.
	RaftLogKeep uint64
	// RaftLogMax: a leader keeps entries a follower still needs (below its
	// match index) only while the log is shorter than this; past it the
	// follower gets a snapshot.
	RaftLogMax uint64
	// RegionSplitSize: a region whose approximate size passes it is split.
	// 0 disables size-based splits.
	RegionSplitSize uint64
	// SplitCheckInterval is how often leaders check their region's size.
	SplitCheckInterval time.Duration
	// RegionHeartbeatInterval and StoreHeartbeatInterval pace reports to PD.
	RegionHeartbeatInterval time.Duration
	StoreHeartbeatInterval  time.Duration
	// SnapshotChunkSize bounds the data bytes in one snapshot stream message.
	SnapshotChunkSize int
	// SnapshotDir is where received snapshots are written as SST files
	// until they are ingested. It must be on the engine's file system (the
	// engine links the files in) and belong to this store alone: Open
	// empties it. Empty: this store refuses snapshots.
	SnapshotDir string
	// ProposalTimeout bounds how long a request waits for its command to
	// apply or its read index to be confirmed.
	ProposalTimeout time.Duration
	// MaxPeerDownDuration: a leader reports a peer it has not heard from
	// for this long (at least two election timeouts) to PD as down, and PD
	// replaces it.
	MaxPeerDownDuration time.Duration

	// DisableHibernation keeps every region ticking, idle or not (see
	// hibernate.go).
	DisableHibernation bool
	// StoreLivenessTimeout: a store not heard from for this long is taken
	// for down, and the followers here of regions it leads are woken to
	// elect a new leader. 0 means one election timeout.
	StoreLivenessTimeout time.Duration

	// CampaignOnBootstrap lists regions whose peer here campaigns right
	// after the store bootstraps (the cluster file's leader_store_id), so
	// a new cluster starts with the leaders it was written with.
	CampaignOnBootstrap []uint64

	Knobs TestingKnobs
}

// TestingKnobs are hooks for tests; nil fields do nothing.
type TestingKnobs struct {
	// DropMessage, if set, is asked about every outgoing raft message; true
	// drops it. Harnesses build partitions and lossy links from it.
	DropMessage func(msg *raftserverpb.RaftMessage) bool
	// Now, if set, replaces the store's wall clock (time.Now), so a test
	// can run one store with a skewed clock. Nothing that decides what data
	// survives may depend on it: expiry is judged by TSO time.
	Now func() time.Time
	// ProposalTimeout, if nonzero, replaces Config.ProposalTimeout (a
	// test shortens it below its clients' RPC timeout, so that a request
	// whose command did not apply in time gets the store's answer).
	ProposalTimeout time.Duration
	// HoldResult, if set, is asked about every command this store proposed
	// as it applies: a positive duration delays handing the result to the
	// proposer (the command has applied everywhere; its proposer, and the
	// latches it holds, wait), as a slow apply would.
	HoldResult func(regionID uint64, cmd *raftserverpb.RaftCmdRequest) time.Duration
	// SnapshotApply, if set, is called at each stage of applying a
	// received snapshot (SnapshotBeforeIngest, SnapshotAfterIngest); an
	// error stops the raft loop there as an engine failure does, leaving
	// the disk as a crash at that point would.
	SnapshotApply func(regionID uint64, stage string) error
	// SnapshotChunk, if set, is called for every chunk a snapshot stream
	// brings in, before it is written; an error breaks the stream.
	SnapshotChunk func(regionID uint64, n int) error
	// OnConfChangeApplied, if set, is called on the raft loop after every
	// membership change this store applies, with the region and raft's
	// configuration after it.
	OnConfChangeApplied func(storeID, regionID, index uint64, region *metapb.Region, cs raftpb.ConfState)
	// HoldJoint, if set and true for a region, keeps its leader here from
	// leaving a joint configuration, so a test can act while it lasts.
	HoldJoint func(regionID uint64) bool
	// AllowLeaderConfChange skips the proposal-time refusal to remove or
	// demote the leader, so a test can check the refusal at apply.
	AllowLeaderConfChange bool
}

// DefaultMaxPeerDownDuration is how long a peer may stay silent before its
// leader reports it down (TiKV's default). PD replaces a down peer only while
// its store is UP: a replica stuck on a store that is otherwise alive. Peers
// of a store that is down wait for PD's store rule (replace-down-after).
const DefaultMaxPeerDownDuration = 10 * time.Minute

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		TickInterval:            100 * time.Millisecond,
		ElectionTicks:           10,
		HeartbeatTicks:          2,
		MaxSizePerMsg:           limits.RaftMaxSizePerMsg,
		MaxInflightMsgs:         256,
		RaftLogKeep:             1000,
		RaftLogMax:              20000,
		RegionSplitSize:         96 << 20,
		SplitCheckInterval:      10 * time.Second,
		RegionHeartbeatInterval: 10 * time.Second,
		StoreHeartbeatInterval:  10 * time.Second,
		SnapshotChunkSize:       limits.SnapshotChunkSize,
		ProposalTimeout:         10 * time.Second,
		MaxPeerDownDuration:     DefaultMaxPeerDownDuration,
	}
}

// WithDefaults fills zero fields from DefaultConfig.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.TickInterval == 0 {
		c.TickInterval = d.TickInterval
	}
	if c.ElectionTicks == 0 {
		c.ElectionTicks = d.ElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = d.HeartbeatTicks
	}
	if c.MaxSizePerMsg == 0 {
		c.MaxSizePerMsg = d.MaxSizePerMsg
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = d.MaxInflightMsgs
	}
	if c.RaftLogKeep == 0 {
		c.RaftLogKeep = d.RaftLogKeep
	}
	if c.RaftLogMax == 0 {
		c.RaftLogMax = d.RaftLogMax
	}
	if c.SplitCheckInterval == 0 {
		c.SplitCheckInterval = d.SplitCheckInterval
	}
	if c.RegionHeartbeatInterval == 0 {
		c.RegionHeartbeatInterval = d.RegionHeartbeatInterval
	}
	if c.StoreHeartbeatInterval == 0 {
		c.StoreHeartbeatInterval = d.StoreHeartbeatInterval
	}
	if c.SnapshotChunkSize == 0 {
		c.SnapshotChunkSize = d.SnapshotChunkSize
	}
	if c.ProposalTimeout == 0 {
		c.ProposalTimeout = d.ProposalTimeout
	}
	if c.MaxPeerDownDuration == 0 {
		c.MaxPeerDownDuration = d.MaxPeerDownDuration
	}
	if c.StoreLivenessTimeout == 0 {
		c.StoreLivenessTimeout = time.Duration(c.ElectionTicks) * c.TickInterval
	}
	return c
}

// Validate reports every bad setting.
func (c Config) Validate() error {
	var errs []error
	if c.StoreID == 0 && !c.Join {
		errs = append(errs, errors.New("store_id: must be nonzero"))
	}
	if c.TickInterval <= 0 {
		errs = append(errs, errors.New("raft_tick_interval: must be positive"))
	}
	if c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks {
		errs = append(errs, fmt.Errorf("raft_election_ticks: must exceed raft_heartbeat_ticks (%d), have %d", c.HeartbeatTicks, c.ElectionTicks))
	}
	// The gRPC message size leaves room for these only up to an entry.
	if c.MaxSizePerMsg > limits.RaftEntryMaxSize {
		errs = append(errs, fmt.Errorf("max_size_per_msg: at most %d, have %d", limits.RaftEntryMaxSize, c.MaxSizePerMsg))
	}
	if c.SnapshotChunkSize > limits.RaftEntryMaxSize {
		errs = append(errs, fmt.Errorf("snapshot_chunk_size: at most %d, have %d", limits.RaftEntryMaxSize, c.SnapshotChunkSize))
	}
	if c.RaftLogMax < c.RaftLogKeep {
		errs = append(errs, fmt.Errorf("raft_log_max: must be at least raft_log_keep (%d), have %d", c.RaftLogKeep, c.RaftLogMax))
	}
	return errors.Join(errs...)
}
