package schedule

import (
	"errors"
	"log/slog"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultReplaceDownAfter     = 30 * time.Second
	DefaultRegionMaxSize        = 96 << 20
	DefaultMaxReplicas          = 3
	DefaultOperatorTimeout      = time.Minute
	DefaultLeaderTolerance      = 1
	DefaultLeaderToleranceRatio = 0.1
)

// Options configures a Scheduler. Zero fields take the defaults above.
type Options struct {
	// ReplaceDownAfter is how long a store must have been DOWN before its
	// peers are replaced.
	ReplaceDownAfter time.Duration
	// RegionMaxSize is the approximate size in bytes above which a region is
	// split.
	RegionMaxSize uint64
	// MaxReplicas is the target number of voters per region.
	MaxReplicas int
	// OperatorTimeout is how long an operation may stay unfinished before it is
	// dropped and the region may get a new one. Make it several region
	// heartbeat intervals long.
	OperatorTimeout time.Duration
	// A leader moves only if its store holds more than LeaderTolerance and
	// more than LeaderToleranceRatio times its own count more leaders than the
	// target store. A negative ratio means 0.
	LeaderTolerance      int
	LeaderToleranceRatio float64

	// DisableReplicaRepair, DisableSplit and DisableLeaderBalance turn a rule
	// off, for tests that want a quiet cluster.
	DisableReplicaRepair bool
	DisableSplit         bool
	DisableLeaderBalance bool

	// AllocID hands out the ids of new peers. Required.
	AllocID func() (uint64, error)
	// Logger reports failures that only delay scheduling, such as AllocID
	// errors; nil means slog.Default().
	Logger *slog.Logger
}

// ErrNoAllocID is returned by New when Options.AllocID is nil.
var ErrNoAllocID = errors.New("schedule: Options.AllocID is required")

func (o Options) withDefaults() Options {
	if o.ReplaceDownAfter <= 0 {
		o.ReplaceDownAfter = DefaultReplaceDownAfter
	}
	if o.RegionMaxSize == 0 {
		o.RegionMaxSize = DefaultRegionMaxSize
	}
	if o.MaxReplicas <= 0 {
		o.MaxReplicas = DefaultMaxReplicas
	}
	if o.OperatorTimeout <= 0 {
		o.OperatorTimeout = DefaultOperatorTimeout
	}
	if o.LeaderTolerance <= 0 {
		o.LeaderTolerance = DefaultLeaderTolerance
	}
	switch {
	case o.LeaderToleranceRatio == 0:
		o.LeaderToleranceRatio = DefaultLeaderToleranceRatio
	case o.LeaderToleranceRatio < 0:
		o.LeaderToleranceRatio = 0
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
