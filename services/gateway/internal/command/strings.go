package command

import (
	"math"
	"math/big"
	"strconv"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

func init() {
	const (
		g  = "string"
		rf = flagReadonly | flagFast
		wf = flagWrite | flagDenyOOM | flagFast
		w  = flagWrite | flagDenyOOM
	)
	register(
		&Command{Name: "get", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the string value of a key.", Complexity: "O(1)", Handler: cmdGet},
		&Command{Name: "set", Arity: -3, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.", Complexity: "O(1)", Handler: cmdSet},
		&Command{Name: "setnx", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Set the string value of a key only when the key doesn't exist.", Complexity: "O(1)", Handler: cmdSetNX},
		&Command{Name: "setex", Arity: 4, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.", Complexity: "O(1)", Handler: cmdSetEX},
		&Command{Name: "psetex", Arity: 4, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.", Complexity: "O(1)", Handler: cmdPSetEX},
		&Command{Name: "getset", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the previous string value of a key after setting it to a new value.", Complexity: "O(1)", Handler: cmdGetSet},
		&Command{Name: "getdel", Arity: 2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Returns the string value of a key after deleting the key.", Complexity: "O(1)", Handler: cmdGetDel},
		&Command{Name: "getex", Arity: -2, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Returns the string value of a key after setting its expiration time.", Complexity: "O(1)", Handler: cmdGetEX},
		&Command{Name: "append", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.", Complexity: "O(1)", Handler: cmdAppend},
		&Command{Name: "strlen", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Returns the length of a string value.", Complexity: "O(1)", Handler: cmdStrlen},
		&Command{Name: "getrange", Arity: 4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.4.0", Summary: "Returns a substring of the string stored at a key.", Complexity: "O(N)", Handler: cmdGetRange},
		&Command{Name: "substr", Arity: 4, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns a substring from a string value.", Complexity: "O(N)", Handler: cmdGetRange},
		&Command{Name: "setrange", Arity: 4, Flags: w, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", Complexity: "O(1)", Handler: cmdSetRange},
		&Command{Name: "mget", Arity: -2, Flags: rf, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Atomically returns the string values of one or more keys.", Complexity: "O(N) where N is the number of keys to retrieve.", Handler: cmdMGet},
		&Command{Name: "mset", Arity: -3, Flags: w, FirstKey: 1, LastKey: -1, Step: 2, Group: g, Since: "1.0.1", Summary: "Atomically creates or modifies the string values of one or more keys.", Complexity: "O(N) where N is the number of keys to set.", Handler: cmdMSet},
		&Command{Name: "msetnx", Arity: -3, Flags: w, FirstKey: 1, LastKey: -1, Step: 2, Group: g, Since: "1.0.1", Summary: "Atomically modifies the string values of one or more keys only when all keys don't exist.", Complexity: "O(N) where N is the number of keys to set.", Handler: cmdMSetNX},
		&Command{Name: "incr", Arity: 2, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Complexity: "O(1)", Handler: cmdIncr},
		&Command{Name: "decr", Arity: 2, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.", Complexity: "O(1)", Handler: cmdDecr},
		&Command{Name: "incrby", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Complexity: "O(1)", Handler: cmdIncrBy},
		&Command{Name: "decrby", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.", Complexity: "O(1)", Handler: cmdDecrBy},
		&Command{Name: "incrbyfloat", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Complexity: "O(1)", Handler: cmdIncrByFloat},
	)
}

// str returns key's string value from tx, or WRONGTYPE for another type.
func str(tx backend.Txn, key []byte) (backend.Value, bool, error) {
	v, ok, err := tx.Get(key)
	if err != nil || !ok {
		return backend.Value{}, false, err
	}
	if v.Type != backend.TypeString {
		return backend.Value{}, false, errWrongType
	}
	return v, true, nil
}

func (r *Request) bulkOrNull(v []byte, ok bool) {
	if ok {
		r.w.Bulk(v)
	} else {
		r.w.Null()
	}
}

func (r *Request) hit(ok bool) {
	if ok {
		r.e.keyspaceHits.Add(1)
	} else {
		r.e.keyspaceMisses.Add(1)
	}
}

// >> GET key
// Reply: the value, or null if the key does not exist.
func cmdGet(r *Request) error {
	v, ok, err := r.appendGet(r.c.scratch[:0], r.Args[1])
	if err != nil {
		return err
	}
	r.c.keepScratch(v.Data)
	if ok && v.Type != backend.TypeString {
		return errWrongType
	}
	r.hit(ok)
	r.bulkOrNull(v.Data, ok)
	return nil
}

// expiry is a parsed EX/PX/EXAT/PXAT argument.
type expiry struct {
	set bool
	arg []byte
	// unitMs is 1000 for seconds, 1 for milliseconds; abs for EXAT/PXAT.
	unitMs int64
	abs    bool
}

// parseExpiryOpt recognises EX/PX/EXAT/PXAT at args[i]; it returns false if args[i]
// is none of them.
func parseExpiryOpt(args [][]byte, i int) (expiry, bool) {
	a := args[i]
	var e expiry
	switch {
	case equalFold(a, "ex"):
		e = expiry{unitMs: 1000}
	case equalFold(a, "px"):
		e = expiry{unitMs: 1}
	case equalFold(a, "exat"):
		e = expiry{unitMs: 1000, abs: true}
	case equalFold(a, "pxat"):
		e = expiry{unitMs: 1, abs: true}
	default:
		return expiry{}, false
	}
	if i+1 >= len(args) {
		return expiry{}, false
	}
	e.set, e.arg = true, args[i+1]
	return e, true
}

// compatible reports whether next may follow e in one command: Redis 7
// accepts the same option again (the last one wins, and only it is judged)
// but not two different ones.
func (e expiry) compatible(next expiry) bool {
	return !e.set || (e.unitMs == next.unitMs && e.abs == next.abs)
}

// amount parses the argument into milliseconds (relative, or absolute for
// EXAT/PXAT). SET, SETEX and GETEX demand a positive amount, and name
// themselves in the error.
func (e expiry) amount(cmd string) (int64, error) {
	n, ok := parseInt(e.arg)
	if !ok {
		return 0, errNotInteger
	}
	if n <= 0 || n > math.MaxInt64/e.unitMs {
		return 0, errInvalidExpire(cmd)
	}
	return n * e.unitMs, nil
}

// at returns the absolute expiry in Unix ms, a relative one counted from
// now. Commands pass their transaction's clock (backend.Txn.Now), so that on
// the raft backend the deadline comes from the cluster's timestamp oracle,
// the clock every reader judges expiry by, not from this gateway's clock.
func (e expiry) at(now int64, cmd string) (int64, error) {
	n, err := e.amount(cmd)
	if err != nil {
		return 0, err
	}
	if !e.abs {
		if n > math.MaxInt64-now {
			return 0, errInvalidExpire(cmd)
		}
		n += now
	}
	return n, nil
}

// >> SET key value [NX | XX] [GET] [EX seconds | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
// Reply: OK; null if NX/XX prevented the write; with GET, the old value or null.
func cmdSet(r *Request) error {
	args := r.Args
	var nx, xx, get, keepTTL bool
	var exp expiry
	for i := 3; i < len(args); i++ {
		a := args[i]
		switch {
		case equalFold(a, "nx") && !xx:
			nx = true
		case equalFold(a, "xx") && !nx:
			xx = true
		case equalFold(a, "get"):
			get = true
		case equalFold(a, "keepttl") && !exp.set:
			keepTTL = true
		default:
			e, ok := parseExpiryOpt(args, i)
			if !ok || keepTTL || !exp.compatible(e) {
				return errSyntax
			}
			exp = e
			i++
		}
	}
	return r.set(args[1], args[2], exp, nx, xx, get, keepTTL, "set")
}

func (r *Request) set(key, val []byte, exp expiry, nx, xx, get, keepTTL bool, name string) error {
	if exp.set {
		// Redis judges the time before anything else; the deadline itself
		// is fixed inside the transaction, by its clock.
		if _, err := exp.amount(name); err != nil {
			return err
		}
	}
	// The state lives in the Client and the callback is bound once per
	// connection: a closure over locals would cost allocations on every SET.
	op := &r.c.setOp
	*op = setOp{key: key, val: val, exp: exp, name: name, nx: nx, xx: xx, get: get, keepTTL: keepTTL}
	defer func() { *op = setOp{} }()
	if err := r.update(r.c.oneKey(key), r.c.setFn); err != nil {
		return err
	}
	switch {
	case get:
		r.bulkOrNull(op.old.Data, op.existed)
	case op.written:
		r.w.OK()
	default:
		r.w.Null()
	}
	return nil
}

// setOp is one SET, SETEX, PSETEX or GETSET.
type setOp struct {
	key, val             []byte
	exp                  expiry
	name                 string // the command, for its errors
	nx, xx, get, keepTTL bool

	// Results.
	old              backend.Value
	existed, written bool
}

func (op *setOp) apply(tx backend.Txn) error {
	var err error
	op.written = false
	var expiresAt int64
	if op.exp.set {
		if expiresAt, err = op.exp.at(tx.Now(), op.name); err != nil {
			return err
		}
	}
	switch {
	case op.get:
		op.old, op.existed, err = str(tx, op.key)
	case op.nx || op.xx || op.keepTTL:
		op.old, op.existed, err = tx.Get(op.key)
	default:
		// A plain SET replaces whatever is there, whatever its type: a
		// blind write, with no read (in the cluster, no read request).
		op.old, op.existed = backend.Value{}, false
	}
	if err != nil {
		return err
	}
	if (op.nx && op.existed) || (op.xx && !op.existed) {
		return nil
	}
	v := backend.Value{Type: backend.TypeString, Data: op.val, ExpiresAt: expiresAt}
	if op.keepTTL && op.existed {
		v.ExpiresAt = op.old.ExpiresAt
	}
	if v.ExpiresAt != 0 && v.Expired(tx.Now()) {
		// A deadline already past (EXAT in the past) leaves no key behind.
		tx.Delete(op.key)
	} else {
		tx.Set(op.key, v)
	}
	op.written = true
	return nil
}

// >> SETNX key value
// Reply: 1 if the key was set, 0 if it existed.
func cmdSetNX(r *Request) error {
	key, val := r.Args[1], r.Args[2]
	var set bool
	err := r.update([][]byte{key}, func(tx backend.Txn) error {
		_, exists, err := tx.Get(key)
		if err != nil {
			return err
		}
		set = !exists
		if set {
			tx.Set(key, backend.Value{Type: backend.TypeString, Data: val})
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(set))
	return nil
}

// >> SETEX key seconds value
func cmdSetEX(r *Request) error {
	return r.set(r.Args[1], r.Args[3], expiry{set: true, arg: r.Args[2], unitMs: 1000}, false, false, false, false, "setex")
}

// >> PSETEX key milliseconds value
func cmdPSetEX(r *Request) error {
	return r.set(r.Args[1], r.Args[3], expiry{set: true, arg: r.Args[2], unitMs: 1}, false, false, false, false, "psetex")
}

// >> GETSET key value
// Reply: the old value or null. The new value has no expiry.
func cmdGetSet(r *Request) error {
	return r.set(r.Args[1], r.Args[2], expiry{}, false, false, true, false, "getset")
}

// >> GETDEL key
// Reply: the value (now deleted), or null.
func cmdGetDel(r *Request) error {
	key := r.Args[1]
	var v backend.Value
	var ok bool
	err := r.update([][]byte{key}, func(tx backend.Txn) error {
		var err error
		if v, ok, err = str(tx, key); err != nil || !ok {
			return err
		}
		tx.Delete(key)
		return nil
	})
	if err != nil {
		return err
	}
	r.bulkOrNull(v.Data, ok)
	return nil
}

// >> GETEX key [EX seconds | PX ms | EXAT ts | PXAT ms-ts | PERSIST]
// Reply: the value or null; the expiry changes as asked.
func cmdGetEX(r *Request) error {
	args := r.Args
	var exp expiry
	var persist bool
	for i := 2; i < len(args); i++ {
		if equalFold(args[i], "persist") && !exp.set {
			persist = true
			continue
		}
		e, ok := parseExpiryOpt(args, i)
		if !ok || persist || !exp.compatible(e) {
			return errSyntax
		}
		exp = e
		i++
	}
	key := args[1]
	if !exp.set && !persist {
		return cmdGet(r)
	}
	var v backend.Value
	var ok bool
	err := r.update([][]byte{key}, func(tx backend.Txn) error {
		var err error
		if v, ok, err = str(tx, key); err != nil || !ok {
			return err
		}
		// Like Redis, the time is judged only for an existing string.
		var expiresAt int64
		if exp.set {
			if expiresAt, err = exp.at(tx.Now(), "getex"); err != nil {
				return err
			}
		}
		nv := v
		nv.ExpiresAt = expiresAt
		switch {
		case persist && v.ExpiresAt == 0:
		case nv.Expired(tx.Now()):
			tx.Delete(key)
		default:
			tx.Set(key, nv)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.bulkOrNull(v.Data, ok)
	return nil
}

// modifyString runs a read-modify-write on key's string value, keeping its expiry.
// fn gets the current value (nil if absent) and returns the new one, or keep=false
// to leave the key as it is.
func (r *Request) modifyString(key []byte, fn func(cur []byte, exists bool) (next []byte, keep bool, err error)) error {
	return r.update([][]byte{key}, func(tx backend.Txn) error {
		v, ok, err := str(tx, key)
		if err != nil {
			return err
		}
		next, write, err := fn(v.Data, ok)
		if err != nil || !write {
			return err
		}
		tx.Set(key, backend.Value{Type: backend.TypeString, Data: next, ExpiresAt: v.ExpiresAt})
		return nil
	})
}

// >> APPEND key value
// Reply: the length of the string after the append.
func cmdAppend(r *Request) error {
	key, suffix := r.Args[1], r.Args[2]
	var n int
	err := r.modifyString(key, func(cur []byte, _ bool) ([]byte, bool, error) {
		if err := r.e.checkValueSize(int64(len(cur)) + int64(len(suffix))); err != nil {
			return nil, false, err
		}
		next := make([]byte, 0, len(cur)+len(suffix))
		next = append(append(next, cur...), suffix...)
		n = len(next)
		return next, true, nil
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// checkValueSize refuses, before it is built, a string of n bytes past
// proto-max-bulk-len or past what the backend stores.
func (e *Executor) checkValueSize(n int64) error {
	if n > e.opts.MaxBulkLen {
		return errTooBig
	}
	if c, ok := e.be.(backend.ValueSizeChecker); ok {
		return c.CheckValueSize(n)
	}
	return nil
}

// >> STRLEN key
func cmdStrlen(r *Request) error {
	h, ok, err := r.head(r.Args[1])
	if err != nil {
		return err
	}
	if ok && h.Type != backend.TypeString {
		return errWrongType
	}
	r.w.Int(h.Len)
	return nil
}

// >> GETRANGE key start end
// Reply: the substring, with Redis's clamping of negative and out-of-range indexes.
func cmdGetRange(r *Request) error {
	start, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	end, err := intArg(r.Args[3])
	if err != nil {
		return err
	}
	v, ok, err := r.get(r.Args[1])
	if err != nil {
		return err
	}
	if ok && v.Type != backend.TypeString {
		return errWrongType
	}
	r.w.Bulk(substr(v.Data, start, end))
	return nil
}

func substr(s []byte, start, end int64) []byte {
	n := int64(len(s))
	if start < 0 && end < 0 && start > end {
		return nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	if end >= n {
		end = n - 1
	}
	if start > end || n == 0 {
		return nil
	}
	return s[start : end+1]
}

// >> SETRANGE key offset value
// Reply: the length of the string after the write.
func cmdSetRange(r *Request) error {
	key, patch := r.Args[1], r.Args[3]
	off, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	if off < 0 {
		return errOffsetRange
	}
	var n int
	err = r.modifyString(key, func(cur []byte, exists bool) ([]byte, bool, error) {
		if len(patch) == 0 {
			// Nothing to write: neither creates nor pads the key, whatever
			// the offset (Redis judges the size only after this).
			n = len(cur)
			return nil, false, nil
		}
		// off <= MaxInt64 and len(patch) <= MaxBulkLen: compare without
		// adding, which could overflow.
		if off > r.e.opts.MaxBulkLen-int64(len(patch)) {
			return nil, false, errTooBig
		}
		size := max(int64(len(cur)), off+int64(len(patch)))
		if err := r.e.checkValueSize(size); err != nil {
			return nil, false, err
		}
		next := make([]byte, size)
		copy(next, cur)
		copy(next[off:], patch)
		n = len(next)
		return next, true, nil
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> MGET key [key ...]
// Reply: an array with each value, or null for a missing key or another type.
func cmdMGet(r *Request) error {
	keys := r.Args[1:]
	vals, found, err := r.multiGet(keys)
	if err != nil {
		return err
	}
	r.w.Array(len(keys))
	for i := range keys {
		ok := found[i] && vals[i].Type == backend.TypeString
		r.hit(ok)
		r.bulkOrNull(vals[i].Data, ok)
	}
	return nil
}

func pairKeys(args [][]byte) [][]byte {
	keys := make([][]byte, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		keys = append(keys, args[i])
	}
	return keys
}

// >> MSET key value [key value ...]
// All keys are written in one atomic batch.
func cmdMSet(r *Request) error {
	if len(r.Args)%2 == 0 {
		return errWrongArgs("mset")
	}
	pairs := r.Args[1:]
	err := r.update(pairKeys(pairs), func(tx backend.Txn) error {
		for i := 0; i < len(pairs); i += 2 {
			tx.Set(pairs[i], backend.Value{Type: backend.TypeString, Data: pairs[i+1]})
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// >> MSETNX key value [key value ...]
// Reply: 1 if every key was set, 0 (and nothing set) if any existed.
func cmdMSetNX(r *Request) error {
	if len(r.Args)%2 == 0 {
		return errWrongArgs("msetnx")
	}
	pairs := r.Args[1:]
	var set bool
	err := r.update(pairKeys(pairs), func(tx backend.Txn) error {
		set = false
		for i := 0; i < len(pairs); i += 2 {
			_, exists, err := tx.Head(pairs[i])
			if err != nil || exists {
				return err
			}
		}
		for i := 0; i < len(pairs); i += 2 {
			tx.Set(pairs[i], backend.Value{Type: backend.TypeString, Data: pairs[i+1]})
		}
		set = true
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(set))
	return nil
}

func cmdIncr(r *Request) error { return r.incrBy(1) }
func cmdDecr(r *Request) error { return r.incrBy(-1) }

func cmdIncrBy(r *Request) error {
	n, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	return r.incrBy(n)
}

func cmdDecrBy(r *Request) error {
	n, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	if n == math.MinInt64 {
		return replyError("ERR decrement would overflow")
	}
	return r.incrBy(-n)
}

// incrBy adds delta to key's integer value, keeping its expiry.
// Reply: the new value.
func (r *Request) incrBy(delta int64) error {
	var result int64
	err := r.modifyString(r.Args[1], func(cur []byte, exists bool) ([]byte, bool, error) {
		var n int64
		if exists {
			var ok bool
			if n, ok = parseInt(cur); !ok {
				return nil, false, errNotInteger
			}
		}
		if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
			return nil, false, errOverflow
		}
		result = n + delta
		return strconv.AppendInt(nil, result, 10), true, nil
	})
	if err != nil {
		return err
	}
	r.w.Int(result)
	return nil
}

// >> INCRBYFLOAT key increment
// Reply: the new value as a bulk string, computed in long double like Redis.
func cmdIncrByFloat(r *Request) error {
	delta, ok := parseLongDouble(r.Args[2])
	if !ok {
		return errNotFloat
	}
	var out []byte
	err := r.modifyString(r.Args[1], func(cur []byte, exists bool) ([]byte, bool, error) {
		base := new(big.Float)
		if exists {
			var ok bool
			if base, ok = parseLongDouble(cur); !ok {
				return nil, false, errNotFloat
			}
		}
		sum, ok := addLongDouble(base, delta)
		if !ok {
			return nil, false, errNaNOrInf
		}
		out = formatLongDouble(sum)
		return out, true, nil
	})
	if err != nil {
		return err
	}
	r.w.Bulk(out)
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
