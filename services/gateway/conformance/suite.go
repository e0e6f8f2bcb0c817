package conformance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Target is a server under test. Flush must leave it empty between cases.
type Target struct {
	Addr string
	// RequirePass is the server's password, if it has one ("" otherwise).
	RequirePass string
	// IncrClients and IncrEach size the concurrent-INCR atomicity case
	// (default 50 clients x 1000 INCRs of one key). A cluster backend, where
	// every INCR of a hot key is an optimistic transaction that conflicts
	// with the others, runs it smaller to keep test time sane; the property
	// checked is the same.
	IncrClients, IncrEach int
	// ScanElems sizes the hash and set that HashAndSetScanCursors pages
	// through with COUNT 1, 7, 100 and 5000 (default 1000). A cluster
	// backend, where each page is a cluster read, runs it smaller (both
	// are built as hashtables whatever their size, whose cursors page).
	ScanElems int
	// Timeout bounds a go-redis client's reads and writes (default 10s). It
	// covers a whole pipeline's replies, so a backend that runs each command
	// as a cluster transaction needs more on a loaded machine.
	Timeout time.Duration
	// NoSwapDB says the backend refuses SWAPDB (the raft backend), with
	// an error naming it.
	NoSwapDB bool
	// WakeBound bounds how long a push may take to reach a client blocked
	// on its key (Blocking; default 500ms). On the raft backend the wake-up
	// includes the waiter's pop, a cluster transaction, which the race
	// detector and a loaded machine have stretched past a second.
	WakeBound time.Duration
}

// Run runs the whole suite against target.
func Run(t *testing.T, target Target) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("RESP%d", proto), func(t *testing.T) {
			s := &suite{target: target, proto: proto}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s.flush(t)
					c.fn(t, s)
				})
			}
		})
	}
	t.Run("Raw", func(t *testing.T) {
		s := &suite{target: target, proto: 2}
		for _, c := range rawCases {
			t.Run(c.name, func(t *testing.T) {
				s.flush(t)
				c.fn(t, s)
			})
		}
	})
}

type suite struct {
	target Target
	proto  int
}

type testCase struct {
	name string
	fn   func(*testing.T, *suite)
}

// client returns a go-redis client speaking the suite's protocol.
func (s *suite) client(t *testing.T) *redis.Client {
	t.Helper()
	return s.dbClient(t, 0)
}

// dbClient is client with database db selected on every connection.
func (s *suite) dbClient(t *testing.T, db int) *redis.Client {
	t.Helper()
	timeout := s.target.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	c := redis.NewClient(&redis.Options{
		Addr:          s.target.Addr,
		Password:      s.target.RequirePass,
		DB:            db,
		Protocol:      s.proto,
		UnstableResp3: true,
		PoolSize:      64,
		ReadTimeout:   timeout,
		WriteTimeout:  timeout,
		// A retried pipeline or write would run twice: the suite wants the
		// first failure, not a duplicate.
		MaxRetries: -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// raw returns an authenticated raw connection.
func (s *suite) raw(t *testing.T) *RawConn {
	t.Helper()
	r := DialRaw(t, s.target.Addr)
	if s.target.RequirePass != "" {
		if got := r.Do("AUTH", s.target.RequirePass); got != "+OK\r\n" {
			t.Fatalf("AUTH: %q", got)
		}
	}
	return r
}

func (s *suite) flush(t *testing.T) {
	t.Helper()
	r := s.raw(t)
	if got := r.Do("FLUSHALL"); got != "+OK\r\n" {
		t.Fatalf("FLUSHALL: %q", got)
	}
}

var bg = context.Background()

// expect compares a go-redis command's value and error with the wanted ones.
func expect[T comparable](t *testing.T, got T, err error, want T) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v (want %v)", err, want)
	}
	if got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// expectTTL checks a TTL that was set (or kept) at want a few steps
// before: a loaded machine, where the raft backend's steps take a second
// or more, reads it back up to 10 s lower; -1 (no TTL) or another order of
// magnitude still fails.
func expectTTL(t *testing.T, got time.Duration, err error, want time.Duration) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v (want TTL %v)", err, want)
	}
	if got > want || got <= want-10*time.Second {
		t.Fatalf("got TTL %v, want %v (10 s less at most)", got, want)
	}
}

func expectErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("error %q, want %q", err.Error(), want)
	}
}

func expectNil(t *testing.T, err error) {
	t.Helper()
	if err != redis.Nil {
		t.Fatalf("got %v, want redis.Nil", err)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var cases = []testCase{
	{"GetSet", func(t *testing.T, s *suite) {
		c := s.client(t)
		_, err := c.Get(bg, "missing").Result()
		expectNil(t, err)
		v, err := c.Set(bg, "k", "v", 0).Result()
		expect(t, v, err, "OK")
		g, err := c.Get(bg, "k").Result()
		expect(t, g, err, "v")
		v, err = c.Set(bg, "k", "", 0).Result()
		expect(t, v, err, "OK")
		g, err = c.Get(bg, "k").Result()
		expect(t, g, err, "")
	}},
	{"SetOptions", func(t *testing.T, s *suite) {
		c := s.client(t)
		ok, err := c.SetNX(bg, "k", "1", 0).Result()
		expect(t, ok, err, true)
		ok, err = c.SetNX(bg, "k", "2", 0).Result()
		expect(t, ok, err, false)
		ok, err = c.SetXX(bg, "nokey", "1", 0).Result()
		expect(t, ok, err, false)
		ok, err = c.SetXX(bg, "k", "3", 0).Result()
		expect(t, ok, err, true)
		g, err := c.Get(bg, "k").Result()
		expect(t, g, err, "3")
		// SET ... GET returns the old value.
		old, err := c.SetArgs(bg, "k", "4", redis.SetArgs{Get: true}).Result()
		expect(t, old, err, "3")
		_, err = c.SetArgs(bg, "fresh", "x", redis.SetArgs{Get: true}).Result()
		expectNil(t, err)
		// NX + GET: not written, old value returned.
		old, err = c.SetArgs(bg, "k", "5", redis.SetArgs{Mode: "NX", Get: true}).Result()
		expect(t, old, err, "4")
		g, err = c.Get(bg, "k").Result()
		expect(t, g, err, "4")
		// EX / PX / EXAT / PXAT / KEEPTTL.
		v, err := c.Do(bg, "SET", "e", "v", "EX", "100").Text()
		expect(t, v, err, "OK")
		ttl, err := c.TTL(bg, "e").Result()
		expectTTL(t, ttl, err, 100*time.Second)
		v, err = c.Do(bg, "SET", "p", "v", "PX", "100000").Text()
		expect(t, v, err, "OK")
		pttl, err := c.PTTL(bg, "p").Result()
		if err != nil || pttl <= 99*time.Second || pttl > 100*time.Second {
			t.Fatalf("PTTL after PX 100000: %v %v", pttl, err)
		}
		at := time.Now().Add(time.Hour).UnixMilli()
		v, err = c.Do(bg, "SET", "pa", "v", "PXAT", strconv.FormatInt(at, 10)).Text()
		expect(t, v, err, "OK")
		et, err := c.Do(bg, "PEXPIRETIME", "pa").Int64()
		expect(t, et, err, at)
		v, err = c.Do(bg, "SET", "ea", "v", "EXAT", strconv.FormatInt(at/1000, 10)).Text()
		expect(t, v, err, "OK")
		et, err = c.Do(bg, "EXPIRETIME", "ea").Int64()
		expect(t, et, err, at/1000)
		v, err = c.Do(bg, "SET", "pa", "w", "KEEPTTL").Text()
		expect(t, v, err, "OK")
		et, err = c.Do(bg, "PEXPIRETIME", "pa").Int64()
		expect(t, et, err, at)
		// A plain SET clears the TTL.
		v, err = c.Do(bg, "SET", "pa", "w").Text()
		expect(t, v, err, "OK")
		n, err := c.Do(bg, "TTL", "pa").Int64()
		expect(t, n, err, -1)
		// Options are case-insensitive.
		v, err = c.Do(bg, "set", "ci", "v", "nx", "px", "5000").Text()
		expect(t, v, err, "OK")
	}},
	{"SetErrors", func(t *testing.T, s *suite) {
		c := s.client(t)
		for _, args := range [][]any{
			{"SET", "k", "v", "NX", "XX"},
			{"SET", "k", "v", "EX", "10", "PX", "10"},
			{"SET", "k", "v", "EX", "10", "KEEPTTL"},
			{"SET", "k", "v", "KEEPTTL", "EX", "10"},
			{"SET", "k", "v", "EX"},
			{"SET", "k", "v", "BOGUS"},
		} {
			expectErr(t, c.Do(bg, args...).Err(), "ERR syntax error")
		}
		expectErr(t, c.Do(bg, "SET", "k", "v", "EX", "0").Err(), "ERR invalid expire time in 'set' command")
		expectErr(t, c.Do(bg, "SET", "k", "v", "PX", "-5").Err(), "ERR invalid expire time in 'set' command")
		expectErr(t, c.Do(bg, "SET", "k", "v", "EX", "abc").Err(), "ERR value is not an integer or out of range")
		expectErr(t, c.Do(bg, "SET", "k", "v", "EX", "9223372036854775807").Err(), "ERR invalid expire time in 'set' command")
		expectErr(t, c.Do(bg, "SET", "k").Err(), "ERR wrong number of arguments for 'set' command")
		expectErr(t, c.Do(bg, "SETEX", "k", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
		expectErr(t, c.Do(bg, "PSETEX", "k", "-1", "v").Err(), "ERR invalid expire time in 'psetex' command")
		n, err := c.Exists(bg, "k").Result()
		expect(t, n, err, 0)
	}},
	{"SetExSetNxPSetEx", func(t *testing.T, s *suite) {
		c := s.client(t)
		v, err := c.Do(bg, "SETEX", "k", "50", "v").Text()
		expect(t, v, err, "OK")
		ttl, err := c.TTL(bg, "k").Result()
		expectTTL(t, ttl, err, 50*time.Second)
		v, err = c.Do(bg, "PSETEX", "p", "50000", "v").Text()
		expect(t, v, err, "OK")
		g, err := c.Get(bg, "p").Result()
		expect(t, g, err, "v")
		n, err := c.Do(bg, "SETNX", "k", "x").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "SETNX", "new", "x").Int64()
		expect(t, n, err, 1)
	}},
	{"GetSetGetDelGetEx", func(t *testing.T, s *suite) {
		c := s.client(t)
		_, err := c.GetSet(bg, "k", "1").Result()
		expectNil(t, err)
		c.Expire(bg, "k", time.Hour)
		old, err := c.GetSet(bg, "k", "2").Result()
		expect(t, old, err, "1")
		n, err := c.Do(bg, "TTL", "k").Int64()
		expect(t, n, err, -1) // GETSET drops the TTL
		g, err := c.GetDel(bg, "k").Result()
		expect(t, g, err, "2")
		_, err = c.GetDel(bg, "k").Result()
		expectNil(t, err)

		c.Set(bg, "x", "v", 0)
		g, err = c.Do(bg, "GETEX", "x", "EX", "100").Text()
		expect(t, g, err, "v")
		n, err = c.Do(bg, "TTL", "x").Int64()
		expect(t, n, err, 100)
		g, err = c.Do(bg, "GETEX", "x", "PERSIST").Text()
		expect(t, g, err, "v")
		n, err = c.Do(bg, "TTL", "x").Int64()
		expect(t, n, err, -1)
		g, err = c.Do(bg, "GETEX", "x", "PX", "100000").Text()
		expect(t, g, err, "v")
		at := time.Now().Add(time.Hour).UnixMilli()
		g, err = c.Do(bg, "GETEX", "x", "PXAT", strconv.FormatInt(at, 10)).Text()
		expect(t, g, err, "v")
		n, err = c.Do(bg, "PEXPIRETIME", "x").Int64()
		expect(t, n, err, at)
		g, err = c.Do(bg, "GETEX", "x", "EXAT", strconv.FormatInt(at/1000, 10)).Text()
		expect(t, g, err, "v")
		g, err = c.Do(bg, "GETEX", "x").Text()
		expect(t, g, err, "v")
		_, err = c.Do(bg, "GETEX", "nokey", "EX", "10").Text()
		expectNil(t, err)
		expectErr(t, c.Do(bg, "GETEX", "x", "EX", "10", "PERSIST").Err(), "ERR syntax error")
		expectErr(t, c.Do(bg, "GETEX", "x", "EX").Err(), "ERR syntax error")
		expectErr(t, c.Do(bg, "GETEX", "x", "EX", "0").Err(), "ERR invalid expire time in 'getex' command")
		// A deadline in the past deletes the key but still returns the value.
		g, err = c.Do(bg, "GETEX", "x", "PXAT", "1").Text()
		expect(t, g, err, "v")
		e, err := c.Exists(bg, "x").Result()
		expect(t, e, err, 0)
	}},
	{"AppendStrlenRange", func(t *testing.T, s *suite) {
		c := s.client(t)
		n, err := c.Append(bg, "k", "Hello").Result()
		expect(t, n, err, 5)
		n, err = c.Append(bg, "k", " World").Result()
		expect(t, n, err, 11)
		n, err = c.StrLen(bg, "k").Result()
		expect(t, n, err, 11)
		n, err = c.StrLen(bg, "missing").Result()
		expect(t, n, err, 0)
		for _, tc := range []struct {
			start, end int64
			want       string
		}{
			{0, 4, "Hello"}, {-5, -1, "World"}, {0, -1, "Hello World"}, {5, 3, ""},
			{-100, 100, "Hello World"}, {20, 30, ""}, {-1, -5, ""}, {10, 10, "d"},
		} {
			g, err := c.GetRange(bg, "k", tc.start, tc.end).Result()
			expect(t, g, err, tc.want)
		}
		g, err := c.GetRange(bg, "missing", 0, -1).Result()
		expect(t, g, err, "")
		expectErr(t, c.Do(bg, "GETRANGE", "k", "a", "1").Err(), "ERR value is not an integer or out of range")

		n, err = c.SetRange(bg, "k", 6, "Redis").Result()
		expect(t, n, err, 11)
		g, err = c.Get(bg, "k").Result()
		expect(t, g, err, "Hello Redis")
		n, err = c.SetRange(bg, "pad", 5, "x").Result()
		expect(t, n, err, 6)
		g, err = c.Get(bg, "pad").Result()
		expect(t, g, err, "\x00\x00\x00\x00\x00x")
		n, err = c.SetRange(bg, "empty", 3, "").Result()
		expect(t, n, err, 0)
		e, err := c.Exists(bg, "empty").Result()
		expect(t, e, err, 0)
		expectErr(t, c.SetRange(bg, "k", -1, "x").Err(), "ERR offset is out of range")
		expectErr(t, c.Do(bg, "SETRANGE", "k", "536870912", "x").Err(), "ERR string exceeds maximum allowed size (proto-max-bulk-len)")
		// APPEND and SETRANGE keep the TTL.
		c.Expire(bg, "k", time.Hour)
		c.Append(bg, "k", "!")
		c.SetRange(bg, "k", 0, "h")
		ttl, err := c.TTL(bg, "k").Result()
		expectTTL(t, ttl, err, time.Hour)
	}},
	{"MGetMSet", func(t *testing.T, s *suite) {
		c := s.client(t)
		v, err := c.MSet(bg, "a", "1", "b", "2", "c", "3").Result()
		expect(t, v, err, "OK")
		vals, err := c.MGet(bg, "a", "missing", "c").Result()
		if err != nil || len(vals) != 3 || vals[0] != "1" || vals[1] != nil || vals[2] != "3" {
			t.Fatalf("MGET = %#v, %v", vals, err)
		}
		expectErr(t, c.Do(bg, "MSET", "a", "1", "b").Err(), "ERR wrong number of arguments for 'mset' command")
		ok, err := c.MSetNX(bg, "a", "x", "d", "4").Result()
		expect(t, ok, err, false)
		e, err := c.Exists(bg, "d").Result()
		expect(t, e, err, 0)
		ok, err = c.MSetNX(bg, "d", "4", "e", "5").Result()
		expect(t, ok, err, true)
		vals, err = c.MGet(bg, "d", "e").Result()
		if err != nil || vals[0] != "4" || vals[1] != "5" {
			t.Fatalf("MGET after MSETNX = %#v, %v", vals, err)
		}
		expectErr(t, c.Do(bg, "MSETNX", "a").Err(), "ERR wrong number of arguments for 'msetnx' command")
	}},
	{"IncrDecr", func(t *testing.T, s *suite) {
		c := s.client(t)
		n, err := c.Incr(bg, "n").Result()
		expect(t, n, err, 1)
		n, err = c.IncrBy(bg, "n", 10).Result()
		expect(t, n, err, 11)
		n, err = c.Decr(bg, "n").Result()
		expect(t, n, err, 10)
		n, err = c.DecrBy(bg, "n", 20).Result()
		expect(t, n, err, -10)
		c.Set(bg, "s", "abc", 0)
		expectErr(t, c.Incr(bg, "s").Err(), "ERR value is not an integer or out of range")
		for _, bad := range []string{" 1", "1 ", "+1", "01", "-0", "1.5", "", "99999999999999999999"} {
			c.Set(bg, "b", bad, 0)
			expectErr(t, c.Incr(bg, "b").Err(), "ERR value is not an integer or out of range")
		}
		expectErr(t, c.Do(bg, "INCRBY", "n", "x").Err(), "ERR value is not an integer or out of range")
		c.Set(bg, "max", strconv.FormatInt(1<<63-1, 10), 0)
		expectErr(t, c.Incr(bg, "max").Err(), "ERR increment or decrement would overflow")
		c.Set(bg, "min", strconv.FormatInt(-1<<63, 10), 0)
		expectErr(t, c.Decr(bg, "min").Err(), "ERR increment or decrement would overflow")
		expectErr(t, c.Do(bg, "DECRBY", "n", "-9223372036854775808").Err(), "ERR decrement would overflow")
		// INCR keeps the TTL.
		c.Set(bg, "t", "5", time.Hour)
		c.Incr(bg, "t")
		ttl, err := c.TTL(bg, "t").Result()
		expectTTL(t, ttl, err, time.Hour)
	}},
	{"IncrByFloat", func(t *testing.T, s *suite) {
		c := s.client(t)
		c.Set(bg, "f", "10.50", 0)
		v, err := c.Do(bg, "INCRBYFLOAT", "f", "0.1").Text()
		expect(t, v, err, "10.6")
		v, err = c.Do(bg, "INCRBYFLOAT", "f", "-5").Text()
		expect(t, v, err, "5.6")
		c.Set(bg, "g", "5.0e3", 0)
		v, err = c.Do(bg, "INCRBYFLOAT", "g", "2.0e2").Text()
		expect(t, v, err, "5200")
		v, err = c.Do(bg, "INCRBYFLOAT", "new", "3").Text()
		expect(t, v, err, "3")
		expectErr(t, c.Do(bg, "INCRBYFLOAT", "f", "abc").Err(), "ERR value is not a valid float")
		c.Set(bg, "s", "abc", 0)
		expectErr(t, c.Do(bg, "INCRBYFLOAT", "s", "1").Err(), "ERR value is not a valid float")
		// Redis computes in long double: 1e308+1e308 is fine, past ~1.19e4932 is not.
		c.Set(bg, "big", "1e308", 0)
		v, err = c.Do(bg, "INCRBYFLOAT", "big", "1e308").Text()
		if err != nil || !strings.HasPrefix(v, "1999999999999999999") || len(v) != 309 {
			t.Fatalf("INCRBYFLOAT 1e308+1e308 = %q, %v", v, err)
		}
		c.Set(bg, "huge", "1.1e4932", 0)
		expectErr(t, c.Do(bg, "INCRBYFLOAT", "huge", "1e4932").Err(), "ERR increment would produce NaN or Infinity")
		expectErr(t, c.Do(bg, "INCRBYFLOAT", "huge", "inf").Err(), "ERR increment would produce NaN or Infinity")
	}},
	{"ConcurrentIncrIsAtomic", func(t *testing.T, s *suite) {
		c := s.client(t)
		clients, each := 50, 1000
		if s.target.IncrClients > 0 {
			clients, each = s.target.IncrClients, s.target.IncrEach
		}
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < each; j++ {
					if err := c.Incr(bg, "counter").Err(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		n, err := c.Get(bg, "counter").Int64()
		expect(t, n, err, int64(clients*each))
	}},
	{"DelExistsTouchUnlink", func(t *testing.T, s *suite) {
		c := s.client(t)
		c.MSet(bg, "a", "1", "b", "2", "c", "3")
		n, err := c.Exists(bg, "a", "a", "b", "missing").Result()
		expect(t, n, err, 3)
		n, err = c.Touch(bg, "a", "missing").Result()
		expect(t, n, err, 1)
		n, err = c.Del(bg, "a", "a", "missing").Result()
		expect(t, n, err, 1)
		n, err = c.Unlink(bg, "b", "c").Result()
		expect(t, n, err, 2)
		n, err = c.DBSize(bg).Result()
		expect(t, n, err, 0)
	}},
	{"Type", func(t *testing.T, s *suite) {
		c := s.client(t)
		c.Set(bg, "s", "v", 0)
		v, err := c.Type(bg, "s").Result()
		expect(t, v, err, "string")
		v, err = c.Type(bg, "missing").Result()
		expect(t, v, err, "none")
	}},
	{"ExpireFamily", func(t *testing.T, s *suite) {
		c := s.client(t)
		ok, err := c.Expire(bg, "missing", time.Minute).Result()
		expect(t, ok, err, false)
		c.Set(bg, "k", "v", 0)
		n, err := c.Do(bg, "TTL", "k").Int64()
		expect(t, n, err, -1)
		n, err = c.Do(bg, "TTL", "missing").Int64()
		expect(t, n, err, -2)
		n, err = c.Do(bg, "PTTL", "missing").Int64()
		expect(t, n, err, -2)
		n, err = c.Do(bg, "EXPIRETIME", "k").Int64()
		expect(t, n, err, -1)
		n, err = c.Do(bg, "PEXPIRETIME", "missing").Int64()
		expect(t, n, err, -2)

		n, err = c.Do(bg, "EXPIRE", "k", "100").Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "TTL", "k").Int64()
		expect(t, n, err, 100)
		// NX: only without a TTL; XX: only with one.
		n, err = c.Do(bg, "EXPIRE", "k", "200", "NX").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "EXPIRE", "k", "200", "XX").Int64()
		expect(t, n, err, 1)
		// GT: only a later deadline; LT: only an earlier one.
		n, err = c.Do(bg, "EXPIRE", "k", "100", "GT").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "EXPIRE", "k", "300", "GT").Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "EXPIRE", "k", "400", "LT").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "EXPIRE", "k", "50", "LT").Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "TTL", "k").Int64()
		expect(t, n, err, 50)
		// A key without TTL counts as infinite for GT/LT.
		c.Set(bg, "p", "v", 0)
		n, err = c.Do(bg, "EXPIRE", "p", "100", "GT").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "EXPIRE", "p", "100", "LT").Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "EXPIRE", "p", "100", "xx").Int64()
		expect(t, n, err, 1)

		expectErr(t, c.Do(bg, "EXPIRE", "k", "10", "NX", "XX").Err(), "ERR NX and XX, GT or LT options at the same time are not compatible")
		expectErr(t, c.Do(bg, "EXPIRE", "k", "10", "GT", "LT").Err(), "ERR GT and LT options at the same time are not compatible")
		expectErr(t, c.Do(bg, "EXPIRE", "k", "10", "FOO").Err(), "ERR Unsupported option FOO")
		expectErr(t, c.Do(bg, "EXPIRE", "k", "ten").Err(), "ERR value is not an integer or out of range")
		expectErr(t, c.Do(bg, "EXPIRE", "k", "9223372036854775807").Err(), "ERR invalid expire time in 'expire' command")
		expectErr(t, c.Do(bg, "PEXPIRE", "k", "9223372036854775807").Err(), "ERR invalid expire time in 'pexpire' command")

		// PEXPIRE keeps millisecond precision.
		n, err = c.Do(bg, "PEXPIRE", "k", "123456").Int64()
		expect(t, n, err, 1)
		pt, err := c.Do(bg, "PTTL", "k").Int64()
		if err != nil || pt > 123456 || pt < 123000 {
			t.Fatalf("PTTL after PEXPIRE 123456: %d %v", pt, err)
		}
		at := time.Now().Add(time.Hour).UnixMilli() + 7
		n, err = c.Do(bg, "PEXPIREAT", "k", strconv.FormatInt(at, 10)).Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "PEXPIRETIME", "k").Int64()
		expect(t, n, err, at)
		n, err = c.Do(bg, "EXPIRETIME", "k").Int64()
		expect(t, n, err, (at+500)/1000) // rounded, as Redis does
		n, err = c.Do(bg, "EXPIREAT", "k", strconv.FormatInt(at/1000, 10)).Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "PEXPIRETIME", "k").Int64()
		expect(t, n, err, at/1000*1000)

		// PERSIST.
		n, err = c.Do(bg, "PERSIST", "k").Int64()
		expect(t, n, err, 1)
		n, err = c.Do(bg, "PERSIST", "k").Int64()
		expect(t, n, err, 0)
		n, err = c.Do(bg, "PERSIST", "missing").Int64()
		expect(t, n, err, 0)
	}},
	{"ExpireInThePastDeletes", func(t *testing.T, s *suite) {
		c := s.client(t)
		for _, args := range [][]any{
			{"EXPIRE", "k", "-1"},
			{"PEXPIRE", "k", "0"},
			{"EXPIREAT", "k", "1"},
			{"PEXPIREAT", "k", "1"},
		} {
			c.Set(bg, "k", "v", 0)
			n, err := c.Do(bg, args...).Int64()
			expect(t, n, err, 1)
			e, err := c.Exists(bg, "k").Result()
			expect(t, e, err, 0)
		}
		// SET with a past EXAT/PXAT leaves no key.
		v, err := c.Do(bg, "SET", "k", "v", "EXAT", "1").Text()
		expect(t, v, err, "OK")
		e, err := c.Exists(bg, "k").Result()
		expect(t, e, err, 0)
		v, err = c.Do(bg, "SET", "k", "v", "PXAT", strconv.FormatInt(time.Now().UnixMilli()-10, 10)).Text()
		expect(t, v, err, "OK")
		_, err = c.Get(bg, "k").Result()
		expectNil(t, err)
	}},
	{"ExpiryIsMillisecondPrecise", func(t *testing.T, s *suite) {
		c := s.client(t)
		// A loaded machine (the raft backend's round trips under -race)
		// may take longer than the expiry between two commands: -2 is then
		// the right answer, and the checks below are on what Redis would
		// answer at the time the reply came back.
		const px = 300 * time.Millisecond
		start := time.Now()
		v, err := c.Do(bg, "SET", "k", "v", "PX", px.Milliseconds()).Text()
		expect(t, v, err, "OK")
		pt, err := c.Do(bg, "PTTL", "k").Int64()
		expired := time.Since(start) >= px
		if err != nil || !(pt > 0 && pt <= px.Milliseconds() || pt == -2 && expired) {
			t.Fatalf("PTTL right after PX %d: %d %v (%v since the SET)", px.Milliseconds(), pt, err, time.Since(start))
		}
		// TTL rounds to the nearest second: 300ms -> 0.
		n, err := c.Do(bg, "TTL", "k").Int64()
		if expired = time.Since(start) >= px; err != nil || !(n == 0 || n == -2 && expired) {
			t.Fatalf("TTL of a key with PX %d: %d %v (%v since the SET)", px.Milliseconds(), n, err, time.Since(start))
		}
		eventually(t, 2*time.Second, "key with PX 300 to expire", func() bool {
			return c.Exists(bg, "k").Val() == 0
		})
		// Expired keys are invisible to every command at once.
		_, err = c.Get(bg, "k").Result()
		expectNil(t, err)
		n, err = c.Do(bg, "TTL", "k").Int64()
		expect(t, n, err, -2)
		v, err = c.Type(bg, "k").Result()
		expect(t, v, err, "none")
		keys, err := c.Keys(bg, "*").Result()
		if err != nil || len(keys) != 0 {
			t.Fatalf("KEYS after expiry: %v %v", keys, err)
		}
		ok, err := c.SetNX(bg, "k", "new", 0).Result()
		expect(t, ok, err, true)
	}},
	{"ExpiredKeysAreSwept", func(t *testing.T, s *suite) {
		c := s.client(t)
		for i := 0; i < 100; i++ {
			c.Set(bg, fmt.Sprintf("k%d", i), "v", 50*time.Millisecond)
		}
		c.Set(bg, "stay", "v", 0)
		// DBSIZE counts expired keys until they are swept, as in Redis; the
		// sweeper must bring it down to the one live key on its own.
		eventually(t, 5*time.Second, "the sweeper to delete expired keys", func() bool {
			return c.DBSize(bg).Val() == 1
		})
	}},
	{"Rename", func(t *testing.T, s *suite) {
		c := s.client(t)
		expectErr(t, c.Rename(bg, "missing", "x").Err(), "ERR no such key")
		expectErr(t, c.RenameNX(bg, "missing", "x").Err(), "ERR no such key")
		c.Set(bg, "a", "1", time.Hour)
		v, err := c.Rename(bg, "a", "b").Result()
		expect(t, v, err, "OK")
		g, err := c.Get(bg, "b").Result()
		expect(t, g, err, "1")
		ttl, err := c.TTL(bg, "b").Result()
		expectTTL(t, ttl, err, time.Hour)
		e, err := c.Exists(bg, "a").Result()
		expect(t, e, err, 0)
		v, err = c.Rename(bg, "b", "b").Result()
		expect(t, v, err, "OK")
		c.Set(bg, "c", "3", 0)
		ok, err := c.RenameNX(bg, "b", "c").Result()
		expect(t, ok, err, false)
		ok, err = c.RenameNX(bg, "b", "d").Result()
		expect(t, ok, err, true)
		ok, err = c.RenameNX(bg, "d", "d").Result()
		expect(t, ok, err, false)
	}},
	{"KeysAndScan", func(t *testing.T, s *suite) {
		c := s.client(t)
		want := map[string]bool{}
		for i := 0; i < 250; i++ {
			k := fmt.Sprintf("user:%03d", i)
			c.Set(bg, k, "v", 0)
			want[k] = true
		}
		c.Set(bg, "other", "v", 0)
		c.Set(bg, "h*llo", "v", 0)
		keys, err := c.Keys(bg, "user:*").Result()
		if err != nil || len(keys) != 250 {
			t.Fatalf("KEYS user:* returned %d keys, %v", len(keys), err)
		}
		keys, err = c.Keys(bg, "user:0[0-1]?").Result()
		if err != nil || len(keys) != 20 {
			t.Fatalf("KEYS user:0[0-1]? = %d keys, %v", len(keys), err)
		}
		keys, err = c.Keys(bg, `h\*llo`).Result()
		if err != nil || !slices.Equal(keys, []string{"h*llo"}) {
			t.Fatalf(`KEYS h\*llo = %v, %v`, keys, err)
		}
		// A full SCAN returns every key exactly once (keys do not change during it).
		got := map[string]int{}
		var cursor uint64
		for iter := 0; ; iter++ {
			var page []string
			page, cursor, err = c.Scan(bg, cursor, "user:*", 7).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range page {
				got[k]++
			}
			if cursor == 0 {
				break
			}
			if iter > 1000 {
				t.Fatal("SCAN does not terminate")
			}
		}
		if len(got) != len(want) {
			t.Fatalf("SCAN found %d keys, want %d", len(got), len(want))
		}
		for k, n := range got {
			if !want[k] || n != 1 {
				t.Fatalf("SCAN returned %q %d times", k, n)
			}
		}
		all, _, err := c.ScanType(bg, 0, "*", 1000, "string").Result()
		if err != nil || len(all) != 252 {
			t.Fatalf("SCAN TYPE string = %d keys, %v", len(all), err)
		}
		none, _, err := c.ScanType(bg, 0, "*", 1000, "list").Result()
		if err != nil || len(none) != 0 {
			t.Fatalf("SCAN TYPE list = %v, %v", none, err)
		}
		expectErr(t, c.Do(bg, "SCAN", "abc").Err(), "ERR invalid cursor")
		expectErr(t, c.Do(bg, "SCAN", "0", "COUNT", "0").Err(), "ERR syntax error")
		expectErr(t, c.Do(bg, "SCAN", "0", "MATCH").Err(), "ERR syntax error")
		expectErr(t, c.Do(bg, "SCAN", "0", "COUNT", "x").Err(), "ERR value is not an integer or out of range")
	}},
	{"DBSizeFlushRandomKey", func(t *testing.T, s *suite) {
		c := s.client(t)
		_, err := c.RandomKey(bg).Result()
		expectNil(t, err)
		c.MSet(bg, "a", "1", "b", "2")
		n, err := c.DBSize(bg).Result()
		expect(t, n, err, 2)
		k, err := c.RandomKey(bg).Result()
		if err != nil || (k != "a" && k != "b") {
			t.Fatalf("RANDOMKEY = %q, %v", k, err)
		}
		v, err := c.FlushDB(bg).Result()
		expect(t, v, err, "OK")
		n, err = c.DBSize(bg).Result()
		expect(t, n, err, 0)
		c.Set(bg, "a", "1", 0)
		v, err = c.Do(bg, "FLUSHALL", "ASYNC").Text()
		expect(t, v, err, "OK")
		n, err = c.DBSize(bg).Result()
		expect(t, n, err, 0)
		expectErr(t, c.Do(bg, "FLUSHDB", "NOW").Err(), "ERR syntax error")
	}},
	{"BinarySafe", func(t *testing.T, s *suite) {
		c := s.client(t)
		key := "k\x00\xff\r\n key"
		val := string([]byte{0, 1, 2, '\r', '\n', 255, 254, 0})
		expect(t, c.Set(bg, key, val, 0).Val(), nil, "OK")
		g, err := c.Get(bg, key).Result()
		expect(t, g, err, val)
		keys, err := c.Keys(bg, "k*").Result()
		if err != nil || !slices.Equal(keys, []string{key}) {
			t.Fatalf("KEYS = %q, %v", keys, err)
		}
		big := strings.Repeat("x\x00y", 1<<20)
		expect(t, c.Set(bg, "big", big, 0).Val(), nil, "OK")
		g, err = c.Get(bg, "big").Result()
		if err != nil || g != big {
			t.Fatalf("3 MiB value did not round-trip: len %d, %v", len(g), err)
		}
	}},
	{"Pipelining", func(t *testing.T, s *suite) {
		c := s.client(t)
		pipe := c.Pipeline()
		for i := 0; i < 500; i++ {
			pipe.Set(bg, fmt.Sprintf("p%d", i), i, 0)
			pipe.Incr(bg, "pc")
		}
		get := pipe.Get(bg, "p499")
		bad := pipe.Do(bg, "INCR", "p0", "extra")
		cnt := pipe.Get(bg, "pc")
		_, _ = pipe.Exec(bg)
		expect(t, get.Val(), get.Err(), "499")
		expectErr(t, bad.Err(), "ERR wrong number of arguments for 'incr' command")
		expect(t, cnt.Val(), cnt.Err(), "500")
		n, err := c.DBSize(bg).Result()
		expect(t, n, err, 501)
	}},
	{"ConnectionCommands", func(t *testing.T, s *suite) {
		c := s.client(t)
		v, err := c.Ping(bg).Result()
		expect(t, v, err, "PONG")
		v, err = c.Do(bg, "PING", "hi").Text()
		expect(t, v, err, "hi")
		v, err = c.Echo(bg, "hello").Result()
		expect(t, v, err, "hello")
		v, err = c.Do(bg, "SELECT", "0").Text()
		expect(t, v, err, "OK")
		expectErr(t, c.Do(bg, "SELECT", "16").Err(), "ERR DB index is out of range")
		expectErr(t, c.Do(bg, "SELECT", "x").Err(), "ERR value is not an integer or out of range")
		tm, err := c.Time(bg).Result()
		if err != nil || time.Since(tm).Abs() > time.Minute {
			t.Fatalf("TIME = %v, %v", tm, err)
		}
		expectErr(t, c.Do(bg, "NOSUCHCMD", "a", "b").Err(), "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' ")
		expectErr(t, c.Do(bg, "GET").Err(), "ERR wrong number of arguments for 'get' command")
	}},
	{"ClientCommands", func(t *testing.T, s *suite) {
		c := s.client(t)
		conn := c.Conn()
		defer conn.Close()
		_, err := conn.ClientGetName(bg).Result()
		expectNil(t, err)
		ok, err := conn.ClientSetName(bg, "conformance").Result()
		expect(t, ok, err, true)
		name, err := conn.ClientGetName(bg).Result()
		expect(t, name, err, "conformance")
		expectErr(t, conn.Do(bg, "CLIENT", "SETNAME", "bad name").Err(), "ERR Client names cannot contain spaces, newlines or special characters.")
		id, err := conn.ClientID(bg).Result()
		if err != nil || id <= 0 {
			t.Fatalf("CLIENT ID = %d, %v", id, err)
		}
		info, err := conn.Do(bg, "CLIENT", "INFO").Text()
		if err != nil || !strings.Contains(info, "id="+strconv.FormatInt(id, 10)+" ") || !strings.Contains(info, "name=conformance ") {
			t.Fatalf("CLIENT INFO = %q, %v", info, err)
		}
		list, err := conn.ClientList(bg).Result()
		if err != nil || !strings.Contains(list, "name=conformance ") {
			t.Fatalf("CLIENT LIST = %q, %v", list, err)
		}
		v, err := conn.Do(bg, "CLIENT", "SETINFO", "LIB-NAME", "suite").Text()
		expect(t, v, err, "OK")
		expectErr(t, conn.Do(bg, "CLIENT", "NOSUCH").Err(), "ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.")
		expectErr(t, conn.Do(bg, "CLIENT", "SETNAME").Err(), "ERR wrong number of arguments for 'client|setname' command")
	}},
	{"CommandIntrospection", func(t *testing.T, s *suite) {
		c := s.client(t)
		n, err := c.Do(bg, "COMMAND", "COUNT").Int64()
		if err != nil || n < 50 {
			t.Fatalf("COMMAND COUNT = %d, %v", n, err)
		}
		infos, err := c.Command(bg).Result()
		if err != nil {
			t.Fatal(err)
		}
		get := infos["get"]
		if get == nil || get.Arity != 2 || get.FirstKeyPos != 1 || !slices.Contains(get.Flags, "readonly") {
			t.Fatalf("COMMAND entry for get: %+v", get)
		}
		mset := infos["mset"]
		if mset == nil || mset.Arity != -3 || mset.LastKeyPos != -1 || mset.StepCount != 2 {
			t.Fatalf("COMMAND entry for mset: %+v", mset)
		}
		res, err := c.Do(bg, "COMMAND", "INFO", "get", "nosuch").Slice()
		if err != nil || len(res) != 2 || res[1] != nil {
			t.Fatalf("COMMAND INFO get nosuch = %v, %v", res, err)
		}
		docs, err := c.Do(bg, "COMMAND", "DOCS", "set").Result()
		if err != nil || !strings.Contains(fmt.Sprint(docs), "summary") {
			t.Fatalf("COMMAND DOCS set = %v, %v", docs, err)
		}
	}},
	{"InfoAndConfig", func(t *testing.T, s *suite) {
		c := s.client(t)
		c.Set(bg, "a", "1", time.Hour)
		info, err := c.Info(bg).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"# Server", "redis_version:", "# Clients", "connected_clients:", "# Persistence", "# Stats", "total_commands_processed:", "# Keyspace", "db0:keys=1,expires=1"} {
			if !strings.Contains(info, want) {
				t.Fatalf("INFO lacks %q:\n%s", want, info)
			}
		}
		ks, err := c.Info(bg, "keyspace").Result()
		if err != nil || strings.Contains(ks, "# Server") || !strings.Contains(ks, "# Keyspace") {
			t.Fatalf("INFO keyspace = %q, %v", ks, err)
		}
		cfg, err := c.ConfigGet(bg, "maxclients").Result()
		if err != nil || cfg["maxclients"] == "" {
			t.Fatalf("CONFIG GET maxclients = %v, %v", cfg, err)
		}
		cfg, err = c.ConfigGet(bg, "save").Result()
		if err != nil || len(cfg) != 1 {
			t.Fatalf("CONFIG GET save = %v, %v", cfg, err)
		}
		cfg, err = c.ConfigGet(bg, "append*").Result()
		if err != nil || cfg["appendonly"] == "" || cfg["appendfsync"] == "" {
			t.Fatalf("CONFIG GET append* = %v, %v", cfg, err)
		}
		cfg, err = c.ConfigGet(bg, "nosuchparam").Result()
		if err != nil || len(cfg) != 0 {
			t.Fatalf("CONFIG GET nosuchparam = %v, %v", cfg, err)
		}
	}},
	{"Bitmaps", testBitmaps},
}

// testBitmaps runs the bitmap commands through a client library and checks
// Redis 7's replies (byte for byte on the raw connection), so that the raft
// backend, which the comparison with redis-server does not reach, is
// covered too.
func testBitmaps(t *testing.T, s *suite) {
	c := s.client(t)
	old, err := c.SetBit(bg, "bm", 7, 1).Result()
	expect(t, old, err, 0)
	old, err = c.SetBit(bg, "bm", 7, 1).Result()
	expect(t, old, err, 1)
	old, err = c.SetBit(bg, "bm", 100, 1).Result()
	expect(t, old, err, 0)
	n, err := c.StrLen(bg, "bm").Result()
	expect(t, n, err, 13)
	bit, err := c.GetBit(bg, "bm", 100).Result()
	expect(t, bit, err, 1)
	bit, err = c.GetBit(bg, "nokey", 100).Result()
	expect(t, bit, err, 0)
	n, err = c.BitCount(bg, "bm", nil).Result()
	expect(t, n, err, 2)
	n, err = c.BitCount(bg, "bm", &redis.BitCount{Start: 1, End: -1}).Result()
	expect(t, n, err, 1)
	n, err = c.BitCount(bg, "bm", &redis.BitCount{Start: 0, End: 7, Unit: redis.BitCountIndexBit}).Result()
	expect(t, n, err, 1)
	n, err = c.BitPos(bg, "bm", 1).Result()
	expect(t, n, err, 7)
	n, err = c.BitPos(bg, "bm", 1, 1).Result()
	expect(t, n, err, 100)
	n, err = c.BitPosSpan(bg, "bm", 0, 0, 7, "bit").Result()
	expect(t, n, err, 0)
	n, err = c.BitPos(bg, "nokey", 1).Result()
	expect(t, n, err, -1)
	expect(t, c.Set(bg, "a", "\xff\x0f", 0).Err(), nil, nil)
	expect(t, c.Set(bg, "b", "\x0f", 0).Err(), nil, nil)
	n, err = c.BitOpAnd(bg, "dst", "a", "b").Result()
	expect(t, n, err, 2)
	g, err := c.Get(bg, "dst").Result()
	expect(t, g, err, "\x0f\x00")
	n, err = c.BitOpNot(bg, "dst", "b").Result()
	expect(t, n, err, 1)
	g, err = c.Get(bg, "dst").Result()
	expect(t, g, err, "\xf0")
	n, err = c.BitOpOr(bg, "dst", "nokey", "nokey2").Result()
	expect(t, n, err, 0)
	e, err := c.Exists(bg, "dst").Result()
	expect(t, e, err, 0)
	vals, err := c.BitField(bg, "bf", "SET", "i8", 0, 100, "INCRBY", "i8", 0, 100, "GET", "u8", 0).Result()
	if err != nil || len(vals) != 3 || vals[0] != 0 || vals[1] != -56 || vals[2] != 200 {
		t.Fatalf("BITFIELD = %v, %v", vals, err)
	}
	vals, err = c.BitFieldRO(bg, "bf", "i8", "#0", "u4", "#1").Result()
	if err != nil || len(vals) != 2 || vals[0] != -56 || vals[1] != 8 {
		t.Fatalf("BITFIELD_RO = %v, %v", vals, err)
	}

	// SETBIT is an atomic read-modify-write of the whole string: bits set
	// by concurrent clients in one key are all kept.
	var wg sync.WaitGroup
	const workers, each = 8, 32
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := c.SetBit(bg, "conc", int64(i*workers+w)*3, 1).Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent SETBIT: %v", err)
	}
	n, err = c.BitCount(bg, "conc", nil).Result()
	expect(t, n, err, workers*each)

	r := s.raw(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "100", "OVERFLOW", "SAT", "INCRBY", "i64", "8", "-9223372036854775808", "INCRBY", "i64", "8", "-1"},
			"*3\r\n$-1\r\n:-9223372036854775808\r\n:-9223372036854775808\r\n"},
		{[]string{"BITFIELD", "bf", "OVERFLOW", "WRAP", "INCRBY", "u63", "8", "-1"}, "*1\r\n:4611686018427387903\r\n"},
		{[]string{"SETBIT", "bm", "4294967296", "1"}, "-ERR bit offset is not an integer or out of range\r\n"},
		{[]string{"SETBIT", "bm", "0", "2"}, "-ERR bit is not an integer or out of range\r\n"},
		{[]string{"GETBIT", "bm", "-1"}, "-ERR bit offset is not an integer or out of range\r\n"},
		{[]string{"BITPOS", "bm", "2"}, "-ERR The bit argument must be 1 or 0.\r\n"},
		{[]string{"BITCOUNT", "bm", "0", "-1", "BITS"}, "-ERR syntax error\r\n"},
		{[]string{"BITOP", "NOT", "dst", "a", "b"}, "-ERR BITOP NOT must be called with a single source key.\r\n"},
		{[]string{"BITFIELD", "bf", "GET", "u64", "0"}, "-ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.\r\n"},
		{[]string{"BITFIELD", "bf", "OVERFLOW", "MAYBE"}, "-ERR Invalid OVERFLOW type specified\r\n"},
		{[]string{"BITFIELD_RO", "bf", "SET", "u8", "0", "1"}, "-ERR BITFIELD_RO only supports the GET subcommand\r\n"},
	} {
		if got := r.Do(tc.args...); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.args, got, tc.want)
		}
	}
}
