package embedded

import "testing"

// The default block cache is a quarter of this machine's memory, never
// below the floor, and the machine's memory is read at all (on Linux).
func TestDefaultBlockCacheBytes(t *testing.T) {
	total := memTotal()
	if total <= 0 {
		t.Fatal("MemTotal not read from /proc/meminfo")
	}
	limit := memoryLimit()
	if limit <= 0 || limit > total {
		t.Fatalf("memory limit %d, machine %d: want 0 < limit <= machine", limit, total)
	}
	got := DefaultBlockCacheBytes()
	if want := max(limit/blockCacheShare, MinDefaultBlockCacheBytes); got != want {
		t.Fatalf("DefaultBlockCacheBytes() = %d, want %d (limit %d)", got, want, limit)
	}
}
