package pdclient

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testRegion builds region id over [start, end) at epoch (version, confVer)
// with one peer per store; peer ids are id*100+store.
func testRegion(id uint64, start, end string, version, confVer uint64, stores ...uint64) *metapb.Region {
	r := &metapb.Region{
		Id:          id,
		StartKey:    []byte(start),
		EndKey:      []byte(end),
		RegionEpoch: &metapb.RegionEpoch{Version: version, ConfVer: confVer},
	}
	for _, s := range stores {
		r.Peers = append(r.Peers, &metapb.Peer{Id: id*100 + s, StoreId: s})
	}
	return r
}

// peerOf returns region's peer on store.
func peerOf(r *metapb.Region, store uint64) *metapb.Peer {
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == store {
			return p
		}
	}
	return nil
}

// lookupID returns the id of the cached region holding key, 0 for a miss.
func lookupID(c *RegionCache, key string) uint64 {
	r, _, ok := c.Lookup([]byte(key))
	// LookupID answers as Lookup does, without the copy.
	if id, idOK := c.LookupID([]byte(key)); idOK != ok || id != r.GetId() {
		panic(fmt.Sprintf("LookupID(%q) = %d, %v; Lookup found %d, %v", key, id, idOK, r.GetId(), ok))
	}
	if !ok {
		return 0
	}
	return r.GetId()
}

func TestRegionCacheLookup(t *testing.T) {
	c := NewRegionCache(0, nil)
	if lookupID(c, "a") != 0 {
		t.Fatal("hit in an empty cache")
	}
	for _, r := range []*metapb.Region{
		testRegion(1, "", "b", 1, 1, 1),
		testRegion(2, "b", "m", 1, 1, 1),
		testRegion(3, "m", "", 1, 1, 1),
	} {
		if !c.Insert(r, nil) {
			t.Fatalf("insert %v refused", r)
		}
	}
	tests := []struct {
		key  string
		want uint64
	}{
		{"", 1}, {"a", 1}, {"azzz", 1}, {"b", 2}, {"b\x00", 2}, {"l", 2},
		{"m", 3}, {"zzzz", 3}, {"\xff\xff", 3},
	}
	for _, tt := range tests {
		if got := lookupID(c, tt.key); got != tt.want {
			t.Errorf("Lookup(%q) = region %d, want %d", tt.key, got, tt.want)
		}
	}

	// Gaps miss.
	c = NewRegionCache(0, nil)
	c.Insert(testRegion(1, "c", "f", 1, 1, 1), nil)
	for _, key := range []string{"", "b", "f", "g"} {
		if got := lookupID(c, key); got != 0 {
			t.Errorf("Lookup(%q) = region %d in a gap", key, got)
		}
	}
}

// TestRegionCacheInsert checks replacement and staleness: each case inserts
// its regions in order, then checks which inserts were accepted and which
// region holds each probe key.
func TestRegionCacheInsert(t *testing.T) {
	tests := []struct {
		name    string
		inserts []*metapb.Region
		refused []int // indexes of inserts expected to be refused
		probes  map[string]uint64
		len     int
	}{
		{
			name: "split keeps the id on the left",
			inserts: []*metapb.Region{
				testRegion(1, "a", "z", 1, 1, 1),
				testRegion(1, "a", "m", 2, 1, 1),
				testRegion(2, "m", "z", 2, 1, 1),
			},
			probes: map[string]uint64{"a": 1, "l": 1, "m": 2, "y": 2, "z": 0},
			len:    2,
		},
		{
			name: "split child replaces the parent before the parent is refreshed",
			inserts: []*metapb.Region{
				testRegion(1, "a", "z", 1, 1, 1),
				testRegion(2, "m", "z", 2, 1, 1),
			},
			probes: map[string]uint64{"a": 0, "m": 2},
			len:    1,
		},
		{
			name: "merge replaces both",
			inserts: []*metapb.Region{
				testRegion(1, "a", "m", 2, 1, 1),
				testRegion(2, "m", "z", 2, 1, 1),
				testRegion(2, "a", "z", 3, 1, 1),
			},
			probes: map[string]uint64{"a": 2, "m": 2},
			len:    1,
		},
		{
			name: "partial overlaps at both ends",
			inserts: []*metapb.Region{
				testRegion(1, "a", "c", 1, 1, 1),
				testRegion(2, "c", "e", 1, 1, 1),
				testRegion(3, "e", "g", 1, 1, 1),
				testRegion(4, "g", "i", 1, 1, 1),
				testRegion(9, "d", "f", 5, 1, 1),
			},
			probes: map[string]uint64{"a": 1, "c": 0, "d": 9, "e": 9, "f": 0, "g": 4},
			len:    3,
		},
		{
			name: "unbounded region replaces everything",
			inserts: []*metapb.Region{
				testRegion(1, "", "c", 1, 1, 1),
				testRegion(2, "c", "", 1, 1, 1),
				testRegion(3, "", "", 2, 1, 1),
			},
			probes: map[string]uint64{"": 3, "c": 3, "zz": 3},
			len:    1,
		},
		{
			name: "same epoch refreshes",
			inserts: []*metapb.Region{
				testRegion(1, "a", "z", 1, 1, 1),
				testRegion(1, "a", "z", 1, 1, 1, 2),
			},
			probes: map[string]uint64{"b": 1},
			len:    1,
		},
		{
			name: "older version of the same region refused",
			inserts: []*metapb.Region{
				testRegion(1, "a", "m", 2, 1, 1),
				testRegion(1, "a", "z", 1, 1, 1),
			},
			refused: []int{1},
			probes:  map[string]uint64{"b": 1, "n": 0},
			len:     1,
		},
		{
			name: "older conf_ver of the same region refused",
			inserts: []*metapb.Region{
				testRegion(1, "a", "z", 1, 3, 1),
				testRegion(1, "a", "z", 1, 2, 1),
			},
			refused: []int{1},
			probes:  map[string]uint64{"b": 1},
			len:     1,
		},
		{
			name: "parent older than a cached child refused",
			inserts: []*metapb.Region{
				testRegion(2, "m", "z", 2, 1, 1),
				testRegion(1, "a", "z", 1, 1, 1),
			},
			refused: []int{1},
			probes:  map[string]uint64{"a": 0, "m": 2},
			len:     1,
		},
		{
			name: "malformed regions refused",
			inserts: []*metapb.Region{
				nil,
				testRegion(1, "m", "m", 1, 1, 1),
				testRegion(2, "m", "a", 1, 1, 1),
			},
			refused: []int{0, 1, 2},
			probes:  map[string]uint64{"m": 0},
			len:     0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewRegionCache(0, nil)
			for i, r := range tt.inserts {
				wantOK := true
				for _, j := range tt.refused {
					if i == j {
						wantOK = false
					}
				}
				if got := c.Insert(r, nil); got != wantOK {
					t.Fatalf("insert #%d (%v) = %v, want %v", i, r, got, wantOK)
				}
			}
			for key, want := range tt.probes {
				if got := lookupID(c, key); got != want {
					t.Errorf("Lookup(%q) = region %d, want %d", key, got, want)
				}
			}
			if got := c.Len(); got != tt.len {
				t.Errorf("Len() = %d, want %d", got, tt.len)
			}
		})
	}
}

func TestRegionCacheLeaders(t *testing.T) {
	c := NewRegionCache(0, nil)
	r := testRegion(1, "a", "z", 1, 1, 1, 2, 3)
	c.Insert(r, peerOf(r, 1))
	leaderStore := func() uint64 {
		_, l, ok := c.Lookup([]byte("b"))
		if !ok {
			t.Fatal("region not cached")
		}
		return l.GetStoreId()
	}
	if got := leaderStore(); got != 1 {
		t.Fatalf("leader on store %d, want 1", got)
	}

	// A refresh without a leader keeps the known one at the same epoch...
	c.Insert(r, nil)
	if got := leaderStore(); got != 1 {
		t.Fatalf("after refresh without leader: leader on store %d, want 1", got)
	}
	if !c.UpdateLeader(1, peerOf(r, 2)) || leaderStore() != 2 {
		t.Fatal("UpdateLeader to store 2 not applied")
	}
	if !c.UpdateLeader(1, nil) || leaderStore() != 0 {
		t.Fatal("UpdateLeader(nil) did not clear the leader")
	}
	if c.UpdateLeader(7, peerOf(r, 2)) {
		t.Fatal("UpdateLeader of an uncached region reported true")
	}

	// ...but not at a newer one.
	c.Insert(r, peerOf(r, 3))
	r2 := testRegion(1, "a", "z", 1, 2, 1, 2, 3)
	c.Insert(r2, nil)
	if got := leaderStore(); got != 0 {
		t.Fatalf("leader of the older epoch kept: store %d", got)
	}

	// A leader the cached region does not have means the region is stale.
	if c.UpdateLeader(1, &metapb.Peer{Id: 999, StoreId: 9}) {
		t.Fatal("UpdateLeader to an unknown peer reported true")
	}
	if lookupID(c, "b") != 0 {
		t.Fatal("region kept after a leader outside its peers")
	}
}

func TestRegionCacheInvalidate(t *testing.T) {
	c := NewRegionCache(0, nil)
	c.Insert(testRegion(1, "", "g", 1, 1, 1), nil)
	c.Insert(testRegion(2, "g", "p", 1, 1, 1), nil)
	c.Insert(testRegion(3, "p", "", 1, 1, 1), nil)

	c.InvalidateRegion(2)
	c.InvalidateRegion(42) // unknown: no-op
	if lookupID(c, "h") != 0 || lookupID(c, "a") != 1 || lookupID(c, "q") != 3 {
		t.Fatal("InvalidateRegion(2) dropped the wrong regions")
	}
	if _, _, ok := c.LookupByID(2); ok {
		t.Fatal("LookupByID finds an invalidated region")
	}

	c.InvalidateKey([]byte("zz"))
	c.InvalidateKey([]byte("h")) // in the gap: no-op
	if lookupID(c, "q") != 0 || lookupID(c, "a") != 1 {
		t.Fatal(`InvalidateKey("zz") dropped the wrong regions`)
	}
	if _, _, ok := c.LookupByID(3); ok {
		t.Fatal("LookupByID finds a region invalidated by key")
	}
	if c.Len() != 1 {
		t.Fatalf("Len() = %d, want 1", c.Len())
	}
	c.Clear()
	if c.Len() != 0 || lookupID(c, "a") != 0 {
		t.Fatal("Clear left regions")
	}
}

func TestRegionCacheTTL(t *testing.T) {
	clock := newFakeClock()
	const ttl = time.Minute
	c := NewRegionCache(ttl, clock.Now)
	r := testRegion(1, "a", "z", 1, 1, 1, 2)
	c.Insert(r, peerOf(r, 1))

	clock.Advance(ttl - time.Nanosecond)
	if lookupID(c, "b") != 1 {
		t.Fatal("entry expired before its TTL")
	}
	// UpdateLeader does not renew the entry.
	c.UpdateLeader(1, peerOf(r, 2))
	clock.Advance(time.Nanosecond)
	if lookupID(c, "b") != 0 {
		t.Fatal("entry still served at its TTL")
	}
	if _, _, ok := c.LookupByID(1); ok {
		t.Fatal("LookupByID serves an expired entry")
	}

	// An expired entry refuses nothing: a lower epoch from PD (restarted from
	// scratch, say) replaces it rather than leaving the route unrefreshable.
	if !c.Insert(testRegion(1, "a", "z", 0, 0, 1), nil) {
		t.Fatal("insert over an expired newer entry refused")
	}
	if lookupID(c, "b") != 1 {
		t.Fatal("re-inserted entry not served")
	}
	clock.Advance(ttl / 2)
	if lookupID(c, "b") != 1 {
		t.Fatal("re-inserted entry expired early: TTL not restarted")
	}
}

// TestRegionCacheCopies: what callers pass in or get back is theirs.
func TestRegionCacheCopies(t *testing.T) {
	c := NewRegionCache(0, nil)
	r := testRegion(1, "a", "z", 1, 1, 1, 2)
	leader := proto.Clone(peerOf(r, 1)).(*metapb.Peer)
	c.Insert(r, leader)
	want := proto.Clone(r).(*metapb.Region)

	r.StartKey[0] = 'x'
	r.Peers[0].StoreId = 99
	leader.StoreId = 99
	got, l, _ := c.Lookup([]byte("b"))
	if !proto.Equal(got, want) || l.GetStoreId() != 1 {
		t.Fatalf("cache changed through the inserted pointers: %v, leader %v", got, l)
	}

	got.EndKey = []byte("b")
	got.Peers[1].StoreId = 77
	l.StoreId = 77
	again, l2, _ := c.Lookup([]byte("y"))
	if !proto.Equal(again, want) || l2.GetStoreId() != 1 {
		t.Fatalf("cache changed through a returned region: %v, leader %v", again, l2)
	}
}

// TestRegionCacheConcurrent races lookups against splits and invalidations;
// run with -race.
func TestRegionCacheConcurrent(t *testing.T) {
	c := NewRegionCache(0, nil)
	c.Insert(testRegion(1, "", "", 1, 1, 1), nil)
	var wg sync.WaitGroup
	const n = 200
	wg.Go(func() {
		// Split the key space ever finer: region i+1 takes [ki, "") at version i+2.
		for i := range n {
			start := fmt.Sprintf("k%04d", i)
			c.Insert(testRegion(uint64(i+2), start, "", uint64(i+2), 1, 1), nil)
			if i%10 == 0 {
				c.InvalidateKey([]byte(start))
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for i := range n * 5 {
				key := []byte(fmt.Sprintf("k%04d", i%n))
				if r, _, ok := c.Lookup(key); ok {
					if string(key) < string(r.GetStartKey()) || (len(r.GetEndKey()) > 0 && string(key) >= string(r.GetEndKey())) {
						t.Errorf("Lookup(%q) = [%q, %q)", key, r.GetStartKey(), r.GetEndKey())
						return
					}
				}
				c.UpdateLeader(uint64(i%n+2), &metapb.Peer{Id: uint64(i%n+2)*100 + 1, StoreId: 1})
			}
		})
	}
	wg.Wait()
}
