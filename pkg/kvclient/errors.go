package kvclient

import (
	"errors"
	"fmt"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
)

// Sentinels. Match them with errors.Is; every error the package returns
// wraps one of them or a context, PD or gRPC error.
var (
	// ErrClosed is returned by calls on a closed client.
	ErrClosed = errors.New("kvclient: client closed")
	// ErrInvalidOptions is returned by the constructors for unusable options.
	ErrInvalidOptions = errors.New("kvclient: invalid options")
	// ErrRegionUnavailable: a request could not be served within
	// Options.MaxRetries retries (region errors, unreachable stores, PD
	// down). The error wraps the last cause (a *RegionError, a gRPC status
	// or a PD error). Retrying later may succeed.
	ErrRegionUnavailable = errors.New("kvclient: region unavailable")

	// ErrWriteConflict: another transaction wrote, or holds a lock on, a key
	// this transaction writes, after this transaction started. Nothing was
	// committed; retry the whole transaction (RunTxn does).
	ErrWriteConflict = errors.New("kvclient: write conflict")
	// ErrRetryable: the store asked for the transaction to be retried from
	// scratch (KeyError.retryable). Nothing was committed.
	ErrRetryable = errors.New("kvclient: transaction must be retried")
	// ErrTxnAborted: the store refused the transaction (KeyError.abort),
	// typically because another client's lock resolution rolled it back
	// before it committed. Nothing was committed; a new transaction may
	// succeed.
	ErrTxnAborted = errors.New("kvclient: transaction aborted")
	// ErrTxnNotFound: the transaction's lock is gone and it left no commit
	// or rollback record (KeyError.txn_not_found).
	ErrTxnNotFound = errors.New("kvclient: transaction not found")
	// ErrAlreadyCommitted: a rollback met a key the transaction had
	// committed (KeyError.already_committed).
	ErrAlreadyCommitted = errors.New("kvclient: transaction already committed")
	// ErrLocked: a key is locked by another transaction (KeyError.locked).
	// Reads resolve locks themselves, so it surfaces only inside other
	// errors (ErrLockWaitTimeout, ErrWriteConflict).
	ErrLocked = errors.New("kvclient: key locked")
	// ErrLockWaitTimeout: a read waited Options.MaxLockWait for live locks
	// of other transactions to be committed, rolled back or to expire.
	ErrLockWaitTimeout = errors.New("kvclient: lock wait timeout")
	// ErrCommitUndetermined: the commit point (a one-phase commit, or the
	// commit of the primary key) was sent and its outcome could not be
	// learnt: an attempt may have applied (the store answered undetermined,
	// the attempt timed out, the connection broke, or the context ended in
	// flight) and no later attempt settled it within the retries. The
	// transaction may or may not be committed: it is never retried as if it
	// had failed (IsRetryable is false), and a caller must report the
	// outcome as unknown, not as a failure.
	//
	// Every other error of Commit means nothing was committed: a prewrite
	// whose outcome was unknown is followed by no commit, so its locks (if
	// any) are rolled back by the client, its next reader or GC.
	ErrCommitUndetermined = errors.New("kvclient: commit result undetermined")
	// ErrDataNotAvailable: a snapshot read (Get, BatchGet, Scan, head
	// reads; a transaction's reads too) at a timestamp below the GC safe
	// point (KeyError.data_not_available): GC may have collected versions
	// it would see, so the store refused it instead of answering with
	// half-collected data. The snapshot, or the transaction, is older than
	// the cluster's GC life time. It is not retried: the same timestamp
	// fails alike; a new snapshot or transaction reads.
	ErrDataNotAvailable = errors.New("kvclient: data is not available, read ts below the GC safe point")
	// ErrTxnFinished: the transaction was already committed or rolled back.
	ErrTxnFinished = errors.New("kvclient: transaction already finished")
	// ErrTooLarge: a key, value or transaction is larger than the cluster
	// takes (api/limits: MaxKeySize, MaxValueSize, MaxTxnSize; the client
	// refuses them before sending anything, with a *TooLargeError), or a
	// store refused a request as too large for a raft entry or a gRPC
	// message (a *RegionError with raft_entry_too_large, or a gRPC
	// ResourceExhausted status). Nothing was written, and retrying the same
	// request cannot succeed.
	ErrTooLarge = errors.New("kvclient: too large")
)

// The size limits of api/limits that callers see, re-exported so that they
// need not import it.
const (
	// MaxKeySize bounds a key (64 KiB).
	MaxKeySize = limits.MaxKeySize
	// MaxValueSize bounds a value (6 MiB + 1 KiB): MaxValuePayload plus
	// room for a caller's own framing of its values.
	MaxValueSize = limits.MaxValueSize
	// MaxValuePayload is the value size callers promise their users (6 MiB).
	MaxValuePayload = limits.MaxValuePayload
	// MaxTxnSize bounds the keys and values one transaction writes (64 MiB).
	MaxTxnSize = limits.MaxTxnSize
)

// TooLargeError says what was too large: What is "key", "value" or
// "transaction", Size its size in bytes and Limit the most allowed. It
// matches ErrTooLarge.
type TooLargeError struct {
	What        string
	Size, Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("kvclient: %s of %d bytes exceeds the limit of %d bytes", e.What, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// IsRetryable reports whether err says that the transaction did not commit
// and that running it again from scratch (new start timestamp) may succeed:
// a write conflict, a store's retryable or abort answer, or a transaction
// rolled back by another client. RunTxn retries exactly these.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrCommitUndetermined) {
		return false
	}
	return errors.Is(err, ErrWriteConflict) || errors.Is(err, ErrRetryable) ||
		errors.Is(err, ErrTxnAborted) || errors.Is(err, ErrTxnNotFound)
}

// KeyError is a transaction-level error a store reported for one key. It
// matches the sentinel of its kind with errors.Is: ErrLocked,
// ErrWriteConflict, ErrRetryable, ErrTxnAborted, ErrAlreadyCommitted,
// ErrTxnNotFound or ErrDataNotAvailable. Err is the store's answer; do not
// modify it.
type KeyError struct {
	Err *kvrpcpb.KeyError
}

func (e *KeyError) Error() string {
	k := e.Err
	switch {
	case k.GetLocked() != nil:
		l := k.GetLocked()
		return fmt.Sprintf("kvclient: key %q locked by transaction %d (primary %q, ttl %dms)",
			l.GetKey(), l.GetLockVersion(), l.GetPrimaryLock(), l.GetLockTtl())
	case k.GetConflict() != nil:
		c := k.GetConflict()
		return fmt.Sprintf("kvclient: write conflict on key %q: transaction %d meets a commit at %d",
			c.GetKey(), c.GetStartTs(), c.GetConflictTs())
	case k.GetRetryable() != "":
		return "kvclient: retryable: " + k.GetRetryable()
	case k.GetAbort() != "":
		return "kvclient: aborted: " + k.GetAbort()
	case k.GetAlreadyCommitted() != nil:
		return fmt.Sprintf("kvclient: transaction already committed at %d", k.GetAlreadyCommitted().GetCommitTs())
	case k.GetTxnNotFound() != nil:
		t := k.GetTxnNotFound()
		return fmt.Sprintf("kvclient: transaction %d not found on key %q", t.GetStartTs(), t.GetPrimaryKey())
	case k.GetDataNotAvailable() != nil:
		d := k.GetDataNotAvailable()
		return fmt.Sprintf("kvclient: data is not available: read ts %d is below the GC safe point %d (the snapshot is older than the GC life time)",
			d.GetReadTs(), d.GetSafePoint())
	}
	return "kvclient: key error: " + k.String()
}

// Is makes errors.Is(err, ErrWriteConflict) and the like true for the
// matching kind.
func (e *KeyError) Is(target error) bool {
	k := e.Err
	switch target {
	case ErrLocked:
		return k.GetLocked() != nil
	case ErrWriteConflict:
		return k.GetConflict() != nil
	case ErrRetryable:
		return k.GetRetryable() != ""
	case ErrTxnAborted:
		return k.GetAbort() != ""
	case ErrAlreadyCommitted:
		return k.GetAlreadyCommitted() != nil
	case ErrTxnNotFound:
		return k.GetTxnNotFound() != nil
	case ErrDataNotAvailable:
		return k.GetDataNotAvailable() != nil
	}
	return false
}

// RegionError is a routing error a store answered; it is retried, and only
// surfaces wrapped in an error matching ErrRegionUnavailable once the
// retries are used up. The exception is raft_entry_too_large, returned at
// once and matching ErrTooLarge.
type RegionError struct {
	RegionID uint64
	StoreID  uint64
	Err      *kvrpcpb.RegionError
}

func (e *RegionError) Error() string {
	return fmt.Sprintf("kvclient: region %d on store %d: %s", e.RegionID, e.StoreID, regionErrorKind(e.Err))
}

// Is makes errors.Is(err, ErrTooLarge) true for raft_entry_too_large.
func (e *RegionError) Is(target error) bool {
	return target == ErrTooLarge && e.Err.GetRaftEntryTooLarge() != nil
}

func regionErrorKind(re *kvrpcpb.RegionError) string {
	kind := "region error"
	switch {
	case re.GetNotLeader() != nil:
		kind = "not leader"
	case re.GetEpochNotMatch() != nil:
		kind = "epoch not match"
	case re.GetRegionNotFound() != nil:
		kind = "region not found"
	case re.GetKeyNotInRegion() != nil:
		kind = "key not in region"
	case re.GetServerIsBusy() != nil:
		kind = "server is busy"
	case re.GetStaleCommand() != nil:
		kind = "stale command"
	case re.GetUndetermined() != nil:
		kind = "result undetermined"
	case re.GetStoreNotMatch() != nil:
		kind = "store not match"
	case re.GetRaftEntryTooLarge() != nil:
		t := re.GetRaftEntryTooLarge()
		kind = fmt.Sprintf("raft entry of %d bytes exceeds the limit of %d bytes", t.GetEntrySize(), t.GetLimit())
	}
	if m := re.GetMessage(); m != "" {
		return kind + ": " + m
	}
	return kind
}

// errRegionMoved tells a caller of send that the region it addressed is no
// longer the right route for its keys (split, merged, moved, or the cache
// was wrong): it must locate its keys again and regroup them. It never
// leaves the package.
var errRegionMoved = errors.New("kvclient: region moved")
