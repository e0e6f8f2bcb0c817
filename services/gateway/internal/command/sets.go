package command

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/glob"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Sets: one sub-key per member (keyspace.KindSetMember), with an empty
// value. Members come back in byte order (Redis: ascending integers while
// the set is an intset, hash order after; it promises no order).

func init() {
	const (
		g  = "set"
		rf = flagReadonly | flagFast
		wf = flagWrite | flagDenyOOM | flagFast
		w  = flagWrite | flagDenyOOM
	)
	cmds := []*Command{
		{Name: "sadd", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Adds one or more members to a set. Creates the key if it doesn't exist.", Complexity: "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", Handler: cmdSAdd},
		{Name: "srem", Arity: -3, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Removes one or more members from a set. Deletes the set if the last member was removed.", Complexity: "O(N) where N is the number of members to be removed.", Handler: cmdSRem},
		{Name: "smembers", Arity: 2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns all members of a set.", Complexity: "O(N) where N is the set cardinality.", Handler: cmdSMembers},
		{Name: "sismember", Arity: 3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Determines whether a member belongs to a set.", Complexity: "O(1)", Handler: cmdSIsMember},
		{Name: "smismember", Arity: -3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Determines whether multiple members belong to a set.", Complexity: "O(N) where N is the number of elements being checked for membership", Handler: cmdSMIsMember},
		{Name: "scard", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the number of members in a set.", Complexity: "O(1)", Handler: cmdSCard},
		{Name: "spop", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", Complexity: "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", Handler: cmdSPop},
		{Name: "srandmember", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Get one or multiple random members from a set", Complexity: "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", Handler: cmdSRandMember},
		{Name: "smove", Arity: 4, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "1.0.0", Summary: "Moves a member from one set to another.", Complexity: "O(1)", Handler: cmdSMove},
		{Name: "sinter", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the intersect of multiple sets.", Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", Handler: setOpCmd(setInter, false)},
		{Name: "sunion", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the union of multiple sets.", Complexity: "O(N) where N is the total number of elements in all given sets.", Handler: setOpCmd(setUnion, false)},
		{Name: "sdiff", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the difference of multiple sets.", Complexity: "O(N) where N is the total number of elements in all given sets.", Handler: setOpCmd(setDiff, false)},
		{Name: "sinterstore", Arity: -3, Flags: w, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Stores the intersect of multiple sets in a key.", Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", Handler: setOpCmd(setInter, true)},
		{Name: "sunionstore", Arity: -3, Flags: w, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Stores the union of multiple sets in a key.", Complexity: "O(N) where N is the total number of elements in all given sets.", Handler: setOpCmd(setUnion, true)},
		{Name: "sdiffstore", Arity: -3, Flags: w, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Stores the difference of multiple sets in a key.", Complexity: "O(N) where N is the total number of elements in all given sets.", Handler: setOpCmd(setDiff, true)},
		{Name: "sintercard", Arity: -3, Flags: flagReadonly, Group: g, Since: "7.0.0", Summary: "Returns the number of members of the intersect of multiple sets.", Complexity: "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", Handler: cmdSInterCard, keyFunc: numkeysKeys},
		{Name: "sscan", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.0", Summary: "Iterates over members of a set.", Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", Handler: cmdSScan},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

// numkeysKeys locates the keys of a command "name numkeys key [key ...]
// ...": the EXEC queue's keys.
func numkeysKeys(args [][]byte) [][]byte {
	if len(args) < 2 {
		return nil
	}
	n, ok := parseInt(args[1])
	if !ok || n < 1 || n > int64(len(args)-2) {
		return nil
	}
	return args[2 : 2+n]
}

// openSet opens key as a set.
func (r *Request) openSet(tx backend.Txn, key []byte) (*coll, error) {
	return r.openColl(tx, key, backend.TypeSet)
}

// addMember adds a member, judging the encoding as Redis's setTypeAdd
// does; it reports whether the member is new.
func (c *coll) addMember(m []byte) (bool, error) {
	if err := c.create(); err != nil {
		return false, err
	}
	_, exists, err := c.get(keyspace.KindSetMember, m)
	if err != nil || exists {
		return false, err
	}
	c.put(keyspace.KindSetMember, m, nil)
	c.meta.Count++
	// A set of integers only is an intset up to set-max-intset-entries, a
	// hashtable past it or once it holds anything else.
	if _, isInt := parseInt(m); !isInt || c.meta.Count > c.lim.setMaxIntset() {
		c.meta.Big = true
	}
	return true, nil
}

// removeMember removes a member; it reports whether it was there.
func (c *coll) removeMember(m []byte) (bool, error) {
	_, exists, err := c.get(keyspace.KindSetMember, m)
	if err != nil || !exists {
		return false, err
	}
	c.remove(keyspace.KindSetMember, m)
	c.meta.Count--
	return true, nil
}

// members reads every member of c.
func (c *coll) members() ([][]byte, error) {
	var out [][]byte
	err := c.scan(keyspace.KindSetMember, nil, 0, func(m, _ []byte) bool {
		out = append(out, bytesClone(m))
		return true
	})
	return out, err
}

// readSet runs fn on key's set in a transaction that writes nothing
// (readColl).
func (r *Request) readSet(key []byte, fn func(c *coll) error) error {
	return r.readColl(key, backend.TypeSet, fn)
}

// >> SADD key member [member ...]
// Reply: the number of members added.
func cmdSAdd(r *Request) error {
	key := r.Args[1]
	var added int64
	err := r.updateSubAhead(key, func(tx backend.Txn) error {
		added = 0
		s, err := r.openSet(tx, key)
		if err != nil {
			return err
		}
		created, before := !s.found, s.meta.Stamp
		if err := s.create(); err != nil {
			return err
		}
		if err := s.prefetch(keyspace.KindSetMember, r.Args[2:]); err != nil {
			return err
		}
		var newBuf [4][]byte
		newMembers := newBuf[:0]
		for _, m := range r.Args[2:] {
			isNew, err := s.addMember(m)
			if err != nil {
				return err
			}
			if isNew {
				added++
				newMembers = append(newMembers, m)
			}
		}
		s.save()
		if added > 0 && !runningAhead(tx) {
			// SPOP's sample of the set, kept from its creation (spopfill.go).
			s.pops.saddOffer(s.popKey(keyspace.KindSetMember, 0), created, before, &s.meta, newMembers)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(added)
	return nil
}

// >> SREM key member [member ...]
// Reply: the number of members removed; the key goes with its last one.
func cmdSRem(r *Request) error {
	key := r.Args[1]
	var n int64
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		n = 0
		s, err := r.openSet(tx, key)
		if err != nil || !s.found {
			return err
		}
		for _, m := range r.Args[2:] {
			ok, err := s.removeMember(m)
			if err != nil {
				return err
			}
			n += b2i(ok)
		}
		s.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

func (r *Request) setReply(members [][]byte) {
	r.w.Set(len(members))
	for _, m := range members {
		r.w.Bulk(m)
	}
}

// >> SMEMBERS key
func cmdSMembers(r *Request) error {
	var ms [][]byte
	err := r.readSet(r.Args[1], func(s *coll) error {
		var err error
		ms, err = s.members()
		return err
	})
	if err != nil {
		return err
	}
	r.setReply(ms)
	return nil
}

// >> SISMEMBER key member
func cmdSIsMember(r *Request) error {
	var ok bool
	err := r.readSet(r.Args[1], func(s *coll) error {
		var err error
		_, ok, err = s.get(keyspace.KindSetMember, r.Args[2])
		return err
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(ok))
	return nil
}

// >> SMISMEMBER key member [member ...]
func cmdSMIsMember(r *Request) error {
	ms := r.Args[2:]
	found := make([]bool, len(ms))
	err := r.readSet(r.Args[1], func(s *coll) error {
		for i, m := range ms {
			var err error
			if _, found[i], err = s.get(keyspace.KindSetMember, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Array(len(ms))
	for _, ok := range found {
		r.w.Int(b2i(ok))
	}
	return nil
}

// >> SCARD key
func cmdSCard(r *Request) error {
	var n uint64
	err := r.readSet(r.Args[1], func(s *coll) error {
		n = s.meta.Count
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

const errMustBePositive replyError = "ERR value is out of range, must be positive"

// >> SPOP key [count]
// Reply: a random member, removed (null if the key is missing); with
// count, up to count distinct members (a set).
func cmdSPop(r *Request) error {
	args := r.Args
	if len(args) > 3 {
		return errSyntax
	}
	withCount := len(args) == 3
	var count int64
	if withCount {
		n, ok := parseInt(args[2])
		if !ok || n < 0 {
			return errMustBePositive
		}
		count = n
	}
	key := args[1]
	var popped [][]byte
	// taken: the member an earlier run of fn took from the set's kept
	// sample (a run that did not commit, as fn runs again).
	var taken []byte
	fn := func(tx backend.Txn) error {
		popped = nil
		s, err := r.openSet(tx, key)
		if err != nil || !s.found || (withCount && count == 0) {
			return err
		}
		batched := !withCount && usePopBatches && s.pops != nil && s.meta.Count > randSmall
		if !withCount && runningAhead(tx) {
			// The raft backend's run ahead (backend.AheadTxn): name the
			// member the real run will read, touching no cache.
			if !batched {
				return errNotAhead
			}
			m, err := s.spopAhead(taken)
			popped = [][]byte{m}
			return err
		}
		if batched {
			m, ok, err := s.spopBatched(taken)
			if err != nil || ok {
				popped = [][]byte{m}
				if ok {
					taken = m
				}
				return err
			}
		}
		if want := max(count, 1); useWalks(withCount, want, s.meta.Count) {
			picks, ok, err := s.randomElems(keyspace.KindSetMember, want, true)
			if err == nil && ok && !withCount {
				// Kept walks (pickerCache) are trusted only as far as this
				// check: a member that is gone would corrupt the count.
				if _, found, gerr := s.get(keyspace.KindSetMember, picks[0].elem); gerr != nil {
					return gerr
				} else if !found {
					if s.pickers != nil {
						s.pickers.take(s.pickerKey(keyspace.KindSetMember), 0, 0)
					}
					picks, ok, err = s.randomElems(keyspace.KindSetMember, want, true)
					if err == nil && ok {
						pickerStale.Add(1)
					}
				}
			}
			if err != nil {
				return err
			}
			if ok {
				for _, p := range picks {
					popped = append(popped, p.elem)
					s.remove(keyspace.KindSetMember, p.elem)
					s.meta.Count--
				}
				s.save()
				if !withCount && len(picks) == 1 {
					// The next SPOP walks the same levels (pickerCache).
					s.afterPop(keyspace.KindSetMember, picks[0].elem)
				}
				if batched {
					s.pops.spopWalked(s.popKey(keyspace.KindSetMember, 0))
				}
				return nil
			}
		}
		ms, err := s.members()
		if err != nil {
			return err
		}
		n := 1
		if withCount {
			n = int(min(count, int64(len(ms))))
		}
		perm := rand.Perm(len(ms))
		for _, i := range perm[:n] {
			popped = append(popped, ms[i])
			s.remove(keyspace.KindSetMember, ms[i])
			s.meta.Count--
		}
		// Popping most of a set (at least 5 times what stays: the walks
		// above never take this share), Redis's spopWithCountCommand
		// builds a new set of the members left, whose encoding is judged
		// afresh: an intset again if they are integers within
		// set-max-intset-entries.
		if left := perm[n:]; withCount && len(left) > 0 && len(left)*5 <= n {
			big := uint64(len(left)) > s.lim.setMaxIntset()
			for _, i := range left {
				if _, isInt := parseInt(ms[i]); !isInt {
					big = true
					break
				}
			}
			s.meta.Big = big
		}
		s.save()
		return nil
	}
	// Without a count a pop reads the member it takes from the kept sample
	// (popcache.go): run ahead, the raft backend reads the members of all
	// the pops of one combined transaction in one batch.
	var err error
	if withCount {
		err = r.updateSub([][]byte{key}, fn)
	} else {
		err = r.updateSubAhead(key, fn)
	}
	if err != nil {
		return err
	}
	if !withCount {
		if len(popped) == 0 {
			r.w.Null()
		} else {
			r.w.Bulk(popped[0])
		}
		return nil
	}
	r.setReply(popped)
	return nil
}

// >> SRANDMEMBER key [count]
// Reply: a random member (null if the key is missing); with count > 0 up
// to count distinct members, with count < 0 -count members, repeats
// allowed (an array).
func cmdSRandMember(r *Request) error {
	args := r.Args
	if len(args) > 3 {
		return errSyntax
	}
	withCount := len(args) == 3
	var count int64
	if withCount {
		n, err := intArg(args[2])
		if err != nil {
			return err
		}
		if n < -math.MaxInt64 {
			return replyError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		}
		count = n
	}
	var ms [][]byte
	var picks []picked
	walked := false
	err := r.readSet(args[1], func(s *coll) error {
		ms, picks, walked = nil, nil, false
		if withCount && count == 0 {
			return nil
		}
		if want, distinct := randWant(withCount, count); useWalks(withCount, want, s.meta.Count) {
			var err error
			if picks, walked, err = s.randomElems(keyspace.KindSetMember, want, distinct); err != nil || walked {
				return err
			}
		}
		var err error
		ms, err = s.members()
		return err
	})
	if err != nil {
		return err
	}
	if walked {
		// Drawn one by one: count of them exactly (distinct when count
		// is positive), or one without count.
		if !withCount {
			if len(picks) == 0 {
				r.w.Null()
			} else {
				r.w.Bulk(picks[0].elem)
			}
			return nil
		}
		r.w.Array(len(picks))
		for _, p := range picks {
			r.w.Bulk(p.elem)
		}
		return nil
	}
	if !withCount {
		if len(ms) == 0 {
			r.w.Null()
		} else {
			r.w.Bulk(ms[rand.IntN(len(ms))])
		}
		return nil
	}
	size := int64(len(ms))
	switch {
	case count == 0 || size == 0:
		r.w.Array(0)
	case count < 0:
		n := -count
		if r.w.Limit <= 0 && n > maxRandReplies {
			return replyError("ERR value is out of range")
		}
		r.w.Array(int(n))
		for i := int64(0); i < n && !r.w.Overflowed(); i++ {
			r.w.Bulk(ms[rand.IntN(len(ms))])
		}
	case count >= size:
		r.w.Array(len(ms))
		for _, m := range ms {
			r.w.Bulk(m)
		}
	default:
		r.w.Array(int(count))
		for _, i := range rand.Perm(len(ms))[:count] {
			r.w.Bulk(ms[i])
		}
	}
	return nil
}

// >> SMOVE source destination member
// Reply: 1 if the member moved (or is in source = destination), else 0.
func cmdSMove(r *Request) error {
	src, dst, m := r.Args[1], r.Args[2], r.Args[3]
	var moved bool
	err := r.updateSub([][]byte{src, dst}, func(tx backend.Txn) error {
		moved = false
		from, err := r.openSet(tx, src)
		if err != nil {
			return err
		}
		if !from.found {
			return nil // before the destination's type, as in Redis
		}
		to, err := r.openSet(tx, dst)
		if err != nil {
			return err
		}
		if bytes.Equal(src, dst) {
			_, moved, err = from.get(keyspace.KindSetMember, m)
			return err
		}
		if moved, err = from.removeMember(m); err != nil || !moved {
			return err
		}
		from.save()
		if _, err := to.addMember(m); err != nil {
			return err
		}
		to.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(moved))
	return nil
}

type setAlgebra int

const (
	setInter setAlgebra = iota
	setUnion
	setDiff
)

// readSets reads the members of every key (a missing key is empty),
// refusing any key of another type, as Redis checks them all.
func (r *Request) readSets(tx backend.Txn, keys [][]byte) ([][][]byte, error) {
	sets := make([][][]byte, len(keys))
	opened := make([]*coll, len(keys))
	for i, k := range keys {
		s, err := r.openSet(tx, k)
		if err != nil {
			return nil, err
		}
		opened[i] = s
	}
	for i, s := range opened {
		ms, err := s.members()
		if err != nil {
			return nil, err
		}
		sets[i] = ms
	}
	return sets, nil
}

// combine computes op over sets, in byte order.
func combine(op setAlgebra, sets [][][]byte) [][]byte {
	var out [][]byte
	switch op {
	case setUnion:
		seen := map[string]bool{}
		for _, set := range sets {
			for _, m := range set {
				if !seen[string(m)] {
					seen[string(m)] = true
					out = append(out, m)
				}
			}
		}
	case setInter, setDiff:
		if len(sets) == 0 {
			return nil
		}
		others := make([]map[string]bool, len(sets)-1)
		for i, set := range sets[1:] {
			others[i] = make(map[string]bool, len(set))
			for _, m := range set {
				others[i][string(m)] = true
			}
		}
		for _, m := range sets[0] {
			keep := true
			for _, o := range others {
				if o[string(m)] != (op == setInter) {
					keep = false
					break
				}
			}
			if keep {
				out = append(out, m)
			}
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// setOpCmd builds SINTER, SUNION, SDIFF and their STORE forms.
//
// >> SINTER key [key ...] / SINTERSTORE destination key [key ...]
// Reply: the resulting set; STORE forms store it (replacing the
// destination, deleting it when the result is empty) and reply its size.
func setOpCmd(op setAlgebra, store bool) func(*Request) error {
	return func(r *Request) error {
		keys := r.Args[1:]
		var dst []byte
		if store {
			dst, keys = r.Args[1], r.Args[2:]
		}
		var result [][]byte
		err := r.updateSub(r.Args[1:], func(tx backend.Txn) error {
			sets, err := r.readSets(tx, keys)
			if err != nil {
				return err
			}
			result = combine(op, sets)
			if !store {
				return nil
			}
			out, err := r.newColl(tx, dst, backend.TypeSet)
			if err != nil {
				return err
			}
			if len(result) == 0 {
				if _, exists, err := tx.Head(dst); err != nil || !exists {
					return err
				}
				tx.Delete(dst)
				return nil
			}
			for _, m := range result {
				if _, err := out.addMember(m); err != nil {
					return err
				}
			}
			out.save()
			return nil
		})
		if err != nil {
			return err
		}
		if store {
			r.w.Int(int64(len(result)))
			return nil
		}
		r.setReply(result)
		return nil
	}
}

// >> SINTERCARD numkeys key [key ...] [LIMIT limit]
// Reply: the size of the intersection, at most limit (0: no limit).
func cmdSInterCard(r *Request) error {
	args := r.Args
	n, ok := parseInt(args[1])
	if !ok || n < 1 {
		return replyError("ERR numkeys should be greater than 0")
	}
	if n > int64(len(args)-2) {
		return replyError("ERR Number of keys can't be greater than number of args")
	}
	keys := args[2 : 2+n]
	var limit int64
	for i := 2 + int(n); i < len(args); i++ {
		if equalFold(args[i], "limit") && i+1 < len(args) {
			l, ok := parseInt(args[i+1])
			if !ok || l < 0 {
				return replyError("ERR LIMIT can't be negative")
			}
			limit = l
			i++
			continue
		}
		return errSyntax
	}
	var card int64
	err := r.updateSub(keys, func(tx backend.Txn) error {
		sets, err := r.readSets(tx, keys)
		if err != nil {
			return err
		}
		card = int64(len(combine(setInter, sets)))
		return nil
	})
	if err != nil {
		return err
	}
	if limit > 0 {
		card = min(card, limit)
	}
	r.w.Int(card)
	return nil
}

// >> SSCAN key cursor [MATCH pattern] [COUNT count]
// Reply: the next cursor and a page of members; an intset (Redis's
// compact encoding) whole with cursor 0, as Redis answers; a larger set a
// page of about COUNT members, with SCAN's cursors (see HSCAN).
func cmdSScan(r *Request) error {
	return scanCollection(r, r.readSet, keyspace.KindSetMember, false)
}

// scanCollection answers HSCAN and SSCAN: the elements of kind in the
// collection read reads at Args[1], from the cursor at Args[2] with the
// options after it; withValues puts each element's value after it.
func scanCollection(r *Request, read func(key []byte, fn func(*coll) error) error, kind byte, withValues bool) error {
	return scanCollectionWith(r, read, kind, func(_ *coll, elem, val []byte) ([]byte, []byte, bool) {
		return elem, val, withValues
	})
}

// scanCollectionWith is scanCollection for a collection whose scanned
// sub-keys need decoding: split returns the name MATCH is applied to and
// the value to put after it if withValue, both valid during the call only.
func scanCollectionWith(r *Request, read func(key []byte, fn func(*coll) error) error, kind byte, split func(c *coll, elem, val []byte) (name, value []byte, withValue bool)) error {
	cursor, ok := parseCursor(r.Args[2])
	if !ok {
		return errInvalidCursor
	}
	var out [][]byte
	var next []byte
	var optErr error
	err := read(r.Args[1], func(c *coll) error {
		out, next, optErr = nil, nil, nil
		if !c.found {
			return nil
		}
		// As in Redis, options are judged only for an existing key.
		pattern, count, err := scanOptions(r.Args[3:])
		if err != nil {
			optErr = err
			return nil
		}
		var start []byte
		limit := 0
		if c.meta.Big {
			if cursor != 0 {
				start = r.e.scanCursors.lookup(cursor)
			}
			limit = int(count) + 1
		}
		seen := 0
		return c.scan(kind, start, limit, func(elem, val []byte) bool {
			seen++
			if limit > 0 && seen == limit {
				next = bytesClone(elem)
				return false
			}
			name, value, withValue := split(c, elem, val)
			if pattern != nil && !glob.Match(pattern, name) {
				return true
			}
			out = append(out, bytesClone(name))
			if withValue {
				out = append(out, bytesClone(value))
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	if optErr != nil {
		return optErr
	}
	var nextCursor uint64
	if next != nil {
		nextCursor = r.e.scanCursors.store(next)
	}
	r.w.Array(2)
	r.w.BulkString(strconv.FormatUint(nextCursor, 10))
	r.w.Array(len(out))
	for _, b := range out {
		r.w.Bulk(b)
	}
	return nil
}

// scanOptions parses HSCAN's and SSCAN's MATCH and COUNT, as Redis's
// scanGenericCommand does.
func scanOptions(args [][]byte) (pattern []byte, count int64, err error) {
	count = 10
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case equalFold(a, "count") && i+1 < len(args):
			n, err := intArg(args[i+1])
			if err != nil {
				return nil, 0, err
			}
			if n < 1 {
				return nil, 0, errSyntax
			}
			count = min(n, maxScanCount)
		case equalFold(a, "match") && i+1 < len(args):
			pattern = args[i+1]
		default:
			return nil, 0, errSyntax
		}
		i++
	}
	return pattern, count, nil
}
