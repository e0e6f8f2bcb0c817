package tso

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkOracleGet measures Get directly; ts/s counts timestamps, so the
// batch sizes show what one stream request per batch can reach.
func BenchmarkOracleGet(b *testing.B) {
	for _, count := range []uint32{1, 16, 256} {
		b.Run("count="+strconv.Itoa(int(count)), func(b *testing.B) {
			o, _ := newOracle(b, b.TempDir(), Options{Window: 3 * time.Second})
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := o.Get(count); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)*float64(count)/b.Elapsed().Seconds(), "ts/s")
		})
	}
}
