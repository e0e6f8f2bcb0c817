package command

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Lists: one sub-key per element (keyspace.KindListIndex), keyed by its
// index in the order-preserving form, so a range of positions is a range
// scan. The metadata record holds Head and Tail: the elements are the
// indexes [Head, Tail); LPUSH writes at Head-1, RPUSH at Tail, and a pop
// moves Head or Tail, so the ends are O(1) and LINDEX/LSET are one point
// read. Commands that open a hole in the middle (LINSERT, LREM) rewrite
// the elements after it, O(N) as they are in Redis.
//
// The blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) are in
// lists_blocking.go, their waiting in blocking.go.

func init() {
	const (
		g  = "list"
		rf = flagReadonly | flagFast
		wf = flagWrite | flagDenyOOM | flagFast
		w  = flagWrite | flagDenyOOM
	)
	cmds := []*Command{
		{Name: "lpush", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Prepends one or more elements to a list. Creates the key if it doesn't exist.", Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", Handler: listPush(true, false)},
		{Name: "rpush", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Appends one or more elements to a list. Creates the key if it doesn't exist.", Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", Handler: listPush(false, false)},
		{Name: "lpushx", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Prepends one or more elements to a list only when the list exists.", Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", Handler: listPush(true, true)},
		{Name: "rpushx", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Appends an element to a list only when the list exists.", Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", Handler: listPush(false, true)},
		{Name: "lpop", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", Complexity: "O(N) where N is the number of elements returned", Handler: listPop(true)},
		{Name: "rpop", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", Complexity: "O(N) where N is the number of elements returned", Handler: listPop(false)},
		{Name: "llen", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the length of a list.", Complexity: "O(1)", Handler: cmdLLen},
		{Name: "lrange", Arity: 4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns a range of elements from a list.", Complexity: "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", Handler: cmdLRange},
		{Name: "lindex", Arity: 3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns an element from a list by its index.", Complexity: "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", Handler: cmdLIndex},
		{Name: "lset", Arity: 4, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Sets the value of an element in a list by its index.", Complexity: "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", Handler: cmdLSet},
		{Name: "linsert", Arity: 5, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Inserts an element before or after another element in a list.", Complexity: "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", Handler: cmdLInsert},
		{Name: "lrem", Arity: 4, Flags: flagWrite, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Removes elements from a list. Deletes the list if the last element was removed.", Complexity: "O(N+M) where N is the length of the list and M is the number of elements removed.", Handler: cmdLRem},
		{Name: "ltrim", Arity: 4, Flags: flagWrite, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", Complexity: "O(N) where N is the number of elements to be removed by the operation.", Handler: cmdLTrim},
		{Name: "lpos", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.0.6", Summary: "Returns the index of matching elements in a list.", Complexity: "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", Handler: cmdLPos},
		{Name: "lmove", Arity: 5, Flags: w, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "6.2.0", Summary: "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", Complexity: "O(1)", Handler: cmdLMove},
		{Name: "rpoplpush", Arity: 3, Flags: w, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "1.2.0", Summary: "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", Complexity: "O(1)", Handler: cmdLMove},
		{Name: "lmpop", Arity: -4, Flags: flagWrite, Group: g, Since: "7.0.0", Summary: "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", Complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.", Handler: cmdLMPop, keyFunc: numkeysKeys},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

const (
	errIndexRange         replyError = "ERR index out of range"
	errNumkeysPositive    replyError = "ERR numkeys should be greater than 0"
	errCountPositive      replyError = "ERR count should be greater than 0"
	errLPosRankZero       replyError = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
	errLPosCountNegative  replyError = "ERR COUNT can't be negative"
	errLPosMaxlenNegative replyError = "ERR MAXLEN can't be negative"
)

// openList opens key as a list.
func (r *Request) openList(tx backend.Txn, key []byte) (*coll, error) {
	return r.openColl(tx, key, backend.TypeList)
}

// llen is the list's length.
func (c *coll) llen() int64 { return c.meta.Tail - c.meta.Head }

// listElem is the element suffix of the sub-key at position pos (0 = the head).
func (c *coll) listElem(pos int64) []byte {
	return keyspace.AppendListIndex(nil, c.meta.Head+pos)
}

// push adds elements at the head (left) or the tail, one by one, as Redis
// does: LPUSH a b c leaves c first.
func (c *coll) push(left bool, elems [][]byte) error {
	if !c.found {
		if err := c.create(); err != nil {
			return err
		}
		c.meta.List = true
	}
	for _, e := range elems {
		if left {
			c.meta.Head--
			c.put(keyspace.KindListIndex, keyspace.AppendListIndex(nil, c.meta.Head), e)
		} else {
			c.put(keyspace.KindListIndex, keyspace.AppendListIndex(nil, c.meta.Tail), e)
			c.meta.Tail++
		}
	}
	c.meta.Count = uint64(c.llen())
	return nil
}

// pop removes up to n elements from one end and returns them in the order
// they were popped.
func (c *coll) pop(left bool, n int64) ([][]byte, error) {
	if n > c.llen() {
		n = c.llen()
	}
	var start int64
	if !left {
		start = c.llen() - n
	}
	out, err := c.popElems(left, start, n)
	if err != nil {
		return nil, err
	}
	for i := range out {
		pos := start + int64(i)
		if !left {
			pos = c.llen() - 1 - int64(i)
		}
		c.remove(keyspace.KindListIndex, c.listElem(pos))
	}
	if left {
		c.meta.Head += n
	} else {
		c.meta.Tail -= n
	}
	c.meta.Count = uint64(c.llen())
	if c.listAhead != nil {
		c.aheadHead, c.aheadTail = c.meta.Head, c.meta.Tail
	}
	return out, nil
}

// listPopAhead is how many elements past its own a list pop reads for the
// next pops (popcache.go), with the one seek it makes.
const listPopAhead = 64

// popElems reads the n elements at positions [start, start+n) in pop
// order (the tail's first for !left). On a backend with sub-key
// iterators (embedded) a pop of at most listPopAhead elements takes them
// from the batch the last pop kept, if it was read at this state, or
// reads listPopAhead more with one seek; what is left is kept by save at
// the Stamp it writes (c.listAhead). A point read per pop (listOne) costs
// a Pebble get through the memtables and the LSM's levels: the tail of a
// queue filled by LPUSH is its oldest element, in an sstable by the time
// it is popped. The raft backend reads its pops' elements ahead in one
// batch per combined transaction instead (updateSubAhead), where a
// kept batch would be taken by the run ahead.
func (c *coll) popElems(left bool, start, n int64) ([][]byte, error) {
	_, iter := c.sub.(backend.SubIterTxn)
	if !usePopBatches || c.pops == nil || !iter || n <= 0 || n > listPopAhead || c.llen() <= n {
		out, err := c.listRange(start, n)
		if err == nil && !left {
			slices.Reverse(out)
		}
		return out, err
	}
	key := c.listPopKey(left)
	b := c.pops.take(key, c.meta.Version, c.meta.Stamp)
	if b != nil && int64(b.left()) >= n {
		popBatchHits.Add(1)
	} else {
		var err error
		if b, err = c.listReadAhead(left, n, min(c.llen(), n+listPopAhead)); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, 0, n)
	for int64(len(out)) < n {
		out = append(out, b.next())
	}
	c.listAhead, c.aheadLeft = b, left
	return out, nil
}

// listReadAhead reads up to m elements from one end of the list, in pop
// order, with one seek: at least the n a pop takes, and past them only
// while they hold less than popBatchBytes (a list of big elements must not
// make a pop read 64 of them).
func (c *coll) listReadAhead(left bool, n, m int64) (*popBatch, error) {
	b := &popBatch{}
	add := func(_, v []byte) bool {
		b.elems = append(b.elems, bytesClone(v))
		b.bytes += len(v) + 24
		got := int64(len(b.elems))
		return got < m && (got < n || b.bytes < popBatchBytes)
	}
	popBatchReads.Add(1)
	var err error
	if left {
		err = c.scanTo(keyspace.KindListIndex, c.listElem(0), c.listElem(m), int(m), add)
	} else {
		// The tail's end: a reverse scan from it (popElems is only used
		// on a backend with sub-key iterators).
		base, _ := keyspace.KindRange(c.db, c.key, c.meta.Version, keyspace.KindListIndex)
		lo := append(bytesClone(base), c.listElem(c.llen()-m)...)
		hi := append(bytesClone(base), c.listElem(c.llen())...)
		var sit backend.SubIterator
		if sit, err = c.sub.(backend.SubIterTxn).NewSubIter(lo, hi); err != nil {
			return nil, err
		}
		steps := 0
		err = sit.SeekLT(lo, hi, int(m), func(_, v []byte) bool {
			steps++
			return add(nil, v)
		})
		subKeysScanned.Add(int64(steps))
		err = errors.Join(err, sit.Close())
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b.elems)) < n {
		start := int64(0)
		if !left {
			start = c.llen() - n
		}
		return nil, errCorruptList(c.key, start, n, len(b.elems))
	}
	return b, nil
}

// listPopKey is the pop cache's key of the list's pops at one end.
func (c *coll) listPopKey(left bool) string {
	dir := byte('>')
	if left {
		dir = '<'
	}
	return c.popKey(keyspace.KindListIndex, dir)
}

// listRange reads n elements from position start (both within the list).
func (c *coll) listRange(start, n int64) ([][]byte, error) {
	if n <= 0 || !c.found {
		return nil, nil
	}
	if n == 1 {
		return c.listOne(start)
	}
	// The elements are copied into one arena, not one allocation each
	// (LRANGE 0 99 made 100 of them); their slices are cut once it stops
	// growing. ends[i] is where element i ends in it.
	var arena []byte
	ends := make([]int, 0, min(n, 1024))
	err := c.scanTo(keyspace.KindListIndex, c.listElem(start), c.listElem(start+n), int(min(n, math.MaxInt32)), func(_, v []byte) bool {
		if arena == nil {
			// A guess from the first element: a list's elements tend to be alike.
			arena = make([]byte, 0, int(min(n, 1024))*max(len(v), 8))
		}
		arena = append(arena, v...)
		ends = append(ends, len(arena))
		return int64(len(ends)) < n
	})
	if err != nil {
		return nil, err
	}
	if int64(len(ends)) != n {
		return nil, errCorruptList(c.key, start, n, len(ends))
	}
	out := make([][]byte, len(ends))
	from := 0
	for i, end := range ends {
		// Capped, so that a caller appending to one element cannot
		// overwrite the next.
		out[i] = arena[from:end:end]
		from = end
	}
	return out, nil
}

// listOne reads the element at position start, whose key is known: a
// point read, not a range scan. On the embedded backend a scan builds a
// Pebble iterator and seeks every level of the LSM, a quarter of the CPU of
// an RPOP; a point read stops at the memtable that holds the element just
// pushed (docs/benchmarks.md, "Embedded write targets").
func (c *coll) listOne(start int64) ([][]byte, error) {
	v, ok, err := c.get(keyspace.KindListIndex, c.listElem(start))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errCorruptList(c.key, start, 1, 0)
	}
	// Capped, as listRange's: an append to it must not write into a
	// buffer the backend keeps.
	return [][]byte{v[:len(v):len(v)]}, nil
}

func errCorruptList(key []byte, start, n int64, got int) error {
	return &corruptListError{key: string(key), start: start, n: n, got: got}
}

type corruptListError struct {
	key      string
	start, n int64
	got      int
}

func (e *corruptListError) Error() string {
	return fmt.Sprintf("list %q: the metadata promises %d elements from position %d, the store holds %d", e.key, e.n, e.start, e.got)
}

// rewrite replaces the elements from position from on with tail, keeping
// the head: what LINSERT and LREM do after the first changed position.
func (c *coll) rewrite(from int64, tail [][]byte) {
	old := c.llen()
	for i, e := range tail {
		c.put(keyspace.KindListIndex, c.listElem(from+int64(i)), e)
	}
	for p := from + int64(len(tail)); p < old; p++ {
		c.remove(keyspace.KindListIndex, c.listElem(p))
	}
	c.meta.Tail = c.meta.Head + from + int64(len(tail))
	c.meta.Count = uint64(c.llen())
	c.changed = true
}

// listPush is LPUSH/RPUSH (x: LPUSHX/RPUSHX, which push only onto an
// existing list). Reply: the list's length after the push.
func listPush(left, x bool) func(*Request) error {
	return func(r *Request) error {
		key := r.Args[1]
		var n int64
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			l, err := r.openList(tx, key)
			if err != nil {
				return err
			}
			if x && !l.found {
				n = 0
				return nil
			}
			if err := l.push(left, r.Args[2:]); err != nil {
				return err
			}
			n = l.llen()
			l.save()
			r.signalKeyAsReady(key)
			return nil
		})
		if err != nil {
			return err
		}
		r.w.Int(n)
		return nil
	}
}

// listPop is LPOP/RPOP key [count]. Reply: the element (null when the
// list is missing); with a count, an array (a null array when missing).
func listPop(left bool) func(*Request) error {
	return func(r *Request) error {
		if len(r.Args) > 3 {
			return errWrongArgs(r.cmd.Name)
		}
		withCount := len(r.Args) == 3
		count := int64(1)
		if withCount {
			n, ok := parseInt(r.Args[2])
			if !ok || n < 0 {
				return errMustBePositive
			}
			count = n
		}
		key := r.Args[1]
		var out [][]byte
		var found bool
		err := r.updateSubAhead(key, func(tx backend.Txn) error {
			out, found = nil, false
			l, err := r.openList(tx, key)
			if err != nil || !l.found {
				return err
			}
			found = true
			if count == 0 {
				return nil
			}
			if out, err = l.pop(left, count); err != nil {
				return err
			}
			l.save()
			return nil
		})
		if err != nil {
			return err
		}
		switch {
		case !found && withCount:
			r.w.NullArray()
		case !found:
			r.w.Null()
		case withCount:
			r.arrayReply(out)
		default:
			r.w.Bulk(out[0])
		}
		return nil
	}
}

func (r *Request) arrayReply(elems [][]byte) {
	r.w.Array(len(elems))
	for _, e := range elems {
		r.w.Bulk(e)
	}
}

// readList runs fn on key's list in a transaction that writes nothing
// (readColl).
func (r *Request) readList(key []byte, fn func(c *coll) error) error {
	return r.readColl(key, backend.TypeList, fn)
}

// >> LLEN key
func cmdLLen(r *Request) error {
	var n int64
	err := r.readList(r.Args[1], func(l *coll) error {
		n = l.llen()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

// rangeOf clamps Redis's [start, stop] (negative: from the end) to the
// list: the first position and the count, 0 when the range is empty.
func rangeOf(start, stop, llen int64) (int64, int64) {
	if start < 0 {
		start += llen
	}
	if stop < 0 {
		stop += llen
	}
	if start < 0 {
		start = 0
	}
	if start > stop || start >= llen {
		return 0, 0
	}
	if stop >= llen {
		stop = llen - 1
	}
	return start, stop - start + 1
}

// >> LRANGE key start stop
func cmdLRange(r *Request) error {
	start, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	stop, err := intArg(r.Args[3])
	if err != nil {
		return err
	}
	var out [][]byte
	err = r.readList(r.Args[1], func(l *coll) error {
		from, n := rangeOf(start, stop, l.llen())
		if n <= 0 || !l.found {
			return nil
		}
		// An unchanged list's range is served from the cache (rangeCache).
		key := rangeCacheKey(l, from, n)
		if elems, ok := r.e.lranges.get(key); ok {
			out = elems
			return nil
		}
		var err error
		if out, err = l.listRange(from, n); err == nil {
			r.e.lranges.put(key, out)
		}
		return err
	})
	if err != nil {
		return err
	}
	r.arrayReply(out)
	return nil
}

// position turns an index (negative: from the end) into a position, or
// reports that it is out of range.
func position(idx, llen int64) (int64, bool) {
	if idx < 0 {
		idx += llen
	}
	return idx, idx >= 0 && idx < llen
}

// >> LINDEX key index
// The index is parsed after the key is found, as Redis does.
func cmdLIndex(r *Request) error {
	var val []byte
	var ok bool
	err := r.readList(r.Args[1], func(l *coll) error {
		if !l.found {
			return nil
		}
		idx, err := intArg(r.Args[2])
		if err != nil {
			return err
		}
		pos, in := position(idx, l.llen())
		if !in {
			return nil
		}
		val, ok, err = l.get(keyspace.KindListIndex, l.listElem(pos))
		if err == nil && !ok {
			err = errCorruptList(l.key, pos, 1, 0)
		}
		return err
	})
	if err != nil {
		return err
	}
	r.bulkOrNull(val, ok)
	return nil
}

// >> LSET key index element
// The index is parsed after the key is found, as Redis does.
func cmdLSet(r *Request) error {
	key := r.Args[1]
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		l, err := r.openList(tx, key)
		if err != nil {
			return err
		}
		if !l.found {
			return errNoSuchKey
		}
		idx, err := intArg(r.Args[2])
		if err != nil {
			return err
		}
		pos, in := position(idx, l.llen())
		if !in {
			return errIndexRange
		}
		l.put(keyspace.KindListIndex, l.listElem(pos), r.Args[3])
		l.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// leftOrRight parses LEFT/RIGHT (BEFORE/AFTER for LINSERT: a, b).
func leftOrRight(b []byte, a, z string) (bool, error) {
	switch {
	case equalFold(b, a):
		return true, nil
	case equalFold(b, z):
		return false, nil
	}
	return false, errSyntax
}

// >> LINSERT key BEFORE|AFTER pivot element
// Reply: the new length, -1 when the pivot is absent, 0 when the key is.
func cmdLInsert(r *Request) error {
	before, err := leftOrRight(r.Args[2], "before", "after")
	if err != nil {
		return err
	}
	key, pivot, elem := r.Args[1], r.Args[3], r.Args[4]
	var n int64
	err = r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		n = 0
		l, err := r.openList(tx, key)
		if err != nil || !l.found {
			return err
		}
		all, err := l.listRange(0, l.llen())
		if err != nil {
			return err
		}
		at := -1
		for i, e := range all {
			if bytes.Equal(e, pivot) {
				at = i
				break
			}
		}
		if at < 0 {
			n = -1
			return nil
		}
		if !before {
			at++
		}
		tail := append([][]byte{elem}, all[at:]...)
		l.rewrite(int64(at), tail)
		n = l.llen()
		l.save()
		r.signalKeyAsReady(key)
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

// >> LREM key count element
// count > 0: the first count matches from the head; < 0: from the tail;
// 0: all of them. Reply: the number removed.
func cmdLRem(r *Request) error {
	count, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	fromTail := count < 0
	// -MinInt64 does not fit: as a uint64 it is 2^63, no limit in effect,
	// as Redis's own negation overflows to a count it never reaches.
	limit := uint64(count)
	if fromTail {
		limit = -uint64(count)
	}
	key, elem := r.Args[1], r.Args[3]
	var removed int64
	err = r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		removed = 0
		l, err := r.openList(tx, key)
		if err != nil || !l.found {
			return err
		}
		all, err := l.listRange(0, l.llen())
		if err != nil {
			return err
		}
		drop := make([]bool, len(all))
		first := len(all)
		for k := range all {
			i := k
			if fromTail {
				i = len(all) - 1 - k
			}
			if limit != 0 && uint64(removed) >= limit {
				break
			}
			if bytes.Equal(all[i], elem) {
				drop[i] = true
				removed++
				first = min(first, i)
			}
		}
		if removed == 0 {
			return nil
		}
		var kept [][]byte
		for i := first; i < len(all); i++ {
			if !drop[i] {
				kept = append(kept, all[i])
			}
		}
		l.rewrite(int64(first), kept)
		l.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(removed)
	return nil
}

// >> LTRIM key start stop
func cmdLTrim(r *Request) error {
	start, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	stop, err := intArg(r.Args[3])
	if err != nil {
		return err
	}
	key := r.Args[1]
	err = r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		l, err := r.openList(tx, key)
		if err != nil || !l.found {
			return err
		}
		llen := l.llen()
		from, n := rangeOf(start, stop, llen)
		for p := int64(0); p < from; p++ {
			l.remove(keyspace.KindListIndex, l.listElem(p))
		}
		for p := from + n; p < llen; p++ {
			l.remove(keyspace.KindListIndex, l.listElem(p))
		}
		if n == 0 {
			l.meta.Head = l.meta.Tail
		} else {
			l.meta.Tail = l.meta.Head + from + n
			l.meta.Head += from
		}
		l.meta.Count = uint64(l.llen())
		l.changed = true
		l.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// >> LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
func cmdLPos(r *Request) error {
	args := r.Args
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j++ {
		more := j+1 < len(args)
		switch {
		case equalFold(args[j], "rank") && more:
			j++
			n, err := intArg(args[j])
			if err != nil {
				return err
			}
			if n == 0 {
				return errLPosRankZero
			}
			rank = n
		case equalFold(args[j], "count") && more:
			j++
			n, ok := parseInt(args[j])
			if !ok || n < 0 {
				return errLPosCountNegative
			}
			count = n
		case equalFold(args[j], "maxlen") && more:
			j++
			n, ok := parseInt(args[j])
			if !ok || n < 0 {
				return errLPosMaxlenNegative
			}
			maxlen = n
		default:
			return errSyntax
		}
	}
	fromTail := rank < 0
	if fromTail {
		// -MinInt64 stays negative, as in Redis: every match then
		// qualifies, as if the rank were -1.
		rank = -rank
	}
	var found []int64
	err := r.readList(args[1], func(l *coll) error {
		llen := l.llen()
		scan := llen
		if maxlen > 0 && maxlen < scan {
			scan = maxlen
		}
		start := int64(0)
		if fromTail {
			start = llen - scan
		}
		all, err := l.listRange(start, scan)
		if err != nil {
			return err
		}
		var matches int64
		for k := range all {
			i := k
			if fromTail {
				i = len(all) - 1 - k
			}
			if !bytes.Equal(all[i], args[2]) {
				continue
			}
			matches++
			if matches < rank {
				continue
			}
			found = append(found, start+int64(i))
			if count == -1 || (count > 0 && int64(len(found)) >= count) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count != -1 {
		r.w.Array(len(found))
		for _, p := range found {
			r.w.Int(p)
		}
	} else if len(found) == 0 {
		r.w.Null()
	} else {
		r.w.Int(found[0])
	}
	return nil
}

// >> LMOVE source destination LEFT|RIGHT LEFT|RIGHT (and RPOPLPUSH
// source destination, which is LMOVE ... RIGHT LEFT)
func cmdLMove(r *Request) error {
	fromLeft, toLeft := false, true
	if r.cmd.Name == "lmove" {
		var err error
		if fromLeft, err = leftOrRight(r.Args[3], "left", "right"); err != nil {
			return err
		}
		if toLeft, err = leftOrRight(r.Args[4], "left", "right"); err != nil {
			return err
		}
	}
	src, dst := r.Args[1], r.Args[2]
	var val []byte
	var ok bool
	err := r.updateSub([][]byte{src, dst}, func(tx backend.Txn) error {
		val, ok = nil, false
		from, err := r.openList(tx, src)
		if err != nil || !from.found {
			return err
		}
		to := from
		if !bytes.Equal(src, dst) {
			if to, err = r.openList(tx, dst); err != nil {
				return err
			}
		}
		out, err := from.pop(fromLeft, 1)
		if err != nil {
			return err
		}
		val, ok = out[0], true
		if to != from {
			from.save()
		}
		if err := to.push(toLeft, out); err != nil {
			return err
		}
		to.save()
		r.signalKeyAsReady(dst)
		return nil
	})
	if err != nil {
		return err
	}
	r.bulkOrNull(val, ok)
	return nil
}

// parseLMPop parses LMPOP's arguments from numkeys (at args[at]) on, as
// Redis's lmpopGenericCommand does (BLMPOP has its timeout before).
func parseLMPop(args [][]byte, at int) (keys [][]byte, left bool, count int64, err error) {
	return parseMPop(args, at, "left", "right")
}

// parseMPop reads numkeys key [key ...] first|second [COUNT count] from
// args[at], in Redis's order (LMPOP, ZMPOP and their blocking forms);
// isFirst reports the first word (LEFT, MIN).
func parseMPop(args [][]byte, at int, first, second string) (keys [][]byte, isFirst bool, count int64, err error) {
	numkeys, ok := parseInt(args[at])
	if !ok || numkeys <= 0 {
		return nil, false, 0, errNumkeysPositive
	}
	if numkeys > int64(len(args)-at-2) {
		return nil, false, 0, errSyntax
	}
	whereAt := at + 1 + int(numkeys)
	if isFirst, err = leftOrRight(args[whereAt], first, second); err != nil {
		return nil, false, 0, err
	}
	count = -1
	for j := whereAt + 1; j < len(args); j++ {
		if count == -1 && equalFold(args[j], "count") && j+1 < len(args) {
			j++
			n, ok := parseInt(args[j])
			if !ok || n <= 0 {
				return nil, false, 0, errCountPositive
			}
			count = n
			continue
		}
		return nil, false, 0, errSyntax
	}
	if count == -1 {
		count = 1
	}
	return args[at+1 : whereAt], isFirst, count, nil
}

// >> LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
// Reply: [key, [elements]] for the first non-empty list, null if none.
func cmdLMPop(r *Request) error {
	keys, left, count, err := parseLMPop(r.Args, 1)
	if err != nil {
		return err
	}
	var key []byte
	var out [][]byte
	err = r.updateSub(keys, func(tx backend.Txn) error {
		key, out = nil, nil
		for _, k := range keys {
			l, err := r.openList(tx, k)
			if err != nil {
				return err
			}
			if !l.found {
				continue
			}
			if out, err = l.pop(left, count); err != nil {
				return err
			}
			key = k
			l.save()
			return nil
		}
		return nil
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
	r.arrayReply(out)
	return nil
}
