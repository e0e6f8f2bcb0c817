package hostile_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc64"
	"math/bits"
)

// sealPayload appends a DUMP payload's footer to body: RDB version 10 and
// Redis's CRC-64 (Jones, reflected, no inversion: hash/crc64 with the
// polynomial bit-reversed, its inversions undone).
func sealPayload(body []byte) string {
	p := binary.LittleEndian.AppendUint16(bytes.Clone(body), 10)
	tab := crc64.MakeTable(bits.Reverse64(0xad93d23594c935a9))
	return string(binary.LittleEndian.AppendUint64(p, ^crc64.Update(^uint64(0), tab, p)))
}

// lzfPayload is a DUMP payload of a string of n bytes 'o', LZF-compressed
// about 88 to 1 (one literal, then back references of 264 bytes), whose
// header announces announced bytes (n for a true one).
func lzfPayload(n, announced int) string {
	stream := []byte{0, 'o'}
	for left := n - 1; left > 0; {
		l := min(left, 264)
		switch {
		case l < 3:
			stream = append(stream, byte(l-1))
			stream = append(stream, bytes.Repeat([]byte("o"), l)...)
		case l < 9:
			stream = append(stream, byte((l-2)<<5), 0)
		default:
			stream = append(stream, 7<<5, byte(l-9), 0)
		}
		left -= l
	}
	p := []byte{0, 0xc3, 0x80} // string, LZF, 32-bit compressed length
	p = binary.BigEndian.AppendUint32(p, uint32(len(stream)))
	p = append(p, 0x80)
	p = binary.BigEndian.AppendUint32(p, uint32(announced))
	return sealPayload(append(p, stream...))
}
