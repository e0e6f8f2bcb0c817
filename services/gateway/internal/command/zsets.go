package command

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Sorted sets: two sub-keys per member (docs/architecture.md,
// "Collections"): kind 'z' member → its score (the double's 8 bytes), and
// the score index, kind 's' keyspace.AppendScore(score) ‖ member → "" (or,
// for a score of -0, which the index writes as +0, the score's 8 bytes),
// so that the index is in Redis's order — by score, ties by member — and a
// score range is a range scan.
//
// Costs: a member's score is one point read; ZRANGE by rank and ZRANK
// scan the index from its start (O(rank), O(N) at worst: the index holds
// no counts, unlike Redis's skiplist spans); ZRANGEBYSCORE starts at its
// first score; the reverse orders and the lex commands read the range
// they answer from its low end; the pops seek to the index's ends, whose
// marks the metadata keeps (zmarks.go), never stepping over what earlier
// pops deleted.
//
// The blocking BZPOPMIN, BZPOPMAX and BZMPOP (zsets_blocking.go) wrap
// zpop; every write that can make a sorted set non-empty (ZADD, ZINCRBY,
// the *STORE destinations, RESTORE) signals their waiters.

func init() {
	const g = "sorted-set"
	cmds := []*Command{
		{Name: "zadd", Arity: -4, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Add one or more members to a sorted set, or update its score if it already exists", Complexity: "O(log(N)) for each item added, where N is the number of elements in the sorted set.", Handler: cmdZAdd},
		{Name: "zincrby", Arity: 4, Flags: flagWrite | flagDenyOOM | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Increment the score of a member in a sorted set", Complexity: "O(log(N)) where N is the number of elements in the sorted set.", Handler: cmdZIncrBy},
		{Name: "zrem", Arity: -3, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Remove one or more members from a sorted set", Complexity: "O(M*log(N)) with N being the number of elements in the sorted set and M the number of elements to be removed.", Handler: cmdZRem},
		{Name: "zcard", Arity: 2, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Get the number of members in a sorted set", Complexity: "O(1)", Handler: cmdZCard},
		{Name: "zscore", Arity: 3, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Get the score associated with the given member in a sorted set", Complexity: "O(1)", Handler: cmdZScore},
		{Name: "zmscore", Arity: -3, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Get the score associated with the given members in a sorted set", Complexity: "O(N) where N is the number of members being requested.", Handler: cmdZMScore},
		{Name: "zcount", Arity: 4, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Count the members in a sorted set with scores within the given values", Complexity: "O(log(N)) with N being the number of elements in the sorted set.", Handler: cmdZCount},
		{Name: "zlexcount", Arity: 4, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.9", Summary: "Count the number of members in a sorted set between a given lexicographical range", Complexity: "O(log(N)) with N being the number of elements in the sorted set.", Handler: cmdZLexCount},
		{Name: "zrank", Arity: 3, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Determine the index of a member in a sorted set", Complexity: "O(log(N))", Handler: zrankCmd(false)},
		{Name: "zrevrank", Arity: 3, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Determine the index of a member in a sorted set, with scores ordered from high to low", Complexity: "O(log(N))", Handler: zrankCmd(true)},
		{Name: "zrange", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Return a range of members in a sorted set", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", Handler: zrangeCmd(zrAuto, zrAutoDir, false)},
		{Name: "zrevrange", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Return a range of members in a sorted set, by index, with scores ordered from high to low", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements returned.", Handler: zrangeCmd(zrRank, zrRev, false)},
		{Name: "zrangebyscore", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.5", Summary: "Return a range of members in a sorted set, by score", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", Handler: zrangeCmd(zrScore, zrFwd, false)},
		{Name: "zrevrangebyscore", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Return a range of members in a sorted set, by score, with scores ordered from high to low", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", Handler: zrangeCmd(zrScore, zrRev, false)},
		{Name: "zrangebylex", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.9", Summary: "Return a range of members in a sorted set, by lexicographical range", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", Handler: zrangeCmd(zrLex, zrFwd, false)},
		{Name: "zrevrangebylex", Arity: -4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.9", Summary: "Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements being returned. If M is constant (e.g. always asking for the first 10 elements with LIMIT), you can consider it O(log(N)).", Handler: zrangeCmd(zrLex, zrRev, false)},
		{Name: "zpopmin", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "5.0.0", Summary: "Remove and return members with the lowest scores in a sorted set", Complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", Handler: zpopCmd(false)},
		{Name: "zpopmax", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "5.0.0", Summary: "Remove and return members with the highest scores in a sorted set", Complexity: "O(log(N)*M) with N being the number of elements in the sorted set, and M being the number of elements popped.", Handler: zpopCmd(true)},
		{Name: "zremrangebyrank", Arity: 4, Flags: flagWrite, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Remove all members in a sorted set within the given indexes", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", Handler: zremRangeCmd(zrRank)},
		{Name: "zremrangebyscore", Arity: 4, Flags: flagWrite, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Remove all members in a sorted set within the given scores", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", Handler: zremRangeCmd(zrScore)},
		{Name: "zremrangebylex", Arity: 4, Flags: flagWrite, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.9", Summary: "Remove all members in a sorted set between the given lexicographical range", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements removed by the operation.", Handler: zremRangeCmd(zrLex)},
		{Name: "zscan", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.0", Summary: "Incrementally iterate sorted sets elements and associated scores", Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", Handler: cmdZScan},
		{Name: "zrandmember", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Get one or multiple random elements from a sorted set", Complexity: "O(N) where N is the number of elements returned", Handler: cmdZRandMember},
		{Name: "zmpop", Arity: -4, Flags: flagWrite, Group: g, Since: "7.0.0", Summary: "Remove and return members with scores in a sorted set", Complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", Handler: cmdZMPop, keyFunc: numkeysKeys},
		{Name: "zunion", Arity: -3, Flags: flagReadonly, Group: g, Since: "6.2.0", Summary: "Add multiple sorted sets", Complexity: "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", Handler: zsetOpCmd(zopUnion, false), keyFunc: numkeysKeys},
		{Name: "zinter", Arity: -3, Flags: flagReadonly, Group: g, Since: "6.2.0", Summary: "Intersect multiple sorted sets", Complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", Handler: zsetOpCmd(zopInter, false), keyFunc: numkeysKeys},
		{Name: "zdiff", Arity: -3, Flags: flagReadonly, Group: g, Since: "6.2.0", Summary: "Subtract multiple sorted sets", Complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", Handler: zsetOpCmd(zopDiff, false), keyFunc: numkeysKeys},
		{Name: "zunionstore", Arity: -4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Add multiple sorted sets and store the resulting sorted set in a new key", Complexity: "O(N)+O(M log(M)) with N being the sum of the sizes of the input sorted sets, and M being the number of elements in the resulting sorted set.", Handler: zsetOpCmd(zopUnion, true), keyFunc: zstoreKeys},
		{Name: "zinterstore", Arity: -4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Intersect multiple sorted sets and store the resulting sorted set in a new key", Complexity: "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the number of input sorted sets and M being the number of elements in the resulting sorted set.", Handler: zsetOpCmd(zopInter, true), keyFunc: zstoreKeys},
		{Name: "zdiffstore", Arity: -4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Subtract multiple sorted sets and store the resulting sorted set in a new key", Complexity: "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N is the size of the first set, and K is the size of the result set.", Handler: zsetOpCmd(zopDiff, true), keyFunc: zstoreKeys},
		{Name: "zintercard", Arity: -3, Flags: flagReadonly, Group: g, Since: "7.0.0", Summary: "Intersect multiple sorted sets and return the cardinality of the result", Complexity: "O(N*K) worst case with N being the smallest input sorted set, K being the number of input sorted sets.", Handler: cmdZInterCard, keyFunc: numkeysKeys},
		{Name: "zrangestore", Arity: -5, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "6.2.0", Summary: "Store a range of members from sorted set into another key", Complexity: "O(log(N)+M) with N being the number of elements in the sorted set and M the number of elements stored into the destination key.", Handler: zrangeCmd(zrAuto, zrAutoDir, true)},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

// zentry is a member and its score.
type zentry struct {
	m []byte
	s float64
}

// zstoreKeys locates the keys of "name destination numkeys key ...".
func zstoreKeys(args [][]byte) [][]byte {
	if len(args) < 3 {
		return nil
	}
	return append([][]byte{args[1]}, numkeysKeys(args[1:])...)
}

func (r *Request) openZSet(tx backend.Txn, key []byte) (*coll, error) {
	return r.openColl(tx, key, backend.TypeZSet)
}

func (r *Request) readZSet(key []byte, fn func(c *coll) error) error {
	return r.readColl(key, backend.TypeZSet, fn)
}

// zscore returns a member's score.
func (c *coll) zscore(m []byte) (float64, bool, error) {
	v, ok, err := c.get(keyspace.KindZSetMember, m)
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("key %q: corrupt sorted-set score of %d bytes", c.key, len(v))
	}
	return math.Float64frombits(binary.BigEndian.Uint64(v)), true, nil
}

// indexElem is a member's element in the score index.
func indexElem(s float64, m []byte) []byte {
	return append(keyspace.AppendScore(make([]byte, 0, 8+len(m)), s), m...)
}

// indexVal is the index entry's value: empty, or -0's bits (the index
// writes it as +0).
func indexVal(s float64) []byte {
	if s == 0 && math.Signbit(s) {
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(s))
	}
	return nil
}

// decodeIndex takes an index entry apart (elem valid as long as its
// source).
func decodeIndex(elem, val []byte) ([]byte, float64) {
	s := keyspace.DecodeScore(elem)
	if len(val) == 8 {
		s = math.Float64frombits(binary.BigEndian.Uint64(val))
	}
	return elem[8:], s
}

// zwrite stores member m with score s, replacing its old score (had).
// A listpack (not Big) holds no -0: Redis stores an integral score as an
// integer there.
func (c *coll) zwrite(m []byte, s float64, old float64, had bool) {
	if !c.meta.Big && s == 0 {
		s = 0
	}
	if had {
		c.ebuf = append(keyspace.AppendScore(c.ebuf[:0], old), m...)
		c.remove(keyspace.KindZSetScore, c.ebuf)
	}
	// The value is kept by the raft backend until the commit: not scratch.
	c.put(keyspace.KindZSetMember, m, binary.BigEndian.AppendUint64(make([]byte, 0, 8), math.Float64bits(s)))
	c.ebuf = append(keyspace.AppendScore(c.ebuf[:0], s), m...)
	c.put(keyspace.KindZSetScore, c.ebuf, indexVal(s))
	c.zwiden(c.ebuf)
}

// zinsert adds a new member (the caller knows it is absent), converting
// the encoding first as Redis's zsetAdd does.
func (c *coll) zinsert(m []byte, s float64) error {
	if err := c.create(); err != nil {
		return err
	}
	// A sorted set is a listpack while it has at most
	// zset-max-listpack-entries members of at most -value bytes (c.lim).
	if c.meta.Count+1 > c.lim.zsetMaxEntries() || int64(len(m)) > c.lim.zsetMaxValue() {
		c.meta.Big = true
	}
	c.zwrite(m, s, 0, false)
	c.meta.Count++
	return nil
}

// zdelete removes a member whose score is s.
func (c *coll) zdelete(m []byte, s float64) {
	c.remove(keyspace.KindZSetMember, m)
	c.remove(keyspace.KindZSetScore, indexElem(s, m))
	c.meta.Count--
}

// zscan calls fn for the members in index order (by score, then member)
// from the index element start (nil: the first), until fn returns false.
func (c *coll) zscan(start []byte, fn func(m []byte, s float64) bool) error {
	return c.zscanIndex(start, 0, func(elem, val []byte) bool {
		m, s := decodeIndex(elem, val)
		return fn(m, s)
	})
}

// zscanIndex calls fn for the index entries from the element start (nil:
// the first) until fn returns false or limit entries were seen (<= 0: no
// limit; a limit spares the raft backend a page of entries it will not
// use), within the marks (zmarks.go): no live entry lies outside them,
// and the deletions of earlier pops do.
func (c *coll) zscanIndex(start []byte, limit int, fn func(elem, val []byte) bool) error {
	if low := c.meta.ZLow; low != nil && bytes.Compare(start, low) < 0 {
		start = low
	}
	return c.scanTo(keyspace.KindZSetScore, start, c.zindexEnd(), limit, fn)
}

// zall reads every member, in order.
func (c *coll) zall() ([]zentry, error) {
	out := make([]zentry, 0, c.meta.Count)
	err := c.zscan(nil, func(m []byte, s float64) bool {
		out = append(out, zentry{bytesClone(m), s})
		return true
	})
	return out, err
}

// zrankRange reads the members of ranks [start, end] (0-based, in
// range), in order.
func (c *coll) zrankRange(start, end int64) ([]zentry, error) {
	var out []zentry
	var i int64
	err := c.zscanIndex(nil, scanLimit(end+1), func(elem, val []byte) bool {
		if i >= start {
			m, s := decodeIndex(elem, val)
			out = append(out, zentry{bytesClone(m), s})
		}
		i++
		return i <= end
	})
	return out, err
}

// zscoreRange reads the members whose scores are in sr, in order; stop,
// if not nil, ends the scan early when it returns true for the entries so
// far.
func (c *coll) zscoreRange(sr scoreRange, stop func(n int) bool) ([]zentry, error) {
	var out []zentry
	if sr.empty() {
		return nil, nil
	}
	start := keyspace.AppendScore(nil, sr.min)
	if math.IsInf(sr.min, -1) {
		start = nil
	}
	err := c.zscan(start, func(m []byte, s float64) bool {
		if !sr.lteMax(s) {
			return false
		}
		if sr.gteMin(s) {
			out = append(out, zentry{bytesClone(m), s})
		}
		return stop == nil || !stop(len(out))
	})
	return out, err
}

// zlexRange reads the members in lr as Redis's listpack walk finds them
// (zzlFirstInLexRange / zzlLastInLexRange: the same as the skiplist's
// whenever all scores are equal, the only case Redis defines), in order
// (rev: from the last).
func zlexRange(all []zentry, lr lexRange, rev bool) []zentry {
	if len(all) == 0 || lr.empty() || !lr.gteMin(all[len(all)-1].m) || !lr.lteMax(all[0].m) {
		return nil
	}
	var out []zentry
	if !rev {
		i := 0
		for i < len(all) && !lr.gteMin(all[i].m) {
			i++
		}
		for ; i < len(all) && lr.lteMax(all[i].m); i++ {
			out = append(out, all[i])
		}
		return out
	}
	i := len(all) - 1
	for i >= 0 && !lr.lteMax(all[i].m) {
		i--
	}
	for ; i >= 0 && lr.gteMin(all[i].m); i-- {
		out = append(out, all[i])
	}
	return out
}

// zrank returns a member's 0-based rank in ascending order (found false
// if absent): a scan of the index up to the member, O(rank).
func (c *coll) zrank(m []byte) (int64, bool, error) {
	s, ok, err := c.zscore(m)
	if err != nil || !ok {
		return 0, false, err
	}
	target := indexElem(s, m)
	var rank int64
	err = c.zscanIndex(nil, 0, func(elem, _ []byte) bool {
		if bytes.Compare(elem, target) >= 0 {
			return false
		}
		rank++
		return true
	})
	return rank, true, err
}

// zreply writes members, with their scores if withScores: a flat array in
// RESP2, [member, score] pairs in RESP3, as Redis's ZRANGE does.
func (r *Request) zreply(es []zentry, withScores bool) {
	n := len(es)
	if withScores && r.w.Proto < 3 {
		n *= 2
	}
	r.w.Array(n)
	for _, e := range es {
		r.zentryReply(e, withScores)
	}
}

func (r *Request) zentryReply(e zentry, withScores bool) {
	if withScores && r.w.Proto >= 3 {
		r.w.Array(2)
	}
	r.w.Bulk(e.m)
	if withScores {
		r.double(e.s)
	}
}

// zadd flags (Redis's ZADD_IN_*).
type zaddFlags struct{ nx, xx, gt, lt, incr, ch bool }

// zaddOne is zsetAdd: it applies one score-member pair under the flags
// and reports what happened; nan means the increment produced NaN.
func (c *coll) zaddOne(m []byte, s float64, f zaddFlags) (added, updated, nop, nan bool, newScore float64, err error) {
	cur, had, err := c.zscore(m)
	if err != nil {
		return
	}
	if had {
		if f.nx {
			nop = true
			return
		}
		if f.incr {
			s += cur
			if math.IsNaN(s) {
				nan = true
				return
			}
		}
		if (f.lt && s >= cur) || (f.gt && s <= cur) {
			nop = true
			return
		}
		newScore = s
		if s != cur {
			c.zwrite(m, s, cur, true)
			updated = true
		}
		return
	}
	if f.xx {
		nop = true
		return
	}
	if err = c.zinsert(m, s); err != nil {
		return
	}
	return true, false, false, false, s, nil
}

// >> ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
// Reply: the number of members added (with CH: added or updated); with
// INCR the member's new score, or null when a flag stopped the update.
func cmdZAdd(r *Request) error { return zaddGeneric(r, zaddFlags{}) }

// >> ZINCRBY key increment member
func cmdZIncrBy(r *Request) error { return zaddGeneric(r, zaddFlags{incr: true}) }

func zaddGeneric(r *Request, f zaddFlags) error {
	args := r.Args
	idx := 2
	for ; idx < len(args); idx++ {
		a := args[idx]
		switch {
		case equalFold(a, "nx"):
			f.nx = true
		case equalFold(a, "xx"):
			f.xx = true
		case equalFold(a, "ch"):
			f.ch = true
		case equalFold(a, "incr"):
			f.incr = true
		case equalFold(a, "gt"):
			f.gt = true
		case equalFold(a, "lt"):
			f.lt = true
		default:
			goto done
		}
	}
done:
	elements := len(args) - idx
	if elements%2 != 0 || elements == 0 {
		return errSyntax
	}
	elements /= 2
	if f.nx && f.xx {
		return errZXXNX
	}
	if (f.gt && f.nx) || (f.lt && f.nx) || (f.gt && f.lt) {
		return errZGTLTNX
	}
	if f.incr && elements > 1 {
		return errZIncrPair
	}
	scores := make([]float64, elements)
	for j := range scores {
		s, err := scoreArg(args[idx+2*j])
		if err != nil {
			return err
		}
		scores[j] = s
	}
	key := args[1]
	var added, updated, processed int64
	var score float64
	err := r.updateSubAhead(key, func(tx backend.Txn) error {
		added, updated, processed = 0, 0, 0
		z, err := r.openZSet(tx, key)
		if err != nil {
			return err
		}
		if !z.found && f.xx {
			return nil
		}
		if len(scores) > 1 { // prefetch reads two members or more
			members := make([][]byte, len(scores))
			for j := range scores {
				members[j] = args[idx+2*j+1]
			}
			if err := z.prefetch(keyspace.KindZSetMember, members); err != nil {
				return err
			}
		}
		for j, s := range scores {
			a, u, nop, nan, ns, err := z.zaddOne(args[idx+2*j+1], s, f)
			if err != nil {
				return err
			}
			if nan {
				return errZNaN
			}
			added += b2i(a)
			updated += b2i(u)
			if !nop {
				processed++
				score = ns
			}
		}
		if z.meta.Count > 0 {
			// Wakes BZPOPMIN and friends (a waiter is only ever on a key
			// that was empty, or of another type: it retries and waits on).
			r.signalKeyAsReady(key)
		}
		z.save()
		return nil
	})
	if err != nil {
		return err
	}
	if f.incr {
		if processed > 0 {
			r.double(score)
		} else {
			r.w.Null()
		}
		return nil
	}
	if f.ch {
		added += updated
	}
	r.w.Int(added)
	return nil
}

// >> ZREM key member [member ...]
func cmdZRem(r *Request) error {
	key := r.Args[1]
	var n int64
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		n = 0
		z, err := r.openZSet(tx, key)
		if err != nil || !z.found {
			return err
		}
		for _, m := range r.Args[2:] {
			s, ok, err := z.zscore(m)
			if err != nil {
				return err
			}
			if ok {
				z.zdelete(m, s)
				n++
			}
		}
		z.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

// >> ZCARD key
func cmdZCard(r *Request) error {
	var n uint64
	err := r.readZSet(r.Args[1], func(z *coll) error {
		n = z.meta.Count
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> ZSCORE key member
func cmdZScore(r *Request) error {
	var s float64
	var ok bool
	err := r.readZSet(r.Args[1], func(z *coll) error {
		var err error
		s, ok, err = z.zscore(r.Args[2])
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		r.w.Null()
		return nil
	}
	r.double(s)
	return nil
}

// >> ZMSCORE key member [member ...]
func cmdZMScore(r *Request) error {
	ms := r.Args[2:]
	scores := make([]float64, len(ms))
	found := make([]bool, len(ms))
	err := r.readZSet(r.Args[1], func(z *coll) error {
		for i, m := range ms {
			var err error
			if scores[i], found[i], err = z.zscore(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Array(len(ms))
	for i := range ms {
		if found[i] {
			r.double(scores[i])
		} else {
			r.w.Null()
		}
	}
	return nil
}

// >> ZCOUNT key min max
func cmdZCount(r *Request) error {
	sr, err := parseScoreRange(r.Args[2], r.Args[3])
	if err != nil {
		return err
	}
	var n int
	err = r.readZSet(r.Args[1], func(z *coll) error {
		es, err := z.zscoreRange(sr, nil)
		n = len(es)
		return err
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> ZLEXCOUNT key min max
func cmdZLexCount(r *Request) error {
	lr, err := parseLexRange(r.Args[2], r.Args[3])
	if err != nil {
		return err
	}
	var n int
	err = r.readZSet(r.Args[1], func(z *coll) error {
		all, err := z.zall()
		n = len(zlexRange(all, lr, false))
		return err
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> ZRANK key member / ZREVRANK key member
// Reply: the member's rank, null if absent. O(rank): see the costs above.
func zrankCmd(rev bool) func(*Request) error {
	return func(r *Request) error {
		var rank int64
		var ok bool
		var card uint64
		err := r.readZSet(r.Args[1], func(z *coll) error {
			var err error
			rank, ok, err = z.zrank(r.Args[2])
			card = z.meta.Count
			return err
		})
		if err != nil {
			return err
		}
		if !ok {
			r.w.Null()
			return nil
		}
		if rev {
			rank = int64(card) - 1 - rank
		}
		r.w.Int(rank)
		return nil
	}
}

// Range types and directions of zrangeGenericCommand.
type zrangeType int

const (
	zrAuto zrangeType = iota
	zrRank
	zrScore
	zrLex
)

type zrangeDir int

const (
	zrAutoDir zrangeDir = iota
	zrFwd
	zrRev
)

// zrangeSpec is a parsed ZRANGE (or one of its older forms).
type zrangeSpec struct {
	typ           zrangeType
	rev           bool
	withScores    bool
	start, end    int64
	offset, limit int64
	sr            scoreRange
	lr            lexRange
}

// parseZRange parses the arguments after the source key at argv[at]
// (min, max, options), as zrangeGenericCommand.
func parseZRange(args [][]byte, at int, store bool, typ zrangeType, dir zrangeDir) (zrangeSpec, error) {
	sp := zrangeSpec{limit: -1}
	for j := at + 3; j < len(args); j++ {
		left := len(args) - j - 1
		a := args[j]
		switch {
		case !store && equalFold(a, "withscores"):
			sp.withScores = true
		case equalFold(a, "limit") && left >= 2:
			var err error
			if sp.offset, err = intArg(args[j+1]); err != nil {
				return sp, err
			}
			if sp.limit, err = intArg(args[j+2]); err != nil {
				return sp, err
			}
			j += 2
		case dir == zrAutoDir && equalFold(a, "rev"):
			dir = zrRev
		case typ == zrAuto && equalFold(a, "bylex"):
			typ = zrLex
		case typ == zrAuto && equalFold(a, "byscore"):
			typ = zrScore
		default:
			return sp, errSyntax
		}
	}
	if typ == zrAuto {
		typ = zrRank
	}
	sp.typ, sp.rev = typ, dir == zrRev
	if sp.limit != -1 && typ == zrRank {
		return sp, errZLimitByRank
	}
	if sp.withScores && typ == zrLex {
		return sp, errZLexScores
	}
	minArg, maxArg := args[at+1], args[at+2]
	if sp.rev && typ != zrRank {
		minArg, maxArg = maxArg, minArg
	}
	var err error
	switch typ {
	case zrRank:
		if sp.start, err = intArg(minArg); err != nil {
			return sp, err
		}
		if sp.end, err = intArg(maxArg); err != nil {
			return sp, err
		}
	case zrScore:
		sp.sr, err = parseScoreRange(minArg, maxArg)
	case zrLex:
		sp.lr, err = parseLexRange(minArg, maxArg)
	}
	return sp, err
}

// sanitizeRanks turns Redis's rank arguments into [start, end] within
// [0, n), ok false when empty.
func sanitizeRanks(start, end, n int64) (int64, int64, bool) {
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	if start < 0 {
		start = 0
	}
	if start > end || start >= n {
		return 0, 0, false
	}
	if end >= n {
		end = n - 1
	}
	return start, end, true
}

// applyLimit is Redis's offset/limit walk: a negative offset finds
// nothing, a negative limit means no limit.
func applyLimit(es []zentry, offset, limit int64) []zentry {
	if offset < 0 || offset >= int64(len(es)) {
		return nil
	}
	es = es[offset:]
	if limit >= 0 && limit < int64(len(es)) {
		es = es[:limit]
	}
	return es
}

// zrangeEntries answers sp on z.
func (z *coll) zrangeEntries(sp zrangeSpec) ([]zentry, error) {
	n := int64(z.meta.Count)
	switch sp.typ {
	case zrRank:
		start, end, ok := sanitizeRanks(sp.start, sp.end, n)
		if !ok {
			return nil, nil
		}
		if !sp.rev {
			return z.zrankRange(start, end)
		}
		es, err := z.zrankRange(n-1-end, n-1-start)
		slices.Reverse(es)
		return es, err
	case zrScore:
		if sp.offset > 0 && sp.offset >= n {
			return nil, nil
		}
		var stop func(int) bool
		if !sp.rev && sp.limit >= 0 && sp.offset >= 0 && sp.limit <= math.MaxInt64-sp.offset {
			want := sp.offset + sp.limit
			stop = func(k int) bool { return int64(k) >= want }
		}
		es, err := z.zscoreRange(sp.sr, stop)
		if sp.rev {
			slices.Reverse(es)
		}
		return applyLimit(es, sp.offset, sp.limit), err
	default:
		all, err := z.zall()
		return applyLimit(zlexRange(all, sp.lr, sp.rev), sp.offset, sp.limit), err
	}
}

// zrangeCmd builds ZRANGE, ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE,
// ZRANGEBYLEX, ZREVRANGEBYLEX and ZRANGESTORE.
//
// >> ZRANGE key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
// >> ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]
func zrangeCmd(typ zrangeType, dir zrangeDir, store bool) func(*Request) error {
	return func(r *Request) error {
		at := 1
		if store {
			at = 2
		}
		sp, err := parseZRange(r.Args, at, store, typ, dir)
		if err != nil {
			return err
		}
		src := r.Args[at]
		var es []zentry
		if !store {
			err = r.readZSet(src, func(z *coll) error {
				var err error
				es, err = z.zrangeEntries(sp)
				return err
			})
			if err != nil {
				return err
			}
			r.zreply(es, sp.withScores)
			return nil
		}
		dst := r.Args[1]
		err = r.updateSub([][]byte{dst, src}, func(tx backend.Txn) error {
			z, err := r.openZSet(tx, src)
			if err != nil {
				return err
			}
			if es, err = z.zrangeEntries(sp); err != nil {
				return err
			}
			return r.zstore(tx, dst, es)
		})
		if err != nil {
			return err
		}
		r.w.Int(int64(len(es)))
		return nil
	}
}

// zstore replaces dst with a sorted set of es (deleting dst when es is
// empty), in the encoding Redis would give it (zsetConvertToListpackIfNeeded).
func (r *Request) zstore(tx backend.Txn, dst []byte, es []zentry) error {
	if len(es) == 0 {
		if _, exists, err := tx.Head(dst); err != nil || !exists {
			return err
		}
		tx.Delete(dst)
		return nil
	}
	out, err := r.newColl(tx, dst, backend.TypeZSet)
	if err != nil {
		return err
	}
	if err := out.zfill(es, false); err != nil {
		return err
	}
	out.save()
	r.signalKeyAsReady(dst)
	return nil
}

// zfill fills a new collection with distinct members, a listpack if they
// are within both thresholds (zsetConvertToListpackIfNeeded); with
// countOnly, within the entries one alone, as Redis's RESTORE of a
// listpack payload judges it.
func (c *coll) zfill(es []zentry, countOnly bool) error {
	if err := c.create(); err != nil {
		return err
	}
	big := uint64(len(es)) > c.lim.zsetMaxEntries()
	for _, e := range es {
		big = big || (!countOnly && int64(len(e.m)) > c.lim.zsetMaxValue())
	}
	c.meta.Big = big
	for _, e := range es {
		c.zwrite(e.m, e.s, 0, false)
	}
	c.meta.Count = uint64(len(es))
	return nil
}

// zpop removes up to count members from the first key in keys that holds
// a sorted set — the lowest scores first, or the highest if max — and
// returns that key (nil when none exists) and the members in pop order. A
// key of another type before it is WRONGTYPE. It is the core of ZPOPMIN,
// ZPOPMAX and ZMPOP, and what their blocking forms call.
func (r *Request) zpop(tx backend.Txn, keys [][]byte, max bool, count int64) ([]byte, []zentry, error) {
	at, es, _, err := r.zpopFrom(tx, keys, max, count, false)
	if at < 0 {
		return nil, nil, err
	}
	return keys[at], es, err
}

// zpopFrom is zpop, returning the position in keys of the key popped
// from (-1: none). It also reports whether that key still holds members
// (a blocked client passes the wake-up on then), and with skipWrongType a
// key of another type is skipped instead of failing (a blocked BZPOPMIN
// stays blocked on it, as in Redis).
func (r *Request) zpopFrom(tx backend.Txn, keys [][]byte, max bool, count int64, skipWrongType bool) (int, []zentry, bool, error) {
	for at, k := range keys {
		z, err := r.openZSet(tx, k)
		if err != nil {
			if skipWrongType && errors.Is(err, errWrongType) {
				continue
			}
			return -1, nil, false, err
		}
		if !z.found {
			continue
		}
		es, ahead, err := z.zpopEntries(max, count)
		if err != nil {
			return -1, nil, false, err
		}
		for _, e := range es {
			z.zdelete(e.m, e.s)
		}
		// The marks move past what was popped (zmarks.go).
		if len(es) > 0 {
			last := es[len(es)-1]
			if !max {
				z.zremovedLow(indexElem(last.s, last.m))
			} else {
				z.zremovedHigh(indexElem(last.s, last.m))
			}
		}
		more := z.meta.Count > 0
		z.save()
		if ahead != nil && more {
			// The next pops' entries, at the Stamp just written.
			z.pops.put(z.zpopKey(max), z.meta.Version, z.meta.Stamp, ahead)
		}
		return at, es, more, nil
	}
	return -1, nil, false, nil
}

// >> ZPOPMIN key [count] / ZPOPMAX key [count]
// Reply: the popped members and scores, flat (RESP3 with a count: pairs).
func zpopCmd(popMax bool) func(*Request) error {
	return func(r *Request) error {
		if len(r.Args) > 3 {
			return errSyntax
		}
		count := int64(-1)
		if len(r.Args) == 3 {
			n, ok := parseInt(r.Args[2])
			if !ok || n < 0 {
				return errMustBePositive
			}
			count = n
		}
		nested := r.w.Proto >= 3 && count != -1
		key := r.Args[1]
		var es []zentry
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			es = nil
			if count == 0 {
				// Type-checked, nothing popped.
				_, err := r.openZSet(tx, key)
				return err
			}
			var err error
			_, es, err = r.zpop(tx, [][]byte{key}, popMax, max(count, 1))
			return err
		})
		if err != nil {
			return err
		}
		if nested {
			r.w.Array(len(es))
		} else {
			r.w.Array(2 * len(es))
		}
		for _, e := range es {
			if nested {
				r.w.Array(2)
			}
			r.w.Bulk(e.m)
			r.double(e.s)
		}
		return nil
	}
}

// >> ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]
// Reply: [key, [[member, score] ...]] from the first non-empty key, or a
// null array.
func cmdZMPop(r *Request) error {
	keys, popMin, count, err := parseMPop(r.Args, 1, "min", "max")
	if err != nil {
		return err
	}
	max := !popMin
	var key []byte
	var es []zentry
	err = r.updateSub(keys, func(tx backend.Txn) error {
		var err error
		key, es, err = r.zpop(tx, keys, max, count)
		return err
	})
	if err != nil {
		return err
	}
	if key == nil {
		r.w.NullArray()
		return nil
	}
	r.w.Array(2)
	r.w.Bulk(key)
	r.w.Array(len(es))
	for _, e := range es {
		r.w.Array(2)
		r.w.Bulk(e.m)
		r.double(e.s)
	}
	return nil
}

// zremRangeCmd builds ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
//
// >> ZREMRANGEBYSCORE key min max
// Reply: the number of members removed.
func zremRangeCmd(typ zrangeType) func(*Request) error {
	return func(r *Request) error {
		sp := zrangeSpec{typ: typ, limit: -1}
		var err error
		switch typ {
		case zrRank:
			if sp.start, err = intArg(r.Args[2]); err == nil {
				sp.end, err = intArg(r.Args[3])
			}
		case zrScore:
			sp.sr, err = parseScoreRange(r.Args[2], r.Args[3])
		case zrLex:
			sp.lr, err = parseLexRange(r.Args[2], r.Args[3])
		}
		if err != nil {
			return err
		}
		key := r.Args[1]
		var n int
		err = r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			n = 0
			z, err := r.openZSet(tx, key)
			if err != nil || !z.found {
				return err
			}
			es, err := z.zrangeEntries(sp)
			if err != nil {
				return err
			}
			for _, e := range es {
				z.zdelete(e.m, e.s)
			}
			n = len(es)
			if n > 0 {
				// A removal of the lowest or the highest entries moves
				// the mark at that end past them (zmarks.go).
				first, last := es[0], es[n-1]
				switch lowEnd, highEnd := sp.removesEnds(int64(z.meta.Count) + int64(n)); {
				case lowEnd:
					z.zremovedLow(indexElem(last.s, last.m))
				case highEnd:
					z.zremovedHigh(indexElem(first.s, first.m))
				}
			}
			z.save()
			return nil
		})
		if err != nil {
			return err
		}
		r.w.Int(int64(n))
		return nil
	}
}

// removesEnds reports whether a ZREMRANGEBY* of sp on a set of n members
// removes a run of entries from the index's start (low) or up to its end
// (high).
func (sp zrangeSpec) removesEnds(n int64) (low, high bool) {
	switch sp.typ {
	case zrRank:
		start, end, ok := sanitizeRanks(sp.start, sp.end, n)
		return ok && start == 0, ok && end == n-1
	case zrScore:
		return math.IsInf(sp.sr.min, -1) && !sp.sr.minex, math.IsInf(sp.sr.max, 1) && !sp.sr.maxex
	}
	return false, false
}

// >> ZSCAN key cursor [MATCH pattern] [COUNT count]
// Reply: as HSCAN, member then score; a listpack whole in score order
// with its stored score text, a skiplist page by page (scores "%.17g").
func cmdZScan(r *Request) error {
	return scanCollectionWith(r, r.readZSet, keyspace.KindZSetScore, func(c *coll, elem, val []byte) ([]byte, []byte, bool) {
		m, s := decodeIndex(elem, val)
		if c.meta.Big {
			return m, []byte(formatScore(s)), true
		}
		return m, []byte(listpackScore(s)), true
	})
}

// >> ZRANDMEMBER key [count [WITHSCORES]]
// Reply: as HRANDFIELD, with scores for values.
func cmdZRandMember(r *Request) error {
	args := r.Args
	withCount := len(args) >= 3
	var count int64
	withScores := false
	if withCount {
		n, err := intArg(args[2])
		if err != nil {
			return err
		}
		if n < -math.MaxInt64 {
			return replyError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		}
		count = n
		if len(args) > 4 || (len(args) == 4 && !equalFold(args[3], "withscores")) {
			return errSyntax
		}
		if len(args) == 4 {
			withScores = true
			if count < -math.MaxInt64/2 || count > math.MaxInt64/2 {
				return replyError("ERR value is out of range")
			}
		}
	}
	var es []zentry
	walked := false
	err := r.readZSet(args[1], func(z *coll) error {
		es, walked = nil, false
		if withCount && count == 0 {
			return nil
		}
		if want, distinct := randWant(withCount, count); useWalks(withCount, want, z.meta.Count) {
			picks, ok, err := z.randomElems(keyspace.KindZSetMember, want, distinct)
			if err != nil || !ok {
				return err
			}
			walked = true
			for _, p := range picks {
				if len(p.val) != 8 {
					return fmt.Errorf("key %q: corrupt sorted-set score of %d bytes", z.key, len(p.val))
				}
				es = append(es, zentry{p.elem, math.Float64frombits(binary.BigEndian.Uint64(p.val))})
			}
			return nil
		}
		var err error
		es, err = z.zall()
		return err
	})
	if err != nil {
		return err
	}
	if !withCount {
		if len(es) == 0 {
			r.w.Null()
			return nil
		}
		r.w.Bulk(es[rand.IntN(len(es))].m)
		return nil
	}
	size := int64(len(es))
	if count == 0 || size == 0 {
		r.w.Array(0)
		return nil
	}
	header := func(n int64) {
		if withScores && r.w.Proto < 3 {
			n *= 2
		}
		r.w.Array(int(n))
	}
	if walked {
		// Drawn one by one: exactly the reply (|count| of them, distinct
		// when count is positive).
		header(size)
		for _, e := range es {
			r.zentryReply(e, withScores)
		}
		return nil
	}
	if count < 0 || count == 1 {
		n := count
		if n < 0 {
			n = -n
		}
		if r.w.Limit <= 0 && n > maxRandReplies {
			return replyError("ERR value is out of range")
		}
		header(n)
		for i := int64(0); i < n && !r.w.Overflowed(); i++ {
			r.zentryReply(es[rand.IntN(len(es))], withScores)
		}
		return nil
	}
	if count >= size {
		header(size)
		for _, e := range es {
			r.zentryReply(e, withScores)
		}
		return nil
	}
	header(count)
	for _, i := range rand.Perm(len(es))[:count] {
		r.zentryReply(es[i], withScores)
	}
	return nil
}
