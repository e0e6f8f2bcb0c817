package pdclient

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
)

// serveCluster serves svc as a PD of cluster id does (services/pd's
// grpcsvc.ClusterIDCheck): its id in every unary answer's header, and a
// request naming another id refused with FAILED_PRECONDITION whose details
// hold CLUSTER_ID_MISMATCH. It records the ids requests named.
func serveCluster(t *testing.T, id uint64, svc pdpb.PDServer) (addr string, named func() []string) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []string
	)
	check := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs(clusterIDKey, strconv.FormatUint(id, 10)))
		md, _ := metadata.FromIncomingContext(ctx)
		vals := md.Get(clusterIDKey)
		mu.Lock()
		got = append(got, vals...)
		mu.Unlock()
		if len(vals) > 0 && vals[0] != strconv.FormatUint(id, 10) {
			st, err := status.New(codes.FailedPrecondition, "cluster id mismatch").WithDetails(
				&pdpb.Error{Type: pdpb.ErrorType_CLUSTER_ID_MISMATCH, Message: "cluster id mismatch: expects " + vals[0]})
			if err != nil {
				t.Error(err)
			}
			return nil, st.Err()
		}
		return h(ctx, req)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(check))
	pdpb.RegisterPDServer(srv, svc)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() { srv.Stop(); wg.Wait() })
	return lis.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// TestClusterIDLearnedThenSent: a client without a cluster id learns PD's
// from its first answer and names it on every later request.
func TestClusterIDLearnedThenSent(t *testing.T) {
	addr, named := serveCluster(t, 42, newFakePD())
	c := newPDClient(t, dial(t, addr), fastOptions())
	if c.ClusterID() != 0 {
		t.Fatalf("cluster id %d before any answer", c.ClusterID())
	}
	ctx := context.Background()
	for range 2 {
		if _, err := c.AllocID(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if c.ClusterID() != 42 {
		t.Fatalf("cluster id %d after an answer, want 42", c.ClusterID())
	}
	if got := named(); len(got) != 1 || got[0] != "42" {
		t.Fatalf("requests named cluster ids %v, want [42] (none on the first)", got)
	}
}

// TestClusterIDMismatchIsTypedAndNotRetried: a client holding another
// cluster's id gets ErrClusterIDMismatch at once.
func TestClusterIDMismatchIsTypedAndNotRetried(t *testing.T) {
	addr, _ := serveCluster(t, 42, newFakePD())
	opts := fastOptions()
	opts.ClusterID = 7
	retries := 0
	opts.TestingKnobs.OnRetry = func(string, int, error) { retries++ }
	c := newPDClient(t, dial(t, addr), opts)
	_, err := c.AllocID(context.Background(), 1)
	var perr *PDError
	if !errors.Is(err, ErrClusterIDMismatch) || !errors.As(err, &perr) || perr.Type != pdpb.ErrorType_CLUSTER_ID_MISMATCH {
		t.Fatalf("AllocID at a PD of another cluster = %v, want ErrClusterIDMismatch", err)
	}
	if retries != 0 {
		t.Fatalf("a cluster id mismatch was retried %d times", retries)
	}
	if c.ClusterID() != 7 {
		t.Fatalf("client switched to cluster %d", c.ClusterID())
	}
}
