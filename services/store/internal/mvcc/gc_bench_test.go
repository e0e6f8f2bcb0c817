package mvcc

import (
	"fmt"
	"testing"
)

// BenchmarkGCPass is one GC pass over benchStore's 100000 keys (1.0
// versions each on average, at commit_ts 11 and 21) that finds nothing to
// collect, at a safe point below every version (a cluster younger than the
// GC life time) and between the two (each key's newest version above it).
func BenchmarkGCPass(b *testing.B) {
	db, _, _ := benchStore(b)
	for _, sp := range []uint64{5, 15} {
		b.Run(fmt.Sprintf("safepoint=%d", sp), func(b *testing.B) {
			for range b.N {
				mods, next, err := GCSummarized(db, nil, nil, sp, 0, 0, 0, nil)
				if err != nil || next != nil {
					b.Fatal(err, next)
				}
				if sp == 5 && len(mods) != 0 {
					b.Fatalf("%d modifies", len(mods))
				}
			}
		})
	}
}
