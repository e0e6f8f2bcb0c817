package raft

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// The errors of the limits match backend.ErrTooLarge and read as the
// reply says them, after "ERR ".
func TestTooLargeErrors(t *testing.T) {
	s := &Store{}
	if err := s.CheckValueSize(MaxValueSize); err != nil {
		t.Fatalf("CheckValueSize(%d) = %v", MaxValueSize, err)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{s.CheckValueSize(7 << 20), "value of 7340032 bytes exceeds the raft backend's limit of 6291456 bytes"},
		{s.CheckValueSize(1 << 62), fmt.Sprintf("value of %d bytes exceeds the raft backend's limit of 6291456 bytes", int64(1)<<62)},
		{s.wrap(&kvclient.TooLargeError{What: "transaction", Size: 70 << 20, Limit: kvclient.MaxTxnSize}), "one command writes 73400320 bytes, over the raft backend's limit of 67108864 bytes"},
		{s.wrap(fmt.Errorf("prewrite: %w", &kvclient.TooLargeError{What: "key", Size: 70000, Limit: kvclient.MaxKeySize})), "key of 70000 bytes exceeds the raft backend's limit of 65536 bytes"},
		{s.wrap(errTooLarge("value", 7, 6)), "value of 7 bytes exceeds the raft backend's limit of 6 bytes"},
	} {
		if !errors.Is(c.err, backend.ErrTooLarge) || c.err.Error() != c.want {
			t.Errorf("error %q (ErrTooLarge: %v), want %q", c.err, errors.Is(c.err, backend.ErrTooLarge), c.want)
		}
	}
	if err := s.wrap(fmt.Errorf("x: %w", kvclient.ErrTooLarge)); !errors.Is(err, backend.ErrTooLarge) {
		t.Errorf("a store's refusal = %v, want ErrTooLarge", err)
	}
}

// Set refuses a key or value over the limits before building anything,
// and the first refusal sticks.
func TestSetChecksSizes(t *testing.T) {
	x := &txn{}
	x.Set(make([]byte, maxStoredKey+1), backend.Value{Type: backend.TypeString})
	if x.err == nil || x.err.Error() != "key of 65533 bytes exceeds the raft backend's limit of 65532 bytes" {
		t.Fatalf("long key: %v", x.err)
	}
	x = &txn{}
	x.Set([]byte("k"), backend.Value{Type: backend.TypeString, Data: make([]byte, MaxValueSize+1)})
	if !errors.Is(x.err, backend.ErrTooLarge) {
		t.Fatalf("large value: %v", x.err)
	}
	first := x.err
	x.Set(make([]byte, MaxKeySize+1), backend.Value{})
	x.Delete(make([]byte, MaxKeySize+1))
	if x.err != first {
		t.Fatalf("the first refusal was replaced by %v", x.err)
	}
}
