package kvsvc

import (
	"hash/maphash"
	"slices"
	"sync"
)

const latchSlots = 4096

// latches serialise requests that share a key. Keys hash onto a fixed set
// of mutexes, taken in slot order so that two requests never deadlock;
// unrelated keys sharing a slot only cost a little waiting.
type latches struct {
	seed  maphash.Seed
	slots [latchSlots]sync.Mutex
}

func newLatches() *latches { return &latches{seed: maphash.MakeSeed()} }

// acquire locks the slots of keys and returns them for release.
func (l *latches) acquire(keys [][]byte) []uint32 {
	slots := make([]uint32, 0, len(keys))
	for _, k := range keys {
		slots = append(slots, uint32(maphash.Bytes(l.seed, k)%latchSlots))
	}
	slices.Sort(slots)
	slots = slices.Compact(slots)
	for _, s := range slots {
		l.slots[s].Lock()
	}
	return slots
}

func (l *latches) release(slots []uint32) {
	for i := len(slots) - 1; i >= 0; i-- {
		l.slots[slots[i]].Unlock()
	}
}
