// Command pebblecmp compares Pebble v1 (v1.1.5, what NoKV uses) and v2
// (v2.1.x) on the embedded backend's point workloads, engine only: it loads
// n keys shaped like the backend's ('d' + "key:%012d", a 12-byte value),
// waits for compactions, then measures random Get and random Get-then-Set
// (a SET's base read and its write, no fsync) from 2 goroutines, a warm-up
// pass and a measured pass each, and prints ops/s and process CPU per op.
// Both use a 1 GiB block cache, a 64 MiB memtable and 10-bit bloom filters
// on every level, like the backend.
//
// It is its own module, outside go.work, so that NoKV does not depend on v2:
//
//	cd scripts/pebblecmp
//	GOWORK=off go build -o v1 . && GOWORK=off go build -tags v2 -o v2 .
//	for n in 100000 10000000; do ./v1 -n $n -dir /tmp/pc1; ./v2 -n $n -dir /tmp/pc2; done
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func key(buf []byte, i int) []byte {
	return fmt.Appendf(buf[:0], "dkey:%012d", i)
}

var val = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 'x', 'x', 'x'}

func main() {
	n := flag.Int("n", 100000, "keys")
	ops := flag.Int("ops", 1000000, "ops per phase")
	workers := flag.Int("workers", 2, "goroutines")
	dir := flag.String("dir", "", "data dir")
	mem := flag.Int("memtable", 64, "memtable MiB")
	flag.Parse()
	os.RemoveAll(*dir)
	db := open(*dir, *mem)
	t0 := time.Now()
	var kb []byte
	for i := 0; i < *n; i += 1000 {
		b := db.batch()
		for j := i; j < min(i+1000, *n); j++ {
			kb = key(kb, j)
			b.set(kb, val)
		}
		b.commit()
	}
	db.flush()
	for idle := 0; idle < 3; {
		if db.compacting() {
			idle = 0
		} else {
			idle++
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("%s n=%d loaded in %.0fs\n", version, *n, time.Since(t0).Seconds())
	phase := func(name string, op func(r *rand.Rand, kb []byte)) {
		// warm-up pass to fill the block cache, then measured pass
		for pass := 0; pass < 2; pass++ {
			c0, w0 := cpuNow(), time.Now()
			var wg sync.WaitGroup
			for w := 0; w < *workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), uint64(pass)))
					var kb []byte
					for i := 0; i < *ops / *workers; i++ {
						kb = key(kb, r.IntN(*n))
						op(r, kb)
					}
				}(w)
			}
			wg.Wait()
			if pass == 1 {
				el, c := time.Since(w0), cpuNow()-c0
				fmt.Printf("%s n=%d %s: %.0f ops/s, %.2f us CPU/op\n", version, *n, name,
					float64(*ops)/el.Seconds(), float64(c.Microseconds())/float64(*ops))
			}
		}
	}
	phase("get", func(r *rand.Rand, kb []byte) { db.get(kb) })
	phase("get+set", func(r *rand.Rand, kb []byte) {
		db.get(kb)
		b := db.batch()
		b.set(kb, val)
		b.commit()
	})
	fmt.Println(db.metrics())
	db.close()
}
