package tso

// LogicalBits is the width of the logical part of a timestamp.
const LogicalBits = 18

// MaxCount is the number of logicals in one physical millisecond and hence the
// largest block [Oracle.Get] can return.
const MaxCount = 1 << LogicalBits

// maxPhysical bounds the physical part so that it fits above the logical bits.
const maxPhysical = int64(1)<<(64-LogicalBits) - 1

const logicalMask = MaxCount - 1

// Compose packs a physical time in Unix milliseconds and a logical counter
// (< MaxCount) into a timestamp.
func Compose(physicalMs int64, logical uint32) uint64 {
	return uint64(physicalMs)<<LogicalBits | uint64(logical&logicalMask)
}

// Physical is the Unix-millisecond part of ts.
func Physical(ts uint64) int64 { return int64(ts >> LogicalBits) }

// Logical is the counter part of ts.
func Logical(ts uint64) uint32 { return uint32(ts & logicalMask) }
