package cluster

import (
	"errors"
	"fmt"

	"github.com/nokv/nokv/api/metapb"
)

// Sentinels. Match them with errors.Is; the typed errors below match the
// corresponding sentinel. The gRPC layer maps them to pdpb.ErrorType values.
var (
	// ErrStaleEpoch: a region heartbeat or split report is older than what PD
	// knows (pdpb.STALE_EPOCH).
	ErrStaleEpoch = errors.New("cluster: stale region epoch")
	// ErrRegionNotFound: no region with that id (pdpb.REGION_NOT_FOUND).
	ErrRegionNotFound = errors.New("cluster: region not found")
	// ErrStoreNotFound: no store with that id (pdpb.STORE_NOT_FOUND).
	ErrStoreNotFound = errors.New("cluster: store not found")
	// ErrStoreTombstone: the store was removed from the cluster and may not come
	// back (pdpb.STORE_TOMBSTONE).
	ErrStoreTombstone = errors.New("cluster: store is a tombstone")
	// ErrInvalidArgument: a malformed request, such as a region without an id
	// or an epoch (pdpb.INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("cluster: invalid argument")
	// ErrCorrupt: a persisted record cannot be decoded. The error names the key
	// and PD's workdir.
	ErrCorrupt = errors.New("cluster: corrupt PD state")
)

// StaleEpochError reports a region heartbeat or split report that is older
// than a region PD knows. It matches ErrStaleEpoch.
type StaleEpochError struct {
	// RegionID is the region of the rejected request.
	RegionID uint64
	// Epoch is the epoch the request carried.
	Epoch *metapb.RegionEpoch
	// Newer is a copy of the region PD knows that made the request stale: the
	// same region with a newer epoch, or an overlapping region with a higher
	// version.
	Newer *metapb.Region
	// Reason says which comparison failed.
	Reason string
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("cluster: region %d epoch (conf_ver %d, version %d) is stale: %s (PD knows region %d with conf_ver %d, version %d)",
		e.RegionID, e.Epoch.GetConfVer(), e.Epoch.GetVersion(), e.Reason,
		e.Newer.GetId(), e.Newer.GetRegionEpoch().GetConfVer(), e.Newer.GetRegionEpoch().GetVersion())
}

// Is makes errors.Is(err, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// TombstoneError reports a request from or about a tombstone store. It
// matches ErrStoreTombstone.
type TombstoneError struct {
	StoreID uint64
}

func (e *TombstoneError) Error() string {
	return fmt.Sprintf("cluster: store %d is a tombstone", e.StoreID)
}

// Is makes errors.Is(err, ErrStoreTombstone) true.
func (e *TombstoneError) Is(target error) bool { return target == ErrStoreTombstone }
