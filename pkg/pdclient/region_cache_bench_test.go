package pdclient

import (
	"fmt"
	"testing"
)

// benchCache is a cache of 64 regions over keys "k000".."k063" (the last
// one unbounded), each led by its peer on store 1.
func benchCache(b *testing.B) *RegionCache {
	c := NewRegionCache(0, nil)
	for i := range 64 {
		start, end := fmt.Sprintf("k%03d", i), fmt.Sprintf("k%03d", i+1)
		if i == 0 {
			start = ""
		}
		if i == 63 {
			end = ""
		}
		r := testRegion(uint64(i+1), start, end, 1, 1, 1, 2, 3)
		if !c.Insert(r, r.GetPeers()[0]) {
			b.Fatal("insert refused")
		}
	}
	return c
}

// BenchmarkRegionCacheLookupID: the gateway's grouping of a write by region.
func BenchmarkRegionCacheLookupID(b *testing.B) {
	c := benchCache(b)
	key := []byte("k031:user:1234")
	b.ReportAllocs()
	for b.Loop() {
		if id, ok := c.LookupID(key); !ok || id != 32 {
			b.Fatal(id, ok)
		}
	}
}

// BenchmarkRegionCacheLookup: a lookup returning copies.
func BenchmarkRegionCacheLookup(b *testing.B) {
	c := benchCache(b)
	key := []byte("k031:user:1234")
	b.ReportAllocs()
	for b.Loop() {
		if r, _, ok := c.Lookup(key); !ok || r.GetId() != 32 {
			b.Fatal(r, ok)
		}
	}
}

// BenchmarkRegionCacheLookupShared: the transactional client's lookup.
func BenchmarkRegionCacheLookupShared(b *testing.B) {
	c := benchCache(b)
	key := []byte("k031:user:1234")
	b.ReportAllocs()
	for b.Loop() {
		if r, _, ok := c.LookupShared(key); !ok || r.GetId() != 32 {
			b.Fatal(r, ok)
		}
	}
}
