package command

import (
	"encoding/binary"
	"errors"
	"expvar"
	"math/rand/v2"
	"strings"
	"sync"

	"github.com/nokv/nokv/services/gateway/internal/backend"
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
//     steps over). Unlike the other batches a sample outlives other
//     writes of its set (spopSample): once the set was written by
//     anything but the sample's own pops, each pop reads its member first
//     and skips one that is gone, and the sample is dropped once the
//     members added since (which it cannot draw) pass count/16. A set
//     with no sample draws one when its last sample served enough pops to
//     repay the scan, or when the pops that walked since have cost as
//     much (popHistory); a set of more than spopScanMax members is never
//     sampled.
//
// The cache is bounded: popEntries batches and popEntries SPOP samples of
// at most popBatchBytes each.

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
	// popHistories bounds the sets whose SPOP history is remembered.
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

// popCache holds the executor's pop batches and SPOP histories.
type popCache struct {
	mu      sync.Mutex
	batches map[string]*popBatch
	// samples are the kept SPOP samples, by set (spopSample).
	samples map[string]*spopSample
	// fills are the reservoirs SADD keeps for sets not yet popped
	// (spopfill.go).
	fills map[string]*spopFill
	hist  map[string]popHistory
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

// spopSampleAfter: a set with no kept sample is sampled again (one scan of
// its count members) once the pops of its last sample, or the pops that
// walked since that sample ended, reach count/spopSampleAfter: a sample
// that served that many pops repaid its scan (at most spopSampleAfter
// steps per pop), and the walks since have cost as much as a scan (a set
// whose samples go stale after a few pops each, many writes per pop,
// walks, ski-rental style). A set seen for the first time is sampled at
// once. A set loaded, then popped, samples at the first pop after the
// load: its last sample served the last run of pops (without that each
// load's pops walked for count/spopSampleAfter pops, at dozens of seeks
// each: 2 000 SPOPs after a load cost 3 times the first 2 000's,
// docs/benchmarks.md).
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

// A kept sample across other writes (docs/architecture.md, "Pop
// batches"). The sample is a uniform sample of the members the set had
// when it was drawn (S0), in random order. Other writes of the set (SADD,
// SREM, another gateway's pops, a pop retried after a conflict) do not
// drop it:
//
//   - while nothing but this sample's own pops wrote the set (each pop
//     finds the Stamp the previous one wrote), every member left in the
//     sample is in the set, and a pop takes the next one with no read;
//   - once a pop finds another Stamp (verify, for good: the member a
//     write removed may be any of those left), every pop reads its member
//     in its own transaction first (one point read; the pop writes that
//     sub-key anyway, so a concurrent removal conflicts) and skips a
//     member that is gone (at most spopMaxMisses per pop); the next
//     member left is then a uniform draw from the members of S0 still in
//     the set, whatever removed the others (their removals do not depend
//     on the sample's order);
//   - members added since the sample are not in it and wait for the next
//     one: a sample is dropped once the members added since are estimated
//     at more than count/spopStaleDiv (stale), so each pop's draw is
//     within total variation count/spopStaleDiv of uniform over the whole
//     set (half of that on average over a sample's life), and no member
//     waits longer than one sample's life. The estimate is the count now
//     less the members of S0 that can still be in the set: count0 less
//     this gateway's pops from the sample (attempts that rolled back
//     included: an overestimate of the adds, so an earlier new sample),
//     less the share of S0 the verifying reads found gone (other gateways'
//     pops, SREM). Exact when this gateway makes every removal.
//
// Concurrent pops through one gateway share the sample (each takes the
// next member under the cache's lock), so a pop never waits for another
// or walks because the sample is in use; on the raft backend two
// transactions popping the same set conflict on its record, and the one
// retried runs afresh: it finds a Stamp that is not the one the sample
// last saw (the other's, or one that never committed), and verifies. It
// first pops the member its failed run took (spopBatched's retry), if
// that is still in the set (read first), so a retry loses no member from
// the sample (a member a command took and then never popped, its client
// gone or its run ahead's guess wrong, waits for the next sample like an
// added one; counted as popped, so the estimate stays an overestimate).
const (
	// spopStaleDiv: a sample is dropped once the members added since
	// are estimated at more than count/spopStaleDiv. With one SADD per
	// SPOP (a job queue) that is about when a sample of count/16 is used
	// up anyway; a bigger fraction would keep samples longer when writes
	// outnumber pops, at more unfairness to the added members.
	spopStaleDiv = 16
	// spopMaxMisses bounds the members one pop reads and finds gone
	// before it drops the sample (most of it is gone: a new one is drawn,
	// or the pop walks).
	spopMaxMisses = 8
	// spopMissPrior damps the share of S0 found gone while few members
	// were read: the first miss counts as 1/spopMissPrior of S0 gone,
	// not all of it.
	spopMissPrior = 32
)

var (
	// popSampleVerified counts the members SPOPs read to check that they
	// are still in the set (a sample kept across other writes),
	// popSampleGone those found gone, popSampleStale the samples dropped
	// because too many members were added since.
	popSampleVerified = new(expvar.Int)
	popSampleGone     = new(expvar.Int)
	popSampleStale    = new(expvar.Int)
	// popSampleAhead counts the SPOPs that named their member in the raft
	// backend's run ahead (spopAhead), popSampleRetaken those that popped
	// the member their command's earlier, uncommitted run had taken.
	popSampleAhead   = new(expvar.Int)
	popSampleRetaken = new(expvar.Int)
)

func init() {
	popVars.Set("sample_verified", popSampleVerified)
	popVars.Set("sample_gone", popSampleGone)
	popVars.Set("sample_stale", popSampleStale)
	popVars.Set("sample_ahead", popSampleAhead)
	popVars.Set("sample_retaken", popSampleRetaken)
}

// spopSample is a kept SPOP sample of one set: elems[i:] in pop order.
type spopSample struct {
	version uint64
	// stamp is the Stamp the last pop from the sample wrote (at first the
	// one the sample was read at).
	stamp uint64
	// verify: a pop found another Stamp, so every pop reads its member.
	verify bool
	elems  [][]byte
	i      int
	// count0 is the set's count when the sample was drawn, popped the
	// pops the sample served (or began: a rolled back one counts),
	// tried and missed the members read to verify them and those gone.
	count0, popped uint64
	tried, missed  uint64
}

// stale reports whether the members added since s was drawn are
// estimated at more than count/spopStaleDiv (see above).
func (s *spopSample) stale(count uint64) bool {
	alive := float64(s.count0 - min(s.popped, s.count0))
	if s.missed > 0 {
		alive *= 1 - float64(s.missed)/float64(max(s.tried, spopMissPrior))
	}
	return (float64(count)-alive)*spopStaleDiv > float64(count)
}

// popHistory is what a set's SPOPs left for the next ones to choose
// between a new sample and walks (spopSampleAfter).
type popHistory struct {
	// served is how many pops the set's last sample served, walks how
	// many pops walked since it ended.
	served, walks uint64
	// noSample: a sample of the set did not fit in popBatchBytes (long
	// members); its pops walk.
	noSample bool
}

// spopNext takes the next member of key's kept sample for a pop that
// read the set's record meta: the sample, and whether the member is to be
// read first (verify). m is nil when there is no usable sample: none, of
// another version, stale, or used up (the last three dropped).
func (pc *popCache) spopNext(key string, meta *keyspace.Meta) (m []byte, s *spopSample, verify bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s = pc.samples[key]
	if s == nil {
		return nil, nil, false
	}
	if s.stamp != meta.Stamp {
		s.verify = true
	}
	switch {
	case s.version != meta.Version, s.i >= len(s.elems):
		pc.dropSample(key, s)
		return nil, nil, false
	case s.verify && s.stale(meta.Count):
		popSampleStale.Add(1)
		pc.dropSample(key, s)
		return nil, nil, false
	}
	m = s.elems[s.i]
	s.elems[s.i] = nil
	s.i++
	return m, s, s.verify
}

// dropSample removes key's sample s, noting how many pops it served (the
// next sample's size and whether to draw it); pc.mu is held.
func (pc *popCache) dropSample(key string, s *spopSample) {
	if pc.samples[key] != s {
		return // already dropped, or replaced by a newer one
	}
	delete(pc.samples, key)
	h := pc.hist[key]
	h.served, h.walks = s.popped, 0
	pc.setHist(key, h)
}

// setHist records h for key; pc.mu is held.
func (pc *popCache) setHist(key string, h popHistory) {
	if pc.hist == nil {
		pc.hist = make(map[string]popHistory)
	}
	if _, ok := pc.hist[key]; !ok && len(pc.hist) >= popHistories {
		for old := range pc.hist {
			delete(pc.hist, old)
			break
		}
	}
	pc.hist[key] = h
}

// spopChecked records that a pop from s read a member to verify it, and
// whether it was gone; a pop that finds spopMaxMisses gone drops s.
func (pc *popCache) spopChecked(key string, s *spopSample, gone bool, misses int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s.tried++
	popSampleVerified.Add(1)
	if gone {
		s.missed++
		popSampleGone.Add(1)
		if misses >= spopMaxMisses {
			pc.dropSample(key, s)
		}
	}
}

// spopTook records a pop from s that wrote meta (after save): the next
// pop that finds meta's Stamp knows nothing else wrote the set since.
func (pc *popCache) spopTook(key string, s *spopSample, meta *keyspace.Meta) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s.popped++
	s.stamp = meta.Stamp
	if meta.Count == 0 || s.i >= len(s.elems) {
		pc.dropSample(key, s)
	}
}

// spopRetook records a pop of key's set that popped again the member an
// earlier run of the same command took from the sample (spopBatched's
// retry), from the state whose Stamp was before to meta (after save).
// The member is no longer in the sample, so the members left in it are as
// they were: the chain of Stamps goes on if before was its last link.
func (pc *popCache) spopRetook(key string, before uint64, meta *keyspace.Meta) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s := pc.samples[key]
	if s == nil || s.version != meta.Version {
		return
	}
	if s.stamp != before {
		s.verify = true
	}
	s.stamp = meta.Stamp
}

// spopPlan tells a pop of key's set (of count members), which found no
// usable sample, whether to draw one (and its size: spopSampleSize) or to
// walk (spopSampleAfter).
func (pc *popCache) spopPlan(key string, count uint64) (sample bool, want int) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	h, seen := pc.hist[key]
	if h.noSample || count > spopScanMax {
		return false, 0
	}
	after := pc.walkOrScan()
	if seen && max(h.served, h.walks)*after < count {
		return false, 0
	}
	return true, spopSampleSize(count, h.served)
}

// spopWalked records a pop of key's set that walked.
func (pc *popCache) spopWalked(key string) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	h := pc.hist[key]
	h.walks++
	pc.setHist(key, h)
}

// spopKeep keeps s, drawn by a pop of key's set at meta (before its
// pop), as the set's sample; tooFew: s holds too few members to be worth
// its scan again (long members), so it is not kept and the set's pops
// walk from now on.
func (pc *popCache) spopKeep(key string, s *spopSample, meta *keyspace.Meta, tooFew bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if tooFew {
		pc.setHist(key, popHistory{noSample: true})
		return
	}
	if len(s.elems) == 0 {
		return
	}
	s.version, s.stamp, s.count0 = meta.Version, meta.Stamp, meta.Count
	if old := pc.samples[key]; old != nil {
		pc.dropSample(key, old) // a concurrent pop's: this one is newer
	}
	if pc.samples == nil {
		pc.samples = make(map[string]*spopSample)
	}
	if len(pc.samples) >= popEntries {
		for old, os := range pc.samples {
			pc.dropSample(old, os)
			break
		}
	}
	pc.samples[key] = s
	h := pc.hist[key]
	h.walks = 0
	pc.setHist(key, h)
}

// spopBatched pops one member of the set c from its kept sample, or from a
// new one when there is none and one is worth drawing: ok is false when
// this pop is to walk instead (the caller then pops by walks and calls
// spopWalked). retry is the member this command's earlier run took from a
// sample, if any: that run did not commit (the transaction is run again),
// so the member is popped now if it is still in the set (read first),
// rather than lost to the sample until the next one.
func (c *coll) spopBatched(retry []byte) (m []byte, ok bool, err error) {
	key := c.popKey(keyspace.KindSetMember, 0)
	if retry != nil {
		_, found, err := c.get(keyspace.KindSetMember, retry)
		if err != nil {
			return nil, false, err
		}
		if found {
			popSampleRetaken.Add(1)
			before := c.meta.Stamp
			c.spopRemove(retry)
			c.pops.spopRetook(key, before, &c.meta)
			return retry, true, nil
		}
	}
	for misses := 0; ; {
		m, s, verify := c.pops.spopNext(key, &c.meta)
		if m == nil {
			break
		}
		if verify {
			_, found, err := c.get(keyspace.KindSetMember, m)
			if err != nil {
				return nil, false, err
			}
			if !found {
				misses++
				c.pops.spopChecked(key, s, true, misses)
				continue
			}
			c.pops.spopChecked(key, s, false, misses)
		}
		// Unverified: the sample was read at this very state, or at one
		// that only its own pops wrote since (the Stamp), so every member
		// left in it is in the set.
		popBatchHits.Add(1)
		c.spopRemove(m)
		c.pops.spopTook(key, s, &c.meta)
		return m, true, nil
	}
	if c.pops.spopAdopt(key, &c.meta) {
		return c.spopBatched(nil)
	}
	sample, want := c.pops.spopPlan(key, c.meta.Count)
	if !sample {
		return nil, false, nil
	}
	b, err := c.sampleMembers(want)
	if err != nil {
		return nil, false, err
	}
	if b.left() == 0 {
		return nil, false, nil
	}
	// The first member is this pop's; the rest are kept for the next.
	m = b.next()
	s := &spopSample{elems: b.elems[b.i:]}
	// Long members: a sample of a few would cost a scan per few pops
	// (more than walkOrScan steps each). This one serves its first pop
	// only; the next pops walk.
	tooFew := uint64(b.left()+1)*c.pops.walkOrScan() < c.meta.Count
	c.pops.spopKeep(key, s, &c.meta, tooFew)
	c.spopRemove(m)
	c.pops.spopTook(key, s, &c.meta)
	return m, true, nil
}

// errNotAhead stops an SPOP's run ahead (backend.AheadTxn) where it would
// take from an executor cache: the real run does that.
var errNotAhead = errors.New("SPOP: not run ahead")

// runningAhead tells whether tx is a run ahead (backend.AheadTxn).
func runningAhead(tx backend.Txn) bool {
	a, ok := subTxn(tx).(backend.AheadTxn)
	return ok && a.RunningAhead()
}

// spopPeekMax is how many members of the kept sample an SPOP's run ahead
// looks at: the pops of one combined transaction (at most 64 commands)
// each take the next one, skipping those the earlier ones removed.
const spopPeekMax = 64

// spopAhead is spopBatched's run ahead (retry: the same): it pops, in the transaction only
// (the run's writes are undone), the first member of the kept sample that
// the transaction has not removed, reading each as a verifying pop does;
// the reads are guessed and noted, and read in one batch with the other
// commands' before the real run, whose read of its member the batch then
// answers. It takes nothing from the sample; with none it stops
// (errNotAhead), and the real run samples or walks.
func (c *coll) spopAhead(retry []byte) ([]byte, error) {
	peek := c.pops.spopPeek(c.popKey(keyspace.KindSetMember, 0), c.meta.Version, spopPeekMax)
	if retry != nil {
		peek = append([][]byte{retry}, peek...) // spopBatched reads it first
	}
	for _, m := range peek {
		_, found, err := c.get(keyspace.KindSetMember, m)
		if err != nil {
			return nil, err
		}
		if found {
			popSampleAhead.Add(1)
			c.spopRemove(m)
			return m, nil
		}
	}
	return nil, errNotAhead
}

// spopPeek returns the next n members of key's kept sample of the set's
// version, without taking them.
func (pc *popCache) spopPeek(key string, version uint64, n int) [][]byte {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	s := pc.samples[key]
	if s == nil || s.version != version {
		return nil
	}
	return append([][]byte(nil), s.elems[s.i:min(s.i+n, len(s.elems))]...)
}

// spopRemove removes member m of c, known to be in the set.
func (c *coll) spopRemove(m []byte) {
	c.remove(keyspace.KindSetMember, m)
	c.meta.Count--
	c.save()
}
