// Package conformance is the Redis-compatibility suite of nokv-redis. It drives a
// server over a real socket with github.com/redis/go-redis/v9 (RESP2 and RESP3) and
// raw RESP where exact bytes matter, and knows nothing of the backend behind it:
// the same Run works against the embedded backend today and the raft backend later.
package conformance
