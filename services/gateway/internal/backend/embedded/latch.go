package embedded

import (
	"hash/maphash"
	"slices"
	"sync"
)

const latchSlots = 4096

// latches serialise Updates that share a key. Keys hash onto a fixed set of
// mutexes; an Update locks its slots in ascending order, so two multi-key commands
// can never wait on each other in a cycle.
type latches struct {
	seed  maphash.Seed
	slots [latchSlots]sync.Mutex
}

func newLatches() *latches { return &latches{seed: maphash.MakeSeed()} }

// acquire locks the slots of keys and returns them for release. buf is scratch
// space the result may reuse.
func (l *latches) acquire(keys [][]byte, buf []uint32) []uint32 {
	slots := buf[:0]
	for _, k := range keys {
		slots = append(slots, uint32(maphash.Bytes(l.seed, k)%latchSlots))
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

func (l *latches) release(slots []uint32) {
	for i := len(slots) - 1; i >= 0; i-- {
		l.slots[slots[i]].Unlock()
	}
}
