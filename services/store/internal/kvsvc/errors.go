package kvsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/store/internal/raftstore"
)

// regionError converts a routing error from the raft store into the
// protobuf region error; ok is false for anything else. It is the only
// place that does so.
func regionError(err error) (re *kvrpcpb.RegionError, ok bool) {
	var (
		notLeader  *raftstore.NotLeaderError
		epoch      *raftstore.EpochNotMatchError
		notFound   *raftstore.RegionNotFoundError
		notInRange *raftstore.KeyNotInRegionError
		busy       *raftstore.ServerBusyError
		storeMis   *raftstore.StoreNotMatchError
		tooLarge   *raftstore.RaftEntryTooLargeError
		undecided  *raftstore.UndeterminedError
	)
	re = &kvrpcpb.RegionError{Message: err.Error()}
	switch {
	case errors.As(err, &notLeader):
		re.NotLeader = &kvrpcpb.NotLeader{RegionId: notLeader.RegionID, Leader: notLeader.Leader}
	case errors.As(err, &epoch):
		re.EpochNotMatch = &kvrpcpb.EpochNotMatch{CurrentRegions: epoch.Regions}
	case errors.As(err, &notFound):
		re.RegionNotFound = &kvrpcpb.RegionNotFound{RegionId: notFound.RegionID}
	case errors.As(err, &notInRange):
		re.KeyNotInRegion = &kvrpcpb.KeyNotInRegion{
			Key: notInRange.Key, RegionId: notInRange.Region.GetId(),
			StartKey: notInRange.Region.GetStartKey(), EndKey: notInRange.Region.GetEndKey(),
		}
	case errors.As(err, &busy):
		re.ServerIsBusy = &kvrpcpb.ServerIsBusy{Reason: busy.Reason, BackoffMs: 10}
	case errors.As(err, &storeMis):
		re.StoreNotMatch = &kvrpcpb.StoreNotMatch{RequestStoreId: storeMis.Requested, ActualStoreId: storeMis.Actual}
	case errors.As(err, &tooLarge):
		re.RaftEntryTooLarge = &kvrpcpb.RaftEntryTooLarge{RegionId: tooLarge.RegionID, EntrySize: tooLarge.EntrySize, Limit: tooLarge.Limit}
	case errors.As(err, &undecided):
		re.Undetermined = &kvrpcpb.Undetermined{Reason: undecided.Reason}
	case errors.Is(err, raftstore.ErrStaleCommand):
		re.StaleCommand = &kvrpcpb.StaleCommand{}
	default:
		return nil, false
	}
	return re, true
}

// grpcError converts any other failure into a gRPC status: availability
// problems the client may retry elsewhere or later, or an internal error.
func grpcError(err error) error {
	switch {
	case errors.Is(err, raftstore.ErrStopped):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, errBadRequest), errors.Is(err, raftstore.ErrBadSnapshot):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, raftstore.ErrConfChangeRejected):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

var errBadRequest = errors.New("kvsvc: bad request")
