package grpcsvc

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/services/pd/internal/cluster"
	"github.com/nokv/nokv/services/pd/internal/id"
	"github.com/nokv/nokv/services/pd/internal/tso"
)

// errorTable maps package errors to the header error type clients act on.
var errorTable = []struct {
	err error
	typ pdpb.ErrorType
}{
	{cluster.ErrStaleEpoch, pdpb.ErrorType_STALE_EPOCH},
	{cluster.ErrRegionNotFound, pdpb.ErrorType_REGION_NOT_FOUND},
	{cluster.ErrStoreNotFound, pdpb.ErrorType_STORE_NOT_FOUND},
	{cluster.ErrStoreTombstone, pdpb.ErrorType_STORE_TOMBSTONE},
	{cluster.ErrStoreClaimed, pdpb.ErrorType_STORE_CLAIMED},
	{cluster.ErrStoreUp, pdpb.ErrorType_INVALID_ARGUMENT},
	{cluster.ErrInvalidArgument, pdpb.ErrorType_INVALID_ARGUMENT},
	{id.ErrInvalidCount, pdpb.ErrorType_INVALID_ARGUMENT},
	{tso.ErrInvalidCount, pdpb.ErrorType_INVALID_ARGUMENT},
	{errInvalid, pdpb.ErrorType_INVALID_ARGUMENT},
}

var errInvalid = errors.New("pd: invalid request")

// header translates err into a response header; nil means success.
func header(err error) *pdpb.ResponseHeader {
	if err == nil {
		return &pdpb.ResponseHeader{}
	}
	typ := pdpb.ErrorType_UNKNOWN
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			typ = e.typ
			break
		}
	}
	return &pdpb.ResponseHeader{Error: &pdpb.Error{Type: typ, Message: err.Error()}}
}

// LeaderKey is the gRPC trailer key under which a PD member that is not the
// leader names the leader's address.
const LeaderKey = "nokv-pd-leader"

// NotLeader is the status of a request to a member that does not lead:
// UNAVAILABLE, so clients retry, with the leader's address in the message
// and, for clients that follow it, in the LeaderKey trailer. leader is ""
// while no leader is known (an election is under way).
func NotLeader(ctx context.Context, leader string) error {
	if leader == "" {
		return status.Error(codes.Unavailable, "pd: this member is not the leader and no leader is elected yet")
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs(LeaderKey, leader))
	return status.Errorf(codes.Unavailable, "pd: this member is not the leader; the leader is at %s", leader)
}

// headerResponse is what every unary PD response has.
type headerResponse interface {
	GetHeader() *pdpb.ResponseHeader
}

// LeadershipCheck is a unary interceptor for the leader's requests: one that
// failed because the leadership ended under it (the storage write refused or
// timed out without a quorum) is answered as a follower answers, with the
// NotLeader status, rather than with a header error clients do not retry.
// Clients then go on to the new leader at once. The member RPCs, which
// followers serve, are left alone.
func (s *Service) LeadershipCheck(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil || followerMethods[info.FullMethod] {
		return resp, err
	}
	if r, ok := resp.(headerResponse); ok && r.GetHeader().GetError() != nil {
		if _, lerr := s.Lead(ctx); lerr != nil {
			return nil, lerr
		}
	}
	return resp, nil
}

// followerMethods are the RPCs every member serves.
var followerMethods = map[string]bool{
	pdpb.PD_ListMembers_FullMethodName:  true,
	pdpb.PD_AddMember_FullMethodName:    true,
	pdpb.PD_RemoveMember_FullMethodName: true,
}
