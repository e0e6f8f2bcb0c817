package pdclient

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nokv/nokv/api/pdpb"
)

func TestPDErrorIs(t *testing.T) {
	sentinels := []error{ErrStaleEpoch, ErrRegionNotFound, ErrStoreNotFound, ErrStoreTombstone, ErrInvalidArgument}
	tests := []struct {
		typ  pdpb.ErrorType
		want error // nil: matches none
	}{
		{pdpb.ErrorType_STALE_EPOCH, ErrStaleEpoch},
		{pdpb.ErrorType_REGION_NOT_FOUND, ErrRegionNotFound},
		{pdpb.ErrorType_STORE_NOT_FOUND, ErrStoreNotFound},
		{pdpb.ErrorType_STORE_TOMBSTONE, ErrStoreTombstone},
		{pdpb.ErrorType_INVALID_ARGUMENT, ErrInvalidArgument},
		{pdpb.ErrorType_UNKNOWN, nil},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", &PDError{Type: tt.typ, Message: "m"})
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, got)
				}
			}
			var pe *PDError
			if !errors.As(err, &pe) || pe.Type != tt.typ {
				t.Errorf("errors.As does not find the PDError")
			}
		})
	}
}
