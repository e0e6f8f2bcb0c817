package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Column family prefixes of the data keyspace.
const (
	CFLock    byte = 'L'
	CFWrite   byte = 'W'
	CFDefault byte = 'D'
)

// CFs lists the data column families in key order.
var CFs = [...]byte{CFDefault, CFLock, CFWrite}

const (
	localPrefix     byte = 0x01
	storeIdentByte  byte = 0x01
	raftPrefixByte  byte = 0x02
	metaPrefixByte  byte = 0x03
	gcSafePointByte byte = 0x04
	pendingIdent    byte = 0x05

	raftLogSuffix     byte = 0x01
	hardStateSuffix   byte = 0x02
	applyStateSuffix  byte = 0x03
	regionStateSuffix byte = 0x01
)

// StoreIdentKey is where the store's identity lives.
var StoreIdentKey = []byte{localPrefix, storeIdentByte}

// StoreIdentPendingKey holds the identity a store is claiming from PD
// (a StoreIdent with the nonce, and the store id asked for, 0 for a new
// store) until the claim succeeded and StoreIdentKey is written.
var StoreIdentPendingKey = []byte{localPrefix, pendingIdent}

// GCSafePointKey holds the highest GC safe point this store's data has been
// collected at (8-byte big-endian), raised in the batch that applies a GC
// command or a snapshot: reads below it are refused.
var GCSafePointKey = []byte{localPrefix, gcSafePointByte}

// LocalMin and LocalMax bound the local keyspace.
var (
	LocalMin = []byte{localPrefix}
	LocalMax = []byte{localPrefix + 1}
)

func regionKey(prefix byte, regionID uint64, suffix byte, extra int) []byte {
	k := make([]byte, 0, 2+8+1+extra)
	k = append(k, localPrefix, prefix)
	k = binary.BigEndian.AppendUint64(k, regionID)
	return append(k, suffix)
}

// RaftLogKey is the key of the log entry at index of the region.
func RaftLogKey(regionID, index uint64) []byte {
	return binary.BigEndian.AppendUint64(regionKey(raftPrefixByte, regionID, raftLogSuffix, 8), index)
}

// RaftLogPrefix is the prefix of all log entries of the region.
func RaftLogPrefix(regionID uint64) []byte {
	return regionKey(raftPrefixByte, regionID, raftLogSuffix, 0)
}

// RaftLogIndex extracts the index from a RaftLogKey.
func RaftLogIndex(key []byte) (uint64, error) {
	if len(key) != 2+8+1+8 || key[0] != localPrefix || key[1] != raftPrefixByte || key[10] != raftLogSuffix {
		return 0, fmt.Errorf("keys: %x is not a raft log key", key)
	}
	return binary.BigEndian.Uint64(key[11:]), nil
}

// HardStateKey is the key of the region's raft hard state.
func HardStateKey(regionID uint64) []byte {
	return regionKey(raftPrefixByte, regionID, hardStateSuffix, 0)
}

// ApplyStateKey is the key of the region's RaftApplyState.
func ApplyStateKey(regionID uint64) []byte {
	return regionKey(raftPrefixByte, regionID, applyStateSuffix, 0)
}

// RaftStatePrefix covers every raft key (log, hard state, apply state) of the region.
func RaftStatePrefix(regionID uint64) []byte {
	k := make([]byte, 0, 10)
	k = append(k, localPrefix, raftPrefixByte)
	return binary.BigEndian.AppendUint64(k, regionID)
}

// RegionStateKey is the key of the region's RegionLocalState.
func RegionStateKey(regionID uint64) []byte {
	return regionKey(metaPrefixByte, regionID, regionStateSuffix, 0)
}

// RegionMetaMin and RegionMetaMax bound every RegionLocalState key.
var (
	RegionMetaMin = []byte{localPrefix, metaPrefixByte}
	RegionMetaMax = []byte{localPrefix, metaPrefixByte + 1}
)

// RegionIDFromStateKey extracts the region id from a RegionStateKey.
func RegionIDFromStateKey(key []byte) (uint64, error) {
	if len(key) != 11 || key[0] != localPrefix || key[1] != metaPrefixByte || key[10] != regionStateSuffix {
		return 0, fmt.Errorf("keys: %x is not a region state key", key)
	}
	return binary.BigEndian.Uint64(key[2:10]), nil
}

// PrefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

const (
	encGroupSize = 8
	encMarker    = byte(0xFF)
	encPad       = byte(0x00)
)

// EncodeBytes appends the memcomparable encoding of key to dst: groups of
// 8 bytes, each followed by a marker 0xFF - (number of pad bytes).
func EncodeBytes(dst, key []byte) []byte {
	groups := len(key)/encGroupSize + 1
	if cap(dst)-len(dst) < groups*(encGroupSize+1) {
		grown := make([]byte, len(dst), len(dst)+groups*(encGroupSize+1))
		copy(grown, dst)
		dst = grown
	}
	for idx := 0; idx <= len(key); idx += encGroupSize {
		remain := len(key) - idx
		pad := 0
		if remain >= encGroupSize {
			dst = append(dst, key[idx:idx+encGroupSize]...)
		} else {
			pad = encGroupSize - remain
			dst = append(dst, key[idx:]...)
			for range pad {
				dst = append(dst, encPad)
			}
		}
		dst = append(dst, encMarker-byte(pad))
	}
	return dst
}

// ErrBadEncoding reports a byte string that EncodeBytes cannot have produced.
var ErrBadEncoding = errors.New("keys: bad memcomparable encoding")

// DecodeBytes decodes one memcomparable-encoded key from the front of b and
// returns it and the rest of b.
func DecodeBytes(b []byte) (key, rest []byte, err error) {
	key = make([]byte, 0, len(b)/(encGroupSize+1)*encGroupSize)
	for {
		if len(b) < encGroupSize+1 {
			return nil, nil, fmt.Errorf("%w: truncated group", ErrBadEncoding)
		}
		group, marker := b[:encGroupSize], b[encGroupSize]
		b = b[encGroupSize+1:]
		pad := int(encMarker - marker)
		if pad > encGroupSize {
			return nil, nil, fmt.Errorf("%w: marker %#x", ErrBadEncoding, marker)
		}
		real := encGroupSize - pad
		key = append(key, group[:real]...)
		if pad != 0 {
			for _, c := range group[real:] {
				if c != encPad {
					return nil, nil, fmt.Errorf("%w: nonzero padding", ErrBadEncoding)
				}
			}
			return key, b, nil
		}
	}
}

// LockKey is the lock column family key of a raw key.
func LockKey(key []byte) []byte {
	return EncodeBytes(append(make([]byte, 0, 1+(len(key)/8+1)*9), CFLock), key)
}

// WriteKey is the write column family key of a version of a raw key
// committed at commitTS.
func WriteKey(key []byte, commitTS uint64) []byte {
	return versionKey(CFWrite, key, commitTS)
}

// DefaultKey is the default column family key of the value a transaction
// started at startTS wrote for a raw key.
func DefaultKey(key []byte, startTS uint64) []byte {
	return versionKey(CFDefault, key, startTS)
}

func versionKey(cf byte, key []byte, ts uint64) []byte {
	k := EncodeBytes(append(make([]byte, 0, 1+(len(key)/8+1)*9+8), cf), key)
	return binary.BigEndian.AppendUint64(k, math.MaxUint64-ts)
}

// VersionPrefix is the prefix shared by every version of key in cf (write or default).
func VersionPrefix(cf byte, key []byte) []byte {
	return EncodeBytes([]byte{cf}, key)
}

// DecodeLockKey returns the raw key of a lock column family key.
func DecodeLockKey(k []byte) ([]byte, error) {
	if len(k) == 0 || k[0] != CFLock {
		return nil, fmt.Errorf("keys: %x is not a lock key", k)
	}
	key, rest, err := DecodeBytes(k[1:])
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in lock key", ErrBadEncoding, len(rest))
	}
	return key, nil
}

// DecodeVersionKey returns the raw key and timestamp of a write or default
// column family key.
func DecodeVersionKey(k []byte) (key []byte, ts uint64, err error) {
	if len(k) == 0 || (k[0] != CFWrite && k[0] != CFDefault) {
		return nil, 0, fmt.Errorf("keys: %x is not a versioned key", k)
	}
	key, rest, err := DecodeBytes(k[1:])
	if err != nil {
		return nil, 0, err
	}
	if len(rest) != 8 {
		return nil, 0, fmt.Errorf("%w: want an 8-byte timestamp after the key, have %d bytes", ErrBadEncoding, len(rest))
	}
	return key, math.MaxUint64 - binary.BigEndian.Uint64(rest), nil
}

// DataRange returns the engine key range [lo, hi) that holds the raw key
// range [start, end) of cf. An empty end is the end of the key space.
func DataRange(cf byte, start, end []byte) (lo, hi []byte) {
	lo = EncodeBytes([]byte{cf}, start)
	if len(end) == 0 {
		return lo, []byte{cf + 1}
	}
	return lo, EncodeBytes([]byte{cf}, end)
}

// InRange reports whether the raw key is in [start, end) (empty end: unbounded).
func InRange(key, start, end []byte) bool {
	return string(key) >= string(start) && (len(end) == 0 || string(key) < string(end))
}
