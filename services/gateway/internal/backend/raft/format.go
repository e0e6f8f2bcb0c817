package raft

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// The cluster's format record is the empty key, which no stored Redis key
// can be (each carries a 4-byte database prefix, keyspace.PrefixLen). Its
// value starts with formatType, a type byte no Redis value is stored with
// (they start with backend.Type, 1 for strings), so the record cannot be
// mistaken for the key "" a release before databases (format 1, keys
// stored without a prefix) may have written there. After the type byte: the
// format version, uint32 big-endian.
const formatType = 0xFE

var formatKey = []byte{}

func encodeFormat(v uint32) []byte { return binary.BigEndian.AppendUint32([]byte{formatType}, v) }

// ErrFormat1 is wrapped by Open when the cluster holds data written by a
// release before databases (format 1): its keys must first be moved into
// database 0, with every gateway stopped (MigrateFormat).
var ErrFormat1 = errors.New("the cluster holds data in format 1 (written by a nokv-redis before logical databases); stop every gateway and run `nokv-redis migrate-format` with the same settings, then start the gateways")

// checkFormat runs at Open. A cluster in this format is served; an empty
// one gets the record; a newer format is refused, and so is data of format 1
// until MigrateFormat has moved it.
func (s *Store) checkFormat(ctx context.Context) error {
	// A cluster that is starting, electing or briefly overloaded answers
	// "unavailable" or "conflict": a gateway started with it (compose,
	// scripts) waits for it rather than exiting.
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		err := s.checkFormatOnce(ctx)
		if err == nil || !(errors.Is(err, backend.ErrUnavailable) || errors.Is(err, backend.ErrConflict)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// formatWait bounds how long Open waits for a cluster that answers
// "unavailable" before it gives up.
const formatWait = 30 * time.Second

func (s *Store) checkFormatOnce(ctx context.Context) error {
	v, _, err := s.readRecord(ctx)
	if err != nil {
		return err
	}
	switch {
	case v == keyspace.FormatVersion:
		return nil
	case v == formatMigrating:
		return ErrMigrating
	case v == keyspace.Format2:
		// Format 3 moves nothing: the record alone changes, so that a
		// format-2 gateway refuses a cluster that may hold collections.
		return s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
			e, ok, err := t.Get(ctx, formatKey)
			if err != nil {
				return err
			}
			if cur, _, err := parseRecord(e, ok); err != nil || cur != keyspace.Format2 {
				return err // another gateway upgraded it first
			}
			return t.Set(formatKey, encodeFormat(keyspace.FormatVersion), 0)
		}))
	case v > keyspace.FormatVersion:
		return fmt.Errorf("cluster format %d: %w", v, keyspace.ErrFormatTooNew)
	case v != 0:
		return fmt.Errorf("cluster format %d is unknown to this nokv-redis", v)
	}
	// No record: a new cluster, or one of format 1.
	return s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		if e, ok, err := t.Get(ctx, formatKey); err != nil {
			return err
		} else if ok && len(e.Value) > 0 && e.Value[0] == formatType {
			return nil // another gateway wrote it first (checked again at the next start)
		} else if ok {
			return ErrFormat1 // a format-1 key ""
		}
		if s.formatHook != nil {
			s.formatHook()
		}
		// At the transaction's snapshot, where the record is absent: a
		// gateway that writes the record concurrently (and serves writes
		// after it) is not mistaken for format-1 data. The record's own key
		// "" sorts first; start after it.
		found, err := t.Scan(ctx, []byte{0}, nil, 1)
		if err != nil {
			return err
		}
		if len(found) > 0 {
			return ErrFormat1
		}
		return t.Set(formatKey, encodeFormat(keyspace.FormatVersion), 0)
	}))
}

// formatMigrating is the record's version while MigrateFormat runs: the
// bytes after it are the migration's cursor.
const formatMigrating = 1

// ErrMigrating is wrapped by Open when a migration was started and has not
// finished: run it again (it resumes).
var ErrMigrating = errors.New("the cluster's migration to format 2 has not finished; run `nokv-redis migrate-format` again (it resumes), with every gateway stopped")

// Migration batches: at most migrateBatchKeys keys (Options can lower it)
// and about migrateBatchBytes of keys and values per transaction.
var (
	migrateBatchKeys  = 64
	migrateBatchBytes = 16 << 20
)

// MigrationReport says what MigrateFormat did.
type MigrationReport struct {
	// Moved is how many keys this run moved into database 0.
	Moved int
	// AlreadyDone: the cluster was in format 2 already (or empty).
	AlreadyDone bool
}

// MigrateFormat moves every key of a format-1 cluster (keys stored without
// a database prefix, by a nokv-redis before logical databases) into
// database 0, then writes the format record. Every gateway must be stopped
// while it runs: a format-1 gateway's writes during or after it would land
// outside every database. It is resumable: each batch is one transaction
// that moves its keys and advances the cursor kept in the record, so a run
// stopped anywhere (a crash, a lost cluster) resumes where it stopped.
//
// Why moving keys in place is safe although format 1 may hold any byte
// string: a key k moves to P+k (P, database 0's prefix, is four zero bytes),
// and P+k sorts before k unless k consists of zero bytes only. The keys are
// moved in ascending order from a cursor, so P+k lands below the cursor,
// where every format-1 key was moved already: it overwrites none, and the
// scan above the cursor meets only format-1 keys. The keys made of zero
// bytes alone ("" included, which the record then takes) sort before every
// other key; they move first, all in one transaction. A key longer than
// MaxKeySize cannot take the prefix: such keys are listed and nothing is
// changed.
func MigrateFormat(ctx context.Context, opts Options, logf func(format string, args ...any)) (MigrationReport, error) {
	var rep MigrationReport
	retries := opts.MaxRetries
	if retries == 0 {
		retries = kvclient.NoRetries
	}
	c, err := kvclient.New(ctx, opts.PDAddr, kvclient.Options{MaxRetries: retries, NowMs: opts.NowMs})
	if err != nil {
		return rep, fmt.Errorf("connect to the cluster through PD at %s: %w", opts.PDAddr, err)
	}
	defer c.Close()
	s := &Store{c: c}
	batchKeys := migrateBatchKeys
	if opts.TestingMigrateBatchKeys > 0 {
		batchKeys = opts.TestingMigrateBatchKeys
	}
	v, cursor, err := s.readRecord(ctx)
	if err != nil {
		return rep, err
	}
	switch {
	case v == keyspace.FormatVersion:
		rep.AlreadyDone = true
		return rep, nil
	case v == keyspace.Format2:
		// No key moves from format 2 to 3: a gateway's start rewrites the
		// record; this does it now.
		rep.AlreadyDone = true
		return rep, s.checkFormatOnce(ctx)
	case v > keyspace.FormatVersion:
		return rep, fmt.Errorf("cluster format %d: %w", v, keyspace.ErrFormatTooNew)
	case v == 0:
		if err := s.checkKeyLengths(ctx); err != nil {
			return rep, err
		}
		n, err := s.migrateZeroKeys(ctx)
		if err != nil {
			return rep, fmt.Errorf("migrate the keys made of zero bytes: %w", err)
		}
		rep.Moved += n
		cursor = []byte{}
		logf("migration started: %d keys made of zero bytes moved", n)
	}
	batches := 0
	for {
		n, done, err := s.migrateBatch(ctx, &cursor, batchKeys)
		if err != nil {
			return rep, fmt.Errorf("migrate at key %q after %d keys: %w", cursor, rep.Moved, err)
		}
		rep.Moved += n
		if done {
			break
		}
		batches++
		if batches%100 == 0 {
			logf("migrated %d keys", rep.Moved)
		}
		if opts.TestingMigrateBatchDone != nil {
			if err := opts.TestingMigrateBatchDone(batches); err != nil {
				return rep, err
			}
		}
	}
	logf("migration done: %d keys moved into database 0", rep.Moved)
	return rep, nil
}

// readRecord returns the record's version (0: none, or a format-1 key "")
// and, while migrating, its cursor.
func (s *Store) readRecord(ctx context.Context) (uint32, []byte, error) {
	e, ok, err := s.c.Get(ctx, formatKey)
	if err != nil {
		return 0, nil, fmt.Errorf("read the cluster's format record: %w", s.wrap(err))
	}
	return parseRecord(e, ok)
}

func parseRecord(e kvclient.Entry, ok bool) (uint32, []byte, error) {
	if !ok || len(e.Value) == 0 || e.Value[0] != formatType {
		return 0, nil, nil
	}
	if len(e.Value) < 5 {
		return 0, nil, fmt.Errorf("corrupt format record %x in the cluster", e.Value)
	}
	v := binary.BigEndian.Uint32(e.Value[1:5])
	if v == formatMigrating {
		return v, e.Value[5:], nil
	}
	if len(e.Value) != 5 {
		return 0, nil, fmt.Errorf("corrupt format record %x in the cluster", e.Value)
	}
	return v, nil, nil
}

func migratingRecord(cursor []byte) []byte {
	return append(encodeFormat(formatMigrating), cursor...)
}

// checkKeyLengths refuses a cluster holding a key too long to take a
// database prefix, naming the first few.
func (s *Store) checkKeyLengths(ctx context.Context) error {
	var long []string
	count := 0
	_, err := s.c.ScanFunc(ctx, nil, nil, kvclient.ScanOptions{KeysOnly: true}, func(e kvclient.Entry) bool {
		if len(e.Key) > MaxKeySize {
			count++
			if len(long) < 5 {
				long = append(long, fmt.Sprintf("%.40q... (%d bytes)", e.Key, len(e.Key)))
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("scan the cluster's keys: %w", s.wrap(err))
	}
	if count > 0 {
		return fmt.Errorf("%d keys are longer than %d bytes and cannot be moved into database 0 (the prefix takes %d bytes); rename or delete them with the previous release first, nothing was changed: %v",
			count, MaxKeySize, keyspace.PrefixLen, long)
	}
	return nil
}

func allZero(k []byte) bool {
	for _, b := range k {
		if b != 0 {
			return false
		}
	}
	return true
}

// migrateZeroKeys moves the format-1 keys made of zero bytes alone (they
// sort first) and writes the record, starting the migration, in one
// transaction.
func (s *Store) migrateZeroKeys(ctx context.Context) (int, error) {
	moved := 0
	err := s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		moved = 0
		e, ok, err := t.Get(ctx, formatKey)
		if err != nil {
			return err
		}
		if v, _, err := parseRecord(e, ok); err != nil || v != 0 {
			return fmt.Errorf("the format record changed under the migration (another one runs?): %v", err)
		}
		var zero []kvclient.Entry
		from := []byte{}
		for {
			page, err := t.Scan(ctx, from, nil, 64)
			if err != nil {
				return err
			}
			stop := len(page) < 64
			for _, e := range page {
				if !allZero(e.Key) {
					stop = true
					break
				}
				zero = append(zero, e)
			}
			if stop {
				break
			}
			from = append(bytes.Clone(page[len(page)-1].Key), 0)
		}
		for _, e := range zero {
			if err := t.Delete(e.Key); err != nil {
				return err
			}
		}
		for _, e := range zero {
			if err := t.Set(keyspace.Key(0, e.Key), e.Value, e.ExpiresAt); err != nil {
				return err
			}
		}
		moved = len(zero)
		return t.Set(formatKey, migratingRecord(nil), 0)
	}))
	return moved, err
}

// migrateBatch moves the format-1 keys at and after *cursor, up to a
// batch, and advances the cursor in the record, in one transaction; done
// when none was left, and the record then says format 2.
func (s *Store) migrateBatch(ctx context.Context, cursor *[]byte, batchKeys int) (moved int, done bool, err error) {
	var next []byte
	err = s.wrap(s.c.RunTxn(ctx, func(t *kvclient.Txn) error {
		moved, done, next = 0, false, nil
		e, ok, err := t.Get(ctx, formatKey)
		if err != nil {
			return err
		}
		v, cur, err := parseRecord(e, ok)
		if err != nil {
			return err
		}
		if v != formatMigrating {
			return fmt.Errorf("the format record changed under the migration (another one runs?): version %d", v)
		}
		from := bytes.Clone(cur)
		size := 0
		for moved < batchKeys && size < migrateBatchBytes {
			page, err := t.Scan(ctx, from, nil, batchKeys)
			if err != nil {
				return err
			}
			for _, e := range page {
				from = append(bytes.Clone(e.Key), 0)
				if allZero(e.Key) {
					continue // moved first, by migrateZeroKeys
				}
				if err := t.Delete(e.Key); err != nil {
					return err
				}
				if err := t.Set(keyspace.Key(0, e.Key), e.Value, e.ExpiresAt); err != nil {
					return err
				}
				moved++
				size += 2*len(e.Key) + len(e.Value)
				if moved == batchKeys || size >= migrateBatchBytes {
					break
				}
			}
			if len(page) < batchKeys {
				break
			}
		}
		if moved == 0 {
			done = true
			return t.Set(formatKey, encodeFormat(keyspace.FormatVersion), 0)
		}
		next = from
		return t.Set(formatKey, migratingRecord(from), 0)
	}))
	if err == nil && !done {
		*cursor = next
	}
	return moved, done, err
}
