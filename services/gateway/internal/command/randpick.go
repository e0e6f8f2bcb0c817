package command

import (
	"bytes"
	"encoding/binary"
	"errors"
	"expvar"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Random elements (SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER) without
// reading the collection. (SPOP without a count mostly pops a sample drawn
// by one read instead, kept across other writes of the set: popcache.go;
// it walks when no sample is worth drawing.) The elements of one kind are a sorted range of
// sub-keys and the store keeps no counts, so the element at a uniform
// position cannot be found without scanning to it (SPOP on 63k members
// was 73 pops/s that way). Instead a draw walks down the trie of the
// elements' bytes with seeks, and corrects the walk's bias by rejection
// (docs/architecture.md, "Random elements"):
//
//   - the current subtree is every element starting with a prefix (at
//     first the empty one); its two smallest elements are known (the
//     seek that entered it returned them);
//   - one element: that is the walk's result;
//   - else the subtree's children are the values that follow the prefix
//     (a byte, or "end" for an element equal to the prefix). Narrow ones
//     (spanning at most maxKids byte values: decimal digits) are drawn by
//     value in that window until a draw meets a gap, then listed; at most
//     maxKids others (hex, a sparse level of random bytes) are listed,
//     one forward seek each, and one is picked uniformly; more (a dense
//     level) are drawn by value in a window up to the largest child, each
//     weighing the gap below it (the smallest: the gap above it);
//   - descend into the child, multiplying the walk's probability q by the
//     child's (1/k, or gap/width).
//
// A walk ends at an element e with a known probability q(e); it is kept
// with probability min(1, 1/(n·q(e))), n being the metadata's count, or
// another walk is made (at most maxWalks, the last one then kept). So an
// element the walk favours (the "5" of "1".."5000", alone beside ten
// subtrees) is drawn as often as any, and the draw is exactly uniform
// whenever no element is walked to with less than 1/n (a full trie:
// "m:0000".."m:9999"). It is not exactly uniform in general: an element
// the walk reaches less often than 1/n stays under-drawn, and the others
// share its loss (TestRandomPickSkew measures it). Redis's own dict
// sampling is not perfectly fair either.
//
// Cost: O(depth) levels, depth being about log_fanout(n) bytes below the
// elements' common prefix, of a few seeks each (the largest child: one
// reverse seek on the embedded backend, a binary search of at most 8
// forward seeks on the raft backend, whose store seeks forward only; the
// drawn child; the child below it; a listing of at most maxKids+1, kept
// for the command's next draws), plus rejected walks. The embedded
// backend seeks on one iterator per command (backend.SubIterTxn).

var (
	randVars = expvar.NewMap("nokv_coll_random")
	// randDraws counts elements drawn, randWalks the walks they took and
	// randSeeks the walks' seeks.
	randDraws = new(expvar.Int)
	randWalks = new(expvar.Int)
	randSeeks = new(expvar.Int)
	// subKeysScanned counts the sub-keys every scan of a collection read
	// (walks included): what a command reads per element is what makes
	// it O(n) or not (tests bound it per SPOP).
	subKeysScanned = new(expvar.Int)
	// pickerStale counts SPOPs whose kept walk drew a member that was gone
	// (pickerCache; expected 0): the pop then walks afresh.
	pickerStale = new(expvar.Int)
)

func init() {
	randVars.Set("draws", randDraws)
	randVars.Set("walks", randWalks)
	randVars.Set("seeks", randSeeks)
	randVars.Set("subkeys_scanned", subKeysScanned)
	randVars.Set("kept_walk_stale", pickerStale)
}

// useSubIter lets tests run the forward-only walk (the raft backend's)
// on the embedded backend.
var useSubIter = true

const (
	// randPickFactor decides between walks and one scan for a count of
	// elements: walks when count*randPickFactor < n. A walk is dozens of
	// seeks, each worth many scanned elements.
	randPickFactor = 16
	// maxKids is the most children of a level picked from uniformly;
	// past it a level is dense and its child is drawn by byte value.
	maxKids = 16
	// maxWalks bounds the walks of one draw (rejection, above).
	maxWalks = 8
	// randSmall is the largest collection read whole to draw from.
	randSmall = 128
	// smallShare: a subtree the walk reaches with probability q is
	// expected to hold about count·q elements; when that is at most
	// smallShare it is read whole (at most smallSubtree elements: one
	// seek and a step per element) and one of its elements picked
	// uniformly, instead of walking its last levels at a few seeks each.
	// A seek costs as much as some 25 steps (several memtables and
	// sstables to position, against one more key of each), a level of
	// the walk two or three seeks.
	smallShare   = 128
	smallSubtree = 512
	// listShare: a narrow level of a kept walk (pickerCache) whose
	// subtree is expected to hold at least this many elements is listed.
	listShare = 256
)

// picked is one element and its value, both copied.
type picked struct{ elem, val []byte }

// kid is one child of a level: its value (0: the element equal to the
// prefix; else the byte plus 1) and the first two elements at or after
// its subtree's start (n of them exist; second may lie past the subtree).
type kid struct {
	v             int
	first, second picked
	n             int
}

// level is what a walk knows of one subtree's children, kept for the
// command's next draws. Either every element shares a longer prefix
// (skip: its length), or the children are listed in full (complete), or
// a child is drawn by byte value in a window ending at hi, the smallest
// real child r1 weighing g and the end element, if any (end), as much
// below it; kids then holds the first children in order, if listed (not
// while narrow: a window of at most maxKids values, listed once a draw
// finds a gap in it), and known every child value met so far.
type level struct {
	skip     int
	head     kid // the smallest child
	kids     []kid
	complete bool
	narrow   bool
	end      *kid
	r1, g    int
	hi       int
	known    map[int]bool
}

// picker draws elements of one kind of a collection.
type picker struct {
	sub   backend.SubTxn
	it    backend.SubIterator // nil: ScanSub for each seek
	base  []byte              // the kind's sub-key prefix: elements follow it
	end   []byte              // the kind's range end
	count uint64              // the collection's element count
	// first and second are the kind's two smallest elements (n of them
	// exist, at most 2): every walk starts there.
	first, second picked
	n             int
	levels        map[string]*level // by prefix, for the draws that follow
	// big marks the subtrees found too big to read whole (smallShare).
	big map[string]bool
	// keep: the walk is kept for the next commands (pickerCache).
	keep bool
	// bytes counts the element and value bytes the seeks copied (the
	// levels hold them): a kept walk is bounded by pickerBytes.
	bytes   int
	scratch []byte
	// cut is the depth of the level the last walk ended at (it chose a
	// one-element subtree or the end element there, or read the subtree
	// whole): the levels of the drawn element's prefixes from there down
	// may lose a child with it; those above keep theirs.
	cut int
}

// newPicker returns a picker of c's elements of kind, or nil if there is
// none. The caller closes it, and writes no sub-key while it is open.
func (c *coll) newPicker(kind byte) (*picker, error) {
	if !c.found {
		return nil, nil
	}
	base, end := keyspace.KindRange(c.db, c.key, c.meta.Version, kind)
	p := &picker{sub: c.sub, base: base, end: end, count: c.meta.Count, levels: map[string]*level{}, big: map[string]bool{},
		keep: c.pickers != nil}
	if st, ok := c.sub.(backend.SubIterTxn); ok && useSubIter {
		it, err := st.NewSubIter(base, end)
		if err != nil {
			return nil, err
		}
		p.it = it
	}
	if c.pickers != nil {
		if kept := c.pickers.take(c.pickerKey(kind), c.meta.Version, c.meta.Stamp); kept != nil {
			p.first, p.second, p.n, p.levels, p.big, p.bytes = kept.first, kept.second, kept.n, kept.levels, kept.big, kept.bytes
			return p, nil
		}
	}
	n, err := p.seek(nil, end, &p.first, &p.second)
	if err != nil || n == 0 {
		return nil, errors.Join(err, p.close())
	}
	p.n = n
	return p, nil
}

func (p *picker) close() error {
	if p.it == nil {
		return nil
	}
	return p.it.Close()
}

// full returns base ‖ prefix in scratch space valid until the next call.
func (p *picker) full(prefix []byte) []byte {
	p.scratch = append(append(p.scratch[:0], p.base...), prefix...)
	return p.scratch
}

// seek reads the first element at or after base ‖ from, below end, into
// a, and the one after it into b (unless b is nil); it returns how many
// it read.
func (p *picker) seek(from, end []byte, a, b *picked) (int, error) {
	limit := 1
	if b != nil {
		limit = 2
	}
	n := 0
	fn := func(k, v []byte) bool {
		dst := a
		if n == 1 {
			dst = b
		}
		*dst = picked{elem: bytesClone(k[len(p.base):]), val: bytesClone(v)}
		p.bytes += len(k) + len(v)
		n++
		return true
	}
	var err error
	if p.it != nil {
		err = p.it.SeekGE(p.full(from), end, limit, fn)
	} else {
		err = p.sub.ScanSub(p.full(from), end, limit, fn)
	}
	randSeeks.Add(1)
	subKeysScanned.Add(int64(n))
	return n, err
}

// lastBelow returns the last element of the subtree prefix below
// base ‖ upper (nil: the subtree's end, subEnd), with the iterator's
// reverse seek.
func (p *picker) lastBelow(prefix, upper, subEnd []byte) ([]byte, bool, error) {
	lower := bytesClone(p.full(prefix))
	hi := subEnd
	if upper != nil {
		hi = p.full(upper)
	}
	k, ok, err := p.it.LastBelow(lower, hi)
	randSeeks.Add(1)
	if err != nil || !ok || len(k) < len(lower) {
		return nil, false, err
	}
	subKeysScanned.Add(1)
	return k[len(p.base):], true, nil
}

// probe returns the first child of the subtree prefix at or above v.
func (p *picker) probe(prefix, subEnd []byte, v int) (int, bool, error) {
	var a picked
	m, err := p.seek(append(bytesClone(prefix), byte(v-1)), subEnd, &a, nil)
	if err != nil || m == 0 {
		return 0, false, err
	}
	return child(a.elem, len(prefix)), true, nil
}

// child is elem's child value below its first depth bytes: 0 if elem
// ends there, else the next byte plus 1.
func child(elem []byte, depth int) int {
	if len(elem) == depth {
		return 0
	}
	return int(elem[depth]) + 1
}

// levelAt returns the level of the subtree prefix, whose two smallest
// elements are first and second (n of them, both in the subtree).
func (p *picker) levelAt(prefix []byte, first, second picked, n int) (*level, error) {
	if l, ok := p.levels[string(prefix)]; ok {
		return l, nil
	}
	l, err := p.newLevel(prefix, first, second, n)
	if err != nil {
		return nil, err
	}
	p.levels[string(prefix)] = l
	return l, nil
}

func (p *picker) newLevel(prefix []byte, first, second picked, n int) (*level, error) {
	depth := len(prefix)
	subEnd := keyspace.PrefixEnd(p.full(prefix))
	lo := child(first.elem, depth)
	var hi int
	if p.it != nil {
		// The largest element: the levels down to where it parts from
		// the smallest have one child each.
		last, ok, err := p.lastBelow(prefix, nil, subEnd)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("random pick: the subtree of %q has no last element", first.elem)
		}
		d := depth
		for d < len(first.elem) && d < len(last) && first.elem[d] == last[d] {
			d++
		}
		if d > depth {
			return &level{skip: d}, nil
		}
		hi = child(last, depth)
	} else {
		var err error
		if hi, err = p.maxChild(prefix, subEnd, lo); err != nil {
			return nil, err
		}
		if hi == lo {
			// One child, not the end element (second is longer than
			// the prefix): every element shares first's next byte.
			return &level{skip: depth + 1}, nil
		}
	}
	l := &level{hi: hi, r1: lo, g: 1, known: map[int]bool{lo: true, hi: true}}
	if lo == 0 {
		l.end = &kid{0, first, second, n}
		l.r1 = child(second.elem, depth)
		l.known[l.r1] = true
	}
	l.head = kid{lo, first, second, n}
	if hi-l.r1+1 <= maxKids {
		// Narrow (decimal digits): drawn in the window until a draw meets
		// a gap (windowChild), listed after.
		l.narrow = true
		return l, nil
	}
	return l, p.list(prefix, l)
}

// list lists the children of level l of the subtree prefix, one forward
// seek each, while at most maxKids+1: complete, or dense (drawn in the
// window, the listed ones read from the list).
func (p *picker) list(prefix []byte, l *level) error {
	depth := len(prefix)
	subEnd := keyspace.PrefixEnd(p.full(prefix))
	l.narrow = false
	l.kids = []kid{l.head}
	for len(l.kids) <= maxKids {
		v := l.kids[len(l.kids)-1].v
		if v == 256 {
			break
		}
		// The first element past v's subtree: prefix ‖ byte(v) is where
		// the next byte starts (v = 0: the elements longer than prefix).
		var a, b picked
		m, err := p.seek(append(bytesClone(prefix), byte(v)), subEnd, &a, &b)
		if err != nil {
			return err
		}
		if m == 0 {
			break
		}
		l.kids = append(l.kids, kid{child(a.elem, depth), a, b, m})
		l.known[child(a.elem, depth)] = true
	}
	if len(l.kids) <= maxKids {
		l.complete = true
		return nil
	}
	// Dense: the smallest real child gets the gap above it.
	if l.end != nil {
		l.kids = l.kids[1:]
	}
	l.g = l.kids[1].v - l.r1
	return nil
}

// maxChild returns the largest child of the subtree prefix, knowing child
// lo: one reverse seek, or a binary search of forward seeks over the byte
// values, each probe raising the lower bound to the child it found.
func (p *picker) maxChild(prefix, subEnd []byte, lo int) (int, error) {
	if p.it != nil {
		last, ok, err := p.lastBelow(prefix, nil, subEnd)
		if err != nil || !ok {
			return lo, err
		}
		return max(child(last, len(prefix)), lo), nil
	}
	hi := 256
	for lo < hi {
		mid := (lo + hi + 1) / 2
		c, ok, err := p.probe(prefix, subEnd, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = c
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// prevChild returns the largest child of the subtree prefix below x,
// knowing child lo < x.
func (p *picker) prevChild(prefix, subEnd []byte, x, lo int, known map[int]bool) (int, error) {
	if known[x-1] {
		return x - 1, nil
	}
	if p.it != nil {
		e, ok, err := p.lastBelow(prefix, append(bytesClone(prefix), byte(x-1)), subEnd)
		if err != nil || !ok {
			return lo, err
		}
		return max(child(e, len(prefix)), lo), nil
	}
	hi := x - 1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		c, ok, err := p.probe(prefix, subEnd, mid)
		if err != nil {
			return 0, err
		}
		if ok && c < x {
			lo = c
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// windowChild draws a child of a level that is not listed in full by
// byte value: x uniform in a window from below the smallest real child r1
// to the largest child, the child the first at or above x, weighing the
// gap below it (r1: g, and the end element g below r1). It returns the
// child and its weight w out of the window's width.
func (p *picker) windowChild(prefix []byte, l *level) (k kid, w, width int, err error) {
	lo := l.r1 - l.g + 1
	if l.end != nil {
		lo -= l.g
	}
	width = l.hi - lo + 1
	x := lo + rand.IntN(width)
	if l.end != nil && x < l.r1-l.g+1 {
		return *l.end, l.g, width, nil
	}
	x = max(x, l.r1)
	floor := l.r1 // a child below x once x > r1
	if len(l.kids) > 0 {
		last := l.kids[len(l.kids)-1].v
		if x <= last {
			j := sort.Search(len(l.kids), func(i int) bool { return l.kids[i].v >= x })
			if j == 0 {
				return l.kids[0], l.g, width, nil
			}
			return l.kids[j], l.kids[j].v - l.kids[j-1].v, width, nil
		}
		floor = last
	}
	subEnd := keyspace.PrefixEnd(p.full(prefix))
	var a, b picked
	m, err := p.seek(append(bytesClone(prefix), byte(x-1)), subEnd, &a, &b)
	if err != nil {
		return kid{}, 0, 0, err
	}
	if m == 0 {
		return kid{}, 0, 0, fmt.Errorf("random pick: no element at or after child %d of a level whose largest is %d", x, l.hi)
	}
	c := child(a.elem, len(prefix))
	l.known[c] = true
	if c == l.r1 {
		return kid{c, a, b, m}, l.g, width, nil
	}
	prev, err := p.prevChild(prefix, subEnd, x, floor, l.known)
	if err != nil {
		return kid{}, 0, 0, err
	}
	l.known[prev] = true
	if l.narrow && c-prev > 1 {
		// A gap: c would weigh more than its neighbours, and the smallest
		// child, at 1, could be drawn far less than its share once
		// corrected (hex digits: most draws go to 'a', after '9'). List
		// the level (at most maxKids seeks) and pick from the list.
		return kid{}, 0, 0, p.list(prefix, l)
	}
	return kid{c, a, b, m}, c - prev, width, nil
}

// walk walks down to one element and returns it with the probability
// the walk had of reaching it.
func (p *picker) walk() (picked, float64, error) {
	randWalks.Add(1)
	first, second, n := p.first, p.second, p.n
	var prefix, from []byte // from: the level that chose prefix
	q := 1.0
	for {
		if n < 2 || !bytes.HasPrefix(second.elem, prefix) {
			p.cut = len(from)
			return first, q, nil
		}
		if float64(p.count)*q <= smallShare && !p.big[string(prefix)] {
			e, m, err := p.subtree(prefix)
			if err != nil {
				return picked{}, 0, err
			}
			if m > 0 {
				p.cut = len(prefix)
				return e, q / float64(m), nil
			}
			p.big[string(prefix)] = true
		}
		l, err := p.levelAt(prefix, first, second, n)
		if err != nil {
			return picked{}, 0, err
		}
		if l.skip > 0 {
			prefix = first.elem[:l.skip]
			continue
		}
		if l.narrow && p.keep && float64(p.count)*q >= listShare {
			// A kept walk comes back here often: listing the level once
			// (a seek per child) spares the drawn child's seek each time.
			if err := p.list(prefix, l); err != nil {
				return picked{}, 0, err
			}
		}
		var k kid
		w, width := 1, len(l.kids)
		if l.complete {
			k = l.kids[rand.IntN(len(l.kids))]
		} else if k, w, width, err = p.windowChild(prefix, l); err != nil {
			return picked{}, 0, err
		} else if width == 0 {
			continue // the level was listed: pick from the list
		}
		q *= float64(w) / float64(width)
		if k.v == 0 {
			p.cut = len(prefix)
			return k.first, q, nil
		}
		from = prefix
		prefix = k.first.elem[:len(prefix)+1]
		first, second, n = k.first, k.second, k.n
	}
}

// subtree picks an element of the subtree prefix uniformly, reading the
// subtree with one seek, and returns it with the subtree's size m; m is 0
// if the subtree holds more than smallSubtree elements. Within the
// subtree the draw is then exact. Reservoir sampling: the i-th element
// replaces the pick with probability 1/i, so only a few are copied.
func (p *picker) subtree(prefix []byte) (e picked, m int, err error) {
	subEnd := keyspace.PrefixEnd(p.full(prefix))
	fn := func(k, v []byte) bool {
		if m++; m <= smallSubtree && rand.IntN(m) == 0 {
			e = picked{elem: bytesClone(k[len(p.base):]), val: bytesClone(v)}
		}
		return true
	}
	if p.it != nil {
		err = p.it.SeekGE(p.full(prefix), subEnd, smallSubtree+1, fn)
	} else {
		err = p.sub.ScanSub(p.full(prefix), subEnd, smallSubtree+1, fn)
	}
	randSeeks.Add(1)
	subKeysScanned.Add(int64(m))
	if err != nil || m > smallSubtree {
		return picked{}, 0, err
	}
	return e, m, nil
}

// draw draws one element: walks, each kept with probability
// min(1, 1/(count·q)), the last one kept after maxWalks.
func (p *picker) draw() (picked, error) {
	randDraws.Add(1)
	var e picked
	for range maxWalks {
		var q float64
		var err error
		if e, q, err = p.walk(); err != nil {
			return picked{}, err
		}
		if rand.Float64()*float64(p.count)*q < 1 {
			break
		}
	}
	return e, nil
}

// useWalks reports whether want elements of n (one without a count) are
// better drawn by walks than by reading all n: not in a small collection,
// where a read costs a few seeks and the draw is then exactly uniform.
func useWalks(withCount bool, want int64, n uint64) bool {
	return n > randSmall && (!withCount || (want > 0 && uint64(want) < n/randPickFactor))
}

// randomElems draws count elements of kind from c by walks: distinct
// ones, or independent draws (repeats allowed). ok is false when distinct
// draws kept colliding (a skewed collection): the caller then reads the
// whole collection instead. A missing collection gives none, ok.
func (c *coll) randomElems(kind byte, count int64, distinct bool) (out []picked, ok bool, err error) {
	p, err := c.newPicker(kind)
	if err != nil || p == nil {
		return nil, err == nil, err
	}
	defer func() {
		if cerr := p.close(); cerr != nil && err == nil {
			out, ok, err = nil, false, cerr
		}
		if err == nil && c.pickers != nil {
			c.pickers.put(c.pickerKey(kind), c.meta.Version, c.meta.Stamp, p)
		}
	}()
	var seen map[string]bool
	if distinct && count > 1 {
		seen = make(map[string]bool, count)
	}
	budget := 2*count + 8
	for int64(len(out)) < count {
		if budget--; budget < 0 {
			return nil, false, nil
		}
		e, err := p.draw()
		if err != nil {
			return nil, false, err
		}
		if seen != nil {
			if seen[string(e.elem)] {
				continue
			}
			seen[string(e.elem)] = true
		}
		out = append(out, e)
	}
	return out, true, nil
}

// randWant is how many elements SRANDMEMBER, HRANDFIELD or ZRANDMEMBER
// draws for its count argument (1 without one), and whether they must be
// distinct (a positive count).
func randWant(withCount bool, count int64) (want int64, distinct bool) {
	switch {
	case !withCount:
		return 1, false
	case count < 0:
		return -count, false // count >= -MaxInt64: checked by the callers
	default:
		return count, true
	}
}

// pickerCache keeps pickers' walks (the two smallest elements, the levels,
// the subtrees found big) across commands, by collection and kind, for as
// long as the collection is unchanged: an entry holds the element version
// and the record's Stamp it was built at, which every write of the
// collection redraws (keyspace.Meta), so a kept walk is only used on the
// state it was read from. SPOP carries its entry over its own pop
// (afterPop): removing one element leaves every level but the one that
// chose it alone, and those that list it, as they were. A random draw's
// first seeks then go: the root levels are the same for every draw.
// An entry is taken out while a command uses it; at most pickerEntries
// are kept, of at most pickerLevels levels and pickerBytes bytes each.
type pickerCache struct {
	mu      sync.Mutex
	entries map[string]*keptPicker
}

const (
	pickerEntries = 64
	pickerLevels  = 4096
	pickerBytes   = 1 << 20 // elements and values (HRANDFIELD's) copied
)

type keptPicker struct {
	version, stamp uint64
	first, second  picked
	n              int
	levels         map[string]*level
	big            map[string]bool
	cut            int
	bytes          int
}

// pickerKey is the cache key of c's elements of kind.
func (c *coll) pickerKey(kind byte) string {
	return string(append(binary.BigEndian.AppendUint32([]byte{kind}, c.db), c.key...))
}

// take removes and returns the entry of key if it was built at version
// and stamp.
func (pc *pickerCache) take(key string, version, stamp uint64) *keptPicker {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	k, ok := pc.entries[key]
	if !ok {
		return nil
	}
	delete(pc.entries, key)
	if k.version != version || k.stamp != stamp {
		return nil
	}
	return k
}

// put keeps p's walk for key at version and stamp.
func (pc *pickerCache) put(key string, version, stamp uint64, p *picker) {
	if len(p.levels) > pickerLevels || p.bytes > pickerBytes {
		return
	}
	k := &keptPicker{version: version, stamp: stamp, first: p.first, second: p.second, n: p.n,
		levels: p.levels, big: p.big, cut: p.cut, bytes: p.bytes}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.entries == nil {
		pc.entries = make(map[string]*keptPicker)
	}
	if _, ok := pc.entries[key]; !ok && len(pc.entries) >= pickerEntries {
		for old := range pc.entries {
			delete(pc.entries, old)
			break
		}
	}
	pc.entries[key] = k
}

// afterPop carries the entry of c's elements of kind over the removal of
// e, its last draw, to the record's new stamp (called after save). The
// levels above the one the walk ended at keep their children (each subtree
// it chose there held another element); that level and those below it on
// e's prefixes (kept from earlier walks), and any level or root listing e
// as a subtree's first or second element, are dropped (rebuilt when next
// walked).
func (c *coll) afterPop(kind byte, e []byte) {
	if c.pickers == nil {
		return
	}
	key := c.pickerKey(kind)
	c.pickers.mu.Lock()
	k, ok := c.pickers.entries[key]
	delete(c.pickers.entries, key) // out while it changes
	c.pickers.mu.Unlock()
	if !ok || k.version != c.meta.Version || c.meta.Count == 0 ||
		bytes.Equal(k.first.elem, e) || (k.n > 1 && bytes.Equal(k.second.elem, e)) {
		return
	}
	for d := 0; d <= len(e); d++ {
		if l, ok := k.levels[string(e[:d])]; ok && (d >= k.cut || l.lists(e)) {
			delete(k.levels, string(e[:d]))
		}
	}
	k.stamp = c.meta.Stamp
	c.pickers.mu.Lock()
	defer c.pickers.mu.Unlock()
	if _, ok := c.pickers.entries[key]; !ok {
		c.pickers.entries[key] = k
	}
}

// lists reports whether l holds e as a child's first or second element.
func (l *level) lists(e []byte) bool {
	has := func(k *kid) bool {
		return bytes.Equal(k.first.elem, e) || (k.n > 1 && bytes.Equal(k.second.elem, e))
	}
	if has(&l.head) || (l.end != nil && has(l.end)) {
		return true
	}
	for i := range l.kids {
		if has(&l.kids[i]) {
			return true
		}
	}
	return false
}
