package schedule_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/internal/cluster"
	"github.com/nokv/nokv/services/pd/internal/schedule"
	"github.com/nokv/nokv/services/pd/internal/storage"
)

var _ schedule.Cluster = (*cluster.Cluster)(nil)

const clusterFile = `{
  "pd": {"addr": "127.0.0.1:2379"},
  "stores": [
    {"store_id": 1, "addr": "127.0.0.1:20160"},
    {"store_id": 2, "addr": "127.0.0.1:20161"},
    {"store_id": 3, "addr": "127.0.0.1:20162"}
  ],
  "regions": [
    {"id": 1, "start_key": "", "end_key": "", "epoch": {"version": 1, "conf_version": 1},
     "peers": [{"store_id": 1, "peer_id": 11}, {"store_id": 2, "peer_id": 12}, {"store_id": 3, "peer_id": 13}],
     "leader_store_id": 1}
  ]
}`

// TestWithCluster drives the scheduler from the real catalog: store 3 stops
// sending heartbeats, is marked DOWN, and its peer is replaced on the store
// that joined.
func TestWithCluster(t *testing.T) {
	st, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := cluster.New(st, cluster.Options{StoreDownAfter: 10 * time.Second, Now: func() time.Time { return now }})
	file, err := config.Parse([]byte(clusterFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Bootstrap(file); err != nil {
		t.Fatal(err)
	}
	next := uint64(100)
	s, err := schedule.New(c, schedule.Options{
		ReplaceDownAfter: 20 * time.Second,
		AllocID:          func() (uint64, error) { next++; return next, nil },
	})
	if err != nil {
		t.Fatal(err)
	}

	// Store 4 joins: it claims a new id (a heartbeat does not register a
	// store), then heartbeats with the claim's token like the others.
	joined, err := c.ClaimStore(0, "127.0.0.1:20174", 44, func() (uint64, error) { return 4, nil })
	if err != nil || joined != 4 {
		t.Fatalf("ClaimStore(0) = %d, %v; want store 4", joined, err)
	}
	nonce := func(id uint64) uint64 {
		if id == 4 {
			return 44
		}
		return 0
	}
	storeHeartbeats := func(ids ...uint64) {
		t.Helper()
		for _, id := range ids {
			stats := &pdpb.StoreStats{StoreId: id, Address: fmt.Sprintf("127.0.0.1:%d", 20170+id), LeaderCount: 1, RegionCount: 1}
			if id != 4 {
				stats.Address = "" // unclaimed stores may not move
			}
			if err := c.HandleStoreHeartbeat(stats, nonce(id), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	region, leader := c.GetRegionByID(1)
	req := &pdpb.RegionHeartbeatRequest{Region: region, Leader: leader, Term: 1}
	dispatch := func() *pdpb.RegionHeartbeatResponse {
		t.Helper()
		if err := c.HandleRegionHeartbeat(req); err != nil {
			t.Fatal(err)
		}
		return s.Dispatch(req, now)
	}

	storeHeartbeats(1, 2, 3, 4)
	if resp := dispatch(); resp != nil {
		t.Fatalf("healthy cluster got %v", resp)
	}
	for range 4 { // 40s: store 3 is silent
		now = now.Add(10 * time.Second)
		storeHeartbeats(1, 2, 4)
		if _, err := c.UpdateLiveness(now); err != nil {
			t.Fatal(err)
		}
	}
	resp := dispatch()
	want := &metapb.Peer{Id: 101, StoreId: 4, Role: metapb.PeerRole_LEARNER}
	cp := resp.GetChangePeer()
	if cp.GetChangeType() != pdpb.ConfChangeType_ADD_LEARNER || cp.GetPeer().String() != want.String() {
		t.Fatalf("Dispatch = %v, want ADD_LEARNER %v", resp, want)
	}
}
