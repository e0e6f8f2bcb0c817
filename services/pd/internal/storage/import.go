package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// hasPebble reports whether dir holds a Pebble store: the state of a PD from
// before etcd.
func hasPebble(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	return len(m) > 0
}

// importPebble copies every key of the Pebble state in the workdir into etcd
// together with the format marker, in one transaction that only succeeds if
// the marker is still absent: a crash half-way leaves nothing and the next
// start imports again; a member whose cluster already has a state imports
// nothing. The Pebble files stay where they are (PD never reads them again
// and they may be deleted once the upgrade is trusted).
func (s *Storage) importPebble() error {
	lock, ok := s.lock.(*pebble.Lock)
	if !ok {
		return errors.New("import Pebble PD state: workdir lock is not Pebble's")
	}
	db, err := pebble.Open(s.dir, &pebble.Options{Lock: lock, ReadOnly: true, Logger: quietLogger{s.log}})
	if err != nil {
		return fmt.Errorf("import the Pebble PD state in %s: open: %w", s.dir, err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("import the Pebble PD state in %s: %w", s.dir, err)
	}
	var ops []clientv3.Op
	for it.First(); it.Valid(); it.Next() {
		ops = append(ops, clientv3.OpPut(EtcdPrefix+string(it.Key()), string(it.Value())))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("import the Pebble PD state in %s: read: %w", s.dir, err)
	}
	fk := EtcdPrefix + string(KeyFormat)
	ops = append(ops, clientv3.OpPut(fk, formatImported))
	ctx, cancel := context.WithTimeout(context.Background(), 2*defaultTimeout)
	defer cancel()
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(fk), "=", 0)).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("import the Pebble PD state in %s: write %d keys to etcd: %w", s.dir, len(ops)-1, err)
	}
	if !resp.Succeeded {
		s.log.Warn("the workdir holds a Pebble PD state, but the etcd cluster already has a state: ignoring the Pebble files", "workdir", s.dir)
		return nil
	}
	s.log.Info("imported the Pebble PD state into etcd; the Pebble files in the workdir are no longer used", "workdir", s.dir, "keys", len(ops)-1)
	return nil
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
