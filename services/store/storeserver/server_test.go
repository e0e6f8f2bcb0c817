package storeserver

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/nokv/nokv/api/pdpb"
)

// claimPD answers a store's claim of its id and nothing else: these tests
// are about the data directory, not PD (the claim itself is tested in
// services/pd and tests/cluster, against the real PD).
type claimPD struct {
	pdpb.UnimplementedPDServer
}

func (claimPD) ClaimStore(_ context.Context, req *pdpb.ClaimStoreRequest) (*pdpb.ClaimStoreResponse, error) {
	return &pdpb.ClaimStoreResponse{Header: &pdpb.ResponseHeader{}, StoreId: req.GetStoreId(), ClusterId: 7}, nil
}

func startClaimPD(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pdpb.RegisterPDServer(srv, claimPD{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func testConfig(t *testing.T, storeID uint64, dir string) Config {
	cfg := DefaultConfig()
	cfg.StoreID, cfg.WorkDir, cfg.Addr = storeID, dir, "127.0.0.1:0"
	cfg.PDAddr = startClaimPD(t)
	return cfg
}

func TestSecondServerOnAWorkdirIsRefused(t *testing.T) {
	dir := t.TempDir()
	first, err := New(testConfig(t, 1, dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = New(testConfig(t, 1, dir), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is another nokv-store using it?") {
		t.Fatalf("second server on %s: %v", dir, err)
	}
}

func TestWorkdirOfAnotherStoreIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testConfig(t, 1, dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = New(testConfig(t, 2, dir), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "belongs to store 1, not 2") {
		t.Fatalf("store 2 on store 1's workdir: %v", err)
	}
}
