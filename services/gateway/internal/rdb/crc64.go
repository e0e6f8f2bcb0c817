package rdb

import (
	"hash/crc64"
	"math/bits"
)

// Redis checksums DUMP payloads (and RDB files) with the "Jones" CRC-64:
// polynomial 0xad93d23594c935a9, input and output reflected, initial value
// 0 and no final xor (redis/src/crc64.c). It is neither of Go's predefined
// tables (ISO, ECMA), but hash/crc64 runs any reflected polynomial given in
// its bit-reversed form; its Update complements the register before and
// after, which CRC64 undoes.
var jonesTable = crc64.MakeTable(bits.Reverse64(0xad93d23594c935a9))

// CRC64 is Redis's crc64(crc, p): the checksum of p continuing from crc (0
// to start).
func CRC64(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, jonesTable, p)
}
