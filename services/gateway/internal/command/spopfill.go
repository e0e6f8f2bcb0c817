package command

import (
	"expvar"
	"math/rand/v2"

	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// SPOP samples filled by SADD (docs/architecture.md, "Pop batches"). A set
// with no kept sample pays for its first SPOP with a scan of every member
// (sampleMembers): 63 000 members, ~20 ms, a third of the CPU of the 2 000
// pops that follow it in scripts/bench-collections.sh, on a set that SADD
// had just built through this very executor. So a set's SADDs, from the
// one that created it, keep a reservoir of its members (Algorithm R: the
// i-th member added replaces a random one of the spopFillMax with
// probability spopFillMax/i), a uniform sample of every member the set
// has ever had as long as every member was offered to it and none was
// removed. The first SPOP adopts it as the set's sample, in random order,
// instead of scanning.
//
// The chain of Stamps tells whether that holds: the fill remembers the
// Stamp its last SADD wrote, and a SADD or SPOP that finds another one
// (anything else wrote the set: SREM, SMOVE, a STORE, another gateway, a
// SADD whose transaction was retried or never committed) drops the fill,
// and the set is scanned as before. So does a new version of the key
// (DEL, expiry, overwrite), and the run ahead of a raft transaction
// offers nothing (its writes are undone). A fill lives until its set's
// first SPOP; the executor keeps at most popEntries, dropping the one
// that has seen the fewest members for a newly created set, so that the
// many small sets a workload creates do not push out the reservoir of a
// big one being built.

const (
	// spopFillMax is the most members a fill holds: the pops a sample
	// adopted from it serves before a scan (SPOP's sample of a set of n
	// members is n/16 up to 16 384: this is that for 64 000 members).
	spopFillMax = 4096
)

// spopFillSize is spopFillMax; tests lower it to see replacements in
// small sets.
var spopFillSize = spopFillMax

var (
	// popFillAdopted counts the SPOP samples adopted from a fill (no
	// scan), popFillDropped the fills dropped because the set was
	// written by something else.
	popFillAdopted = new(expvar.Int)
	popFillDropped = new(expvar.Int)
)

func init() {
	popVars.Set("fill_adopted", popFillAdopted)
	popVars.Set("fill_dropped", popFillDropped)
}

// spopFill is a set's reservoir of members, kept by its SADDs.
type spopFill struct {
	version, stamp uint64
	// seen is how many members were offered.
	seen  uint64
	elems [][]byte
	bytes int
}

// offer is Algorithm R's step for a member added to the set.
func (f *spopFill) offer(m []byte) {
	f.seen++
	if len(f.elems) < spopFillSize {
		f.elems = append(f.elems, bytesClone(m))
		f.bytes += len(m) + 24
		return
	}
	if j := rand.Uint64N(f.seen); j < uint64(len(f.elems)) {
		f.bytes += len(m) - len(f.elems[j])
		f.elems[j] = bytesClone(m)
	}
}

// saddOffer records a SADD of key's set that wrote meta (after save),
// having found the Stamp before (0: it created the set), and added the
// members added (each new to the set).
func (pc *popCache) saddOffer(key string, created bool, before uint64, meta *keyspace.Meta, added [][]byte) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	f := pc.fills[key]
	switch {
	case created:
		// (A sample of an earlier incarnation goes at the next pop: its
		// version is not this one.)
		f = &spopFill{version: meta.Version}
		pc.keepFill(key, f)
	case f == nil:
		return
	case f.version != meta.Version || f.stamp != before:
		popFillDropped.Add(1)
		delete(pc.fills, key)
		return
	}
	for _, m := range added {
		f.offer(m)
	}
	if f.bytes > popBatchBytes {
		// Long members: the adopted sample would not be kept either.
		delete(pc.fills, key)
		return
	}
	f.stamp = meta.Stamp
}

// keepFill keeps f as key's fill, making room by dropping the fill that
// has seen the fewest members; pc.mu is held.
func (pc *popCache) keepFill(key string, f *spopFill) {
	if pc.fills == nil {
		pc.fills = make(map[string]*spopFill)
	}
	if _, ok := pc.fills[key]; !ok && len(pc.fills) >= popEntries {
		var victim string
		least := ^uint64(0)
		for k, o := range pc.fills {
			if o.seen < least {
				victim, least = k, o.seen
			}
		}
		delete(pc.fills, victim)
	}
	pc.fills[key] = f
}

// spopAdopt makes key's fill the set's sample for a pop that read meta and
// found no usable sample, if the fill is of this very state (its Stamp):
// its members in random order, served as a drawn sample is. It reports
// whether it did.
func (pc *popCache) spopAdopt(key string, meta *keyspace.Meta) bool {
	pc.mu.Lock()
	f := pc.fills[key]
	if f == nil {
		pc.mu.Unlock()
		return false
	}
	delete(pc.fills, key)
	if f.version != meta.Version || f.stamp != meta.Stamp || len(f.elems) == 0 {
		popFillDropped.Add(1)
		pc.mu.Unlock()
		return false
	}
	pc.mu.Unlock()
	rand.Shuffle(len(f.elems), func(x, y int) { f.elems[x], f.elems[y] = f.elems[y], f.elems[x] })
	popFillAdopted.Add(1)
	pc.spopKeep(key, &spopSample{elems: f.elems}, meta, false)
	return true
}
