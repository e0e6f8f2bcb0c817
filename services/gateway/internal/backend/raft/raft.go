// Package raft is the gateway's cluster backend: every Redis command runs
// as a Percolator transaction against the nokv-store cluster through
// pkg/kvclient, so the same command layer serves both backends.
//
// Values are stored as one type byte followed by the data; the expiry
// travels in the transaction layer's expires_at, which the stores
// enforce on every read and collect in GC.
package raft

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/pkg/latch"
	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Options configure the backend.
type Options struct {
	// PDAddr is the placement driver's address.
	PDAddr string
	// MaxRetries bounds retries of one request on region errors (the
	// cluster file's max_retries; 0 means none).
	MaxRetries int
	// NowMs replaces the wall clock for expiry decisions (tests).
	NowMs func() int64
}

// Store implements backend.Backend over the cluster.
type Store struct {
	c *kvclient.Client
	// latches serialise this gateway's own updates of the same keys: they
	// would only conflict in the cluster and retry, each retry a wasted
	// timestamp, read and prewrite. Other gateways still race optimistically.
	latches *latch.Latches
}

var _ backend.Backend = (*Store)(nil)

// Open connects to PD and checks that it answers.
func Open(ctx context.Context, opts Options) (*Store, error) {
	retries := opts.MaxRetries
	if retries == 0 {
		retries = kvclient.NoRetries
	}
	c, err := kvclient.New(ctx, opts.PDAddr, kvclient.Options{MaxRetries: retries, NowMs: opts.NowMs})
	if err != nil {
		return nil, fmt.Errorf("connect to the cluster through PD at %s: %w", opts.PDAddr, err)
	}
	return &Store{c: c, latches: latch.New()}, nil
}

func encode(v backend.Value) []byte {
	out := make([]byte, 0, 1+len(v.Data))
	return append(append(out, byte(v.Type)), v.Data...)
}

var errCorrupt = errors.New("raft backend: stored value has no type byte")

func decode(e kvclient.Entry) (backend.Value, error) {
	if len(e.Value) == 0 {
		return backend.Value{}, fmt.Errorf("%w (key %q)", errCorrupt, e.Key)
	}
	return backend.Value{Type: backend.Type(e.Value[0]), ExpiresAt: e.ExpiresAt, Data: e.Value[1:]}, nil
}

// txn adapts a cluster transaction to backend.Txn.
type txn struct {
	ctx context.Context
	t   *kvclient.Txn
	err error
}

func (x *txn) Get(key []byte) (backend.Value, bool, error) {
	e, ok, err := x.t.Get(x.ctx, key)
	if err != nil || !ok {
		return backend.Value{}, false, err
	}
	v, err := decode(e)
	return v, err == nil, err
}

func (x *txn) Set(key []byte, v backend.Value) {
	if err := x.t.Set(key, encode(v), v.ExpiresAt); err != nil && x.err == nil {
		x.err = err
	}
}

func (x *txn) Delete(key []byte) {
	if err := x.t.Delete(key); err != nil && x.err == nil {
		x.err = err
	}
}

func (x *txn) Now() int64 { return x.t.Now() }

// Update implements backend.Backend: fn runs in a transaction that is
// retried from scratch on a write conflict. Replies are sent after the
// commit, which raft made durable on a majority of stores.
func (s *Store) Update(ctx context.Context, _ backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	var buf [8]uint32
	slots := s.latches.Acquire(keys, buf[:0])
	defer s.latches.Release(slots)
	return s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		x := &txn{ctx: ctx, t: t}
		if err := fn(x); err != nil {
			return err
		}
		return x.err
	}))
}

// Get implements backend.Backend.
func (s *Store) Get(ctx context.Context, key []byte) (backend.Value, bool, error) {
	e, ok, err := s.c.Get(ctx, key)
	if err != nil || !ok {
		return backend.Value{}, false, s.wrap(err)
	}
	v, err := decode(e)
	return v, err == nil, err
}

// AppendGet implements backend.Backend.
func (s *Store) AppendGet(ctx context.Context, dst, key []byte) (backend.Value, bool, error) {
	v, ok, err := s.Get(ctx, key)
	if !ok || err != nil {
		return v, ok, err
	}
	v.Data = append(dst, v.Data...)
	return v, true, nil
}

// MultiGet implements backend.Backend: one snapshot for all keys.
func (s *Store) MultiGet(ctx context.Context, keys [][]byte) ([]backend.Value, []bool, error) {
	got, err := s.c.BatchGet(ctx, keys)
	if err != nil {
		return nil, nil, s.wrap(err)
	}
	vals, found := make([]backend.Value, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		e, ok := got[string(k)]
		if !ok {
			continue
		}
		if vals[i], err = decode(e); err != nil {
			return nil, nil, err
		}
		found[i] = true
	}
	return vals, found, nil
}

// scanPage is how many keys one cluster scan request reads when the caller
// sets no limit.
const scanPage = 256

// Scan implements backend.Backend.
func (s *Store) Scan(ctx context.Context, opts backend.ScanOptions, fn func(backend.KeyInfo) bool) ([]byte, error) {
	prefix, start, limit := opts.Prefix, opts.Start, opts.Limit
	from := prefix
	if bytes.Compare(start, prefix) > 0 {
		from = start
	}
	end := prefixEnd(prefix)
	visited := 0
	for {
		page := scanPage
		if limit > 0 {
			page = min(page, limit-visited)
		}
		entries, err := s.c.Scan(ctx, from, end, page)
		if err != nil {
			return nil, s.wrap(err)
		}
		for _, e := range entries {
			v, err := decode(e)
			if err != nil {
				return nil, err
			}
			visited++
			if !fn(backend.KeyInfo{Key: e.Key, Value: v}) {
				return after(e.Key), nil
			}
		}
		if len(entries) < page {
			return nil, nil // the range is exhausted
		}
		from = after(entries[len(entries)-1].Key)
		if limit > 0 && visited >= limit {
			return from, nil
		}
	}
}

// after is the smallest key greater than k.
func after(k []byte) []byte { return append(bytes.Clone(k), 0) }

// prefixEnd is the smallest key greater than every key with prefix p, or
// nil (unbounded) for an empty or all-0xff prefix.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// RandomKey implements backend.Backend: the first key at or after a random
// point of the key space, wrapping around.
func (s *Store) RandomKey(ctx context.Context) ([]byte, bool, error) {
	var pivot [8]byte
	_, _ = rand.Read(pivot[:])
	for _, from := range [][]byte{pivot[:], nil} {
		entries, err := s.c.Scan(ctx, from, nil, 1)
		if err != nil {
			return nil, false, s.wrap(err)
		}
		if len(entries) > 0 {
			return entries[0].Key, true, nil
		}
	}
	return nil, false, nil
}

// Stats implements backend.Backend by counting live keys: DBSIZE and INFO
// keyspace cost a scan of the cluster here, unlike in Redis.
func (s *Store) Stats(ctx context.Context) (backend.Stats, error) {
	var st backend.Stats
	_, err := s.Scan(ctx, backend.ScanOptions{KeysOnly: true}, func(ki backend.KeyInfo) bool {
		st.Keys++
		if ki.Value.ExpiresAt != 0 {
			st.Expires++
		}
		return true
	})
	return st, err
}

// FlushAll implements backend.Backend: every live key is deleted in one
// transaction, so other clients see all keys or none.
func (s *Store) FlushAll(ctx context.Context) error {
	return s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		entries, err := t.Scan(ctx, nil, nil, 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := t.Delete(e.Key); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Sync implements backend.Backend. A cluster write is durable when its
// commit returns (raft fsyncs the log on a majority first), so there is
// nothing left to do.
func (s *Store) Sync(context.Context) error { return nil }

// Close implements backend.Backend.
func (s *Store) Close() error {
	s.c.Close()
	return nil
}

// wrap maps the client's errors onto the backend's, which the command
// layer turns into replies.
func (s *Store) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kvclient.ErrClosed):
		return fmt.Errorf("%w: %v", backend.ErrClosed, err)
	case errors.Is(err, kvclient.ErrCommitUndetermined):
		return fmt.Errorf("%w: %v", backend.ErrUndetermined, err)
	case errors.Is(err, kvclient.ErrRegionUnavailable):
		return fmt.Errorf("%w: %v", backend.ErrUnavailable, err)
	case kvclient.IsRetryable(err):
		return fmt.Errorf("%w: %v", backend.ErrConflict, err)
	}
	return err
}
