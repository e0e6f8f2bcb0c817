// Package storage persists PD's state in a small Pebble store in PD's workdir.
//
// Every write is a synced batch, so a kill -9 at any moment leaves either the old
// or the new state, never a torn one. Keys:
//
//	region/<id BE>          metapb.Region (protobuf)
//	store/<id BE>           metapb.Store (protobuf)
//	meta/id                 uint64 BE: allocator high-water mark (ids below it may have been handed out)
//	meta/tso                int64 BE: TSO high-water mark in Unix ms (timestamps below it may have been handed out)
//	meta/gc_safe_point      uint64 BE
//	meta/bootstrapped       "1" once the cluster file was loaded
//	meta/cluster_id         uint64 BE: the cluster id generated at bootstrap (written with meta/bootstrapped)
//	claim/<id BE>           uint64 BE nonce + int64 BE Unix ms: the data directory that claimed the store id, and when
package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
)

// Well-known keys.
var (
	KeyIDHighWater  = []byte("meta/id")
	KeyTSOHighWater = []byte("meta/tso")
	KeyGCSafePoint  = []byte("meta/gc_safe_point")
	KeyBootstrapped = []byte("meta/bootstrapped")
	KeyClusterID    = []byte("meta/cluster_id")
	PrefixClaim     = []byte("claim/")
	PrefixRegion    = []byte("region/")
	PrefixStore     = []byte("store/")
)

// ErrLocked means another process holds the workdir.
var ErrLocked = errors.New("storage: PD workdir is locked by another process")

// Storage is PD's persistent state. Safe for concurrent use.
type Storage struct {
	db  *pebble.DB
	dir string
}

// Open opens (creating if needed) the state in dir.
func Open(dir string, log *slog.Logger) (*Storage, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create PD workdir %s: %w", dir, err)
	}
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("open %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock PD workdir %s: %w", dir, err)
	}
	defer lock.Close() // Pebble takes its own reference
	db, err := pebble.Open(dir, &pebble.Options{Lock: lock, Logger: quietLogger{log}})
	if err != nil {
		// Pebble's corruption errors name the damaged file (MANIFEST, WAL or table).
		return nil, fmt.Errorf("open PD state in %s: %w", dir, err)
	}
	return &Storage{db: db, dir: dir}, nil
}

// Dir is the workdir.
func (s *Storage) Dir() string { return s.dir }

// Get returns the value of key, or ok=false.
func (s *Storage) Get(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %q from PD state in %s: %w", key, s.dir, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

// GetUint64 reads a big-endian uint64; absent reads as 0. A value of the wrong
// size is corruption and names the key and directory.
func (s *Storage) GetUint64(key []byte) (uint64, error) {
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("PD state in %s: key %q holds %d bytes, want 8: corrupt", s.dir, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Scan calls fn for every key with prefix, in key order.
func (s *Storage) Scan(prefix []byte, fn func(key, value []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("scan %q in PD state in %s: %w", prefix, s.dir, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Batch collects writes that commit atomically and durably.
type Batch struct {
	s *Storage
	b *pebble.Batch
}

// NewBatch starts a batch.
func (s *Storage) NewBatch() *Batch { return &Batch{s: s, b: s.db.NewBatch()} }

// Put sets key to value.
func (b *Batch) Put(key, value []byte) { _ = b.b.Set(key, value, nil) }

// PutUint64 sets key to a big-endian uint64.
func (b *Batch) PutUint64(key []byte, v uint64) {
	b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// Delete removes key.
func (b *Batch) Delete(key []byte) { _ = b.b.Delete(key, nil) }

// Commit writes the batch and fsyncs before returning.
func (b *Batch) Commit() error {
	defer b.b.Close()
	if err := b.s.db.Apply(b.b, pebble.Sync); err != nil {
		return fmt.Errorf("write PD state in %s: %w", b.s.dir, err)
	}
	return nil
}

// Close flushes and closes the store.
func (s *Storage) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close PD state in %s: %w", s.dir, err)
	}
	return nil
}

// RegionKey and StoreKey build the keys of catalog entries.
func RegionKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixRegion...), id)
}

// StoreKey is the key of a store entry.
func StoreKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixStore...), id)
}

// ClaimKey is the key of a store's claim record.
func ClaimKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixClaim...), id)
}

type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {
	q.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}
func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error("pebble fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

var _ io.Closer = (*Storage)(nil)
