package cluster

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

func storeStates(c *Cluster) map[uint64]metapb.StoreState {
	out := map[uint64]metapb.StoreState{}
	for _, s := range c.GetAllStores(false) {
		out[s.GetId()] = s.GetState()
	}
	return out
}

func TestStoreLiveness(t *testing.T) {
	e := bootstrapped(t) // stores 1, 2, 3; StoreDownAfter 10s
	hb := func(id uint64) {
		t.Helper()
		if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: id, LeaderCount: uint32(id)}, e.clock.Now()); err != nil {
			t.Fatalf("heartbeat store %d: %v", id, err)
		}
	}
	liveness := func(want ...uint64) {
		t.Helper()
		got, err := e.c.UpdateLiveness(e.clock.Now())
		if err != nil {
			t.Fatalf("UpdateLiveness: %v", err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("UpdateLiveness marked %v down, want %v", got, want)
		}
	}

	// Bootstrap gives every store a full StoreDownAfter.
	e.clock.Advance(9 * time.Second)
	liveness()
	hb(1)
	hb(2)
	e.clock.Advance(time.Second) // store 3: 10s without a heartbeat
	liveness(3)
	if up, down, tomb := e.c.StoreCounts(); up != 2 || down != 1 || tomb != 0 {
		t.Fatalf("StoreCounts = %d up, %d down, %d tombstone; want 2, 1, 0", up, down, tomb)
	}
	since, ok := e.c.StoreDownSince(3)
	if !ok || !since.Equal(e.clock.Now()) {
		t.Fatalf("StoreDownSince(3) = %v, %v; want %v", since, ok, e.clock.Now())
	}
	if _, ok := e.c.StoreDownSince(1); ok {
		t.Fatal("StoreDownSince(1) reports an UP store as down")
	}
	liveness() // already down: not reported again

	e.clock.Advance(9 * time.Second)
	hb(1)
	e.clock.Advance(time.Second) // store 2: 10s since its last heartbeat
	liveness(2)

	// DOWN is persisted; the reloaded store estimates when it went down.
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	want := map[uint64]metapb.StoreState{1: metapb.StoreState_UP, 2: metapb.StoreState_DOWN, 3: metapb.StoreState_DOWN}
	if got := storeStates(e.c); !mapsEqual(got, want) {
		t.Fatalf("persisted states = %v, want %v", got, want)
	}

	// Back UP on the next heartbeat, and that is persisted too.
	hb(3)
	if s, err := e.c.GetStore(3); err != nil || s.GetState() != metapb.StoreState_UP || s.GetLastHeartbeatMs() != e.clock.Now().UnixMilli() {
		t.Fatalf("GetStore(3) = %v, %v; want UP with the heartbeat time", s, err)
	}
	if st := e.c.GetStoreStats(3); st.GetLeaderCount() != 3 {
		t.Fatalf("GetStoreStats(3) = %v, want leader_count 3", st)
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.c.GetStore(3); s.GetState() != metapb.StoreState_UP {
		t.Fatalf("store 3 persisted as %v, want UP", s.GetState())
	}
	if st := e.c.GetStoreStats(3); st != nil {
		t.Fatalf("statistics survived a restart: %v", st)
	}
}

func TestStoreHeartbeat(t *testing.T) {
	tests := []struct {
		name     string
		stats    *pdpb.StoreStats
		wantErr  error
		wantAddr string
	}{
		{name: "known store, same address", stats: &pdpb.StoreStats{StoreId: 1, Address: "127.0.0.1:20160"}, wantAddr: "127.0.0.1:20160"},
		{name: "known store, no address", stats: &pdpb.StoreStats{StoreId: 1}, wantAddr: "127.0.0.1:20160"},
		{name: "address change", stats: &pdpb.StoreStats{StoreId: 1, Address: "10.0.0.1:20160"}, wantAddr: "10.0.0.1:20160"},
		{name: "unknown store registers", stats: &pdpb.StoreStats{StoreId: 7, Address: "10.0.0.7:20160"}, wantAddr: "10.0.0.7:20160"},
		{name: "unknown store without address", stats: &pdpb.StoreStats{StoreId: 7}, wantErr: ErrInvalidArgument},
		{name: "store id 0", stats: &pdpb.StoreStats{Address: "x:1"}, wantErr: ErrInvalidArgument},
		{name: "nil stats", wantErr: ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bootstrapped(t)
			err := e.c.HandleStoreHeartbeat(tt.stats, e.clock.Now())
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("HandleStoreHeartbeat = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			e.reopen()
			if err := e.c.Load(); err != nil {
				t.Fatal(err)
			}
			s, err := e.c.GetStore(tt.stats.GetStoreId())
			if err != nil {
				t.Fatal(err)
			}
			if s.GetAddress() != tt.wantAddr || s.GetState() != metapb.StoreState_UP {
				t.Fatalf("persisted store = %v, want UP at %s", s, tt.wantAddr)
			}
		})
	}
}

func TestTombstoneStore(t *testing.T) {
	e := bootstrapped(t)
	if err := e.c.PutStore(&metapb.Store{Id: 3, Address: "127.0.0.1:20162", State: metapb.StoreState_TOMBSTONE}); err != nil {
		t.Fatal(err)
	}
	err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 3}, e.clock.Now())
	var te *TombstoneError
	if !errors.As(err, &te) || te.StoreID != 3 || !errors.Is(err, ErrStoreTombstone) {
		t.Fatalf("heartbeat of a tombstone = %v, want *TombstoneError for store 3", err)
	}
	if err := e.c.PutStore(&metapb.Store{Id: 3, State: metapb.StoreState_UP}); !errors.Is(err, ErrStoreTombstone) {
		t.Fatalf("reviving a tombstone = %v, want ErrStoreTombstone", err)
	}
	// Tombstones never go DOWN.
	e.clock.Advance(time.Hour)
	if down, err := e.c.UpdateLiveness(e.clock.Now()); err != nil || !slices.Equal(down, []uint64{1, 2}) {
		t.Fatalf("UpdateLiveness = %v, %v; want [1 2]", down, err)
	}
	if up, down, tomb := e.c.StoreCounts(); up != 0 || down != 2 || tomb != 1 {
		t.Fatalf("StoreCounts = %d, %d, %d; want 0, 2, 1", up, down, tomb)
	}
	var ids []uint64
	for _, s := range e.c.GetAllStores(true) {
		ids = append(ids, s.GetId())
	}
	if !slices.Equal(ids, []uint64{1, 2}) {
		t.Fatalf("GetAllStores(true) = %v, want [1 2]", ids)
	}
	if got := len(e.c.GetAllStores(false)); got != 3 {
		t.Fatalf("GetAllStores(false) has %d stores, want 3", got)
	}
	if _, err := e.c.GetStore(9); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("GetStore(9) = %v, want ErrStoreNotFound", err)
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.c.GetStore(3); s.GetState() != metapb.StoreState_TOMBSTONE {
		t.Fatalf("store 3 persisted as %v, want TOMBSTONE", s.GetState())
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
