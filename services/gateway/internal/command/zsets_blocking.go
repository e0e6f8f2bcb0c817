package command

import (
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// The blocking sorted-set commands. As the list ones (lists_blocking.go)
// each checks its arguments in Redis's order, tries once (what ZPOPMIN,
// ZPOPMAX, ZMPOP do) and blocks when every key is empty.

func init() {
	const (
		g = "sorted-set"
		w = flagWrite
	)
	cmds := []*Command{
		{Name: "bzpopmin", Arity: -3, Flags: w | flagFast, FirstKey: 1, LastKey: -2, Step: 1, Group: g, Since: "5.0.0", Summary: "Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", Complexity: "O(log(N)) with N being the number of elements in the sorted set.", Handler: cmdBZPop(false)},
		{Name: "bzpopmax", Arity: -3, Flags: w | flagFast, FirstKey: 1, LastKey: -2, Step: 1, Group: g, Since: "5.0.0", Summary: "Remove and return the member with the highest score from one or more sorted sets, or block until one is available", Complexity: "O(log(N)) with N being the number of elements in the sorted set.", Handler: cmdBZPop(true)},
		{Name: "bzmpop", Arity: -5, Flags: w, Group: g, Since: "7.0.0", Summary: "Remove and return members with scores in a sorted set or block until one is available", Complexity: "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number of elements in the sorted set, and M being the number of elements popped.", Handler: cmdBZMPop, keyFunc: blmpopKeys},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

// >> BZPOPMIN key [key ...] timeout, BZPOPMAX key [key ...] timeout
// Reply: [key, member, score] from the first non-empty sorted set in
// argument order; a null array at the timeout. Redis checks the timeout
// first.
func cmdBZPop(popMax bool) func(*Request) error {
	return func(r *Request) error {
		timeout, err := blockTimeout(r.Args[len(r.Args)-1])
		if err != nil {
			return err
		}
		return r.zpopOrBlock(1, len(r.Args)-2, popMax, 1, false, timeout)
	}
}

// >> BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count]
// Reply: [key, [[member, score] ...]] as ZMPOP; a null array at the
// timeout. Redis 7.0 checks the timeout last.
func cmdBZMPop(r *Request) error {
	keys, popMin, count, err := parseMPop(r.Args, 2, "min", "max")
	if err != nil {
		return err
	}
	timeout, err := blockTimeout(r.Args[1])
	if err != nil {
		return err
	}
	return r.zpopOrBlock(3, len(keys), !popMin, count, true, timeout)
}

// zpopOrBlock pops from the first non-empty sorted set of the n keys at
// r.Args[first:], or blocks on them.
func (r *Request) zpopOrBlock(first, n int, popMax bool, count int64, nested bool, timeout time.Duration) error {
	try := func(r *Request, order []int, blocked bool) (served, more bool, err error) {
		keys := r.Args[first : first+n]
		latch := make([][]byte, len(order))
		for i, j := range order {
			latch[i] = keys[j]
		}
		at := -1
		var es []zentry
		err = r.updateSub(latch, func(tx backend.Txn) error {
			var err error
			at, es, more, err = r.zpopFrom(tx, latch, popMax, count, blocked)
			return err
		})
		if err != nil || at < 0 {
			return false, false, err
		}
		r.servedKey = order[at]
		key := keys[order[at]]
		if nested {
			r.w.Array(2)
			r.w.Bulk(key)
			r.w.Array(len(es))
			for _, e := range es {
				r.w.Array(2)
				r.w.Bulk(e.m)
				r.double(e.s)
			}
		} else {
			r.w.Array(3)
			r.w.Bulk(key)
			r.w.Bulk(es[0].m)
			r.double(es[0].s)
		}
		return true, more, nil
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	served, _, err := try(r, all, false)
	if err != nil || served {
		return err
	}
	return r.block(blockOp{keys: storedKeys(r.c.db, r.Args[first:first+n]), try: try, timeout: timeout}, true)
}
