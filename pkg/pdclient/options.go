package pdclient

import (
	"fmt"
	"time"
)

// Defaults for Options.
const (
	// DefaultMaxRetries matches the default max_retries of the cluster file.
	DefaultMaxRetries = 8
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
)

// NoRetries, as Options.MaxRetries, makes every unary call a single
// attempt. (MaxRetries 0 means the default, so a cluster file's
// max_retries of 0 must be passed as NoRetries.)
const NoRetries = -1

// Options tunes a Client. The zero value is usable.
type Options struct {
	// MaxRetries is how many times a unary call is retried after an
	// availability error, so a call makes at most MaxRetries+1 attempts.
	// 0 means DefaultMaxRetries; negative (NoRetries) means no retry.
	MaxRetries int
	// MinBackoff and MaxBackoff bound the wait before a retry: it doubles
	// from MinBackoff up to MaxBackoff, and each wait is drawn uniformly from
	// its upper half so that clients that failed together do not retry in
	// step. 0 means the defaults.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// AttemptTimeout, if positive, bounds each attempt of a unary call; an
	// attempt that runs out of it is retried like an unavailable PD. 0 means
	// attempts are bounded only by the caller's context, so a PD that
	// accepts connections but never answers holds the call until then.
	AttemptTimeout time.Duration
	// RegionCacheTTL is how long a cached region or store is trusted before
	// it is asked of PD again; 0 means DefaultRegionCacheTTL.
	RegionCacheTTL time.Duration
	// Now is the clock of the caches' TTLs; nil means time.Now. Backoff
	// waits always use real time.
	Now func() time.Time
	// TSO tunes the timestamp client.
	TSO TSOOptions
	// ClusterID is the cluster the client belongs to: every request names
	// it and a PD serving another cluster refuses it (ErrClusterIDMismatch).
	// 0 means learn it from PD's first answer and hold it from then on. A
	// store passes the id recorded in its data.
	ClusterID uint64

	// TestingKnobs are for tests only.
	TestingKnobs TestingKnobs
}

// TestingKnobs lets tests observe a Client.
type TestingKnobs struct {
	// OnRetry, if set, is called in the caller's goroutine before the
	// backoff that follows a failed attempt, with the RPC method, the number
	// of the attempt that failed (from 1) and its error.
	OnRetry func(method string, attempt int, err error)
}

// Validate reports unusable options; zero fields are fine.
func (o Options) Validate() error {
	switch {
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return fmt.Errorf("%w: negative backoff", ErrInvalidOptions)
	case o.MinBackoff > 0 && o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff:
		return fmt.Errorf("%w: MinBackoff %v above MaxBackoff %v", ErrInvalidOptions, o.MinBackoff, o.MaxBackoff)
	case o.AttemptTimeout < 0:
		return fmt.Errorf("%w: negative AttemptTimeout %v", ErrInvalidOptions, o.AttemptTimeout)
	case o.RegionCacheTTL < 0:
		return fmt.Errorf("%w: negative RegionCacheTTL %v", ErrInvalidOptions, o.RegionCacheTTL)
	}
	if err := o.TSO.Validate(); err != nil {
		return fmt.Errorf("TSO options: %w", err)
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
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
		if o.MaxBackoff > 0 {
			o.MinBackoff = min(o.MinBackoff, o.MaxBackoff)
		}
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.RegionCacheTTL == 0 {
		o.RegionCacheTTL = DefaultRegionCacheTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
