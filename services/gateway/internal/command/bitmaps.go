package command

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Bitmaps: string commands that address a value's bits, as Redis 7.0's
// bitops.c does. Bit 0 is the most significant bit of byte 0. Writes grow
// the string with zero bytes, through checkValueSize before anything is
// allocated, and keep the key's expiry (BITOP's destination loses it, as
// Redis's setKey does).

func init() {
	const g = "bitmap"
	register(
		&Command{Name: "setbit", Arity: 4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Sets or clears the bit at offset in the string value stored at key", Complexity: "O(1)", Handler: cmdSetBit},
		&Command{Name: "getbit", Arity: 3, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Returns the bit value at offset in the string value stored at key", Complexity: "O(1)", Handler: cmdGetBit},
		&Command{Name: "bitcount", Arity: -2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Count set bits in a string", Complexity: "O(N)", Handler: cmdBitCount},
		&Command{Name: "bitpos", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.8.7", Summary: "Find first bit set or clear in a string", Complexity: "O(N)", Handler: cmdBitPos},
		&Command{Name: "bitop", Arity: -4, Flags: flagWrite | flagDenyOOM, FirstKey: 2, LastKey: -1, Step: 1, Group: g, Since: "2.6.0", Summary: "Perform bitwise operations between strings", Complexity: "O(N)", Handler: cmdBitOp},
		&Command{Name: "bitfield", Arity: -2, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "3.2.0", Summary: "Perform arbitrary bitfield integer operations on strings", Complexity: "O(1) for each subcommand specified", Handler: cmdBitField},
		&Command{Name: "bitfield_ro", Arity: -2, Flags: flagReadonly | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "6.0.0", Summary: "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD", Complexity: "O(1) for each subcommand specified", Handler: cmdBitFieldRO},
	)
}

const (
	errBitOffset   replyError = "ERR bit offset is not an integer or out of range"
	errBitValue    replyError = "ERR bit is not an integer or out of range"
	errBitArg      replyError = "ERR The bit argument must be 1 or 0."
	errBitOpNot    replyError = "ERR BITOP NOT must be called with a single source key."
	errBitfieldTyp replyError = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
	errOverflowTyp replyError = "ERR Invalid OVERFLOW type specified"
	errBitfieldRO  replyError = "ERR BITFIELD_RO only supports the GET subcommand"
)

// bitOffset parses a bit offset as Redis's getBitOffsetFromArgument: a
// strict integer, with hash and bits > 0 also "#n" meaning n*bits (wrapping
// on overflow as Redis's C does), not negative, and addressing a byte below
// proto-max-bulk-len.
func (e *Executor) bitOffset(arg []byte, hash bool, width int64) (int64, error) {
	usehash := hash && width > 0 && len(arg) > 0 && arg[0] == '#'
	if usehash {
		arg = arg[1:]
	}
	off, ok := parseInt(arg)
	if !ok {
		return 0, errBitOffset
	}
	if usehash {
		off = int64(uint64(off) * uint64(width))
	}
	if off < 0 || off>>3 >= e.opts.MaxBulkLen {
		return 0, errBitOffset
	}
	return off, nil
}

// readString reads key's string value outside a transaction (nil, false
// when it does not exist; WRONGTYPE for another type), counting a keyspace
// hit or miss as Redis's lookupKeyRead does.
func (r *Request) readString(key []byte) ([]byte, bool, error) {
	v, ok, err := r.get(key)
	if err != nil {
		return nil, false, err
	}
	r.hit(ok)
	if !ok {
		return nil, false, nil
	}
	if v.Type != backend.TypeString {
		return nil, false, errWrongType
	}
	return v.Data, true, nil
}

// grownCopy returns a copy of cur at least size bytes long (zero padded),
// judging the size first when it grows the string: through checkValueSize,
// except that, as in Redis, BITFIELD (slack 8) may reach up to 8 bytes
// past proto-max-bulk-len, since only a field's offset is bounded, not
// its end; the backend's own cap still applies to that.
func (e *Executor) grownCopy(cur []byte, size, slack int64) ([]byte, error) {
	if size > int64(len(cur)) {
		if err := e.checkValueSize(min(size, e.opts.MaxBulkLen)); err != nil {
			return nil, err
		}
		if size > e.opts.MaxBulkLen {
			if size > e.opts.MaxBulkLen+slack {
				return nil, errTooBig
			}
			if c, ok := e.be.(backend.ValueSizeChecker); ok {
				if err := c.CheckValueSize(size); err != nil {
					return nil, err
				}
			}
		}
	}
	next := make([]byte, max(size, int64(len(cur))))
	copy(next, cur)
	return next, nil
}

func bitAt(p []byte, off int64) int64 {
	if off>>3 >= int64(len(p)) {
		return 0
	}
	return int64(p[off>>3]>>(7-uint(off&7))) & 1
}

// >> SETBIT key offset value
// Reply: the bit's previous value.
func cmdSetBit(r *Request) error {
	off, err := r.e.bitOffset(r.Args[2], false, 0)
	if err != nil {
		return err
	}
	on, ok := parseInt(r.Args[3])
	if !ok || on&^1 != 0 {
		return errBitValue
	}
	var old int64
	err = r.modifyString(r.Args[1], func(cur []byte, exists bool) ([]byte, bool, error) {
		old = bitAt(cur, off)
		size := off>>3 + 1
		if exists && size <= int64(len(cur)) && old == on {
			return nil, false, nil
		}
		next, err := r.e.grownCopy(cur, size, 0)
		if err != nil {
			return nil, false, err
		}
		mask := byte(1) << (7 - uint(off&7))
		if on == 1 {
			next[off>>3] |= mask
		} else {
			next[off>>3] &^= mask
		}
		return next, true, nil
	})
	if err != nil {
		return err
	}
	r.w.Int(old)
	return nil
}

// >> GETBIT key offset
func cmdGetBit(r *Request) error {
	off, err := r.e.bitOffset(r.Args[2], false, 0)
	if err != nil {
		return err
	}
	p, _, err := r.readString(r.Args[1])
	if err != nil {
		return err
	}
	r.w.Int(bitAt(p, off))
	return nil
}

// bitRange resolves BITCOUNT's and BITPOS's start and end as Redis does:
// negative indexes count from the end, both are clamped to the string. In
// BIT mode they are bit indexes, else byte indexes.
func bitRange(n, start, end int64, isbit bool) (int64, int64) {
	if isbit {
		n <<= 3
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
	return start, end
}

// cstr is a as Redis's C string functions (strcasecmp, strlen) see it:
// up to its first NUL byte. Redis compares option names that way, so
// "BIT\x00x" is BIT.
func cstr(a []byte) []byte {
	if i := bytes.IndexByte(a, 0); i >= 0 {
		return a[:i]
	}
	return a
}

// parseBitMode reads BYTE or BIT (any case).
func parseBitMode(a []byte) (bool, error) {
	a = cstr(a)
	switch {
	case equalFold(a, "bit"):
		return true, nil
	case equalFold(a, "byte"):
		return false, nil
	}
	return false, errSyntax
}

// popcount counts the set bits of p.
func popcount(p []byte) int64 {
	var n int
	for len(p) >= 8 {
		n += bits.OnesCount64(uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 |
			uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7])<<56)
		p = p[8:]
	}
	for _, b := range p {
		n += bits.OnesCount8(b)
	}
	return int64(n)
}

// >> BITCOUNT key [start end [BYTE | BIT]]
// Redis 7.0 looks the key up first: a missing key counts 0 whatever the
// other arguments are.
func cmdBitCount(r *Request) error {
	args := r.Args
	p, ok, err := r.readString(args[1])
	if err != nil {
		return err
	}
	if !ok {
		r.w.Int(0)
		return nil
	}
	n := int64(len(p))
	var start, end int64
	isbit := false
	switch len(args) {
	case 2:
		start, end = 0, n-1
	case 4, 5:
		if start, err = intArg(args[2]); err != nil {
			return err
		}
		if end, err = intArg(args[3]); err != nil {
			return err
		}
		if start < 0 && end < 0 && start > end {
			r.w.Int(0)
			return nil
		}
		if len(args) == 5 {
			if isbit, err = parseBitMode(args[4]); err != nil {
				return err
			}
		}
		start, end = bitRange(n, start, end, isbit)
	default:
		return errSyntax
	}
	if start > end {
		r.w.Int(0)
		return nil
	}
	if !isbit {
		r.w.Int(popcount(p[start : end+1]))
		return nil
	}
	first, last := start>>3, end>>3
	count := popcount(p[first : last+1])
	if s := uint(start & 7); s != 0 {
		count -= int64(bits.OnesCount8(p[first] >> (8 - s)))
	}
	if e := uint(7 - end&7); e != 0 {
		count -= int64(bits.OnesCount8(p[last] & (1<<e - 1)))
	}
	r.w.Int(count)
	return nil
}

// firstBit returns the index of the first bit equal to bit among p's bits
// sb to eb (inclusive, within p), or -1.
func firstBit(p []byte, sb, eb, bit int64) int64 {
	skip, skip64 := byte(0), uint64(0)
	if bit == 0 {
		skip, skip64 = 0xff, math.MaxUint64
	}
	// Bytes before whole are entirely within the range.
	whole := (eb + 1) >> 3
	for i := sb; i <= eb; {
		if i&7 == 0 {
			// Skip whole bytes that cannot hold the bit, 8 at a time.
			j := i >> 3
			for j+8 <= whole && binary.LittleEndian.Uint64(p[j:]) == skip64 {
				j += 8
			}
			for j < whole && p[j] == skip {
				j++
			}
			if j<<3 > i {
				i = j << 3
				continue
			}
		}
		if bitAt(p, i) == bit {
			return i
		}
		i++
	}
	return -1
}

// >> BITPOS key bit [start [end [BYTE | BIT]]]
// Reply: the first bit set (1) or clear (0) in the range, or -1. Looking
// for a clear bit without an end finds the one past the string when all are
// set; a missing key is all zeros.
func cmdBitPos(r *Request) error {
	args := r.Args
	bit, ok := parseInt(args[2])
	if !ok {
		return errNotInteger
	}
	if bit != 0 && bit != 1 {
		return errBitArg
	}
	p, ok, err := r.readString(args[1])
	if err != nil {
		return err
	}
	if !ok {
		r.w.Int(-(bit))
		return nil
	}
	n := int64(len(p))
	var start, end int64
	isbit, endGiven := false, false
	switch len(args) {
	case 3:
		start, end = 0, n-1
	case 4, 5, 6:
		if start, err = intArg(args[3]); err != nil {
			return err
		}
		if len(args) == 6 {
			if isbit, err = parseBitMode(args[5]); err != nil {
				return err
			}
		}
		if len(args) >= 5 {
			if end, err = intArg(args[4]); err != nil {
				return err
			}
			endGiven = true
		} else {
			end = n - 1
		}
		start, end = bitRange(n, start, end, isbit)
	default:
		return errSyntax
	}
	if start > end {
		r.w.Int(-1)
		return nil
	}
	sb, eb := start, end
	if !isbit {
		sb, eb = start<<3, end<<3+7
	}
	pos := firstBit(p, sb, eb, bit)
	if pos < 0 && bit == 0 && !endGiven {
		// Past the range: the string is zero padded to the right.
		pos = (eb>>3 + 1) << 3
	}
	r.w.Int(pos)
	return nil
}

// >> BITOP AND | OR | XOR | NOT destkey key [key ...]
// Reply: the length of the result, which is stored in destkey (deleted when
// empty). Missing keys are empty strings; shorter ones are zero padded.
func cmdBitOp(r *Request) error {
	args := r.Args
	op := cstr(args[1])
	var kind byte
	switch {
	case equalFold(op, "and"):
		kind = '&'
	case equalFold(op, "or"):
		kind = '|'
	case equalFold(op, "xor"):
		kind = '^'
	case equalFold(op, "not"):
		kind = '~'
	default:
		return errSyntax
	}
	if kind == '~' && len(args) != 4 {
		return errBitOpNot
	}
	dest, srcKeys := args[2], args[3:]
	var maxLen, found int
	err := r.update(args[2:], func(tx backend.Txn) error {
		maxLen, found = 0, 0
		srcs := make([][]byte, len(srcKeys))
		for i, k := range srcKeys {
			v, ok, err := str(tx, k)
			if err != nil {
				return err
			}
			if ok {
				found++
				srcs[i] = v.Data
				maxLen = max(maxLen, len(v.Data))
			}
		}
		if maxLen == 0 {
			tx.Delete(dest)
			return nil
		}
		// The result is as long as the longest source, a value already
		// stored: as in Redis, proto-max-bulk-len does not apply (BITFIELD
		// may have passed it by 8 bytes), the backend's cap does.
		if c, ok := r.e.be.(backend.ValueSizeChecker); ok {
			if err := c.CheckValueSize(int64(maxLen)); err != nil {
				return err
			}
		}
		res := make([]byte, maxLen)
		copy(res, srcs[0])
		switch kind {
		case '~':
			for j := range res {
				res[j] = ^res[j]
			}
		case '&':
			for _, s := range srcs[1:] {
				for j := range res {
					if j < len(s) {
						res[j] &= s[j]
					} else {
						clear(res[j:])
						break
					}
				}
			}
		case '|':
			for _, s := range srcs[1:] {
				for j := range s {
					res[j] |= s[j]
				}
			}
		case '^':
			for _, s := range srcs[1:] {
				for j := range s {
					res[j] ^= s[j]
				}
			}
		}
		tx.Set(dest, backend.Value{Type: backend.TypeString, Data: res})
		return nil
	})
	if err != nil {
		return err
	}
	r.e.keyspaceHits.Add(int64(found))
	r.e.keyspaceMisses.Add(int64(len(srcKeys) - found))
	r.w.Int(int64(maxLen))
	return nil
}

// BITFIELD overflow behaviours.
const (
	bfWrap = iota
	bfSat
	bfFail
)

const (
	bfGet = iota
	bfSet
	bfIncrBy
)

type bitfieldOp struct {
	offset   int64
	value    int64
	opcode   int
	overflow int
	bits     int64
	signed   bool
}

// bitfieldType parses i1..i64 or u1..u63.
func bitfieldType(a []byte) (signed bool, width int64, err error) {
	a = cstr(a)
	if len(a) == 0 || (a[0] != 'i' && a[0] != 'u') {
		return false, 0, errBitfieldTyp
	}
	signed = a[0] == 'i'
	n, ok := parseInt(a[1:])
	if !ok || n < 1 || (signed && n > 64) || (!signed && n > 63) {
		return false, 0, errBitfieldTyp
	}
	return signed, n, nil
}

// parseBitfield parses BITFIELD's operations, in Redis's order of checks.
func (r *Request) parseBitfield() (ops []bitfieldOp, readonly bool, highest int64, err error) {
	args := r.Args
	overflow := bfWrap
	readonly = true
	for j := 2; j < len(args); j++ {
		remaining := len(args) - j - 1
		sub := cstr(args[j])
		var opcode int
		switch {
		case equalFold(sub, "get") && remaining >= 2:
			opcode = bfGet
		case equalFold(sub, "set") && remaining >= 3:
			opcode = bfSet
		case equalFold(sub, "incrby") && remaining >= 3:
			opcode = bfIncrBy
		case equalFold(sub, "overflow") && remaining >= 1:
			j++
			switch t := cstr(args[j]); {
			case equalFold(t, "wrap"):
				overflow = bfWrap
			case equalFold(t, "sat"):
				overflow = bfSat
			case equalFold(t, "fail"):
				overflow = bfFail
			default:
				return nil, false, 0, errOverflowTyp
			}
			continue
		default:
			return nil, false, 0, errSyntax
		}
		signed, width, err := bitfieldType(args[j+1])
		if err != nil {
			return nil, false, 0, err
		}
		off, err := r.e.bitOffset(args[j+2], true, width)
		if err != nil {
			return nil, false, 0, err
		}
		var value int64
		if opcode != bfGet {
			readonly = false
			highest = max(highest, off+width-1)
			if value, err = intArg(args[j+3]); err != nil {
				return nil, false, 0, err
			}
			j += 3
		} else {
			j += 2
		}
		ops = append(ops, bitfieldOp{offset: off, value: value, opcode: opcode, overflow: overflow, bits: width, signed: signed})
	}
	return ops, readonly, highest, nil
}

func getUnsignedBitfield(p []byte, off, width int64) uint64 {
	var v uint64
	for j := int64(0); j < width; j++ {
		v = v<<1 | uint64(bitAt(p, off+j))
	}
	return v
}

func getSignedBitfield(p []byte, off, width int64) int64 {
	v := getUnsignedBitfield(p, off, width)
	if width < 64 && v&(1<<(width-1)) != 0 {
		v |= math.MaxUint64 << width
	}
	return int64(v)
}

func setBitfield(p []byte, off, width int64, v uint64) {
	for j := int64(0); j < width; j++ {
		o := off + j
		mask := byte(1) << (7 - uint(o&7))
		if (v>>(width-1-j))&1 != 0 {
			p[o>>3] |= mask
		} else {
			p[o>>3] &^= mask
		}
	}
}

// checkUnsignedBitfieldOverflow is Redis's: 0 if value+incr fits in width
// bits, else 1 (over) or -1 (under), with limit the wrapped or saturated
// result.
func checkUnsignedBitfieldOverflow(value uint64, incr, width int64, owtype int) (int, uint64) {
	maxv := uint64(1)<<width - 1
	maxincr := int64(maxv - value)
	minincr := -int64(value)
	wrap := func() uint64 { return (value + uint64(incr)) &^ (math.MaxUint64 << width) }
	if value > maxv || (incr > 0 && incr > maxincr) {
		switch owtype {
		case bfWrap:
			return 1, wrap()
		case bfSat:
			return 1, maxv
		}
		return 1, 0
	} else if incr < 0 && incr < minincr {
		switch owtype {
		case bfWrap:
			return -1, wrap()
		case bfSat:
			return -1, 0
		}
		return -1, 0
	}
	return 0, 0
}

// checkSignedBitfieldOverflow is Redis's, for signed fields.
func checkSignedBitfieldOverflow(value, incr, width int64, owtype int) (int, int64) {
	maxv := int64(math.MaxInt64)
	if width != 64 {
		maxv = int64(1)<<(width-1) - 1
	}
	minv := -maxv - 1
	maxincr := int64(uint64(maxv) - uint64(value))
	minincr := minv - value
	wrap := func() int64 {
		c := uint64(value) + uint64(incr)
		if width < 64 {
			mask := uint64(math.MaxUint64) << width
			if c&(uint64(1)<<(width-1)) != 0 {
				c |= mask
			} else {
				c &^= mask
			}
		}
		return int64(c)
	}
	if value > maxv || (width != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
		switch owtype {
		case bfWrap:
			return 1, wrap()
		case bfSat:
			return 1, maxv
		}
		return 1, 0
	} else if value < minv || (width != 64 && incr < minincr) || (value < 0 && incr < 0 && incr < minincr) {
		switch owtype {
		case bfWrap:
			return -1, wrap()
		case bfSat:
			return -1, minv
		}
		return -1, 0
	}
	return 0, 0
}

// bitfieldResult is one element of BITFIELD's reply; null for an
// operation that OVERFLOW FAIL refused.
type bitfieldResult struct {
	v    int64
	null bool
}

// apply runs op on p (already long enough for a write).
func (op *bitfieldOp) apply(p []byte) bitfieldResult {
	if op.opcode == bfGet {
		if op.signed {
			return bitfieldResult{v: getSignedBitfield(p, op.offset, op.bits)}
		}
		return bitfieldResult{v: int64(getUnsignedBitfield(p, op.offset, op.bits))}
	}
	var overflow int
	var newval, ret uint64
	if op.signed {
		old := getSignedBitfield(p, op.offset, op.bits)
		var wrapped int64
		if op.opcode == bfIncrBy {
			overflow, wrapped = checkSignedBitfieldOverflow(old, op.value, op.bits, op.overflow)
			nv := int64(uint64(old) + uint64(op.value))
			if overflow != 0 {
				nv = wrapped
			}
			newval, ret = uint64(nv), uint64(nv)
		} else {
			nv := op.value
			overflow, wrapped = checkSignedBitfieldOverflow(nv, 0, op.bits, op.overflow)
			if overflow != 0 {
				nv = wrapped
			}
			newval, ret = uint64(nv), uint64(old)
		}
	} else {
		old := getUnsignedBitfield(p, op.offset, op.bits)
		var wrapped uint64
		if op.opcode == bfIncrBy {
			overflow, wrapped = checkUnsignedBitfieldOverflow(old, op.value, op.bits, op.overflow)
			newval = old + uint64(op.value)
			if overflow != 0 {
				newval = wrapped
			}
			ret = newval
		} else {
			newval = uint64(op.value)
			overflow, wrapped = checkUnsignedBitfieldOverflow(newval, 0, op.bits, op.overflow)
			if overflow != 0 {
				newval = wrapped
			}
			ret = old
		}
	}
	if overflow != 0 && op.overflow == bfFail {
		return bitfieldResult{null: true}
	}
	setBitfield(p, op.offset, op.bits, newval)
	return bitfieldResult{v: int64(ret)}
}

// >> BITFIELD key [GET type offset | SET type offset value | INCRBY type offset increment | OVERFLOW WRAP|SAT|FAIL ...]
func cmdBitField(r *Request) error { return r.bitfield(false) }

// >> BITFIELD_RO key [GET type offset ...]
func cmdBitFieldRO(r *Request) error { return r.bitfield(true) }

func (r *Request) bitfield(ro bool) error {
	ops, readonly, highest, err := r.parseBitfield()
	if err != nil {
		return err
	}
	results := make([]bitfieldResult, len(ops))
	if readonly {
		p, _, err := r.readString(r.Args[1])
		if err != nil {
			return err
		}
		for i := range ops {
			results[i] = ops[i].apply(p)
		}
	} else {
		if ro {
			return errBitfieldRO
		}
		// Like Redis, a write creates or grows the string to the farthest
		// bit written, even when OVERFLOW FAIL then refuses every write.
		err = r.modifyString(r.Args[1], func(cur []byte, _ bool) ([]byte, bool, error) {
			next, err := r.e.grownCopy(cur, highest>>3+1, 8)
			if err != nil {
				return nil, false, err
			}
			for i := range ops {
				results[i] = ops[i].apply(next)
			}
			return next, true, nil
		})
		if err != nil {
			return err
		}
	}
	r.w.Array(len(results))
	for _, res := range results {
		if res.null {
			r.w.Null()
		} else {
			r.w.Int(res.v)
		}
	}
	return nil
}
