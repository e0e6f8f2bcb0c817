package gatewayserver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	raftbackend "github.com/nokv/nokv/services/gateway/internal/backend/raft"
)

// MigrateFormat brings the data cfg names to the current on-disk format
// (`nokv-redis migrate-format`). The embedded backend migrates a workdir
// of the previous format by itself when it opens, so for it this opens and
// closes the store. The raft backend refuses a cluster of the previous
// format until this has run with every gateway stopped
// (raftbackend.MigrateFormat says how and why it is safe).
func MigrateFormat(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid settings: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if cfg.Backend != BackendRaft {
		s, err := embedded.Open(embedded.Options{Dir: cfg.WorkDir, Sync: embedded.SyncAlways, Logger: log})
		if err != nil {
			return fmt.Errorf("open embedded store: %w", err)
		}
		return s.Close()
	}
	rep, err := raftbackend.MigrateFormat(ctx, raftbackend.Options{PDAddr: cfg.PDAddr, MaxRetries: cfg.MaxRetries,
		TestingMigrateBatchKeys: cfg.TestingKnobs.MigrateBatchKeys, TestingMigrateBatchDone: cfg.TestingKnobs.MigrateBatchDone},
		func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) })
	if err != nil {
		return fmt.Errorf("migrate the cluster: %w", err)
	}
	if rep.AlreadyDone {
		log.Info("the cluster is in the current format already; nothing to do")
	}
	return nil
}
