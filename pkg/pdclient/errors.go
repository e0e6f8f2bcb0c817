package pdclient

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
)

// Sentinels. Match them with errors.Is.
var (
	// ErrClosed is returned by calls on a closed client.
	ErrClosed = errors.New("pdclient: client closed")
	// ErrUnavailable is matched by errors of requests that failed because PD
	// could not be reached or did not answer in time: the TSO stream broke, or
	// a unary call still failed with an availability error (gRPC Unavailable,
	// ResourceExhausted, or an attempt's deadline) after its retries. The
	// original gRPC error is wrapped too, so status.Code still sees it.
	// Retrying later is safe.
	ErrUnavailable = errors.New("pdclient: PD unavailable")
	// ErrInvalidOptions is returned by constructors for unusable options.
	ErrInvalidOptions = errors.New("pdclient: invalid options")

	// The sentinels below are matched by the *PDError of the corresponding
	// pdpb.ErrorType (see PDError.Is).

	// ErrStaleEpoch: the region sent is older than the one PD knows
	// (pdpb.STALE_EPOCH).
	ErrStaleEpoch = errors.New("pdclient: stale region epoch")
	// ErrRegionNotFound: PD knows no region with that id or holding that key
	// (pdpb.REGION_NOT_FOUND).
	ErrRegionNotFound = errors.New("pdclient: region not found")
	// ErrStoreNotFound: PD knows no store with that id
	// (pdpb.STORE_NOT_FOUND).
	ErrStoreNotFound = errors.New("pdclient: store not found")
	// ErrStoreTombstone: the store was removed from the cluster
	// (pdpb.STORE_TOMBSTONE).
	ErrStoreTombstone = errors.New("pdclient: store is a tombstone")
	// ErrInvalidArgument: PD rejected the request as malformed
	// (pdpb.INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("pdclient: invalid argument")
	// ErrClusterIDMismatch: PD serves another cluster than the client's
	// (pdpb.CLUSTER_ID_MISMATCH): a PD that lost its state and bootstrapped
	// a new cluster, or a client configured for another cluster.
	ErrClusterIDMismatch = errors.New("pdclient: cluster id mismatch")
	// ErrStoreClaimed: the store id belongs to another data directory
	// (pdpb.STORE_CLAIMED): the store lost its data.
	ErrStoreClaimed = errors.New("pdclient: store id claimed by another data directory")
)

// errorTypeSentinels is the one translation table from the header error
// types of the PD API to this package's sentinels. UNKNOWN has none: match
// it with errors.As and PDError.Type.
var errorTypeSentinels = map[pdpb.ErrorType]error{
	pdpb.ErrorType_STALE_EPOCH:         ErrStaleEpoch,
	pdpb.ErrorType_REGION_NOT_FOUND:    ErrRegionNotFound,
	pdpb.ErrorType_STORE_NOT_FOUND:     ErrStoreNotFound,
	pdpb.ErrorType_STORE_TOMBSTONE:     ErrStoreTombstone,
	pdpb.ErrorType_INVALID_ARGUMENT:    ErrInvalidArgument,
	pdpb.ErrorType_CLUSTER_ID_MISMATCH: ErrClusterIDMismatch,
	pdpb.ErrorType_STORE_CLAIMED:       ErrStoreClaimed,
}

// PDError is a business error PD reported in a response header. It is
// never retried: PD answered, and asking again would get the same answer.
// It matches the sentinel of its Type with errors.Is (ErrRegionNotFound
// for REGION_NOT_FOUND, and so on).
type PDError struct {
	Type    pdpb.ErrorType
	Message string
}

func (e *PDError) Error() string {
	return fmt.Sprintf("pdclient: PD error %s: %s", e.Type, e.Message)
}

// Is makes errors.Is(err, ErrRegionNotFound) and the like true for the
// matching Type.
func (e *PDError) Is(target error) bool {
	s, ok := errorTypeSentinels[e.Type]
	return ok && s == target
}

// headerError returns the error in a response header as a *PDError, or nil
// if the header reports success (or is absent).
func headerError(h *pdpb.ResponseHeader) error {
	e := h.GetError()
	if e == nil || e.GetType() == pdpb.ErrorType_OK {
		return nil
	}
	return &PDError{Type: e.GetType(), Message: e.GetMessage()}
}

// statusError returns the *PDError a gRPC status carries in its details
// (PD's refusal of a request naming another cluster), or nil.
func statusError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	for _, d := range st.Details() {
		if e, ok := d.(*pdpb.Error); ok && e.GetType() != pdpb.ErrorType_OK {
			return &PDError{Type: e.GetType(), Message: e.GetMessage()}
		}
	}
	return nil
}
