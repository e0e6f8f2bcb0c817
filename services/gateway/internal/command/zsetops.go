package command

import (
	"bytes"
	"math"
	"slices"
	"strings"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD: Redis's
// zunionInterDiffGenericCommand. Inputs may be sets (each member scoring
// 1); every input is read in the command's one transaction, so the STORE
// forms are atomic on the raft backend across regions as SINTERSTORE is.

type zsetOp int

const (
	zopUnion zsetOp = iota
	zopInter
	zopDiff
)

// Aggregates.
const (
	aggrSum = iota
	aggrMin
	aggrMax
)

// zsource is one input: its members and scores in index order (a set's
// in member order), and a lookup by member.
type zsource struct {
	es     []zentry
	weight float64
	byName map[string]float64
}

func (s *zsource) find(m []byte) (float64, bool) {
	if s.byName == nil {
		s.byName = make(map[string]float64, len(s.es))
		for _, e := range s.es {
			s.byName[string(e.m)] = e.s
		}
	}
	v, ok := s.byName[string(m)]
	return v, ok
}

// readZSource reads key as a sorted set or a set (a missing key is empty).
func (r *Request) readZSource(tx backend.Txn, key []byte) (*zsource, error) {
	h, ok, err := tx.Head(key)
	if err != nil || !ok {
		return &zsource{weight: 1}, err
	}
	switch h.Type {
	case backend.TypeZSet:
		z, err := r.openZSet(tx, key)
		if err != nil {
			return nil, err
		}
		es, err := z.zall()
		return &zsource{es: es, weight: 1}, err
	case backend.TypeSet:
		s, err := r.openSet(tx, key)
		if err != nil {
			return nil, err
		}
		ms, err := s.members()
		es := make([]zentry, len(ms))
		for i, m := range ms {
			es[i] = zentry{m, 1}
		}
		return &zsource{es: es, weight: 1}, err
	}
	return nil, errWrongType
}

// aggregate is zunionInterAggregate: a sum that would be NaN (inf - inf)
// is 0.
func aggregate(target *float64, val float64, how int) {
	switch how {
	case aggrSum:
		*target += val
		if math.IsNaN(*target) {
			*target = 0
		}
	case aggrMin:
		if val < *target {
			*target = val
		}
	case aggrMax:
		if val > *target {
			*target = val
		}
	}
}

// zsetOpArgs is the parsed tail of a ZUNION-like command.
type zsetOpArgs struct {
	weights    []float64
	aggr       int
	withScores bool
	limit      int64
}

// parseZSetOpArgs parses the options after the n input keys (at args[j:]),
// as Redis does after it has checked the inputs' types.
func parseZSetOpArgs(args [][]byte, n int, op zsetOp, store, cardOnly bool) (zsetOpArgs, error) {
	var o zsetOpArgs
	for j := 0; j < len(args); {
		left := len(args) - j
		a := args[j]
		switch {
		case op != zopDiff && !cardOnly && left >= n+1 && equalFold(a, "weights"):
			o.weights = make([]float64, n)
			for i := range n {
				w, ok := parseScore(args[j+1+i])
				if !ok {
					return o, replyError("ERR weight value is not a float")
				}
				o.weights[i] = w
			}
			j += n + 1
		case op != zopDiff && !cardOnly && left >= 2 && equalFold(a, "aggregate"):
			switch b := args[j+1]; {
			case equalFold(b, "sum"):
				o.aggr = aggrSum
			case equalFold(b, "min"):
				o.aggr = aggrMin
			case equalFold(b, "max"):
				o.aggr = aggrMax
			default:
				return o, errSyntax
			}
			j += 2
		case left >= 1 && !store && !cardOnly && equalFold(a, "withscores"):
			o.withScores = true
			j++
		case cardOnly && left >= 2 && equalFold(a, "limit"):
			l, ok := parseInt(args[j+1])
			if !ok || l < 0 {
				return o, replyError("ERR LIMIT can't be negative")
			}
			o.limit = l
			j += 2
		default:
			return o, errSyntax
		}
	}
	return o, nil
}

// zcombine computes op over srcs as Redis does, summing in the same order
// (inputs by ascending size, stably) so the doubles round the same; the
// result is in index order. With cardOnly it counts an intersection up to
// limit (0: no limit).
func zcombine(op zsetOp, srcs []*zsource, o zsetOpArgs, cardOnly bool) ([]zentry, int64) {
	for i, s := range srcs {
		if o.weights != nil {
			s.weight = o.weights[i]
		}
	}
	var out []zentry
	switch op {
	case zopInter, zopUnion:
		sorted := slices.Clone(srcs)
		slices.SortStableFunc(sorted, func(a, b *zsource) int { return len(a.es) - len(b.es) })
		if op == zopInter {
			if len(sorted[0].es) == 0 {
				return nil, 0
			}
			var card int64
			for _, e := range sorted[0].es {
				score := sorted[0].weight * e.s
				if math.IsNaN(score) {
					score = 0
				}
				j := 1
				for ; j < len(sorted); j++ {
					v, ok := sorted[j].find(e.m)
					if !ok {
						break
					}
					aggregate(&score, v*sorted[j].weight, o.aggr)
				}
				if j < len(sorted) {
					continue
				}
				if cardOnly {
					card++
					if o.limit > 0 && card >= o.limit {
						break
					}
					continue
				}
				out = append(out, zentry{e.m, score})
			}
			if cardOnly {
				return nil, card
			}
			break
		}
		acc := map[string]int{}
		for _, s := range sorted {
			for _, e := range s.es {
				score := s.weight * e.s
				if math.IsNaN(score) {
					score = 0
				}
				if i, ok := acc[string(e.m)]; ok {
					aggregate(&out[i].s, score, o.aggr)
					continue
				}
				acc[string(e.m)] = len(out)
				out = append(out, zentry{e.m, score})
			}
		}
	case zopDiff:
		for _, e := range srcs[0].es {
			in := false
			for _, s := range srcs[1:] {
				if _, ok := s.find(e.m); ok {
					in = true
					break
				}
			}
			if !in {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b zentry) int {
		switch {
		case a.s < b.s:
			return -1
		case a.s > b.s:
			return 1
		}
		return bytes.Compare(a.m, b.m)
	})
	return out, int64(len(out))
}

// zsetOpCmd builds ZUNION, ZINTER, ZDIFF and their STORE forms.
//
// >> ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
// >> ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]
// Reply: the result (STORE: stored, replacing the destination or deleting
// it when empty, and its size).
func zsetOpCmd(op zsetOp, store bool) func(*Request) error {
	return func(r *Request) error {
		return zsetOpGeneric(r, op, store, false)
	}
}

// >> ZINTERCARD numkeys key [key ...] [LIMIT limit]
func cmdZInterCard(r *Request) error { return zsetOpGeneric(r, zopInter, false, true) }

func zsetOpGeneric(r *Request, op zsetOp, store, cardOnly bool) error {
	args := r.Args
	at := 1
	if store {
		at = 2
	}
	n, err := intArg(args[at])
	if err != nil {
		return err
	}
	if n < 1 {
		return replyError("ERR at least 1 input key is needed for '" + strings.ToLower(string(args[0])) + "' command")
	}
	if n > int64(len(args)-at-1) {
		return errSyntax
	}
	keys := args[at+1 : at+1+int(n)]
	opts, optErr := parseZSetOpArgs(args[at+1+int(n):], int(n), op, store, cardOnly)
	txKeys := keys
	var dst []byte
	if store {
		dst = args[1]
		txKeys = append([][]byte{dst}, keys...)
	}
	var result []zentry
	var card int64
	err = r.updateSub(txKeys, func(tx backend.Txn) error {
		srcs := make([]*zsource, len(keys))
		for i, k := range keys {
			s, err := r.readZSource(tx, k)
			if err != nil {
				return err
			}
			srcs[i] = s
		}
		if optErr != nil {
			return optErr
		}
		result, card = zcombine(op, srcs, opts, cardOnly)
		if !store {
			return nil
		}
		return r.zstore(tx, dst, result)
	})
	if err != nil {
		return err
	}
	switch {
	case cardOnly:
		r.w.Int(card)
	case store:
		r.w.Int(int64(len(result)))
	default:
		r.zreply(result, opts.withScores)
	}
	return nil
}
