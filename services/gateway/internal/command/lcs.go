package command

import (
	"math"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

func init() {
	register(&Command{Name: "lcs", Arity: -3, Flags: flagReadonly, FirstKey: 1, LastKey: 2, Step: 1, Group: "string", Since: "7.0.0",
		Summary: "Finds the longest common substring.", Complexity: "O(N*M) where N and M are the lengths of s1 and s2, respectively",
		Handler: cmdLCS, Long: true})
}

const (
	errLCSNotString = replyError("ERR The specified keys must contain string values")
	errLCSLenAndIdx = replyError("ERR If you want both the length and indexes, please just use IDX.")
	errLCSTooLong   = replyError("ERR String too long for LCS")
	errLCSTooBig    = replyError("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")
)

// >> LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
// Reply: the longest common subsequence of the two strings (a missing key is
// the empty string), its length (LEN), or its matching ranges (IDX), exactly
// as Redis 7 computes them, ties broken the same way.
//
// Redis keeps a table of (len1+1)*(len2+1) 32-bit lengths and refuses a
// table larger than proto-max-bulk-len; the same limit and error apply here,
// but the table kept is one bit per cell (which way the walk back goes where
// the bytes differ) plus two rows of lengths, 32 times less memory. The
// command runs off the event loop (Long): at the limit it is 10^8 cells.
func cmdLCS(r *Request) error {
	vals, found, err := r.multiGet(r.Args[1:3])
	if err != nil {
		return err
	}
	r.hit(found[0])
	r.hit(found[1])
	for i := range vals {
		if found[i] && vals[i].Type != backend.TypeString {
			return errLCSNotString
		}
	}
	a, b := vals[0].Data, vals[1].Data
	var getLen, getIdx, withMatchLen bool
	var minMatchLen int64
	for j := 3; j < len(r.Args); j++ {
		opt := r.Args[j]
		switch {
		case equalFold(opt, "idx"):
			getIdx = true
		case equalFold(opt, "len"):
			getLen = true
		case equalFold(opt, "withmatchlen"):
			withMatchLen = true
		case equalFold(opt, "minmatchlen") && j+1 < len(r.Args):
			n, err := intArg(r.Args[j+1])
			if err != nil {
				return err
			}
			minMatchLen = max(n, 0)
			j++
		default:
			return errSyntax
		}
	}
	if getIdx && getLen {
		return errLCSLenAndIdx
	}
	if uint64(len(a)) >= math.MaxUint32-1 || uint64(len(b)) >= math.MaxUint32-1 {
		return errLCSTooLong
	}
	cells := (uint64(len(a)) + 1) * (uint64(len(b)) + 1)
	if cells*4 > uint64(r.e.opts.MaxBulkLen) {
		return errLCSTooBig
	}
	if getLen {
		r.w.Int(int64(lcsLength(a, b)))
		return nil
	}
	t := newLCSTable(a, b)
	if !getIdx {
		r.w.Bulk(t.subsequence())
		return nil
	}
	matches := t.matches(minMatchLen)
	r.w.Map(2)
	r.w.BulkString("matches")
	r.w.Array(len(matches))
	for _, m := range matches {
		r.w.Array(2 + int(b2i(withMatchLen)))
		r.w.Array(2)
		r.w.Int(int64(m.aStart))
		r.w.Int(int64(m.aEnd))
		r.w.Array(2)
		r.w.Int(int64(m.bStart))
		r.w.Int(int64(m.bEnd))
		if withMatchLen {
			r.w.Int(int64(m.aEnd - m.aStart + 1))
		}
	}
	r.w.BulkString("len")
	r.w.Int(int64(t.length))
	return nil
}

// lcsLength is the length of the longest common subsequence, in two rows.
func lcsLength(a, b []byte) uint32 {
	prev, cur := make([]uint32, len(b)+1), make([]uint32, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] > cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// lcsTable remembers, for every cell (i, j) with i, j >= 1 whose bytes
// differ, whether Redis's walk back steps up (LCS(i-1,j) > LCS(i,j-1)) or
// left: that and the bytes themselves reproduce its walk exactly.
type lcsTable struct {
	a, b   []byte
	up     []uint64 // bit (i-1)*len(b) + (j-1)
	length uint32
}

func newLCSTable(a, b []byte) *lcsTable {
	t := &lcsTable{a: a, b: b, up: make([]uint64, (len(a)*len(b)+63)/64)}
	prev, cur := make([]uint32, len(b)+1), make([]uint32, len(b)+1)
	for i := 1; i <= len(a); i++ {
		row := (i - 1) * len(b)
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] > cur[j-1]:
				cur[j] = prev[j]
				bit := row + j - 1
				t.up[bit/64] |= 1 << (bit % 64)
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	t.length = prev[len(b)]
	return t
}

func (t *lcsTable) stepsUp(i, j int) bool {
	bit := (i-1)*len(t.b) + j - 1
	return t.up[bit/64]&(1<<(bit%64)) != 0
}

// subsequence walks back from (len(a), len(b)) collecting matched bytes.
func (t *lcsTable) subsequence() []byte {
	out := make([]byte, t.length)
	idx := len(out)
	for i, j := len(t.a), len(t.b); i > 0 && j > 0; {
		switch {
		case t.a[i-1] == t.b[j-1]:
			idx--
			out[idx] = t.a[i-1]
			i, j = i-1, j-1
		case t.stepsUp(i, j):
			i--
		default:
			j--
		}
	}
	return out
}

type lcsMatch struct{ aStart, aEnd, bStart, bEnd int }

// matches is Redis's walk back for IDX: runs of matches contiguous in both
// strings, from the end, those at least minLen long.
func (t *lcsTable) matches(minLen int64) []lcsMatch {
	var out []lcsMatch
	open := false
	var m lcsMatch
	for i, j := len(t.a), len(t.b); i > 0 && j > 0; {
		emit := false
		if t.a[i-1] == t.b[j-1] {
			switch {
			case !open:
				m = lcsMatch{aStart: i - 1, aEnd: i - 1, bStart: j - 1, bEnd: j - 1}
				open = true
			case m.aStart == i && m.bStart == j:
				m.aStart--
				m.bStart--
			default:
				emit = true
			}
			if m.aStart == 0 || m.bStart == 0 {
				emit = true
			}
			i, j = i-1, j-1
		} else {
			if t.stepsUp(i, j) {
				i--
			} else {
				j--
			}
			if open {
				emit = true
			}
		}
		if emit {
			if minLen == 0 || int64(m.aEnd-m.aStart+1) >= minLen {
				out = append(out, m)
			}
			open = false
		}
	}
	return out
}
