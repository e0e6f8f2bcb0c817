package command

import (
	"encoding/binary"
	"expvar"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Pops without a read per pop (docs/architecture.md, "Pop batches"). A
// ZPOPMIN sought the lowest index entry, and an SPOP walked the member
// keyspace (randpick.go), for every pop: each a Pebble iterator and its
// seeks through the memtables, which outweighed the pop's writes (ZPOPMIN
// 30 µs of CPU, SPOP 100, against 9 for a SET). Instead one read serves
// many pops: the elements the next pops will take are read ahead and kept
// in the executor, by collection, with the version and the record's Stamp
// they were read at. Every write of a collection redraws the Stamp (save),
// so a batch is only used on the very state it was read from; a pop
// carries its batch over its own removal to the Stamp it wrote. Any other
// write (another command, another gateway on the raft backend, a retried
// or failed transaction whose Stamp never committed) leaves the batch's
// Stamp behind, and the next pop reads afresh.
//
//   - ZPOPMIN and ZPOPMAX: the zpopAhead lowest (highest) index entries,
//     read with the seek the pop makes anyway, in pop order.
//   - SPOP: a uniform random sample of the set's members, in random order,
//     drawn by one scan of the whole set (reservoir sampling): popping it
//     in order is distributed exactly as successive uniform draws without
//     replacement, which the walks only approximate. The scan is O(n), so
//     the sample holds n/16 members, up to n/4 as a run of pops goes on
//     (spopSampleSize: one scan serves that many pops, 4 to 16 steps per
//     pop, plus the deleted members of earlier pops, which the next scan
//     steps over), and it is drawn only for a
//     set popped without other writes in between (popHistory): a set that
//     is written between pops keeps the walks, which cost no O(n). A set
//     whose last run of pops was long enough to repay a scan is sampled
//     at its next pop even if it was written since (a load, then pops):
//     the runs of pops of a set are taken to be alike. A set of more than
//     spopScanMax members is never sampled.
//
// The cache is bounded: popEntries batches of at most popBatchBytes each.

var (
	popVars = expvar.NewMap("nokv_coll_pops")
	// popBatchHits counts pops served from a kept batch, popBatchReads the
	// reads that filled one.
	popBatchHits  = new(expvar.Int)
	popBatchReads = new(expvar.Int)
)

func init() {
	popVars.Set("batch_hits", popBatchHits)
	popVars.Set("batch_reads", popBatchReads)
}

const (
	// zpopAhead is how many index entries a ZPOPMIN or ZPOPMAX reads: the
	// one it pops and the next pops' (one seek, then a step each).
	zpopAhead = 64
	// An SPOP sample holds between count/spopSampleFew and
	// count/spopSampleDiv members (spopSampleSize), within
	// [spopSampleMin, spopSampleMax].
	spopSampleDiv = 4
	spopSampleFew = 16
	spopSampleMin = 64
	spopSampleMax = 16384
	// popEntries bounds the batches kept, popBatchBytes each one's bytes.
	popEntries    = 64
	popBatchBytes = 1 << 20
	// popHistories bounds the sets whose pop streak is remembered.
	popHistories = 4096
	// spopScanMax is the largest set SPOP samples: the scan runs inside
	// one command, and a bigger set's would hold the event loop (and the
	// other clients) for over ~0.1 s; its pops walk.
	spopScanMax = 1 << 18
)

// usePopBatches lets tests run pops without batches (the walks, one seek
// per pop).
var usePopBatches = true

// popBatch is the elements the next pops of one collection take, at its
// version and Stamp: next[i:] in pop order.
type popBatch struct {
	version, stamp uint64
	elems          [][]byte
	// vals are the elements' values where they matter (a sorted set's
	// index entries: -0's bits), else nil.
	vals  [][]byte
	i     int
	bytes int
}

// popHistory is what the last SPOP of a set left (version and Stamp) and
// how many pops in a row it had made with no other write in between.
type popHistory struct {
	version, stamp uint64
	streak         uint64
	// last is the length of the run of pops before this one (streak's
	// predecessor, ended by another write).
	last uint64
	// noSample: a sample of the set did not fit in popBatchBytes (long
	// members); its pops walk.
	noSample bool
}

// popCache holds the executor's pop batches and SPOP histories.
type popCache struct {
	mu      sync.Mutex
	batches map[string]*popBatch
	hist    map[string]popHistory
	// sampleAfter is the backend's spopSampleAfter (0: the embedded
	// backend's), set before use.
	sampleAfter uint64
}

// walkOrScan is the backend's spopSampleAfter: a set written since its
// last pop is sampled when its runs of pops are at least count/walkOrScan
// long, and walks otherwise.
func (pc *popCache) walkOrScan() uint64 {
	if pc.sampleAfter == 0 {
		return spopSampleAfter
	}
	return pc.sampleAfter
}

// popKey is the cache key of c's pops of kind (for a sorted set's index,
// dir tells ZPOPMIN from ZPOPMAX).
func (c *coll) popKey(kind, dir byte) string {
	// A pop asks for its key twice (take, then put after save): built
	// once per coll, in one allocation.
	if c.popKeyStr != "" && c.popKeyKind == kind && c.popKeyDir == dir {
		return c.popKeyStr
	}
	var b strings.Builder
	b.Grow(1 + 4 + len(c.key) + 1)
	b.WriteByte(kind)
	var db [4]byte
	binary.BigEndian.PutUint32(db[:], c.db)
	b.Write(db[:])
	b.Write(c.key)
	b.WriteByte(dir)
	c.popKeyStr, c.popKeyKind, c.popKeyDir = b.String(), kind, dir
	return c.popKeyStr
}

// take removes and returns the batch of key if it was read at c's
// version and Stamp and still holds an element.
func (pc *popCache) take(key string, version, stamp uint64) *popBatch {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	b, ok := pc.batches[key]
	if !ok {
		return nil
	}
	delete(pc.batches, key)
	if b.version != version || b.stamp != stamp || b.i >= len(b.elems) {
		return nil
	}
	return b
}

// put keeps b for key at version and stamp (the record's after the pop).
func (pc *popCache) put(key string, version, stamp uint64, b *popBatch) {
	if b == nil || b.i >= len(b.elems) || b.bytes > popBatchBytes {
		return
	}
	b.version, b.stamp = version, stamp
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.batches == nil {
		pc.batches = make(map[string]*popBatch)
	}
	if _, ok := pc.batches[key]; !ok && len(pc.batches) >= popEntries {
		for old := range pc.batches {
			delete(pc.batches, old)
			break
		}
	}
	pc.batches[key] = b
}

// streak returns how many pops in a row key's set had before this one with
// no other write in between (0 after another write), as of version and
// stamp, how many the run before had (last: the one another write ended),
// whether the set was seen before, and whether its sample was found too
// big to keep (noSample).
func (pc *popCache) streak(key string, version, stamp uint64) (prev, last uint64, seen, noSample bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	h, ok := pc.hist[key]
	if !ok {
		return 0, 0, false, false
	}
	if h.version != version || h.stamp != stamp {
		return 0, h.streak, true, h.noSample
	}
	return h.streak, h.last, true, h.noSample
}

// popped records that key's set was popped to version and stamp, the
// streak-th pop in a row after a run of last.
func (pc *popCache) popped(key string, version, stamp, streak, last uint64, noSample bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.hist == nil {
		pc.hist = make(map[string]popHistory)
	}
	if _, ok := pc.hist[key]; !ok && len(pc.hist) >= popHistories {
		for old := range pc.hist {
			delete(pc.hist, old)
			break
		}
	}
	pc.hist[key] = popHistory{version: version, stamp: stamp, streak: streak, last: last, noSample: noSample}
}

// next returns the batch's next element and moves past it.
func (b *popBatch) next() []byte {
	e := b.elems[b.i]
	b.elems[b.i] = nil
	b.i++
	return e
}

// left is how many elements the batch still holds.
func (b *popBatch) left() int { return len(b.elems) - b.i }

// spopSampleSize is the sample an SPOP draws from a set of n members
// whose run of pops so far, or the run before it, had run pops: twice
// that, within [n/spopSampleFew, n/spopSampleDiv], [spopSampleMin,
// spopSampleMax] and n. The sample costs its scan of n members and the
// reservoir's work on k·(1+ln(n/k)) of them; a run short enough for a
// sixteenth of the set (the 2 000 pops of scripts/bench-collections.sh)
// draws that, ~5 µs per pop less than a quarter costs it, and a run that
// goes on past it draws bigger samples as it goes (a run through the set
// then scans it a few times, not dozens; each scan also steps over the
// members popped before it: a sixteenth each time scanned a set of
// 63 000 members five times for 20 000 pops, the last time over 16 000
// deleted members).
func spopSampleSize(n, run uint64) int {
	k := min(max(2*run, n/spopSampleFew), n/spopSampleDiv)
	return int(min(max(k, spopSampleMin), spopSampleMax, n))
}

// sampleMembers draws k distinct members of c uniformly, in random order,
// with one scan (reservoir sampling: the i-th member replaces a random
// one of the k with probability k/i).
func (c *coll) sampleMembers(k int) (*popBatch, error) {
	b := &popBatch{elems: make([][]byte, 0, k)}
	// Short members are copied into shared chunks, not one allocation
	// each: a scan keeps k·(1+ln(n/k)) of them along the way (every
	// replacement is a copy), 37 000 for a quarter of 63 000, and their
	// allocations cost ~3 µs per pop over the 2 000 pops of
	// scripts/bench-collections.sh. What is kept is copied out at the end,
	// so the chunks (and the replaced members in them) are not kept.
	var chunk []byte
	keep := func(m []byte) []byte {
		if len(m) > sampleShort {
			return bytesClone(m)
		}
		if cap(chunk)-len(chunk) < len(m) {
			chunk = make([]byte, 0, sampleChunk)
		}
		chunk = append(chunk, m...)
		return chunk[len(chunk)-len(m) : len(chunk) : len(chunk)]
	}
	i := 0
	err := c.scan(keyspace.KindSetMember, nil, 0, func(m, _ []byte) bool {
		i++
		if len(b.elems) < k {
			b.elems = append(b.elems, keep(m))
		} else if j := rand.IntN(i); j < k {
			b.elems[j] = keep(m)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	rand.Shuffle(len(b.elems), func(x, y int) { b.elems[x], b.elems[y] = b.elems[y], b.elems[x] })
	// A prefix of a sample in random order is a smaller one: long
	// members keep as many as fit.
	short := 0
	for j, e := range b.elems {
		if b.bytes+len(e)+24 > popBatchBytes {
			clear(b.elems[j:])
			b.elems = b.elems[:j]
			break
		}
		b.bytes += len(e) + 24
		if len(e) <= sampleShort {
			short += len(e)
		}
	}
	if chunk != nil {
		out := make([]byte, 0, short)
		for j, e := range b.elems {
			if len(e) <= sampleShort {
				out = append(out, e...)
				b.elems[j] = out[len(out)-len(e) : len(out) : len(out)]
			}
		}
	}
	popBatchReads.Add(1)
	return b, nil
}

// sampleShort is the longest member sampleMembers copies into a shared
// chunk of sampleChunk bytes (a longer one gets its own allocation, so
// that the replaced members a scan leaves behind in the chunks stay
// under k·(1+ln(n/k))·sampleShort bytes: 4 MiB at most).
const (
	sampleShort = 64
	sampleChunk = 64 << 10
)

// spopSampleAfter: a set written between pops is sampled again only once
// it has had count/spopSampleAfter pops in a row (the scan then costs at
// most spopSampleAfter steps per pop, if pops go on as long), or at once
// if its last run of pops was that long (a set loaded, then popped:
// without it each load's pops walked for count/spopSampleAfter pops, at
// dozens of seeks each, before sampling: 2 000 SPOPs after a load cost
// 3 times the first 2 000's, docs/benchmarks.md). Runs of pops alike
// keep the bound; a long run followed by short ones costs one scan more
// per long run, which that run repaid.
//
// On the raft backend (spopSampleAfterRemote) every seek of a walk is a
// request to a store and every scanned member a few µs of the stores' and
// the gateway's CPU: a walk (a dozen seeks and more) cost ~10 ms of CPU
// over all processes, a scanned member ~6 µs, so a scan repays itself
// against the walks as soon as the run has count/1024 pops. With 64 a set
// SADDed to between runs of 200 SPOPs (scripts/bench-collections.sh with
// RUNS > 1, or SADD then SPOP twice) walked every pop: 10 ms per SPOP of
// a set of 33 000 members, against ~1 ms sampling.
const (
	spopSampleAfter       = 64
	spopSampleAfterRemote = 1024
)

// spopState is what one SPOP knows of its set's pops (popHistory).
type spopState struct {
	key        string
	prev, last uint64
	noSample   bool
}

// spopBatched pops one member of the set c from its sample, drawing one
// when needed and worth it: ok is false when this pop is to walk instead
// (the caller then pops by walks and calls spopDone).
func (c *coll) spopBatched() (m []byte, st spopState, ok bool, err error) {
	st.key = c.popKey(keyspace.KindSetMember, 0)
	var seen bool
	st.prev, st.last, seen, st.noSample = c.pops.streak(st.key, c.meta.Version, c.meta.Stamp)
	b := c.pops.take(st.key, c.meta.Version, c.meta.Stamp)
	if b == nil {
		after := c.pops.walkOrScan()
		if st.noSample || c.meta.Count > spopScanMax || (seen && max(st.prev, st.last)*after < c.meta.Count) {
			return nil, st, false, nil
		}
		want := spopSampleSize(c.meta.Count, max(st.prev, st.last))
		if b, err = c.sampleMembers(want); err != nil {
			return nil, st, false, err
		}
		if uint64(b.left())*after < c.meta.Count {
			// Long members: a sample of a few would cost a scan per few
			// pops (more than walkOrScan steps each). This one serves
			// its pops; the next pops walk.
			st.noSample = true
		}
		if b.left() == 0 {
			return nil, st, false, nil
		}
	} else {
		popBatchHits.Add(1)
	}
	// No read of the member: the sample was read at this very state (the
	// Stamp: nothing but this set's own pops, which took their members
	// out of it, wrote the set since), so every member left in it is in
	// the set. (A kept walk's draw is read first: its levels are carried
	// over pops by rule, not read.)
	m = b.next()
	c.remove(keyspace.KindSetMember, m)
	c.meta.Count--
	c.save()
	if !st.noSample && c.meta.Count > 0 {
		c.pops.put(st.key, c.meta.Version, c.meta.Stamp, b)
	}
	c.spopDone(st)
	return m, st, true, nil
}

// spopDone records a pop of one member of c (after save).
func (c *coll) spopDone(st spopState) {
	c.pops.popped(st.key, c.meta.Version, c.meta.Stamp, st.prev+1, st.last, st.noSample)
}
