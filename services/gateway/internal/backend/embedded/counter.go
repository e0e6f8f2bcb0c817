package embedded

import (
	"encoding/binary"
	"io"

	"github.com/cockroachdb/pebble"
)

// counterMerger adds little-endian int64 operands. Counters are updated with Merge
// inside each write batch, so they stay exact without a read (and without a hot key
// every writer would contend on).
var counterMerger = &pebble.Merger{
	Name: "nokv.counter.v1",
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &int64Merger{}
		return m, m.add(value)
	},
}

type int64Merger struct{ sum int64 }

func (m *int64Merger) add(v []byte) error {
	if len(v) != 8 {
		return errCorruptCounter
	}
	m.sum += int64(binary.LittleEndian.Uint64(v))
	return nil
}

func (m *int64Merger) MergeNewer(v []byte) error { return m.add(v) }
func (m *int64Merger) MergeOlder(v []byte) error { return m.add(v) }

func (m *int64Merger) Finish(bool) ([]byte, io.Closer, error) {
	return encodeCounter(m.sum), nil, nil
}

func encodeCounter(n int64) []byte {
	return binary.LittleEndian.AppendUint64(make([]byte, 0, 8), uint64(n))
}

func decodeCounter(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, errCorruptCounter
	}
	return int64(binary.LittleEndian.Uint64(v)), nil
}
