package mvcc

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/nokv/nokv/api/kvrpcpb"
)

var sampleLocks = []Lock{
	{Op: kvrpcpb.Op_PUT, Primary: []byte("p"), StartTS: 1, TTL: 3000, TxnSize: 2, Inline: true, Value: []byte("v")},
	{Op: kvrpcpb.Op_PUT, Primary: []byte{}, StartTS: math.MaxUint64, Inline: true, Value: []byte{}},
	{Op: kvrpcpb.Op_PUT, Primary: []byte("a\x00\xff"), StartTS: tsAt(1_700_000_000_000), TTL: math.MaxUint64, ExpiresAt: 1_700_000_123_456},
	{Op: kvrpcpb.Op_PUT, Primary: []byte("p"), StartTS: 7, ExpiresAt: -5, Inline: true, Value: []byte(strings.Repeat("x", ShortValueMax))},
	{Op: kvrpcpb.Op_DEL, Primary: []byte("p"), StartTS: 9, TxnSize: math.MaxUint64},
	{Op: kvrpcpb.Op_LOCK, Primary: []byte(strings.Repeat("k", 300)), StartTS: 9, ExpiresAt: math.MinInt64},
}

var sampleWrites = []Write{
	{Kind: kvrpcpb.Op_PUT, StartTS: 5, Inline: true, Value: []byte("hello")},
	{Kind: kvrpcpb.Op_PUT, StartTS: 5, Inline: true, Value: []byte{}},
	{Kind: kvrpcpb.Op_PUT, StartTS: tsAt(1_700_000_000_000), ExpiresAt: math.MaxInt64},
	{Kind: kvrpcpb.Op_PUT, StartTS: 5, Inline: true, Value: []byte("v"), OverlappedRollback: true},
	{Kind: kvrpcpb.Op_DEL, StartTS: 6},
	{Kind: kvrpcpb.Op_LOCK, StartTS: 7, OverlappedRollback: true},
	{Kind: kvrpcpb.Op_ROLLBACK, StartTS: math.MaxUint64},
}

func TestRecordRoundTrip(t *testing.T) {
	for i, l := range sampleLocks {
		b := l.Encode()
		got, err := DecodeLock(b)
		if err != nil || !got.Equal(&l) {
			t.Errorf("lock %d: DecodeLock(Encode) = %+v, %v; want %+v", i, got, err, l)
		}
	}
	for i, w := range sampleWrites {
		b := w.Encode()
		got, err := DecodeWrite(b)
		if err != nil || !got.Equal(&w) {
			t.Errorf("write %d: DecodeWrite(Encode) = %+v, %v; want %+v", i, got, err, w)
		}
	}
	// Compactness: a rollback record is format + kind + flags + start_ts + expires_at.
	if n := len((&Write{Kind: kvrpcpb.Op_ROLLBACK, StartTS: tsAt(1_700_000_000_000)}).Encode()); n != 12 {
		t.Errorf("rollback record is %d bytes, want 12", n)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	// Every strict prefix of a valid record is truncated, hence corrupt.
	for i, l := range sampleLocks {
		b := l.Encode()
		for n := range len(b) {
			if _, err := DecodeLock(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("lock %d truncated to %d bytes: err = %v", i, n, err)
			}
		}
		if _, err := DecodeLock(append(b, 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("lock %d with a trailing byte: err = %v", i, err)
		}
	}
	for i, w := range sampleWrites {
		b := w.Encode()
		for n := range len(b) {
			if _, err := DecodeWrite(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("write %d truncated to %d bytes: err = %v", i, n, err)
			}
		}
		if _, err := DecodeWrite(append(b, 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("write %d with a trailing byte: err = %v", i, err)
		}
	}

	patch := func(b []byte, i int, v byte) []byte { b[i] = v; return b }
	lockPut := func() []byte { return sampleLocks[0].Encode() }
	writePut := func() []byte { return sampleWrites[0].Encode() }
	for _, c := range []struct {
		name  string
		lock  bool
		bytes []byte
	}{
		{"lock: future format", true, patch(lockPut(), 0, 2)},
		{"lock: format 0", true, patch(lockPut(), 0, 0)},
		{"lock: rollback op", true, patch(lockPut(), 1, byte(kvrpcpb.Op_ROLLBACK))},
		{"lock: op 9", true, patch(lockPut(), 1, 9)},
		{"lock: unknown flag", true, patch(lockPut(), 2, 0x81)},
		{"lock: overlapped flag", true, patch(lockPut(), 2, flagInline|flagOverlapped)},
		{"lock: inline value on DEL", true, patch(lockPut(), 1, byte(kvrpcpb.Op_DEL))},
		// header, start_ts, ttl 3000 (2 bytes), txn_size, expires_at 0, then a primary length of 2^64-1.
		{"lock: huge primary length", true, append(lockPut()[:3+8+2+1], 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"lock: varint overflow", true, append(lockPut()[:3+8], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"write: future format", false, patch(writePut(), 0, 2)},
		{"write: kind 4", false, patch(writePut(), 1, 4)},
		{"write: unknown flag", false, patch(writePut(), 2, 0x05)},
		{"write: inline value on ROLLBACK", false, patch(writePut(), 1, byte(kvrpcpb.Op_ROLLBACK))},
		{"write: overlapped rollback record", false, patch((&Write{Kind: kvrpcpb.Op_ROLLBACK, StartTS: 1}).Encode(), 2, flagOverlapped)},
		{"write: value length past the end", false, patch(writePut(), 3+8+1, 200)},
		{"empty", false, nil},
	} {
		var err error
		if c.lock {
			_, err = DecodeLock(c.bytes)
		} else {
			_, err = DecodeWrite(c.bytes)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", c.name, err)
		}
	}
}

func FuzzDecodeLock(f *testing.F) {
	for _, l := range sampleLocks {
		f.Add(l.Encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLock(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, err := DecodeLock(l.Encode())
		if err != nil || !again.Equal(&l) {
			t.Fatalf("re-encoding %+v gives %+v, %v", l, again, err)
		}
	})
}

func FuzzDecodeWrite(f *testing.F) {
	for _, w := range sampleWrites {
		f.Add(w.Encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := DecodeWrite(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, err := DecodeWrite(w.Encode())
		if err != nil || !again.Equal(&w) {
			t.Fatalf("re-encoding %+v gives %+v, %v", w, again, err)
		}
	})
}

func TestDecodeErrorsSayWhy(t *testing.T) {
	b := sampleLocks[0].Encode()
	_, err := DecodeLock(append(b[:3+8+2+1], 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01))
	if err == nil || !strings.Contains(err.Error(), "length") {
		t.Errorf("huge primary length: err = %v, want it to name the length", err)
	}
}
