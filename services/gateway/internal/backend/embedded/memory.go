package embedded

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Block cache sizing when Options.CacheSize is 0. See DefaultBlockCacheBytes.
const (
	// blockCacheShare is the part of the machine's (or container's) memory
	// the block cache may take by default: a quarter, as CockroachDB
	// recommends for its Pebble cache (TiKV takes 45%, WiredTiger half of
	// RAM less 1 GiB). The rest is for the key cache, the memtables, the Go
	// heap and the OS page cache that holds the compressed sstables.
	blockCacheShare = 4
	// MinDefaultBlockCacheBytes is the floor of the default, and the
	// default when the memory size cannot be read.
	MinDefaultBlockCacheBytes = 64 << 20
)

// DefaultBlockCacheBytes is the block cache an Options.CacheSize of 0
// stands for: a quarter of the memory this process may use (the cgroup's
// memory limit if it has one, else the machine's), at least
// MinDefaultBlockCacheBytes. Pebble allocates the cache as blocks are read,
// so an idle or small store does not use it: it is a ceiling, reached only
// when the data read is that large (about 25 bytes per small key).
func DefaultBlockCacheBytes() int64 {
	mem := memoryLimit()
	if mem <= 0 {
		return MinDefaultBlockCacheBytes
	}
	return max(mem/blockCacheShare, MinDefaultBlockCacheBytes)
}

// MemoryLimit is the memory this process may use: the smaller of the
// machine's and the cgroup's limit, in bytes; 0 if neither can be read.
func MemoryLimit() int64 { return memoryLimit() }

// memoryLimit is the smaller of the machine's memory and the cgroup's
// limit, in bytes; 0 if neither can be read.
func memoryLimit() int64 {
	limit := memTotal()
	for _, f := range []string{
		"/sys/fs/cgroup/memory.max",                   // cgroup v2
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// "max" (v2) or a huge number (v1) mean no limit.
		n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
		if err == nil && n > 0 && (limit <= 0 || n < limit) {
			limit = n
		}
		break
	}
	return limit
}

// memTotal is MemTotal from /proc/meminfo in bytes, 0 if unreadable.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       24684800 kB
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return n << 10
				}
			}
			return 0
		}
	}
	return 0
}
