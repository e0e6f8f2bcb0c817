package command

import (
	"bytes"
	"errors"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// The blocking list commands. Each handler checks its arguments in Redis's
// order, tries once (what the non-blocking form does), and blocks when
// there is nothing to pop (Request.block; blocking.go has the waiting).

func init() {
	const (
		g = "list"
		w = flagWrite
	)
	cmds := []*Command{
		{Name: "blpop", Arity: -3, Flags: w, FirstKey: 1, LastKey: -2, Step: 1, Group: g, Since: "2.0.0", Summary: "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Complexity: "O(N) where N is the number of provided keys.", Handler: cmdBPop(true)},
		{Name: "brpop", Arity: -3, Flags: w, FirstKey: 1, LastKey: -2, Step: 1, Group: g, Since: "2.0.0", Summary: "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Complexity: "O(N) where N is the number of provided keys.", Handler: cmdBPop(false)},
		{Name: "blmove", Arity: 6, Flags: w | flagDenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "6.2.0", Summary: "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", Complexity: "O(1)", Handler: cmdBLMove},
		{Name: "brpoplpush", Arity: 4, Flags: w | flagDenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "2.2.0", Summary: "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", Complexity: "O(1)", Handler: cmdBLMove},
		{Name: "blmpop", Arity: -5, Flags: w, Group: g, Since: "7.0.0", Summary: "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Complexity: "O(N+M) where N is the number of provided keys and M is the number of elements returned.", Handler: cmdBLMPop, keyFunc: blmpopKeys},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

// blmpopKeys locates BLMPOP's keys (after timeout and numkeys).
func blmpopKeys(args [][]byte) [][]byte {
	if len(args) < 3 {
		return nil
	}
	return numkeysKeys(args[1:])
}

// >> BLPOP key [key ...] timeout, BRPOP key [key ...] timeout
// Reply: [key, element] from the first non-empty list in argument order;
// a null array at the timeout.
func cmdBPop(left bool) func(*Request) error {
	return func(r *Request) error {
		timeout, err := blockTimeout(r.Args[len(r.Args)-1])
		if err != nil {
			return err
		}
		first, n := 1, len(r.Args)-2
		return r.popOrBlock(first, n, left, 1, false, timeout)
	}
}

// >> BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count]
// Reply: [key, [elements]] as LMPOP; a null array at the timeout.
// Redis 7.0 checks the timeout last.
func cmdBLMPop(r *Request) error {
	keys, left, count, err := parseLMPop(r.Args, 2)
	if err != nil {
		return err
	}
	timeout, err := blockTimeout(r.Args[1])
	if err != nil {
		return err
	}
	return r.popOrBlock(3, len(keys), left, count, true, timeout)
}

// popOrBlock pops from the first non-empty list of the n keys at
// r.Args[first:], or blocks on them.
func (r *Request) popOrBlock(first, n int, left bool, count int64, multi bool, timeout time.Duration) error {
	try := func(r *Request, order []int, blocked bool) (served, more bool, err error) {
		keys := r.Args[first : first+n]
		latch := make([][]byte, len(order))
		for i, j := range order {
			latch[i] = keys[j]
		}
		var out [][]byte
		at := -1
		err = r.updateSub(latch, func(tx backend.Txn) error {
			out, at, more = nil, -1, false
			for _, j := range order {
				l, err := r.openList(tx, keys[j])
				if err != nil {
					if blocked && errors.Is(err, errWrongType) {
						continue // Redis leaves the client blocked
					}
					return err
				}
				if !l.found {
					continue
				}
				if out, err = l.pop(left, count); err != nil {
					return err
				}
				more = l.llen() > 0
				l.save()
				at = j
				return nil
			}
			return nil
		})
		if err != nil || at < 0 {
			return false, false, err
		}
		r.servedKey = at
		r.w.Array(2)
		r.w.Bulk(keys[at])
		if multi {
			r.arrayReply(out)
		} else {
			r.w.Bulk(out[0])
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

// >> BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout,
// BRPOPLPUSH source destination timeout (BLMOVE ... RIGHT LEFT)
// Reply: the element moved; a null array at the timeout, a null bulk
// inside EXEC when the source is empty (as Redis).
func cmdBLMove(r *Request) error {
	fromLeft, toLeft := false, true
	at := 3
	if r.cmd.Name == "blmove" {
		var err error
		if fromLeft, err = leftOrRight(r.Args[3], "left", "right"); err != nil {
			return err
		}
		if toLeft, err = leftOrRight(r.Args[4], "left", "right"); err != nil {
			return err
		}
		at = 5
	}
	timeout, err := blockTimeout(r.Args[at])
	if err != nil {
		return err
	}
	try := func(r *Request, _ []int, blocked bool) (served, more bool, err error) {
		src, dst := r.Args[1], r.Args[2]
		var val []byte
		err = r.updateSub([][]byte{src, dst}, func(tx backend.Txn) error {
			val, served, more = nil, false, false
			from, err := r.openList(tx, src)
			if err != nil {
				if blocked && errors.Is(err, errWrongType) {
					return nil
				}
				return err
			}
			if !from.found {
				return nil
			}
			// A destination of the wrong type fails the command (the
			// element stays where it was), blocked or not, as in Redis.
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
			val, served = out[0], true
			if to != from {
				from.save()
			}
			if err := to.push(toLeft, out); err != nil {
				return err
			}
			more = from.llen() > 0
			to.save()
			r.signalKeyAsReady(dst)
			return nil
		})
		if err != nil || !served {
			return false, false, err
		}
		r.servedKey = 0
		r.w.Bulk(val)
		return true, more, nil
	}
	served, _, err := try(r, nil, false)
	if err != nil || served {
		return err
	}
	return r.block(blockOp{keys: storedKeys(r.c.db, r.Args[1:2]), try: try, timeout: timeout}, false)
}
