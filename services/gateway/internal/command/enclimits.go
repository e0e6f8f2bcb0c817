package command

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
)

// encLimits are Redis 7.0's collection encoding thresholds, which CONFIG
// SET changes while the server runs (per gateway process, as in Redis per
// server). A write reads them as it judges whether a collection leaves its
// compact encoding (keyspace.Meta.Big), so reads are atomic loads: the
// raft gateway runs commands on many goroutines at once.
type encLimits struct {
	hashEntries atomic.Int64 // hash-max-listpack-entries (-ziplist-)
	hashValue   atomic.Int64 // hash-max-listpack-value, bytes
	setIntset   atomic.Int64 // set-max-intset-entries
	zsetEntries atomic.Int64 // zset-max-listpack-entries
	zsetValue   atomic.Int64 // zset-max-listpack-value, bytes
	// listFill is list-max-listpack-size: a quicklist node's limit, in
	// elements (> 0) or as a size class (-1..-5 for 4..64 KiB). Lists
	// are always quicklists in 7.0; it shapes MEMORY USAGE's node layout.
	listFill atomic.Int64
	// listCompress is list-compress-depth, kept for CONFIG GET only:
	// MEMORY USAGE does not model LZF-compressed nodes (README).
	listCompress atomic.Int64
}

// Redis 7.0's built-in defaults (config.c), what a redis-server started
// without a configuration file answers. The hash entries limit is 512
// there; the 128 of the redis.conf shipped with Redis applies only to a
// server started with that file.
const (
	defHashMaxListpackEntries = 512
	defHashMaxListpackValue   = 64
	defSetMaxIntsetEntries    = 512
	defZsetMaxListpackEntries = 128
	defZsetMaxListpackValue   = 64
	defListMaxListpackSize    = -2
	defListCompressDepth      = 0
	// intsetCap: setTypeAdd caps set-max-intset-entries at 2^30 (intset
	// internals); RESTORE of an intset payload does not.
	intsetCap = 1 << 30
)

func (l *encLimits) init() {
	l.hashEntries.Store(defHashMaxListpackEntries)
	l.hashValue.Store(defHashMaxListpackValue)
	l.setIntset.Store(defSetMaxIntsetEntries)
	l.zsetEntries.Store(defZsetMaxListpackEntries)
	l.zsetValue.Store(defZsetMaxListpackValue)
	l.listFill.Store(defListMaxListpackSize)
	l.listCompress.Store(defListCompressDepth)
}

// The thresholds as unsigned sizes, as Redis's size_t comparisons read
// them (every stored value is within [0, 2^63-1]).
func (l *encLimits) hashMaxEntries() uint64 { return uint64(l.hashEntries.Load()) }
func (l *encLimits) hashMaxValue() int64    { return l.hashValue.Load() }
func (l *encLimits) zsetMaxEntries() uint64 { return uint64(l.zsetEntries.Load()) }
func (l *encLimits) zsetMaxValue() int64    { return l.zsetValue.Load() }

// setMaxIntset is set-max-intset-entries as setTypeAdd applies it.
func (l *encLimits) setMaxIntset() uint64 { return uint64(min(l.setIntset.Load(), intsetCap)) }

var errMemoryValue = errors.New("argument must be a memory value")

// parseMemory reads a value as Redis 7.0's memtoull does for a
// MEMORY_CONFIG setting: digits only (no sign, no spaces), then an
// optional unit b, k, kb, m, mb, g or gb (any case); "" and a bare unit
// are 0. Digits past uint64 saturate (strtoull) and the unit's product
// wraps, as in C: the caller's range check then judges the result.
func parseMemory(v string) (uint64, error) {
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	var mul uint64
	switch unit := v[i:]; {
	case unit == "" || equalFold([]byte(unit), "b"):
		mul = 1
	case equalFold([]byte(unit), "k"):
		mul = 1000
	case equalFold([]byte(unit), "kb"):
		mul = 1024
	case equalFold([]byte(unit), "m"):
		mul = 1000 * 1000
	case equalFold([]byte(unit), "mb"):
		mul = 1024 * 1024
	case equalFold([]byte(unit), "g"):
		mul = 1000 * 1000 * 1000
	case equalFold([]byte(unit), "gb"):
		mul = 1024 * 1024 * 1024
	default:
		return 0, errMemoryValue
	}
	// memtoull copies the digits into a 128-byte buffer first.
	if i >= 128 {
		return 0, errMemoryValue
	}
	var n uint64
	for _, d := range v[:i] {
		if n > (math.MaxUint64-uint64(d-'0'))/10 {
			n = math.MaxUint64
			break
		}
		n = n*10 + uint64(d-'0')
	}
	return n * mul, nil
}

// memoryPercentSetting parses a MEMORY_CONFIG|PERCENT_CONFIG ssize_t
// setting (maxmemory-clients) as Redis's numericParseString and
// numericBoundaryCheck do: a memory value first, else "N%" with N a
// non-negative integer, kept negated; lo (-100) bounds the percentages. A
// memory value past 2^63-1 wraps negative, as the C cast does, and is then
// judged as a percentage (2^64 and more saturate to -1: "1%").
func memoryPercentSetting(lo int64, set func(*Executor, int64)) func(*Executor, string) (func(), error) {
	return func(e *Executor, v string) (func(), error) {
		var n int64
		if u, err := parseMemory(v); err == nil {
			n = int64(u)
		} else if p, ok := parseInt([]byte(strings.TrimSuffix(v, "%"))); ok && len(v) > 1 && v[len(v)-1] == '%' && p >= 0 {
			n = -p
		} else {
			return nil, errors.New("argument must be a memory or percent value")
		}
		if n < lo {
			return nil, fmt.Errorf("percentage argument must be less or equal to %d", -lo)
		}
		return func() { set(e, n) }, nil
	}
}

// clientMemoryBytes is the budget a maxmemory-clients value stands for: a
// percentage is of the memory the process may use (Redis takes it of
// maxmemory, which the gateway does not have; unknown memory: no budget).
func clientMemoryBytes(v, memoryLimit int64) int64 {
	if v >= 0 {
		return v
	}
	return memoryLimit / 100 * -v
}

// memorySetting parses a MEMORY_CONFIG size_t setting within [0, hi], as
// Redis's numericParseString and numericBoundaryCheck do.
func memorySetting(hi int64, set func(*Executor, int64)) func(*Executor, string) (func(), error) {
	return func(e *Executor, v string) (func(), error) {
		n, err := parseMemory(v)
		if err != nil {
			return nil, err
		}
		if n > uint64(hi) {
			return nil, errBetween(0, hi)
		}
		return func() { set(e, int64(n)) }, nil
	}
}
