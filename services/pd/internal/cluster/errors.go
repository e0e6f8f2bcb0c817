package cluster

import (
	"errors"
	"fmt"
	"time"

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
	// ErrStoreClaimed: the store id was claimed by another data directory,
	// or a heartbeat did not carry the token of the claim: the store lost
	// its data (pdpb.STORE_CLAIMED).
	ErrStoreClaimed = errors.New("cluster: store id claimed by another data directory")
	// ErrStoreUp: the store still sends heartbeats, so it may not be removed
	// (pdpb.INVALID_ARGUMENT).
	ErrStoreUp = errors.New("cluster: store is up")
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

// ClaimedError refuses a claim or heartbeat for a store id that another data
// directory claimed. It matches ErrStoreClaimed.
type ClaimedError struct {
	StoreID uint64
	// ClaimedAt is when the store id was claimed.
	ClaimedAt time.Time
	// Heartbeat is set when a heartbeat, not a claim, was refused.
	Heartbeat bool
}

func (e *ClaimedError) Error() string {
	if e.Heartbeat {
		return fmt.Sprintf("cluster: heartbeat for store %d does not carry the token its data directory claimed the id with (claimed %s): "+
			"it comes from another process or from a data directory that was wiped; refused", e.StoreID, e.ClaimedAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("cluster: store %d was already started with data (claimed %s); its data directory is gone or replaced — "+
		"this store id can never rejoin: remove it (nokv-config store remove %d) and start this node as a new store "+
		"(nokv-store --join) to receive replicas by snapshot", e.StoreID, e.ClaimedAt.UTC().Format(time.RFC3339), e.StoreID)
}

// Is makes errors.Is(err, ErrStoreClaimed) true.
func (e *ClaimedError) Is(target error) bool { return target == ErrStoreClaimed }
