package raft

import (
	"context"
	"fmt"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// typePrefix is the bytes of a stored value a head read asks for: the type
// byte in front of the data.
const typePrefix = 1

// decodeHead turns a kvclient head of a stored value into the backend's.
func decodeHead(h kvclient.Head) (backend.Head, error) {
	if h.Len == 0 || len(h.Prefix) == 0 {
		return backend.Head{}, fmt.Errorf("%w (key %q)", errCorrupt, h.Key)
	}
	return backend.Head{Type: backend.Type(h.Prefix[0]), ExpiresAt: h.ExpiresAt, Len: int64(h.Len - 1)}, nil
}

// known is what a transaction learnt of a key's head at its start
// timestamp: found, and if so the head.
type known struct {
	head  backend.Head
	found bool
}

// prefetch reads the heads of every key the command named in one head-only
// batch read at the transaction's start timestamp (one snapshot, regions in
// parallel, each key once), so that the command's Head calls, and its Gets
// of absent keys, need no request of their own. It runs at the first read,
// not before fn: a command that only writes (MSET) reads nothing. A single
// key is not prefetched: its one read is as cheap without.
func (x *txn) prefetch() error {
	if x.heads != nil || len(x.keys) < 2 {
		return nil
	}
	if err := x.stopAhead(); err != nil {
		return err
	}
	got, err := x.t.BatchGetHeads(x.ctx, x.keys, typePrefix)
	if err != nil {
		return x.read(err)
	}
	heads := make(map[string]known, len(got))
	for _, k := range x.keys {
		if _, ok := heads[string(k)]; ok {
			continue
		}
		var kn known
		if h, ok := got[string(k)]; ok {
			if kn.head, err = decodeHead(h); err != nil {
				return err
			}
			kn.found = true
		}
		heads[string(k)] = kn
	}
	x.heads = heads
	return nil
}

// Head implements backend.Txn: a head read, the value staying in the
// store. A key the command named, when it named more than one, is answered
// from the prefetched heads until the transaction writes it; after that,
// and for any other key, the transaction's own write wins, and otherwise
// one head read asks the store.
func (x *txn) Head(key []byte) (backend.Head, bool, error) {
	if err := x.prefetch(); err != nil {
		return backend.Head{}, false, err
	}
	if kn, ok := x.heads[string(key)]; ok {
		if kn.found {
			x.noteHead(key, kn.head)
		}
		return kn.head, kn.found, nil
	}
	if err := x.stopAhead(); err != nil {
		return backend.Head{}, false, err
	}
	h, found, err := x.t.GetHead(x.ctx, key, typePrefix)
	if err != nil || !found {
		return backend.Head{}, false, x.read(err)
	}
	bh, err := decodeHead(h)
	if err == nil {
		x.noteHead(key, bh)
	}
	return bh, err == nil, err
}

// forget drops what the prefetch learnt of key, which the transaction now
// writes: its own write answers from then on.
func (x *txn) forget(key []byte) {
	if x.heads != nil {
		delete(x.heads, string(key))
	}
}

// Heads implements backend.Backend: one head-only batch read at one
// snapshot; a key named many times is read once, and no value crosses the
// network, only its length and type byte. A few keys of one region are
// read in a combined read with others (readcombine.go).
func (s *Store) Heads(ctx context.Context, keys [][]byte) ([]backend.Head, []bool, error) {
	got, err := s.readHeads(ctx, keys)
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	heads, found := make([]backend.Head, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		h, ok := got[string(k)]
		if !ok {
			continue
		}
		if heads[i], err = decodeHead(h); err != nil {
			return nil, nil, err
		}
		found[i] = true
	}
	return heads, found, nil
}
