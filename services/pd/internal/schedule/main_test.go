package schedule

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeCluster is an in-memory Cluster.
type fakeCluster struct {
	stores    map[uint64]*metapb.Store
	stats     map[uint64]*pdpb.StoreStats
	downSince map[uint64]time.Time
}

// storeSpec describes one store of a fakeCluster.
type storeSpec struct {
	id      uint64
	state   metapb.StoreState
	downFor time.Duration // how long before t0 it went DOWN
	leaders uint32
	regions uint32
	noStats bool
}

func up(id uint64, leaders, regions uint32) storeSpec {
	return storeSpec{id: id, leaders: leaders, regions: regions}
}

func down(id uint64, d time.Duration) storeSpec {
	return storeSpec{id: id, state: metapb.StoreState_DOWN, downFor: d, noStats: true}
}

func newFakeCluster(specs ...storeSpec) *fakeCluster {
	c := &fakeCluster{stores: map[uint64]*metapb.Store{}, stats: map[uint64]*pdpb.StoreStats{}, downSince: map[uint64]time.Time{}}
	for _, s := range specs {
		c.stores[s.id] = &metapb.Store{Id: s.id, Address: fmt.Sprintf("s%d:1", s.id), State: s.state, LastHeartbeatMs: t0.Add(-time.Second).UnixMilli()}
		if !s.noStats {
			c.stats[s.id] = &pdpb.StoreStats{StoreId: s.id, LeaderCount: s.leaders, RegionCount: s.regions}
		}
		if s.state == metapb.StoreState_DOWN {
			c.downSince[s.id] = t0.Add(-s.downFor)
		}
	}
	return c
}

func (c *fakeCluster) GetAllStores(excludeTombstones bool) []*metapb.Store {
	var out []*metapb.Store
	for _, s := range c.stores {
		if !excludeTombstones || s.GetState() != metapb.StoreState_TOMBSTONE {
			out = append(out, proto.Clone(s).(*metapb.Store))
		}
	}
	return out
}

func (c *fakeCluster) GetStoreStats(id uint64) *pdpb.StoreStats {
	if s := c.stats[id]; s != nil {
		return proto.Clone(s).(*pdpb.StoreStats)
	}
	return nil
}

func (c *fakeCluster) StoreDownSince(id uint64) (time.Time, bool) {
	if c.stores[id].GetState() != metapb.StoreState_DOWN {
		return time.Time{}, false
	}
	return c.downSince[id], true
}

// storeHeartbeat updates a store's leader count as of at.
func (c *fakeCluster) storeHeartbeat(id uint64, leaders uint32, at time.Time) {
	c.stats[id].LeaderCount = leaders
	c.stores[id].LastHeartbeatMs = at.UnixMilli()
}

// idAlloc hands out 1000, 1001, ...
type idAlloc struct {
	next uint64
	err  error
}

func (a *idAlloc) alloc() (uint64, error) {
	if a.err != nil {
		return 0, a.err
	}
	if a.next == 0 {
		a.next = 1000
	}
	a.next++
	return a.next - 1, nil
}

var errAlloc = errors.New("alloc failed")

// Peer helpers: peer id = 10*region + store for the initial peers.
func voter(id, store uint64) *metapb.Peer {
	return &metapb.Peer{Id: id, StoreId: store, Role: metapb.PeerRole_VOTER}
}

func learner(id, store uint64) *metapb.Peer {
	return &metapb.Peer{Id: id, StoreId: store, Role: metapb.PeerRole_LEARNER}
}

func incoming(id, store uint64) *metapb.Peer {
	return &metapb.Peer{Id: id, StoreId: store, Role: metapb.PeerRole_INCOMING_VOTER}
}

func demoting(id, store uint64) *metapb.Peer {
	return &metapb.Peer{Id: id, StoreId: store, Role: metapb.PeerRole_DEMOTING_VOTER}
}

// hb builds a heartbeat of region id (epoch v1 c<confVer>) led by peers[0].
func hb(id, confVer uint64, peers ...*metapb.Peer) *pdpb.RegionHeartbeatRequest {
	return &pdpb.RegionHeartbeatRequest{
		Region: &metapb.Region{
			Id: id, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: confVer}, Peers: peers,
		},
		Leader: peers[0],
		Term:   1,
	}
}

func withPending(req *pdpb.RegionHeartbeatRequest, peers ...*metapb.Peer) *pdpb.RegionHeartbeatRequest {
	req.PendingPeers = peers
	return req
}

func withDown(req *pdpb.RegionHeartbeatRequest, peers ...*metapb.Peer) *pdpb.RegionHeartbeatRequest {
	for _, p := range peers {
		req.DownPeers = append(req.DownPeers, &pdpb.PeerStats{Peer: p, DownSeconds: 60})
	}
	return req
}

func withSize(req *pdpb.RegionHeartbeatRequest, size uint64) *pdpb.RegionHeartbeatRequest {
	req.ApproximateSize = size
	return req
}

func withLeader(req *pdpb.RegionHeartbeatRequest, l *metapb.Peer) *pdpb.RegionHeartbeatRequest {
	req.Leader = l
	return req
}

// Expected responses.
func resp(req *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
	return &pdpb.RegionHeartbeatResponse{
		RegionId:    req.GetRegion().GetId(),
		RegionEpoch: proto.Clone(req.GetRegion().GetRegionEpoch()).(*metapb.RegionEpoch),
	}
}

func changePeer(req *pdpb.RegionHeartbeatRequest, t pdpb.ConfChangeType, p *metapb.Peer) *pdpb.RegionHeartbeatResponse {
	r := resp(req)
	r.Operation = &pdpb.RegionHeartbeatResponse_ChangePeer{ChangePeer: &pdpb.ChangePeer{ChangeType: t, Peer: p}}
	return r
}

func replacePeer(req *pdpb.RegionHeartbeatRequest, in, out *metapb.Peer) *pdpb.RegionHeartbeatResponse {
	r := resp(req)
	r.Operation = &pdpb.RegionHeartbeatResponse_ChangePeerV2{ChangePeerV2: &pdpb.ChangePeerV2{Changes: []*pdpb.ChangePeer{
		{ChangeType: pdpb.ConfChangeType_PROMOTE_LEARNER, Peer: in},
		{ChangeType: pdpb.ConfChangeType_DEMOTE_VOTER, Peer: out},
	}}}
	return r
}

func transferTo(req *pdpb.RegionHeartbeatRequest, p *metapb.Peer) *pdpb.RegionHeartbeatResponse {
	r := resp(req)
	r.Operation = &pdpb.RegionHeartbeatResponse_TransferLeader{TransferLeader: &pdpb.TransferLeader{Peer: p}}
	return r
}

func split(req *pdpb.RegionHeartbeatRequest) *pdpb.RegionHeartbeatResponse {
	r := resp(req)
	r.Operation = &pdpb.RegionHeartbeatResponse_SplitRegion{SplitRegion: &pdpb.SplitRegion{}}
	return r
}

func testOptions(a *idAlloc) Options {
	return Options{
		ReplaceDownAfter: 30 * time.Second,
		RegionMaxSize:    100,
		MaxReplicas:      3,
		OperatorTimeout:  time.Minute,
		AllocID:          a.alloc,
	}
}

func mustNew(t *testing.T, c Cluster, opts Options) *Scheduler {
	t.Helper()
	s, err := New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkResp(t *testing.T, step string, got, want *pdpb.RegionHeartbeatResponse) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("%s: Dispatch = %v, want %v", step, got, want)
	}
}
