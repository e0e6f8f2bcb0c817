package schedule

import (
	"errors"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

func TestDispatchDecisions(t *testing.T) {
	// Region 1 has voters 11, 12, 13 on stores 1, 2, 3; 11 leads.
	healthy := func() *pdpb.RegionHeartbeatRequest { return hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)) }
	balanced := []storeSpec{up(1, 5, 10), up(2, 5, 10), up(3, 5, 10), up(4, 5, 10)}
	store3Dead := []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, 31*time.Second), up(4, 5, 10)}

	tests := []struct {
		name   string
		stores []storeSpec
		opts   func(*Options)
		alloc  *idAlloc
		req    *pdpb.RegionHeartbeatRequest
		want   func(req *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse
	}{
		{name: "healthy region: nothing", stores: balanced, req: healthy()},
		{name: "no leader: nothing", stores: store3Dead, req: withLeader(healthy(), nil)},

		// Replica repair.
		{
			name: "peer on a dead store: add a learner", stores: store3Dead, req: healthy(),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 4))
			},
		},
		{
			name:   "store down for less than ReplaceDownAfter: wait",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, 29*time.Second), up(4, 5, 10)},
			req:    healthy(),
		},
		{
			name:   "peer on a tombstone: add a learner",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), {id: 3, state: metapb.StoreState_TOMBSTONE}, up(4, 5, 10)},
			req:    healthy(),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 4))
			},
		},
		{
			name:   "replacement goes to the store with the fewest regions",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, time.Hour), up(4, 5, 10), up(5, 5, 2), up(6, 5, 2)},
			req:    healthy(),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 5))
			},
		},
		{
			name:   "no store to replace on: nothing",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, time.Hour), down(4, time.Hour)},
			req:    healthy(),
		},
		{
			name: "AllocID fails: nothing this time", stores: store3Dead, alloc: &idAlloc{err: errAlloc},
			req: healthy(),
		},
		{
			name: "pending learner: wait for it", stores: store3Dead,
			req: withPending(hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(1000, 4)), learner(1000, 4)),
		},
		{
			name: "caught-up learner: swap it in for the dead voter in one joint change", stores: store3Dead,
			req: hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(1000, 4)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return replacePeer(r, learner(1000, 4), voter(13, 3))
			},
		},
		{
			name: "joint configuration: wait for the leader to leave it", stores: store3Dead,
			req: hb(1, 3, voter(11, 1), voter(12, 2), demoting(13, 3), incoming(1000, 4)),
		},
		{
			name: "demoted dead voter: remove it", stores: store3Dead,
			req: hb(1, 4, voter(11, 1), voter(12, 2), learner(13, 3), voter(1000, 4)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_REMOVE_PEER, learner(13, 3))
			},
		},
		{
			name: "down voter on an UP store: add a learner elsewhere", stores: balanced,
			req: withDown(healthy(), voter(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 4))
			},
		},
		{
			name: "down voter on an UP store, learner caught up: joint swap", stores: balanced,
			req: withDown(hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(1000, 4)), voter(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return replacePeer(r, learner(1000, 4), voter(13, 3))
			},
		},
		{
			name:   "down voter on a store DOWN for less than ReplaceDownAfter: the store rule decides",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, 10*time.Second), up(4, 5, 10)},
			req:    withDown(healthy(), voter(13, 3)),
		},
		{
			name: "replacement is a voter: remove the dead peer", stores: store3Dead,
			req: hb(1, 3, voter(11, 1), voter(12, 2), voter(13, 3), voter(1000, 4)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_REMOVE_PEER, voter(13, 3))
			},
		},
		{
			name: "dead learner: remove it", stores: store3Dead,
			req: hb(1, 2, voter(11, 1), voter(12, 2), voter(14, 4), learner(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_REMOVE_PEER, learner(13, 3))
			},
		},
		{
			name: "too few voters: promote a caught-up learner", stores: balanced,
			req: hb(1, 2, voter(11, 1), voter(12, 2), learner(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_PROMOTE_LEARNER, learner(13, 3))
			},
		},
		{
			name: "enough voters: a learner stays a learner", stores: balanced,
			req: hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(14, 4)),
		},
		{
			name: "too few voters but the learner is down on an UP store: remove it", stores: balanced,
			req: withDown(hb(1, 2, voter(11, 1), voter(12, 2), learner(13, 3)), learner(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_REMOVE_PEER, learner(13, 3))
			},
		},
		{
			name:   "too few voters, the learner is down on a DOWN store: nothing yet",
			stores: []storeSpec{up(1, 5, 10), up(2, 5, 10), down(3, 10*time.Second)},
			req:    withDown(hb(1, 2, voter(11, 1), voter(12, 2), learner(13, 3)), learner(13, 3)),
		},
		{
			name: "repair before split", stores: store3Dead,
			req: withSize(healthy(), 1000),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return changePeer(r, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 4))
			},
		},
		{
			name: "repair disabled", stores: store3Dead, req: healthy(),
			opts: func(o *Options) { o.DisableReplicaRepair = true },
		},

		// Split.
		{
			name: "region above RegionMaxSize: split", stores: balanced, req: withSize(healthy(), 101),
			want: split,
		},
		{name: "region at RegionMaxSize: nothing", stores: balanced, req: withSize(healthy(), 100)},
		{
			name: "split disabled", stores: balanced, req: withSize(healthy(), 101),
			opts: func(o *Options) { o.DisableSplit = true },
		},
		{
			name:   "split before leader balance",
			stores: []storeSpec{up(1, 10, 10), up(2, 0, 10), up(3, 0, 10)},
			req:    withSize(healthy(), 101),
			want:   split,
		},

		// Leader balance.
		{
			name:   "leader store overloaded: transfer to the least-loaded voter",
			stores: []storeSpec{up(1, 10, 10), up(2, 5, 10), up(3, 2, 10), up(4, 0, 10)},
			req:    healthy(),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return transferTo(r, voter(13, 3))
			},
		},
		{
			name:   "difference of one: nothing",
			stores: []storeSpec{up(1, 3, 10), up(2, 2, 10), up(3, 2, 10)},
			req:    healthy(),
		},
		{
			name:   "difference within the ratio: nothing",
			stores: []storeSpec{up(1, 50, 10), up(2, 45, 10), up(3, 46, 10)},
			req:    healthy(),
		},
		{
			name:   "difference beyond tolerance and ratio",
			stores: []storeSpec{up(1, 50, 10), up(2, 44, 10), up(3, 46, 10)},
			req:    healthy(),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return transferTo(r, voter(12, 2))
			},
		},
		{
			name:   "pending, down and learner peers and DOWN or unreported stores are no targets",
			stores: []storeSpec{up(1, 10, 10), up(2, 0, 10), up(3, 0, 10), down(4, time.Second), {id: 5, noStats: true}, up(6, 0, 10), up(7, 8, 10)},
			// Repair would remove the down voter first.
			opts: func(o *Options) { o.DisableReplicaRepair = true },
			req: withDown(withPending(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3), voter(14, 4), voter(15, 5), learner(16, 6), voter(17, 7)),
				voter(12, 2)), voter(13, 3)),
			want: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return transferTo(r, voter(17, 7))
			},
		},
		{
			name:   "leader store without statistics: nothing",
			stores: []storeSpec{{id: 1, noStats: true}, up(2, 0, 10), up(3, 0, 10)},
			req:    healthy(),
		},
		{
			name:   "leader balance disabled",
			stores: []storeSpec{up(1, 10, 10), up(2, 0, 10), up(3, 0, 10)},
			req:    healthy(),
			opts:   func(o *Options) { o.DisableLeaderBalance = true },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alloc := tt.alloc
			if alloc == nil {
				alloc = &idAlloc{}
			}
			opts := testOptions(alloc)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			s := mustNew(t, newFakeCluster(tt.stores...), opts)
			var want *pdpb.RegionHeartbeatResponse
			if tt.want != nil {
				want = tt.want(tt.req)
			}
			checkResp(t, "dispatch", s.Dispatch(tt.req, t0), want)
		})
	}
}

func TestOneOperationPerRegion(t *testing.T) {
	c := newFakeCluster(up(1, 0, 1), up(2, 0, 1), up(3, 0, 1))
	s := mustNew(t, c, testOptions(&idAlloc{}))
	big := func(id uint64) *pdpb.RegionHeartbeatRequest {
		return withSize(hb(id, 1, voter(10*id+1, 1), voter(10*id+2, 2), voter(10*id+3, 3)), 1000)
	}
	checkResp(t, "region 1", s.Dispatch(big(1), t0), split(big(1)))
	checkResp(t, "region 1 again", s.Dispatch(big(1), t0.Add(time.Second)), nil)
	checkResp(t, "region 2", s.Dispatch(big(2), t0.Add(time.Second)), split(big(2)))
	if got := s.Pending(); got[KindSplit] != 2 || len(got) != 1 {
		t.Fatalf("Pending() = %v, want 2 splits", got)
	}

	// Timed out: the region gets a new operation.
	checkResp(t, "region 1 just before the timeout", s.Dispatch(big(1), t0.Add(time.Minute-time.Nanosecond)), nil)
	checkResp(t, "region 1 at the timeout", s.Dispatch(big(1), t0.Add(time.Minute)), split(big(1)))
}

func TestOperationCompletion(t *testing.T) {
	newer := func(req *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatRequest {
		req.Region.RegionEpoch.Version++
		return req
	}
	tests := []struct {
		name   string
		stores []storeSpec
		first  *pdpb.RegionHeartbeatRequest // gets an operation
		// Heartbeats that show the operation still in flight, then the one
		// that ends it; after it, next is dispatched and must return wantNext.
		inFlight []*pdpb.RegionHeartbeatRequest
		next     *pdpb.RegionHeartbeatRequest
		wantNext func(*pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse
	}{
		{
			name:   "split ends with a newer version",
			stores: []storeSpec{up(1, 0, 1), up(2, 0, 1), up(3, 0, 1)},
			first:  withSize(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), 1000),
			inFlight: []*pdpb.RegionHeartbeatRequest{
				withSize(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), 2000),
			},
			next:     newer(withSize(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), 1000)),
			wantNext: split,
		},
		{
			name:   "transfer ends with the new leader",
			stores: []storeSpec{up(1, 4, 1), up(2, 0, 1), up(3, 0, 1)},
			first:  hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)),
			inFlight: []*pdpb.RegionHeartbeatRequest{
				hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)),
			},
			// A split (not a nil) proves the transfer was cleared.
			next:     withSize(withLeader(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), voter(12, 2)), 1000),
			wantNext: split,
		},
		{
			name:     "an epoch change makes an operation obsolete",
			stores:   []storeSpec{up(1, 4, 1), up(2, 0, 1), up(3, 0, 1)},
			first:    hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)),
			inFlight: []*pdpb.RegionHeartbeatRequest{hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3))},
			next:     hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3)),
			wantNext: func(r *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
				return transferTo(r, voter(12, 2))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, newFakeCluster(tt.stores...), testOptions(&idAlloc{}))
			now := t0
			if got := s.Dispatch(tt.first, now); got == nil {
				t.Fatal("first heartbeat got no operation")
			}
			for _, req := range tt.inFlight {
				now = now.Add(time.Second)
				checkResp(t, "in flight", s.Dispatch(req, now), nil)
			}
			now = now.Add(time.Second)
			checkResp(t, "after completion", s.Dispatch(tt.next, now), tt.wantNext(tt.next))
		})
	}
}

func TestReplaceDeadPeerFlow(t *testing.T) {
	c := newFakeCluster(up(1, 1, 1), up(2, 1, 1), up(3, 1, 1), up(4, 0, 0))
	opts := testOptions(&idAlloc{})
	opts.DisableLeaderBalance = true
	s := mustNew(t, c, opts)
	now := t0
	step := func(name string, req *pdpb.RegionHeartbeatRequest, want *pdpb.RegionHeartbeatResponse) {
		t.Helper()
		now = now.Add(time.Second)
		checkResp(t, name, s.Dispatch(req, now), want)
	}

	full := hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3))
	step("healthy", full, nil)

	// Store 3 goes DOWN; ReplaceDownAfter later its peer is replaced.
	c.stores[3].State = metapb.StoreState_DOWN
	c.downSince[3] = now
	step("just down", full, nil)
	now = now.Add(30 * time.Second)
	step("down long enough", full, changePeer(full, pdpb.ConfChangeType_ADD_LEARNER, learner(1000, 4)))
	step("in flight", full, nil)

	added := withPending(hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(1000, 4)), learner(1000, 4))
	step("learner added, catching up", added, nil)
	step("still catching up", added, nil)
	caughtUp := hb(1, 2, voter(11, 1), voter(12, 2), voter(13, 3), learner(1000, 4))
	step("learner caught up", caughtUp, replacePeer(caughtUp, learner(1000, 4), voter(13, 3)))

	// Never four voters: the swap goes through a joint configuration,
	// which the leader leaves by itself.
	joint := hb(1, 3, voter(11, 1), voter(12, 2), demoting(13, 3), incoming(1000, 4))
	step("joint configuration", joint, nil)
	step("still joint", joint, nil)

	swapped := hb(1, 4, voter(11, 1), voter(12, 2), learner(13, 3), voter(1000, 4))
	step("joint configuration left", swapped, changePeer(swapped, pdpb.ConfChangeType_REMOVE_PEER, learner(13, 3)))

	removed := hb(1, 5, voter(11, 1), voter(12, 2), voter(1000, 4))
	step("dead peer removed", removed, nil)
	if got := s.Pending(); len(got) != 0 {
		t.Fatalf("Pending() = %v after the repair, want none", got)
	}
}

func TestLeaderCountsCorrectedForTransfers(t *testing.T) {
	// Store 1 reports 4 leaders, stores 2 and 3 none. Without correction every
	// region led from store 1 would move.
	c := newFakeCluster(up(1, 4, 4), up(2, 0, 4), up(3, 0, 4))
	s := mustNew(t, c, testOptions(&idAlloc{}))
	region := func(id uint64) *pdpb.RegionHeartbeatRequest {
		return hb(id, 1, voter(10*id+1, 1), voter(10*id+2, 2), voter(10*id+3, 3))
	}
	now := t0
	r1, r2, r3 := region(1), region(2), region(3)
	checkResp(t, "region 1", s.Dispatch(r1, now), transferTo(r1, voter(12, 2)))
	// In flight: store 1 counts 3, store 2 counts 1, store 3 is the target.
	checkResp(t, "region 2", s.Dispatch(r2, now), transferTo(r2, voter(23, 3)))
	// Now 2 vs 1 and 1: within tolerance.
	checkResp(t, "region 3", s.Dispatch(r3, now), nil)

	// Region 1's transfer finishes; the stores have not reported since, so
	// the correction stays.
	now = now.Add(time.Second)
	checkResp(t, "region 1 moved", s.Dispatch(withLeader(region(1), voter(12, 2)), now), nil)
	checkResp(t, "region 3 again", s.Dispatch(r3, now), nil)

	// The stores report the moves; the corrections of finished transfers go.
	now = now.Add(time.Second)
	checkResp(t, "region 2 moved", s.Dispatch(withLeader(region(2), voter(23, 3)), now), nil)
	now = now.Add(time.Second)
	c.storeHeartbeat(1, 2, now)
	c.storeHeartbeat(2, 1, now)
	c.storeHeartbeat(3, 1, now)
	checkResp(t, "region 3 after the store heartbeats", s.Dispatch(r3, now), nil)
	if len(s.transfers) != 0 {
		t.Fatalf("%d finished transfers remembered after the stores reported", len(s.transfers))
	}
	// If store 1 then reports 4 leaders again, moving is right again.
	c.storeHeartbeat(1, 4, now)
	checkResp(t, "region 3 with store 1 overloaded", s.Dispatch(r3, now), transferTo(r3, voter(32, 2)))
}

func TestSweepForgetsSilentRegions(t *testing.T) {
	c := newFakeCluster(up(1, 0, 1), up(2, 0, 1), up(3, 0, 1))
	s := mustNew(t, c, testOptions(&idAlloc{}))
	big := withSize(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), 1000)
	if s.Dispatch(big, t0) == nil {
		t.Fatal("no split")
	}
	// Region 1 merges away and never reports again; another region's
	// heartbeat after the timeout sweeps its operation.
	s.Dispatch(hb(2, 1, voter(21, 1), voter(22, 2), voter(23, 3)), t0.Add(time.Minute))
	if got := s.Pending(); len(got) != 0 {
		t.Fatalf("Pending() = %v, want the silent region's operation swept", got)
	}
}

func TestOperationsKeepTheirOwnCopies(t *testing.T) {
	c := newFakeCluster(up(1, 0, 1), up(2, 0, 1), up(3, 0, 1))
	s := mustNew(t, c, testOptions(&idAlloc{}))
	req := withSize(hb(1, 1, voter(11, 1), voter(12, 2), voter(13, 3)), 1000)
	got := s.Dispatch(req, t0)
	checkResp(t, "first", got, split(req))
	got.RegionEpoch.Version = 7 // the caller's copy
	checkResp(t, "in flight", s.Dispatch(req, t0.Add(time.Second)), nil)
	// The store reuses its request message for the split region: the
	// operation compares against the epoch it was computed on, sees the
	// split done and schedules the next one.
	req.Region.RegionEpoch.Version = 2
	checkResp(t, "after the split", s.Dispatch(req, t0.Add(2*time.Second)), split(req))
}

func TestNewChecksOptions(t *testing.T) {
	if _, err := New(newFakeCluster(), Options{}); !errors.Is(err, ErrNoAllocID) {
		t.Fatalf("New without AllocID = %v, want ErrNoAllocID", err)
	}
	if _, err := New(nil, testOptions(&idAlloc{})); err == nil {
		t.Fatal("New with a nil Cluster succeeded")
	}
	s := mustNew(t, newFakeCluster(), Options{AllocID: (&idAlloc{}).alloc})
	if s.opts.MaxReplicas != DefaultMaxReplicas || s.opts.RegionMaxSize != DefaultRegionMaxSize ||
		s.opts.OperatorTimeout != DefaultOperatorTimeout || s.opts.ReplaceDownAfter != DefaultReplaceDownAfter {
		t.Fatalf("defaults not applied: %+v", s.opts)
	}
}
