package raftstore

import (
	"sync/atomic"
	"time"
)

// Stats are the raft store's cumulative counters.
type Stats struct {
	ReadyRounds      atomic.Int64 // loop rounds that persisted or applied something
	RaftSyncs        atomic.Int64 // fsyncs of raft state (one per round at most)
	EntriesPersisted atomic.Int64
	EntriesApplied   atomic.Int64
	MessagesSent     atomic.Int64
	MessagesDropped  atomic.Int64 // queue full, filtered or link down
	// EmptyAppendsSkipped counts a leader's empty appends (its commit index
	// only) never sent: a later append to the same follower carried it.
	EmptyAppendsSkipped atomic.Int64
	SnapshotsSent       atomic.Int64
	// SnapshotSendFailures counts snapshot streams that failed or that
	// the receiver refused (each is retried after snapRetryDelay).
	SnapshotSendFailures atomic.Int64
	SnapshotsApplied     atomic.Int64
	// SnapshotsReceived counts snapshot streams received whole into files.
	SnapshotsReceived atomic.Int64
	// SnapshotAppliesResumed counts snapshot applies a stop cut short that
	// a start completed from the kept files.
	SnapshotAppliesResumed atomic.Int64
	// SnapshotAppliesForgotten counts those whose files were gone: the
	// start cleared the region (its peer then waits for a fresh snapshot).
	SnapshotAppliesForgotten atomic.Int64
	Proposals                atomic.Int64
	ReadIndexRounds          atomic.Int64
	// PeerTicks counts raft ticks given to peers (hibernated peers get
	// none); HibernatedPeers is the number of peers not ticking now.
	PeerTicks       atomic.Int64
	HibernatedPeers atomic.Int64
	// Wakes counts hibernated peers woken; HibernateRequests, the rounds
	// in which a quiet leader asked its peers to hibernate.
	Wakes             atomic.Int64
	HibernateRequests atomic.Int64
	// StoreDownEvents counts other stores taken for down (silent for
	// StoreLivenessTimeout, or their link broke), each waking the
	// followers here of the regions led there.
	StoreDownEvents atomic.Int64
	// LongestRoundNanos is the longest raft loop round since the store
	// started (its tasks and one handleReadies): every region of the store
	// waits that long for its messages, ticks and proposals.
	LongestRoundNanos atomic.Int64
}

// observeRound records a raft loop round's duration. Loop only.
func (st *Stats) observeRound(d time.Duration) {
	if int64(d) > st.LongestRoundNanos.Load() {
		st.LongestRoundNanos.Store(int64(d))
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() *Stats { return &s.stats }

// Counts returns the number of regions and of regions led here.
func (s *Store) Counts() (regions, leaders int) {
	for _, p := range s.peerList() {
		if len(p.region().GetPeers()) == 0 {
			continue
		}
		regions++
		if p.leaderID.Load() == p.id {
			leaders++
		}
	}
	return regions, leaders
}
