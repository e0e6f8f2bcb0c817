package rdb

import "sync"

// A port of liblzf 3.6 (redis/src/lzf_c.c, lzf_d.c) with the parameters
// Redis compiles it with (lzfP.h: HLOG 16, VERY_FAST, CHECK_INPUT), so
// that DUMP's compressed strings are byte-identical to redis-server's: the
// format does not depend on the hash function, but which matches the
// compressor finds, and so its output, does.
//
// Compressed format:
//
//	000LLLLL <L+1 bytes>        literal run, 1..32 bytes
//	LLLooooo oooooooo           back reference, L+2 = 3..8 bytes, offset o+1
//	111ooooo LLLLLLLL oooooooo  back reference, L+9 = 9..264 bytes, offset o+1
const (
	lzfHLog   = 16
	lzfHSize  = 1 << lzfHLog
	lzfMaxLit = 1 << 5
	lzfMaxOff = 1 << 13
	lzfMaxRef = (1 << 8) + (1 << 3)
	// lzfMaxRatio bounds what one compressed byte can expand to: a long back
	// reference, 3 bytes, copies up to 264.
	lzfMaxRatio = 88
)

// lzfTable is the compressor's hash table: for each hash of three bytes, the
// last position seen. Redis leaves it uninitialised on the stack (INIT_HTAB
// 0). An entry left by an earlier call passes the compressor's checks only
// if it points into the current input, within the 8 KiB window, at bytes
// equal to the current ones: that needs an earlier call to have compressed
// a buffer at the same address, a value freed and its memory reused for the
// one being dumped. Then Redis may find a match a clean table does not, and
// its DUMP differs from this one (both restore to the same string);
// otherwise Redis's table behaves as a clean one, which this is. Entries
// carry the generation of the call that wrote them, so a pooled table needs
// no clearing per call.
type lzfTable struct {
	gen  uint32
	slot [lzfHSize]uint64 // gen<<32 | position+1
}

var lzfTables = sync.Pool{New: func() any { return new(lzfTable) }}

func lzfFirst(in []byte, ip int) uint32          { return uint32(in[ip])<<8 | uint32(in[ip+1]) }
func lzfNext(v uint32, in []byte, ip int) uint32 { return v<<8 | uint32(in[ip+2]) }
func lzfIdx(h uint32) uint32                     { return ((h >> (3*8 - lzfHLog)) - h*5) & (lzfHSize - 1) }

// lzfCompress compresses in into out (at most outLen bytes, which out must
// have room for) and returns the compressed length, or 0 if the result
// would not fit: lzf_compress exactly.
func lzfCompress(in, out []byte) int {
	inLen, outLen := len(in), len(out)
	if inLen == 0 || outLen == 0 {
		return 0
	}
	t := lzfTables.Get().(*lzfTable)
	defer lzfTables.Put(t)
	if t.gen++; t.gen == 0 {
		clear(t.slot[:])
		t.gen = 1
	}
	gen := uint64(t.gen) << 32
	get := func(h uint32) int { // the position stored for h, or -1
		if s := t.slot[lzfIdx(h)]; s&^0xffffffff == gen {
			return int(s&0xffffffff) - 1
		}
		return -1
	}
	set := func(h uint32, ip int) { t.slot[lzfIdx(h)] = gen | uint64(ip+1) }

	ip, op := 0, 0
	lit := 0
	op++ // start run
	var hval uint32
	if inLen >= 2 {
		hval = lzfFirst(in, ip)
	}
	for ip < inLen-2 {
		hval = lzfNext(hval, in, ip)
		ref := get(hval)
		set(hval, ip)
		// ref > 0: lzf_c.c's "ref > in_data" never matches the first byte.
		if ref > 0 && ip-ref-1 < lzfMaxOff && in[ref+2] == in[ip+2] && in[ref] == in[ip] && in[ref+1] == in[ip+1] {
			off := ip - ref - 1
			length := 2
			maxlen := min(inLen-ip-length, lzfMaxRef)
			noLit := 0
			if lit == 0 {
				noLit = 1
			}
			if op+3+1 >= outLen && op-noLit+3+1 >= outLen {
				return 0
			}
			out[op-lit-1] = byte(lit - 1) // stop run
			op -= noLit                   // undo run if length is zero
			mismatch := false
			if maxlen > 16 {
				// The unrolled first 16 comparisons of lzf_c.c, which may
				// run past maxlen when it is 17 or 18.
				for i := 0; i < 16; i++ {
					length++
					if in[ref+length] != in[ip+length] {
						mismatch = true
						break
					}
				}
			}
			if !mismatch {
				for {
					length++
					if !(length < maxlen && in[ref+length] == in[ip+length]) {
						break
					}
				}
			}
			length -= 2 // now the octets - 1
			ip++
			if length < 7 {
				out[op] = byte(off>>8) + byte(length<<5)
				op++
			} else {
				out[op] = byte(off>>8) + 7<<5
				out[op+1] = byte(length - 7)
				op += 2
			}
			out[op] = byte(off)
			op++
			lit = 0
			op++ // start run
			ip += length + 1
			if ip >= inLen-2 {
				break
			}
			// VERY_FAST: hash the last two positions of the match.
			ip -= 2
			hval = lzfFirst(in, ip)
			hval = lzfNext(hval, in, ip)
			set(hval, ip)
			ip++
			hval = lzfNext(hval, in, ip)
			set(hval, ip)
			ip++
		} else {
			// One more literal byte.
			if op >= outLen {
				return 0
			}
			lit++
			out[op] = in[ip]
			op++
			ip++
			if lit == lzfMaxLit {
				out[op-lit-1] = byte(lit - 1) // stop run
				lit = 0
				op++ // start run
			}
		}
	}
	if op+3 > outLen { // at most 3 bytes can be missing here
		return 0
	}
	for ip < inLen {
		lit++
		out[op] = in[ip]
		op++
		ip++
		if lit == lzfMaxLit {
			out[op-lit-1] = byte(lit - 1)
			lit = 0
			op++
		}
	}
	out[op-lit-1] = byte(lit - 1) // end run (lit == 0: a byte past the result)
	if lit == 0 {
		op--
	}
	return op
}

// lzfDecompress decompresses in into out and returns the number of bytes
// written, or 0 when in is malformed or its output would not fit in out:
// lzf_decompress exactly (with CHECK_INPUT), which RESTORE compares with
// the length the payload announced.
func lzfDecompress(in, out []byte) int {
	ip, op := 0, 0
	inEnd, outEnd := len(in), len(out)
	for ip < inEnd {
		ctrl := int(in[ip])
		ip++
		if ctrl < 1<<5 { // literal run
			ctrl++
			if op+ctrl > outEnd {
				return 0
			}
			if ip+ctrl > inEnd {
				return 0
			}
			copy(out[op:op+ctrl], in[ip:ip+ctrl])
			op += ctrl
			ip += ctrl
			continue
		}
		// Back reference.
		length := ctrl >> 5
		ref := op - (ctrl&0x1f)<<8 - 1
		if ip >= inEnd {
			return 0
		}
		if length == 7 {
			length += int(in[ip])
			ip++
			if ip >= inEnd {
				return 0
			}
		}
		ref -= int(in[ip])
		ip++
		if op+length+2 > outEnd {
			return 0
		}
		if ref < 0 {
			return 0
		}
		length += 2
		if op >= ref+length {
			copy(out[op:op+length], out[ref:ref+length])
			op += length
		} else {
			// Overlapping: byte by byte, repeating the pattern.
			for ; length > 0; length-- {
				out[op] = out[ref]
				op++
				ref++
			}
		}
	}
	return op
}
