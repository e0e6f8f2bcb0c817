package raft

import (
	"context"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// headOf is v's head.
func headOf(v backend.Value) backend.Head {
	return backend.Head{Type: v.Type, ExpiresAt: v.ExpiresAt, Len: int64(len(v.Data))}
}

// Head implements backend.Txn. The value still crosses the network: the
// store has no header-only read yet, but the transaction reads each key
// once however often a command names it.
func (x *txn) Head(key []byte) (backend.Head, bool, error) {
	v, ok, err := x.Get(key)
	if err != nil || !ok {
		return backend.Head{}, false, err
	}
	return headOf(v), true, nil
}

// Heads implements backend.Backend: one snapshot, and a key named many
// times is fetched once.
func (s *Store) Heads(ctx context.Context, keys [][]byte) ([]backend.Head, []bool, error) {
	seen := make(map[string]int, min(len(keys), 1024))
	unique := make([][]byte, 0, min(len(keys), 1024))
	for _, k := range keys {
		if _, ok := seen[string(k)]; !ok {
			seen[string(k)] = len(unique)
			unique = append(unique, k)
		}
	}
	vals, found, err := s.MultiGet(ctx, unique)
	if err != nil {
		return nil, nil, err
	}
	heads, hfound := make([]backend.Head, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		j := seen[string(k)]
		if found[j] {
			heads[i], hfound[i] = headOf(vals[j]), true
		}
	}
	return heads, hfound, nil
}
