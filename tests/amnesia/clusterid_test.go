package amnesia_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/pd/pdserver"
	"github.com/nokv/nokv/tests/cluster"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestWipedPDDoesNotBootstrapOverRunningStores: PD loses its workdir and
// restarts with the cluster file while the stores run. It must not
// bootstrap a new cluster (which would hand out the stores' ids again): it
// asks the stores, finds they hold a cluster id, and refuses, naming the
// recovery. The stores keep their data.
func TestWipedPDDoesNotBootstrapOverRunningStores(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	c.MustPut("k", "v")
	joined := c.StartJoinStore() // a store the cluster file does not name
	id := c.PD.ClusterID()
	c.StopPD()
	c.WipePD()
	err := c.TryStartPD()
	if !errors.Is(err, pdserver.ErrStoresHoldCluster) {
		t.Fatalf("PD on a wiped workdir with running stores: %v", err)
	}
	for _, want := range []string{"holds cluster", "--recover-cluster-id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal does not say %q: %v", want, err)
		}
	}
	// The documented recovery: adopt the stores' cluster id, ids far above
	// any in use. The stores work with it again.
	c.StopStore(1) // and one store restarts meanwhile, which must be fine too
	recoverPD(t, c, id)
	c.StartStore(1)
	c.MustPut("k2", "v2")
	if v, found := c.MustGet("k"); !found || v != "v" {
		t.Fatalf("k reads %q, %v after the PD recovery", v, found)
	}
	// The rebuilt PD learns the joined store from its heartbeats.
	cluster.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := c.PDClient.GetStore(ctx, joined)
		if err != nil {
			return err
		}
		if st.GetAddress() != c.StoreAddr(joined) {
			return fmt.Errorf("joined store %d at %q, want %q", joined, st.GetAddress(), c.StoreAddr(joined))
		}
		return nil
	})
}

// recoverPD starts PD with --recover-cluster-id on the cluster's PD
// address and workdir.
func recoverPD(t *testing.T, c *cluster.Cluster, id uint64) {
	t.Helper()
	c.RecoverPD(id, 1_000_000)
	if got := c.PD.ClusterID(); got != id {
		t.Fatalf("recovered PD serves cluster %d, want %d", got, id)
	}
}

// TestStoresRefuseAForeignPD: PD lost its workdir while every store was
// down, so nothing stopped it from bootstrapping a new cluster. The stores
// name their cluster id on every request: the new PD refuses them, none of
// their heartbeats lands, and their data is untouched.
func TestStoresRefuseAForeignPD(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	c.MustPut("k", "v")
	old := c.PD.ClusterID()
	for _, id := range c.StoreIDs() {
		c.StopStore(id)
	}
	c.StopPD()
	c.WipePD()
	if err := c.TryStartPD(); err != nil {
		t.Fatalf("PD with no store running: %v", err)
	}
	if c.PD.ClusterID() == old {
		t.Fatal("the wiped PD drew the same cluster id")
	}
	c.StartStore(1)
	time.Sleep(2 * time.Second) // ten heartbeat intervals

	conn, err := grpc.NewClient(c.PDAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pd := pdpb.NewPDClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := pd.GetAllStores(ctx, &pdpb.GetAllStoresRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetStats()) != 0 {
		t.Fatalf("the foreign PD took heartbeats from a store of cluster %d: %v", old, resp.GetStats())
	}
	// What the store's requests get: a clear, typed refusal.
	client, err := pdclient.New(conn, pdclient.Options{ClusterID: old, MaxRetries: pdclient.NoRetries})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = client.AllocID(ctx, 1)
	if !errors.Is(err, pdclient.ErrClusterIDMismatch) || !strings.Contains(err.Error(), "cluster id mismatch") {
		t.Fatalf("request naming cluster %d at PD of cluster %d: %v", old, c.PD.ClusterID(), err)
	}

	// Recovery: a PD rebuilt with the stores' cluster id serves them again.
	c.StopPD()
	c.WipePD()
	recoverPD(t, c, old)
	for _, id := range []uint64{2, 3} {
		c.StartStore(id)
	}
	if v, found := c.MustGet("k"); !found || v != "v" {
		t.Fatalf("k reads %q, %v after the PD recovery", v, found)
	}
}

// TestHeartbeatDoesNotRegisterOrReaddressStores: a heartbeat from a process
// that did not claim a store id cannot move a store to its address, nor
// register an unknown store id. Before the fix, both succeeded: any
// process could redirect the cluster's raft traffic for a store.
func TestHeartbeatDoesNotRegisterOrReaddressStores(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	conn, err := grpc.NewClient(c.PDAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pd := pdpb.NewPDClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	resp, err := pd.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{StoreId: 2, Address: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetHeader().GetError().GetType(); got != pdpb.ErrorType_STORE_CLAIMED {
		t.Errorf("heartbeat moving store 2 without its token: error %v, want STORE_CLAIMED", resp.GetHeader().GetError())
	}
	st, err := pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetStore().GetAddress() != c.StoreAddr(2) {
		t.Errorf("store 2 was re-addressed to %q by a heartbeat without its token", st.GetStore().GetAddress())
	}

	resp, err = pd.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{StoreId: 99, Address: "127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetHeader().GetError().GetType(); got != pdpb.ErrorType_STORE_NOT_FOUND {
		t.Errorf("heartbeat of unknown store 99: error %v, want STORE_NOT_FOUND", resp.GetHeader().GetError())
	}
	st, err = pd.GetStore(ctx, &pdpb.GetStoreRequest{StoreId: 99})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetStore() != nil {
		t.Errorf("a heartbeat registered unknown store 99: %v", st.GetStore())
	}
}

// TestRaftStreamFromAnotherClusterIsRefused: a raft stream that names
// another cluster id is refused before any message is stepped; one naming
// the store's own cluster is taken.
func TestRaftStreamFromAnotherClusterIsRefused(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	id := c.PD.ClusterID()
	send := func(clusterID uint64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "nokv-cluster-id", fmt.Sprint(clusterID))
		st, err := c.Client(1).Raft(ctx)
		if err != nil {
			return err
		}
		// A message for a region this store does not hold: harmless if
		// stepped, and it must not be.
		if err := st.Send(&raftserverpb.BatchRaftMessage{Msgs: []*raftserverpb.RaftMessage{{RegionId: 999}}}); err != nil {
			_, err = st.CloseAndRecv()
			return err
		}
		_, err = st.CloseAndRecv()
		return err
	}
	if err := send(id + 1); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "another cluster") {
		t.Fatalf("raft stream naming cluster %d at a store of cluster %d: %v", id+1, id, err)
	}
	if err := send(id); err != nil {
		t.Fatalf("raft stream naming the store's own cluster: %v", err)
	}
}
