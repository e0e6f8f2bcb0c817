package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/tests/cluster"
)

// TestRaftBackendLimits: through nokv-redis on a cluster of PD and three
// stores (two regions), everything the raft backend accepts reads back,
// what it cannot store is refused with its size and the limit and nothing
// written, and scans, DBSIZE, INFO and FLUSHALL work over hundreds of
// large values and across a split.
func TestRaftBackendLimits(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	srv := startGateway(t, c)
	rc := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 10 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute,
	})
	t.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	const (
		mib      = 1 << 20
		valueCap = 6 * mib    // the raft backend's value limit
		keyCap   = 64<<10 - 4 // its key limit: 64 KiB less the database prefix
		cmdCap   = 64 * mib   // its limit per command
	)
	wantErr := func(t *testing.T, err error, text string) {
		t.Helper()
		if err == nil || !strings.HasPrefix(err.Error(), "ERR ") || !strings.Contains(err.Error(), text) {
			t.Fatalf("error = %v, want ERR ... %q", err, text)
		}
	}

	t.Run("LargeValues", func(t *testing.T) {
		for _, n := range []int{5 * mib, valueCap} {
			key := fmt.Sprintf("big%d", n)
			v := strings.Repeat(string(rune('a'+n%26)), n)
			if err := rc.Set(ctx, key, v, 0).Err(); err != nil {
				t.Fatalf("SET %d bytes: %v", n, err)
			}
			got, err := rc.Get(ctx, key).Result()
			if err != nil || got != v {
				t.Fatalf("GET %s: %d bytes, %v", key, len(got), err)
			}
		}
		// Over the cap: refused, with its size and the limit; not written.
		err := rc.Set(ctx, "over", strings.Repeat("o", 7*mib), 0).Err()
		wantErr(t, err, fmt.Sprintf("value of %d bytes exceeds the raft backend's limit of %d bytes", 7*mib, valueCap))
		if n := rc.Exists(ctx, "over").Val(); n != 0 {
			t.Fatalf("EXISTS over = %d after a refused SET", n)
		}
		// Growing a value past the cap is refused too, and leaves it.
		key := fmt.Sprintf("big%d", valueCap)
		wantErr(t, rc.Append(ctx, key, "x").Err(), fmt.Sprintf("value of %d bytes exceeds", valueCap+1))
		if n := rc.StrLen(ctx, key).Val(); n != valueCap {
			t.Fatalf("STRLEN after a refused APPEND = %d", n)
		}
		// SETRANGE far out is refused before the value is built: Redis's
		// own limit first, then the backend's.
		wantErr(t, rc.SetRange(ctx, "far", 536870912, "A").Err(), "string exceeds maximum allowed size (proto-max-bulk-len)")
		wantErr(t, rc.SetRange(ctx, "far", 536870911, "A").Err(), "value of 536870912 bytes exceeds the raft backend's limit")
		if n := rc.Exists(ctx, "far").Val(); n != 0 {
			t.Fatalf("EXISTS far = %d after a refused SETRANGE", n)
		}
		// DUMP of the largest value restores; a payload that expands past
		// the cap is refused before it is decompressed, and nothing written.
		payload, err := rc.Dump(ctx, key).Result()
		if err != nil || len(payload) > 1<<20 {
			t.Fatalf("DUMP of %d bytes of one letter: %d bytes (LZF expected), %v", valueCap, len(payload), err)
		}
		if err := rc.Restore(ctx, "restored", 0, payload).Err(); err != nil {
			t.Fatalf("RESTORE of the largest value: %v", err)
		}
		if n := rc.StrLen(ctx, "restored").Val(); n != valueCap {
			t.Fatalf("STRLEN after RESTORE = %d", n)
		}
		wantErr(t, rc.Restore(ctx, "over", 0, lzfPayloadOfOneByte(7*mib)).Err(),
			fmt.Sprintf("value of %d bytes exceeds the raft backend's limit of %d bytes", 7*mib, valueCap))
		if n := rc.Exists(ctx, "over").Val(); n != 0 {
			t.Fatalf("EXISTS over = %d after a refused RESTORE", n)
		}
		// SCAN with TYPE reads values: pages hold them, however large.
		var seen []string
		iter := rc.ScanType(ctx, 0, "big*", 10, "string").Iterator()
		for iter.Next(ctx) {
			seen = append(seen, iter.Val())
		}
		if err := iter.Err(); err != nil || len(seen) != 2 {
			t.Fatalf("SCAN TYPE string = %v, %v", seen, err)
		}
	})

	t.Run("LongKeys", func(t *testing.T) {
		long := strings.Repeat("k", keyCap+1)
		wantErr(t, rc.Set(ctx, long, "v", 0).Err(), fmt.Sprintf("key of %d bytes exceeds the raft backend's limit of %d bytes", keyCap+1, keyCap))
		if v, err := rc.Get(ctx, long).Result(); err != redis.Nil {
			t.Fatalf("GET of a key too long to exist = %q, %v", v, err)
		}
		if n := rc.Del(ctx, long).Val(); n != 0 {
			t.Fatalf("DEL = %d", n)
		}
		longest := strings.Repeat("k", keyCap)
		if err := rc.Set(ctx, longest, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v := rc.Get(ctx, longest).Val(); v != "v" {
			t.Fatalf("GET of the longest key = %q", v)
		}
	})

	t.Run("MSETOfManyLargeValues", func(t *testing.T) {
		// 12 MiB in one command: more than one raft entry (8 MiB) holds,
		// within the command limit; keys in both regions.
		var kv []any
		var keys []string
		for i := range 12 {
			k := fmt.Sprintf("%c:mset:%02d", "bx"[i%2], i)
			keys = append(keys, k)
			kv = append(kv, k, strings.Repeat(string(rune('a'+i)), mib))
		}
		if err := rc.MSet(ctx, kv...).Err(); err != nil {
			t.Fatal(err)
		}
		vals, err := rc.MGet(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if s, _ := v.(string); s != kv[2*i+1] {
				t.Fatalf("MGET %s: %d bytes", keys[i], len(s))
			}
		}
		// Over the command limit: refused, nothing written.
		big := strings.Repeat("v", valueCap)
		kv = kv[:0]
		for i := range cmdCap/valueCap + 1 {
			kv = append(kv, fmt.Sprintf("huge:%02d", i), big)
		}
		wantErr(t, rc.MSet(ctx, kv...).Err(), fmt.Sprintf("over the raft backend's limit of %d bytes", cmdCap))
		if n := rc.Exists(ctx, "huge:00", "huge:10").Val(); n != 0 {
			t.Fatalf("EXISTS after a refused MSET = %d", n)
		}
	})

	t.Run("EmptyKey", func(t *testing.T) {
		if err := rc.Set(ctx, "", "empty", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rc.Get(ctx, "").Result(); err != nil || v != "empty" {
			t.Fatalf("GET \"\" = %q, %v", v, err)
		}
		if n := rc.Exists(ctx, "").Val(); n != 1 {
			t.Fatalf("EXISTS \"\" = %d", n)
		}
		keys, err := rc.Keys(ctx, "*").Result()
		if err != nil || keys[0] != "" {
			t.Fatalf("KEYS * = %q, %v", keys, err)
		}
		var scanned []string
		iter := rc.Scan(ctx, 0, "", 3).Iterator()
		for iter.Next(ctx) {
			scanned = append(scanned, iter.Val())
		}
		if err := iter.Err(); err != nil || len(scanned) != len(keys) || scanned[0] != "" {
			t.Fatalf("SCAN = %q, %v (KEYS: %d)", scanned, err, len(keys))
		}
		if n := rc.Del(ctx, "").Val(); n != 1 {
			t.Fatalf("DEL \"\" = %d", n)
		}
		if err := rc.Get(ctx, "").Err(); err != redis.Nil {
			t.Fatalf("GET \"\" after DEL: %v", err)
		}
	})

	t.Run("ScansOfManyLargeValues", func(t *testing.T) {
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// 300 values of 100 KiB (30 MiB) in both regions, 20 with a TTL.
		const n, withTTL = 300, 20
		v := strings.Repeat("v", 100<<10)
		for i := range withTTL {
			if err := rc.Set(ctx, fmt.Sprintf("%c:%03d", "an"[i%2], i), v, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for i := withTTL; i < n; i += 20 {
			var kv []any
			for j := i; j < min(i+20, n); j++ {
				kv = append(kv, fmt.Sprintf("%c:%03d", "an"[j%2], j), v)
			}
			if err := rc.MSet(ctx, kv...).Err(); err != nil {
				t.Fatal(err)
			}
		}
		if keys, err := rc.Keys(ctx, "*").Result(); err != nil || len(keys) != n {
			t.Fatalf("KEYS * = %d keys, %v", len(keys), err)
		}
		if size, err := rc.DBSize(ctx).Result(); err != nil || size != n {
			t.Fatalf("DBSIZE = %d, %v", size, err)
		}
		for _, typ := range []string{"", "string"} {
			seen := map[string]bool{}
			iter := rc.ScanType(ctx, 0, "", 50, typ).Iterator()
			for iter.Next(ctx) {
				seen[iter.Val()] = true
			}
			if err := iter.Err(); err != nil || len(seen) != n {
				t.Fatalf("SCAN COUNT 50 TYPE %q: %d keys, %v", typ, len(seen), err)
			}
		}
		info, err := rc.Info(ctx, "keyspace").Result()
		if err != nil || !strings.Contains(info, fmt.Sprintf("keys=%d,expires=%d", n, withTTL)) {
			t.Fatalf("INFO keyspace = %q, %v", info, err)
		}
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if size := rc.DBSize(ctx).Val(); size != 0 {
			t.Fatalf("DBSIZE after FLUSHALL = %d", size)
		}
		if err := rc.Get(ctx, "a:000").Err(); err != redis.Nil {
			t.Fatalf("GET after FLUSHALL: %v", err)
		}
	})

	t.Run("FlushAllAfterSplit", func(t *testing.T) {
		keys := []string{"", "a", "c", "g", "k", "m", "q", "z"}
		for _, k := range keys {
			if err := rc.Set(ctx, k, strings.Repeat("x", 1000), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		// Split the first region; the gateway's route cache still has the
		// old one, so FLUSHALL meets a stale epoch and regroups.
		parent := c.RegionFor([]byte("a"))
		cluster.Eventually(t, 30*time.Second, func() error {
			leader := c.WaitLeader(parent.GetId())
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			resp, err := c.Client(leader.GetStoreId()).SplitRegion(sctx, &raftserverpb.SplitRegionRequest{RegionId: parent.GetId(), SplitKey: []byte("f")})
			if err != nil {
				return err
			}
			if re := resp.GetRegionError(); re != nil {
				return fmt.Errorf("split: %v", re)
			}
			return nil
		})
		if err := rc.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if size := rc.DBSize(ctx).Val(); size != 0 {
			t.Fatalf("DBSIZE after FLUSHALL = %d", size)
		}
		if n := rc.Exists(ctx, keys...).Val(); n != 0 {
			t.Fatalf("EXISTS after FLUSHALL = %d", n)
		}
		// Writes go on as usual.
		if err := rc.Set(ctx, "g", "again", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v := rc.Get(ctx, "g").Val(); v != "again" {
			t.Fatalf("GET g = %q", v)
		}
	})
}

// lzfPayloadOfOneByte builds a DUMP payload (RDB string, LZF-compressed) of
// n bytes 'o': one literal, then back references of 264 bytes at offset 1.
func lzfPayloadOfOneByte(n int) string {
	stream := []byte{0, 'o'} // literal run of one
	for left := n - 1; left > 0; {
		l := min(left, 264)
		if l < 3 { // a reference copies 3 bytes at least: end with literals
			stream = append(stream, byte(l-1))
			stream = append(stream, bytes.Repeat([]byte("o"), l)...)
			break
		}
		if l < 9 {
			stream = append(stream, byte((l-2)<<5), 0)
		} else {
			stream = append(stream, 7<<5, byte(l-9), 0)
		}
		left -= l
	}
	p := []byte{0, 0xc3} // string, LZF
	for _, v := range []int{len(stream), n} {
		p = append(p, 0x80) // 32-bit length
		p = binary.BigEndian.AppendUint32(p, uint32(v))
	}
	p = append(p, stream...)
	p = binary.LittleEndian.AppendUint16(p, 10) // RDB version
	// Redis's CRC-64 (Jones, reflected, no inversion): hash/crc64 with the
	// polynomial bit-reversed, its inversions undone.
	tab := crc64.MakeTable(bits.Reverse64(0xad93d23594c935a9))
	return string(binary.LittleEndian.AppendUint64(p, ^crc64.Update(^uint64(0), tab, p)))
}
