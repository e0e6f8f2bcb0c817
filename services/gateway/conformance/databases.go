package conformance

import (
	"strings"
	"testing"
	"time"
)

// Logical databases through a client library that selects one per
// connection (go-redis's Options.DB, as Sidekiq and Celery configure
// theirs): keys, counts, scans and flushes stay in their database; MOVE,
// COPY ... DB and SWAPDB cross them; CLIENT INFO shows the database.
func init() {
	cases = append(cases,
		testCase{"DatabasesAreSeparate", func(t *testing.T, s *suite) {
			c0, c1 := s.client(t), s.dbClient(t, 1)
			noErr(t, c0.Set(bg, "k", "zero", 0).Err())
			noErr(t, c1.Set(bg, "k", "one", 0).Err())
			noErr(t, c1.Set(bg, "only1", "x", time.Hour).Err())
			v, err := c0.Get(bg, "k").Result()
			expect(t, v, err, "zero")
			v, err = c1.Get(bg, "k").Result()
			expect(t, v, err, "one")
			n, err := c0.DBSize(bg).Result()
			expect(t, n, err, 1)
			n, err = c1.DBSize(bg).Result()
			expect(t, n, err, 2)
			keys, err := c1.Keys(bg, "*").Result()
			if err != nil || len(keys) != 2 {
				t.Fatalf("KEYS in db 1 = %v, %v", keys, err)
			}
			scanned, _, err := c0.Scan(bg, 0, "*", 100).Result()
			if err != nil || len(scanned) != 1 || scanned[0] != "k" {
				t.Fatalf("SCAN in db 0 = %v, %v", scanned, err)
			}
			r, err := c1.RandomKey(bg).Result()
			if err != nil || (r != "k" && r != "only1") {
				t.Fatalf("RANDOMKEY in db 1 = %q, %v", r, err)
			}
			info, err := c0.Info(bg, "keyspace").Result()
			if err != nil || !strings.Contains(info, "db0:keys=1,expires=0,avg_ttl=0") || !strings.Contains(info, "db1:keys=2,expires=1,avg_ttl=0") {
				t.Fatalf("INFO keyspace = %q, %v", info, err)
			}
			// FLUSHDB empties its own database only.
			noErr(t, c1.FlushDB(bg).Err())
			n, err = c1.DBSize(bg).Result()
			expect(t, n, err, 0)
			v, err = c0.Get(bg, "k").Result()
			expect(t, v, err, "zero")
			// CLIENT INFO and CLIENT LIST show the database.
			ci, err := c1.Do(bg, "CLIENT", "INFO").Text()
			if err != nil || !strings.Contains(ci, " db=1 ") {
				t.Fatalf("CLIENT INFO in db 1 = %q, %v", ci, err)
			}
			cl, err := c1.ClientList(bg).Result()
			if err != nil || !strings.Contains(cl, " db=1 ") || !strings.Contains(cl, " db=0 ") {
				t.Fatalf("CLIENT LIST = %q, %v", cl, err)
			}
			v, err = c0.ConfigGet(bg, "databases").Val()["databases"], nil
			expect(t, v, err, "16")
		}},
		testCase{"MoveCopySwapDB", func(t *testing.T, s *suite) {
			c0, c2 := s.client(t), s.dbClient(t, 2)
			noErr(t, c0.Set(bg, "m", "v", time.Hour).Err())
			ok, err := c0.Move(bg, "m", 2).Result()
			expect(t, ok, err, true)
			ok, err = c0.Move(bg, "m", 2).Result()
			expect(t, ok, err, false)
			ttl, err := c2.TTL(bg, "m").Result()
			if err != nil || ttl < 59*time.Minute {
				t.Fatalf("TTL after MOVE = %v, %v", ttl, err)
			}
			expectErr(t, c2.Move(bg, "m", 2).Err(), "ERR source and destination objects are the same")
			expectErr(t, c2.Move(bg, "m", 16).Err(), "ERR DB index is out of range")
			n, err := c2.Do(bg, "COPY", "m", "m", "DB", "0").Int()
			expect(t, n, err, 1)
			n, err = c2.Do(bg, "COPY", "m", "m", "DB", "0").Int()
			expect(t, n, err, 0)
			n, err = c2.Do(bg, "COPY", "m", "m", "DB", "0", "REPLACE").Int()
			expect(t, n, err, 1)
			expectErr(t, c2.Do(bg, "COPY", "m", "m").Err(), "ERR source and destination objects are the same")
			ttl, err = c0.TTL(bg, "m").Result()
			if err != nil || ttl < 59*time.Minute {
				t.Fatalf("TTL after COPY = %v, %v", ttl, err)
			}
			noErr(t, c2.Set(bg, "two", "2", 0).Err())
			if s.target.NoSwapDB {
				err := c0.Do(bg, "SWAPDB", 0, 2).Err()
				if err == nil || !strings.Contains(err.Error(), "SWAPDB") {
					t.Fatalf("SWAPDB on a backend without it = %v", err)
				}
				return
			}
			noErr(t, c0.Do(bg, "SWAPDB", 0, 2).Err())
			v, err := c0.Get(bg, "two").Result()
			expect(t, v, err, "2")
			ttl, err = c2.TTL(bg, "m").Result()
			if err != nil || ttl < 59*time.Minute {
				t.Fatalf("TTL after SWAPDB = %v, %v", ttl, err)
			}
			cnt, err := c2.DBSize(bg).Result()
			expect(t, cnt, err, 1)
		}},
	)
}

// noErr fails t on a command's error.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
}
