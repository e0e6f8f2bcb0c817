package command

import (
	"bytes"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Hashes: one sub-key per field (keyspace.KindHashField), the field's
// value as its value. Fields come back in byte order (HGETALL, HKEYS,
// HSCAN...): Redis defines no order, and a client must not depend on its
// (insertion order while small, hash order after).

func init() {
	const (
		g  = "hash"
		rf = flagReadonly | flagFast
		wf = flagWrite | flagDenyOOM | flagFast
	)
	cmds := []*Command{
		{Name: "hset", Arity: -4, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Creates or modifies the value of a field in a hash.", Complexity: "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", Handler: cmdHSet},
		{Name: "hsetnx", Arity: 4, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Sets the value of a field in a hash only when the field doesn't exist.", Complexity: "O(1)", Handler: cmdHSetNX},
		{Name: "hmset", Arity: -4, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Sets the values of multiple fields.", Complexity: "O(N) where N is the number of fields being set.", Handler: cmdHSet},
		{Name: "hget", Arity: 3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns the value of a field in a hash.", Complexity: "O(1)", Handler: cmdHGet},
		{Name: "hmget", Arity: -3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns the values of all fields in a hash.", Complexity: "O(N) where N is the number of fields being requested.", Handler: cmdHMGet},
		{Name: "hgetall", Arity: 2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns all fields and values in a hash.", Complexity: "O(N) where N is the size of the hash.", Handler: hashAll(true, true)},
		{Name: "hkeys", Arity: 2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns all fields in a hash.", Complexity: "O(N) where N is the size of the hash.", Handler: hashAll(true, false)},
		{Name: "hvals", Arity: 2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns all values in a hash.", Complexity: "O(N) where N is the size of the hash.", Handler: hashAll(false, true)},
		{Name: "hdel", Arity: -3, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", Complexity: "O(N) where N is the number of fields to be removed.", Handler: cmdHDel},
		{Name: "hlen", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Returns the number of fields in a hash.", Complexity: "O(1)", Handler: cmdHLen},
		{Name: "hstrlen", Arity: 3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "3.2.0", Summary: "Returns the length of the value of a field.", Complexity: "O(1)", Handler: cmdHStrlen},
		{Name: "hexists", Arity: 3, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Determines whether a field exists in a hash.", Complexity: "O(1)", Handler: cmdHExists},
		{Name: "hincrby", Arity: 4, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.0.0", Summary: "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", Complexity: "O(1)", Handler: cmdHIncrBy},
		{Name: "hincrbyfloat", Arity: 4, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", Complexity: "O(1)", Handler: cmdHIncrByFloat},
		{Name: "hrandfield", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.2.0", Summary: "Returns one or more random fields from a hash.", Complexity: "O(N) where N is the number of fields returned", Handler: cmdHRandField},
		{Name: "hscan", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.0", Summary: "Iterates over fields and values of a hash.", Complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", Handler: cmdHScan},
	}
	for _, c := range cmds {
		c.subKeys = true
	}
	register(cmds...)
}

const (
	errHashNotInteger replyError = "ERR hash value is not an integer"
	errHashNotFloat   replyError = "ERR hash value is not a float"
	errNaNOrInfArg    replyError = "ERR value is NaN or Infinity"
)

// openHash opens key as a hash.
func (r *Request) openHash(tx backend.Txn, key []byte) (*coll, error) {
	return r.openColl(tx, key, backend.TypeHash)
}

// setField stores field's value, counting a new field and judging the
// encoding as Redis's hashTypeSet does; it reports whether the field is new.
func (c *coll) setField(field, val []byte) (bool, error) {
	if err := c.create(); err != nil {
		return false, err
	}
	old, exists, err := c.get(keyspace.KindHashField, field)
	if err != nil {
		return false, err
	}
	// A hash is a listpack (OBJECT ENCODING) until a write crosses
	// hash-max-listpack-value or -entries (c.lim).
	if maxValue := c.lim.hashMaxValue(); int64(len(field)) > maxValue || int64(len(val)) > maxValue {
		c.meta.Big = true
	}
	if exists && bytes.Equal(old, val) {
		// The field holds val already: no element write (a memtable insert
		// on the embedded backend, a key of the transaction on the raft
		// one). The record is still written, as Redis still touches the
		// key (WATCH, the stamp: docs/architecture.md, "Collections").
		c.changed = true
	} else {
		c.put(keyspace.KindHashField, field, val)
	}
	if !exists {
		c.meta.Count++
	}
	// Judged after an update too, as hashTypeSet does: a listpack longer
	// than a lowered hash-max-listpack-entries converts at its next write.
	if c.meta.Count > c.lim.hashMaxEntries() {
		c.meta.Big = true
	}
	return !exists, nil
}

// >> HSET key field value [field value ...] (and HMSET)
// Reply: the number of fields added (HMSET: OK).
func cmdHSet(r *Request) error {
	args := r.Args
	if len(args)%2 != 0 {
		return errWrongArgs(r.cmd.Name)
	}
	key := args[1]
	var added int64
	err := r.updateSubAhead(key, func(tx backend.Txn) error {
		added = 0
		h, err := r.openHash(tx, key)
		if err != nil {
			return err
		}
		if err := h.create(); err != nil {
			return err
		}
		if len(args) > 4 { // prefetch reads two fields or more
			fields := make([][]byte, 0, len(args)/2)
			for i := 2; i < len(args); i += 2 {
				fields = append(fields, args[i])
			}
			if err := h.prefetch(keyspace.KindHashField, fields); err != nil {
				return err
			}
		}
		for i := 2; i < len(args); i += 2 {
			isNew, err := h.setField(args[i], args[i+1])
			if err != nil {
				return err
			}
			added += b2i(isNew)
		}
		h.save()
		return nil
	})
	if err != nil {
		return err
	}
	if r.cmd.Name == "hmset" {
		r.w.OK()
	} else {
		r.w.Int(added)
	}
	return nil
}

// >> HSETNX key field value
// Reply: 1 if the field was set, 0 if it existed.
func cmdHSetNX(r *Request) error {
	key, field, val := r.Args[1], r.Args[2], r.Args[3]
	var set bool
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		set = false
		h, err := r.openHash(tx, key)
		if err != nil {
			return err
		}
		if _, exists, err := h.get(keyspace.KindHashField, field); err != nil || exists {
			return err
		}
		if _, err := h.setField(field, val); err != nil {
			return err
		}
		set = true
		h.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(set))
	return nil
}

// readHash runs fn on key's hash in a transaction that writes nothing
// (readColl).
func (r *Request) readHash(key []byte, fn func(c *coll) error) error {
	return r.readColl(key, backend.TypeHash, fn)
}

// >> HGET key field
func cmdHGet(r *Request) error {
	var val []byte
	var ok bool
	err := r.readHash(r.Args[1], func(h *coll) error {
		var err error
		val, ok, err = h.get(keyspace.KindHashField, r.Args[2])
		return err
	})
	if err != nil {
		return err
	}
	r.bulkOrNull(val, ok)
	return nil
}

// >> HMGET key field [field ...]
// Reply: the fields' values, null for each missing one.
func cmdHMGet(r *Request) error {
	fields := r.Args[2:]
	vals := make([][]byte, len(fields))
	found := make([]bool, len(fields))
	err := r.readHash(r.Args[1], func(h *coll) error {
		for i, f := range fields {
			var err error
			if vals[i], found[i], err = h.get(keyspace.KindHashField, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Array(len(fields))
	for i := range fields {
		r.bulkOrNull(vals[i], found[i])
	}
	return nil
}

// hashFields reads every field of h (and its value when values is set).
func hashFields(h *coll, values bool) (fields, vals [][]byte, err error) {
	err = h.scan(keyspace.KindHashField, nil, 0, func(f, v []byte) bool {
		fields = append(fields, bytesClone(f))
		if values {
			vals = append(vals, bytesClone(v))
		}
		return true
	})
	return fields, vals, err
}

// hashAll builds HGETALL, HKEYS and HVALS.
func hashAll(keys, values bool) func(*Request) error {
	return func(r *Request) error {
		var fields, vals [][]byte
		err := r.readHash(r.Args[1], func(h *coll) error {
			var err error
			fields, vals, err = hashFields(h, values)
			return err
		})
		if err != nil {
			return err
		}
		switch {
		case keys && values:
			r.w.Map(len(fields))
		default:
			r.w.Array(len(fields))
		}
		for i, f := range fields {
			if keys {
				r.w.Bulk(f)
			}
			if values {
				r.w.Bulk(vals[i])
			}
		}
		return nil
	}
}

// >> HDEL key field [field ...]
// Reply: the number of fields removed; the key goes with its last field.
func cmdHDel(r *Request) error {
	key, fields := r.Args[1], r.Args[2:]
	var n int64
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		n = 0
		h, err := r.openHash(tx, key)
		if err != nil || !h.found {
			return err
		}
		for _, f := range fields {
			_, ok, err := h.get(keyspace.KindHashField, f)
			if err != nil {
				return err
			}
			if ok {
				h.remove(keyspace.KindHashField, f)
				h.meta.Count--
				n++
			}
		}
		h.save()
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

// >> HLEN key
func cmdHLen(r *Request) error {
	var n uint64
	err := r.readHash(r.Args[1], func(h *coll) error {
		n = h.meta.Count
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> HSTRLEN key field
// Reply: the length of the field's value, 0 if it is missing.
func cmdHStrlen(r *Request) error {
	var n int
	err := r.readHash(r.Args[1], func(h *coll) error {
		v, _, err := h.get(keyspace.KindHashField, r.Args[2])
		n = len(v)
		return err
	})
	if err != nil {
		return err
	}
	r.w.Int(int64(n))
	return nil
}

// >> HEXISTS key field
func cmdHExists(r *Request) error {
	var ok bool
	err := r.readHash(r.Args[1], func(h *coll) error {
		var err error
		_, ok, err = h.get(keyspace.KindHashField, r.Args[2])
		return err
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(ok))
	return nil
}

// modifyField runs a read-modify-write of one field: fn gets its value
// (nil if missing) and returns the new one.
func (r *Request) modifyField(key, field []byte, fn func(cur []byte, exists bool) ([]byte, error)) error {
	return r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		h, err := r.openHash(tx, key)
		if err != nil {
			return err
		}
		cur, exists, err := h.get(keyspace.KindHashField, field)
		if err != nil {
			return err
		}
		next, err := fn(cur, exists)
		if err != nil {
			return err
		}
		if _, err := h.setField(field, next); err != nil {
			return err
		}
		h.save()
		return nil
	})
}

// >> HINCRBY key field increment
// Reply: the field's new value.
func cmdHIncrBy(r *Request) error {
	delta, err := intArg(r.Args[3])
	if err != nil {
		return err
	}
	var result int64
	err = r.modifyField(r.Args[1], r.Args[2], func(cur []byte, exists bool) ([]byte, error) {
		var n int64
		if exists {
			var ok bool
			if n, ok = parseInt(cur); !ok {
				return nil, errHashNotInteger
			}
		}
		if (delta > 0 && n > math.MaxInt64-delta) || (delta < 0 && n < math.MinInt64-delta) {
			return nil, errOverflow
		}
		result = n + delta
		return strconv.AppendInt(nil, result, 10), nil
	})
	if err != nil {
		return err
	}
	r.w.Int(result)
	return nil
}

// >> HINCRBYFLOAT key field increment
// Reply: the field's new value, computed in long double like Redis.
func cmdHIncrByFloat(r *Request) error {
	delta, ok := parseLongDouble(r.Args[3])
	if !ok {
		return errNotFloat
	}
	if delta.IsInf() {
		return errNaNOrInfArg
	}
	var out []byte
	err := r.modifyField(r.Args[1], r.Args[2], func(cur []byte, exists bool) ([]byte, error) {
		base := new(big.Float)
		if exists {
			var ok bool
			if base, ok = parseLongDouble(cur); !ok {
				return nil, errHashNotFloat
			}
		}
		sum, ok := addLongDouble(base, delta)
		if !ok {
			return nil, errNaNOrInf
		}
		out = formatLongDouble(sum)
		return out, nil
	})
	if err != nil {
		return err
	}
	r.w.Bulk(out)
	return nil
}

// maxRandReplies bounds HRANDFIELD's reply with a negative count when the
// client has no output limit: Redis would try to build 2^63 replies.
const maxRandReplies = 1 << 24

// >> HRANDFIELD key [count [WITHVALUES]]
// Reply: a random field (null if the key is missing); with count > 0, up
// to count distinct fields; with count < 0, -count fields, repeats allowed;
// WITHVALUES adds each field's value (RESP3: as [field, value] pairs).
func cmdHRandField(r *Request) error {
	args := r.Args
	withCount := len(args) >= 3
	var count int64
	withValues := false
	if withCount {
		n, err := intArg(args[2])
		if err != nil {
			return err
		}
		if n < -math.MaxInt64 {
			return replyError("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
		}
		count = n
		if len(args) > 4 || (len(args) == 4 && !equalFold(args[3], "withvalues")) {
			return errSyntax
		}
		if len(args) == 4 {
			withValues = true
			if count < -math.MaxInt64/2 || count > math.MaxInt64/2 {
				return replyError("ERR value is out of range")
			}
		}
	}
	var fields, vals [][]byte
	walked := false
	err := r.readHash(args[1], func(h *coll) error {
		fields, vals, walked = nil, nil, false
		if withCount && count == 0 {
			return nil
		}
		if want, distinct := randWant(withCount, count); useWalks(withCount, want, h.meta.Count) {
			picks, ok, err := h.randomElems(keyspace.KindHashField, want, distinct)
			if err != nil || !ok {
				return err
			}
			walked = true
			for _, p := range picks {
				fields = append(fields, p.elem)
				vals = append(vals, p.val)
			}
			return nil
		}
		var err error
		fields, vals, err = hashFields(h, withValues)
		return err
	})
	if err != nil {
		return err
	}
	if !withCount {
		if len(fields) == 0 {
			r.w.Null()
			return nil
		}
		r.w.Bulk(fields[rand.IntN(len(fields))])
		return nil
	}
	size := int64(len(fields))
	if count == 0 || size == 0 {
		r.w.Array(0)
		return nil
	}
	pair := func(i int) {
		if withValues && r.w.Proto >= 3 {
			r.w.Array(2)
		}
		r.w.Bulk(fields[i])
		if withValues {
			r.w.Bulk(vals[i])
		}
	}
	header := func(n int64) {
		if withValues && r.w.Proto < 3 {
			n *= 2
		}
		r.w.Array(int(n))
	}
	if walked {
		// Drawn one by one: exactly the reply (|count| of them, distinct
		// when count is positive).
		header(size)
		for i := range fields {
			pair(i)
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
			pair(rand.IntN(len(fields)))
		}
		return nil
	}
	if count >= size {
		header(size)
		for i := range fields {
			pair(i)
		}
		return nil
	}
	perm := rand.Perm(len(fields))[:count]
	header(count)
	for _, i := range perm {
		pair(i)
	}
	return nil
}

// >> HSCAN key cursor [MATCH pattern] [COUNT count]
// Reply: the next cursor and a page of fields and values. A hash Redis
// keeps compact (listpack) is returned whole with cursor 0, as Redis does;
// a larger one a page of about COUNT fields at a time, its cursors being
// SCAN's (a resume field's leading bytes and a slot of the cursor table),
// so a cursor never skips a field.
func cmdHScan(r *Request) error {
	return scanCollection(r, r.readHash, keyspace.KindHashField, true)
}
