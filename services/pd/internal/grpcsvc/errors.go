package grpcsvc

import (
	"errors"

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
