package embedded

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// migrateBatchKeys bounds the keys one migration batch moves (a variable so
// tests can make many small batches).
var migrateBatchKeys = 1024

// testingMigrateBatchDone, if set, is called after each committed
// migration batch; an error stops the migration there, as a crash would.
var testingMigrateBatchDone func(batches int) error

// openFormat checks the store's format record and brings a store of the
// previous format up to this one. A store written by a newer binary is
// refused before anything is written to it.
//
// Format 1 (no record; families 'd', 'x', 's') held one database: its keys
// move into database 0 in batches of migrateBatchKeys, each batch one
// atomic, fsynced Pebble batch that writes the keys (with their expiry
// index entries and database 0's counters) in the new families and deletes
// them from the old ones. A crash part way leaves a store with some keys in
// each layout and no record, which the next open resumes from: the old
// families hold exactly the keys not moved yet. The record is written last,
// with the old counters and stale index entries cleared.
func (s *Store) openFormat() error {
	raw, closer, err := s.db.Get(versionKey)
	switch {
	case err == nil:
		defer closer.Close()
		if len(raw) != 4 {
			return fmt.Errorf("embedded: corrupt format record %x", raw)
		}
		v := binary.BigEndian.Uint32(raw)
		switch {
		case v == keyspace.FormatVersion:
			return nil
		case v == keyspace.Format2:
			// Nothing moves (every format-2 key is a format-3 key): the
			// record alone says that collections may now be stored.
			if err := s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, keyspace.FormatVersion), pebble.Sync); err != nil {
				return fmt.Errorf("write format record: %w", err)
			}
			return nil
		case v > keyspace.FormatVersion:
			return fmt.Errorf("store format %d: %w", v, keyspace.ErrFormatTooNew)
		default:
			return fmt.Errorf("embedded: store format %d has no migration to %d", v, keyspace.FormatVersion)
		}
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read format record: %w", err)
	}
	moved, batches := 0, 0
	for {
		n, err := s.migrateBatch()
		if err != nil {
			return fmt.Errorf("migrate format 1 to %d after %d keys: %w", keyspace.FormatVersion, moved, err)
		}
		if n == 0 {
			break
		}
		moved += n
		batches++
		if testingMigrateBatchDone != nil {
			if err := testingMigrateBatchDone(batches); err != nil {
				return err
			}
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	_ = b.DeleteRange([]byte{v1FamilyExpiry}, []byte{v1FamilyExpiry + 1}, nil)
	_ = b.DeleteRange([]byte{v1FamilyCounter}, []byte{v1FamilyCounter + 1}, nil)
	_ = b.Set(versionKey, binary.BigEndian.AppendUint32(nil, keyspace.FormatVersion), nil)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return fmt.Errorf("write format record: %w", err)
	}
	if moved > 0 {
		s.log.Info("migrated the store to format 3: every key of the previous release is in database 0", "keys", moved, "dir", s.opts.Dir)
	}
	return nil
}

// migrateBatch moves up to migrateBatchKeys format-1 keys into database 0
// in one fsynced batch and returns how many it moved.
func (s *Store) migrateBatch() (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{v1FamilyData}, UpperBound: []byte{v1FamilyData + 1}})
	if err != nil {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	var deltas counterDeltas
	n := 0
	for it.First(); it.Valid() && n < migrateBatchKeys; it.Next() {
		key := it.Key()[1:]
		v, err := decodeValue(it.Value())
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("key %q: %w", key, err)
		}
		stored := keyspace.Key(0, key)
		_ = b.Set(appendDataKey(nil, stored), it.Value(), nil)
		_ = b.Delete(it.Key(), nil)
		var expiring int64
		if v.ExpiresAt != 0 {
			expiring = 1
			_ = b.Set(appendExpiryKey(nil, v.ExpiresAt, stored), nil, nil)
			old := append([]byte{v1FamilyExpiry}, binary.BigEndian.AppendUint64(nil, uint64(v.ExpiresAt))...)
			_ = b.Delete(append(old, key...), nil)
		}
		deltas.add(stored, 1, expiring)
		n++
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	deltas.appendTo(b)
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return 0, err
	}
	return n, nil
}
