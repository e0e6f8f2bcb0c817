// Package latch serialises operations that share a key, inside one process.
//
// Keys hash onto a fixed set of mutexes; an operation locks its slots in
// ascending order, so two multi-key operations never wait on each other in
// a cycle. Unrelated keys that share a slot only cost a little waiting.
package latch

import (
	"hash/maphash"
	"slices"
	"sync"
)

const slotCount = 4096

// Latches is a set of key latches. The zero value is not usable; use New.
type Latches struct {
	seed  maphash.Seed
	slots [slotCount]sync.Mutex
}

// New returns a set of latches.
func New() *Latches { return &Latches{seed: maphash.MakeSeed()} }

// Acquire locks the slots of keys and returns them for Release. buf is
// scratch space the result may reuse.
func (l *Latches) Acquire(keys [][]byte, buf []uint32) []uint32 {
	slots := buf[:0]
	for _, k := range keys {
		slots = append(slots, uint32(maphash.Bytes(l.seed, k)%slotCount))
	}
	if len(slots) > 1 {
		slices.Sort(slots)
		slots = slices.Compact(slots)
	}
	for _, s := range slots {
		l.slots[s].Lock()
	}
	return slots
}

// Release unlocks slots returned by Acquire.
func (l *Latches) Release(slots []uint32) {
	for i := len(slots) - 1; i >= 0; i-- {
		l.slots[slots[i]].Unlock()
	}
}
