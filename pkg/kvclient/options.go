package kvclient

import (
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/nokv/nokv/pkg/pdclient"
)

// Defaults for Options.
const (
	// DefaultMaxRetries matches the default max_retries of the cluster file.
	DefaultMaxRetries = 8
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
	// DefaultRPCTimeout bounds one attempt of a store RPC.
	DefaultRPCTimeout = 5 * time.Second
	// DefaultLockTTL is how long a transaction's locks outlive its
	// client if the client dies before committing: counted from its
	// prewrite (plus the time the transaction ran before it), or from its
	// last lock heartbeat.
	DefaultLockTTL = 3 * time.Second
	// DefaultMaxTxnTTL bounds how long a transaction's lock heartbeat keeps
	// its locks alive (TiKV's max-txn-ttl); the stores cap a heartbeat's
	// TTL at the same hour.
	DefaultMaxTxnTTL = time.Hour
	// DefaultMaxLockWait bounds how long a read waits for other
	// transactions' live locks.
	DefaultMaxLockWait = 20 * time.Second
	// DefaultTxnRetries is how many times RunTxn retries a transaction that
	// failed with a retryable error.
	DefaultTxnRetries = 64
	// DefaultResolvedCacheTTL is how long the outcome of a transaction whose
	// locks were resolved is remembered.
	DefaultResolvedCacheTTL = 30 * time.Second
)

// NoRetries, as Options.MaxRetries or Options.TxnRetries, means a single
// attempt. (0 means the default, so a cluster file's max_retries of 0 must
// be passed as NoRetries, as with pdclient.)
const NoRetries = -1

// Options tunes a Client. The zero value is usable.
type Options struct {
	// MaxRetries is how many times one request (a read, a prewrite or commit
	// batch, a lock resolution) is retried after region errors or
	// unreachable stores before it fails with ErrRegionUnavailable. 0 means
	// DefaultMaxRetries; NoRetries means none. Waits for other
	// transactions' locks do not count (see MaxLockWait).
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait before a retry: it doubles
	// from MinBackoff up to MaxBackoff and each wait is drawn uniformly from
	// its upper half. 0 means the defaults.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// RPCTimeout bounds each attempt of a store RPC; an attempt that runs
	// out of it is retried on another replica like an unreachable store.
	// 0 means DefaultRPCTimeout.
	RPCTimeout time.Duration
	// LockTTL is the time to live of a transaction's locks beyond the time
	// the transaction had already run when it prewrote. While a two-phase
	// commit runs, a heartbeat every LockTTL/2 raises its primary lock's
	// TTL to the transaction's age plus LockTTL, so a live committer keeps
	// its locks however long it takes, and a dead one's expire at most
	// LockTTL after its last heartbeat. 0 means DefaultLockTTL.
	LockTTL time.Duration
	// MaxTxnTTL bounds the heartbeats: once a transaction is this old they
	// stop, its locks expire LockTTL later and a reader may roll it back.
	// 0 means DefaultMaxTxnTTL; the stores never grant more than an hour.
	MaxTxnTTL time.Duration
	// MaxLockWait bounds how long a read waits for live locks of other
	// transactions before failing with ErrLockWaitTimeout. 0 means
	// DefaultMaxLockWait.
	MaxLockWait time.Duration
	// TxnRetries is how many times RunTxn retries a transaction after a
	// retryable error (IsRetryable). 0 means DefaultTxnRetries; NoRetries
	// means none.
	TxnRetries int
	// ResolvedCacheTTL is how long the fate of a transaction learned while
	// resolving its locks is remembered, so that its other locks resolve
	// without asking its primary again. 0 means DefaultResolvedCacheTTL.
	ResolvedCacheTTL time.Duration
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
	// NowMs, if set, is the clock (Unix milliseconds) that decides whether
	// values have expired, for reads and for a transaction's own writes. By
	// default a read at timestamp ts judges expiry at ts's physical time, so
	// that every reader of a snapshot agrees. For tests.
	NowMs func() int64
	// Knobs are hooks for tests.
	Knobs TestingKnobs
	// PD tunes the PD client that New creates; NewWithPD ignores it.
	PD pdclient.Options
	// DialOptions are added to the options of the client's gRPC
	// connections (insecure transport by default).
	DialOptions []grpc.DialOption
}

// Validate reports unusable options; zero fields are fine.
func (o Options) Validate() error {
	switch {
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return fmt.Errorf("%w: negative backoff", ErrInvalidOptions)
	case o.MinBackoff > 0 && o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff:
		return fmt.Errorf("%w: MinBackoff %v above MaxBackoff %v", ErrInvalidOptions, o.MinBackoff, o.MaxBackoff)
	case o.RPCTimeout < 0:
		return fmt.Errorf("%w: negative RPCTimeout %v", ErrInvalidOptions, o.RPCTimeout)
	case o.LockTTL < 0:
		return fmt.Errorf("%w: negative LockTTL %v", ErrInvalidOptions, o.LockTTL)
	case o.LockTTL > 0 && o.LockTTL < time.Millisecond:
		return fmt.Errorf("%w: LockTTL %v below a millisecond", ErrInvalidOptions, o.LockTTL)
	case o.MaxTxnTTL < 0:
		return fmt.Errorf("%w: negative MaxTxnTTL %v", ErrInvalidOptions, o.MaxTxnTTL)
	case o.MaxLockWait < 0:
		return fmt.Errorf("%w: negative MaxLockWait %v", ErrInvalidOptions, o.MaxLockWait)
	case o.ResolvedCacheTTL < 0:
		return fmt.Errorf("%w: negative ResolvedCacheTTL %v", ErrInvalidOptions, o.ResolvedCacheTTL)
	case o.MaxRetries < NoRetries || o.TxnRetries < NoRetries:
		return fmt.Errorf("%w: retries below NoRetries", ErrInvalidOptions)
	}
	return nil
}

func (o Options) withDefaults() Options {
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	switch {
	case o.TxnRetries == 0:
		o.TxnRetries = DefaultTxnRetries
	case o.TxnRetries < 0:
		o.TxnRetries = 0
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
		if o.MaxBackoff > 0 {
			o.MinBackoff = min(o.MinBackoff, o.MaxBackoff)
		}
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.RPCTimeout == 0 {
		o.RPCTimeout = DefaultRPCTimeout
	}
	if o.LockTTL == 0 {
		o.LockTTL = DefaultLockTTL
	}
	if o.MaxTxnTTL == 0 {
		o.MaxTxnTTL = DefaultMaxTxnTTL
	}
	if o.MaxLockWait == 0 {
		o.MaxLockWait = DefaultMaxLockWait
	}
	if o.ResolvedCacheTTL == 0 {
		o.ResolvedCacheTTL = DefaultResolvedCacheTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// TestingKnobs are hooks for tests; nil fields do nothing.
type TestingKnobs struct {
	// BeforeCommit runs in a two-phase Commit once every prewrite has
	// succeeded, before the commit timestamp is taken: a test stalls a
	// transaction there with its locks held.
	BeforeCommit func(startTS uint64)
}
