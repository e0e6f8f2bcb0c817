package command

import (
	"math/rand/v2"
	"testing"
)

// firstBit and popcount skip whole bytes and words; they must agree with a
// bit-by-bit scan over every range of random strings.
func TestFirstBitAndPopcountMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		p := make([]byte, rng.IntN(40))
		fill := []byte{0x00, 0xff, byte(rng.IntN(256))}
		for i := range p {
			if rng.IntN(6) == 0 {
				p[i] = byte(rng.IntN(256))
			} else {
				p[i] = fill[iter%3]
			}
		}
		nbits := int64(len(p)) * 8
		for k := 0; k < 40 && nbits > 0; k++ {
			sb := rng.Int64N(nbits)
			eb := sb + rng.Int64N(nbits-sb)
			for _, bit := range []int64{0, 1} {
				want := int64(-1)
				for i := sb; i <= eb; i++ {
					if bitAt(p, i) == bit {
						want = i
						break
					}
				}
				if got := firstBit(p, sb, eb, bit); got != want {
					t.Fatalf("firstBit(%x, %d, %d, %d) = %d, want %d", p, sb, eb, bit, got, want)
				}
			}
		}
		var want int64
		for i := int64(0); i < nbits; i++ {
			want += bitAt(p, i)
		}
		if got := popcount(p); got != want {
			t.Fatalf("popcount(%x) = %d, want %d", p, got, want)
		}
	}
}
