package conformance

import (
	"fmt"
	"strings"
	"testing"
)

// Hashes and sets through go-redis: a big hash's and set's HSCAN/SSCAN
// cursors (pages, which the comparison with redis-server cannot pin: a
// hashtable's cursors are the server's own) return every element exactly
// once, in both protocols; HGETALL maps and SMEMBERS sets decode.
func init() {
	cases = append(cases,
		testCase{"HashAndSetScanCursors", func(t *testing.T, s *suite) {
			c := s.client(t)
			n := 1000
			if s.target.ScanElems > 0 {
				n = s.target.ScanElems
			}
			// f0's value is over hash-max-listpack-value (64 bytes), so
			// the hash is a hashtable whatever n (a hash converts at 513
			// fields otherwise); the members are not integers, so the set
			// is one too.
			long := "0" + strings.Repeat("x", 64)
			valueOf := func(f string) string {
				if f == "f0" {
					return long
				}
				return f[1:]
			}
			fields := map[string]any{}
			var members []any
			for i := range n {
				f := fmt.Sprint("f", i)
				fields[f] = valueOf(f)
				members = append(members, fmt.Sprint("m", i))
			}
			noErr(t, c.HSet(bg, "h", fields).Err())
			noErr(t, c.SAdd(bg, "s", members...).Err())
			enc, err := c.ObjectEncoding(bg, "h").Result()
			expect(t, enc, err, "hashtable")
			enc, err = c.ObjectEncoding(bg, "s").Result()
			expect(t, enc, err, "hashtable")
			for _, count := range []int64{1, 7, 100, 5000} {
				seen := map[string]int{}
				var cursor uint64
				calls := 0
				for {
					kv, next, err := c.HScan(bg, "h", cursor, "f*", count).Result()
					noErr(t, err)
					for i := 0; i+1 < len(kv); i += 2 {
						seen[kv[i]]++
						if kv[i+1] != valueOf(kv[i]) {
							t.Fatalf("HSCAN: %s = %q", kv[i], kv[i+1])
						}
					}
					calls++
					if cursor = next; cursor == 0 {
						break
					}
				}
				if len(seen) != n {
					t.Fatalf("HSCAN COUNT %d saw %d of %d fields", count, len(seen), n)
				}
				for f, k := range seen {
					if k != 1 {
						t.Fatalf("HSCAN COUNT %d returned %s %d times", count, f, k)
					}
				}
				if count < int64(n) && calls < 2 {
					t.Fatalf("HSCAN COUNT %d of a hashtable took one call", count)
				}
				got := map[string]int{}
				cursor = 0
				for {
					ms, next, err := c.SScan(bg, "s", cursor, "", count).Result()
					noErr(t, err)
					for _, m := range ms {
						got[m]++
					}
					if cursor = next; cursor == 0 {
						break
					}
				}
				if len(got) != n {
					t.Fatalf("SSCAN COUNT %d saw %d of %d members", count, len(got), n)
				}
			}
			all, err := c.HGetAll(bg, "h").Result()
			if last := fmt.Sprint("f", n-1); err != nil || len(all) != n || all[last] != last[1:] || all["f0"] != long {
				t.Fatalf("HGETALL: %d fields, %v", len(all), err)
			}
			ms, err := c.SMembers(bg, "s").Result()
			if err != nil || len(ms) != n {
				t.Fatalf("SMEMBERS: %d members, %v", len(ms), err)
			}
			card, err := c.SInterCard(bg, 0, "s", "s").Result()
			expect(t, card, err, int64(n))
		}},
	)
}
