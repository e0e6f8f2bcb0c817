package cluster

import (
	"errors"
	"slices"
	"strings"
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
		if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: id, LeaderCount: uint32(id)}, 0, e.clock.Now()); err != nil {
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
	// Store 1 claimed its id with nonce 11; stores 2 and 3 never claimed.
	tests := []struct {
		name     string
		stats    *pdpb.StoreStats
		nonce    uint64
		wantErr  error
		wantAddr string
	}{
		{name: "known store, same address", stats: &pdpb.StoreStats{StoreId: 1, Address: "127.0.0.1:20160"}, nonce: 11, wantAddr: "127.0.0.1:20160"},
		{name: "known store, no address", stats: &pdpb.StoreStats{StoreId: 1}, nonce: 11, wantAddr: "127.0.0.1:20160"},
		{name: "address change with the claim's token", stats: &pdpb.StoreStats{StoreId: 1, Address: "10.0.0.1:20160"}, nonce: 11, wantAddr: "10.0.0.1:20160"},
		{name: "address change without the token", stats: &pdpb.StoreStats{StoreId: 1, Address: "10.0.0.1:20160"}, wantErr: ErrStoreClaimed},
		{name: "same address, another token", stats: &pdpb.StoreStats{StoreId: 1, Address: "127.0.0.1:20160"}, nonce: 12, wantErr: ErrStoreClaimed},
		{name: "unclaimed store, same address", stats: &pdpb.StoreStats{StoreId: 2, Address: "127.0.0.1:20161"}, wantAddr: "127.0.0.1:20161"},
		{name: "unclaimed store may not move", stats: &pdpb.StoreStats{StoreId: 2, Address: "10.0.0.2:20160"}, wantErr: ErrStoreClaimed},
		{name: "unknown store is not registered", stats: &pdpb.StoreStats{StoreId: 7, Address: "10.0.0.7:20160"}, wantErr: ErrStoreNotFound},
		{name: "store id 0", stats: &pdpb.StoreStats{Address: "x:1"}, wantErr: ErrInvalidArgument},
		{name: "nil stats", wantErr: ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bootstrapped(t)
			if _, err := e.c.ClaimStore(1, "127.0.0.1:20160", 11, noAlloc(t)); err != nil {
				t.Fatal(err)
			}
			err := e.c.HandleStoreHeartbeat(tt.stats, tt.nonce, e.clock.Now())
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("HandleStoreHeartbeat = %v, want %v", err, tt.wantErr)
			}
			e.reopen()
			if err := e.c.Load(); err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != nil {
				// Nothing changed: an unknown store stays unknown, a known
				// one keeps its address.
				if tt.stats.GetStoreId() == 7 {
					if _, err := e.c.GetStore(7); !errors.Is(err, ErrStoreNotFound) {
						t.Fatalf("refused heartbeat registered store 7: %v", err)
					}
				}
				if s, err := e.c.GetStore(tt.stats.GetStoreId()); err == nil && strings.HasPrefix(s.GetAddress(), "10.") {
					t.Fatalf("refused heartbeat re-addressed the store: %v", s)
				}
				return
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

func noAlloc(t *testing.T) func() (uint64, error) {
	return func() (uint64, error) {
		t.Error("ClaimStore allocated an id")
		return 0, errors.New("no allocation expected")
	}
}

// TestClaimStore: the first claim of a store id binds it to a nonce; the
// same nonce may claim again (a crash between the claim and the store
// recording it), any other nonce is refused (the store lost its data), and
// all of that survives a PD restart.
func TestClaimStore(t *testing.T) {
	e := bootstrapped(t)
	if id, err := e.c.ClaimStore(2, "127.0.0.1:20161", 0xA, noAlloc(t)); err != nil || id != 2 {
		t.Fatalf("first claim = %d, %v; want 2", id, err)
	}
	if id, err := e.c.ClaimStore(2, "127.0.0.1:20161", 0xA, noAlloc(t)); err != nil || id != 2 {
		t.Fatalf("repeated claim with the same nonce = %d, %v; want 2", id, err)
	}
	claimedAt := e.clock.Now()
	e.clock.Advance(time.Hour)
	_, err := e.c.ClaimStore(2, "127.0.0.1:20161", 0xB, noAlloc(t))
	var ce *ClaimedError
	if !errors.As(err, &ce) || ce.StoreID != 2 || !ce.ClaimedAt.Equal(claimedAt) || !errors.Is(err, ErrStoreClaimed) {
		t.Fatalf("claim with another nonce = %v, want *ClaimedError for store 2 claimed at %v", err, claimedAt)
	}
	for _, want := range []string{"store 2 was already started with data", "nokv-config store remove 2", "--join"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}

	// Persisted: a restarted PD refuses the other nonce and accepts the
	// first, which may move the store.
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.ClaimStore(2, "127.0.0.1:20161", 0xB, noAlloc(t)); !errors.Is(err, ErrStoreClaimed) {
		t.Fatalf("claim with another nonce after a PD restart = %v, want ErrStoreClaimed", err)
	}
	if id, err := e.c.ClaimStore(2, "10.0.0.2:20160", 0xA, noAlloc(t)); err != nil || id != 2 {
		t.Fatalf("claim with the same nonce after a PD restart = %d, %v", id, err)
	}
	if s, _ := e.c.GetStore(2); s.GetAddress() != "10.0.0.2:20160" {
		t.Fatalf("store 2 at %q after a claim from a new address", s.GetAddress())
	}
	if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 2}, 0xB, e.clock.Now()); !errors.Is(err, ErrStoreClaimed) {
		t.Fatalf("heartbeat with the wrong token = %v, want ErrStoreClaimed", err)
	}

	// Unknown ids and malformed claims.
	if _, err := e.c.ClaimStore(9, "x:1", 1, noAlloc(t)); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("claim of unknown store 9 = %v, want ErrStoreNotFound", err)
	}
	if _, err := e.c.ClaimStore(1, "x:1", 0, noAlloc(t)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("claim with nonce 0 = %v, want ErrInvalidArgument", err)
	}
}

// TestClaimNewStore: id 0 allocates a new store, once per nonce.
func TestClaimNewStore(t *testing.T) {
	e := bootstrapped(t)
	next := uint64(40)
	alloc := func() (uint64, error) { next++; return next, nil }
	id, err := e.c.ClaimStore(0, "127.0.0.1:20170", 0xC, alloc)
	if err != nil || id != 41 {
		t.Fatalf("new store claim = %d, %v; want 41", id, err)
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	// The joining node crashed before it recorded id 41: same nonce, same id.
	if id, err := e.c.ClaimStore(0, "127.0.0.1:20170", 0xC, alloc); err != nil || id != 41 {
		t.Fatalf("repeated new store claim = %d, %v; want 41", id, err)
	}
	if id, err := e.c.ClaimStore(0, "127.0.0.1:20171", 0xD, alloc); err != nil || id != 42 {
		t.Fatalf("second new store = %d, %v; want 42", id, err)
	}
	s, err := e.c.GetStore(41)
	if err != nil || s.GetState() != metapb.StoreState_UP || s.GetAddress() != "127.0.0.1:20170" {
		t.Fatalf("GetStore(41) = %v, %v", s, err)
	}
	if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 41, Address: "127.0.0.1:20170"}, 0xC, e.clock.Now()); err != nil {
		t.Fatalf("heartbeat of the new store: %v", err)
	}
}

// TestRemoveStore: only a store that stopped heartbeating may be removed;
// afterwards it is a tombstone for claims and heartbeats, also after a
// PD restart.
func TestRemoveStore(t *testing.T) {
	e := bootstrapped(t) // StoreDownAfter 10s
	if _, err := e.c.ClaimStore(3, "127.0.0.1:20162", 0x3, noAlloc(t)); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveStore(3); !errors.Is(err, ErrStoreUp) {
		t.Fatalf("RemoveStore of an UP store = %v, want ErrStoreUp", err)
	}
	if err := e.c.RemoveStore(9); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("RemoveStore(9) = %v, want ErrStoreNotFound", err)
	}
	e.clock.Advance(10 * time.Second)
	if _, err := e.c.UpdateLiveness(e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveStore(3); err != nil {
		t.Fatalf("RemoveStore of a DOWN store: %v", err)
	}
	if err := e.c.RemoveStore(3); err != nil {
		t.Fatalf("RemoveStore again: %v", err)
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.c.GetStore(3); s.GetState() != metapb.StoreState_TOMBSTONE {
		t.Fatalf("store 3 is %v after removal, want TOMBSTONE", s.GetState())
	}
	if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 3}, 0x3, e.clock.Now()); !errors.Is(err, ErrStoreTombstone) {
		t.Fatalf("heartbeat of a removed store = %v, want ErrStoreTombstone", err)
	}
	if _, err := e.c.ClaimStore(3, "127.0.0.1:20162", 0x3, noAlloc(t)); !errors.Is(err, ErrStoreTombstone) {
		t.Fatalf("claim of a removed store = %v, want ErrStoreTombstone", err)
	}
}

// TestAdoptStores: a PD rebuilt with --recover-cluster-id registers a
// store it does not know from a heartbeat that carries a claim nonce (a
// store that joined after the cluster file was written); a strict PD does
// not.
func TestAdoptStores(t *testing.T) {
	e := bootstrapped(t)
	hb := &pdpb.StoreStats{StoreId: 1001, Address: "127.0.0.1:20199"}
	if err := e.c.HandleStoreHeartbeat(hb, 0x99, e.clock.Now()); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("strict PD: heartbeat of unknown store = %v, want ErrStoreNotFound", err)
	}
	e.opts.AdoptStores = true
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 1002, Address: "x:1"}, 0, e.clock.Now()); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("recovering PD: heartbeat without a nonce = %v, want ErrStoreNotFound", err)
	}
	if err := e.c.HandleStoreHeartbeat(hb, 0x99, e.clock.Now()); err != nil {
		t.Fatalf("recovering PD: heartbeat of unknown store with a nonce: %v", err)
	}
	if s, err := e.c.GetStore(1001); err != nil || s.GetAddress() != "127.0.0.1:20199" {
		t.Fatalf("adopted store: %v, %v", s, err)
	}
	if _, err := e.c.ClaimStore(1001, "127.0.0.1:20199", 0x98, noAlloc(t)); !errors.Is(err, ErrStoreClaimed) {
		t.Fatalf("claim of an adopted store with another nonce = %v, want ErrStoreClaimed", err)
	}
}

// TestClusterID: bootstrap draws a non-zero id that survives restarts, or
// records the one it is given.
func TestClusterID(t *testing.T) {
	e := bootstrapped(t)
	id := e.c.ClusterID()
	if id == 0 {
		t.Fatal("cluster id 0 after bootstrap")
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if got := e.c.ClusterID(); got != id {
		t.Fatalf("cluster id %d after restart, want %d", got, id)
	}
}

func TestTombstoneStore(t *testing.T) {
	e := bootstrapped(t)
	if err := e.c.PutStore(&metapb.Store{Id: 3, Address: "127.0.0.1:20162", State: metapb.StoreState_TOMBSTONE}); err != nil {
		t.Fatal(err)
	}
	err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: 3}, 0, e.clock.Now())
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
