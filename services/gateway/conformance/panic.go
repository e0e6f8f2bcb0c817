package conformance

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// PanicKey is the key whose writes panic while a test arms the server's
// panic knob (gatewayserver.TestingKnobs.PanicOn).
const PanicKey = "panic:boom"

// RunPanicContainment proves that a command panicking inside its
// transaction takes down only its own connection: the client gets
// "-ERR internal error" after the replies before it and then the connection
// closes; concurrent clients see no error and lose no write; the key's
// latch is released (a later write of it succeeds); the server still serves.
// arm switches the server's panic knob for PanicKey on and off.
func RunPanicContainment(t *testing.T, addr string, arm func(on bool)) {
	ctx := context.Background()
	const loaders = 8
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		acked    [loaders]atomic.Int64
		loadErrs = make(chan error, loaders)
	)
	for i := range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
			defer c.Close()
			key := fmt.Sprintf("panic:load:%d", i)
			for !stop.Load() {
				n, err := c.Incr(ctx, key).Result()
				if err != nil {
					loadErrs <- fmt.Errorf("INCR %s: %w", key, err)
					return
				}
				acked[i].Store(n)
			}
		}()
	}
	// Let the load start before the first panic.
	eventually(t, 30*time.Second, "the load to start", func() bool { return acked[loaders-1].Load() > 0 })

	for round := 1; round <= 3; round++ {
		arm(true)
		r := DialRaw(t, addr)
		before := "panic:before:" + strconv.Itoa(round)
		var pipeline []byte
		pipeline = append(pipeline, Encode("SET", before, "kept")...)
		pipeline = append(pipeline, Encode("SET", PanicKey, "x")...)
		pipeline = append(pipeline, Encode("GET", before)...)
		pipeline = append(pipeline, Encode("PING")...)
		r.Send(pipeline)
		expectBytes(t, "the write before the panic", r.Read(), "+OK\r\n")
		expectBytes(t, "the panicking SET", r.Read(), "-ERR internal error\r\n")
		if got, err := r.ReadErr(); err == nil {
			t.Fatalf("round %d: the connection stayed open after the panic and answered %q", round, got)
		}
		arm(false)

		// A fresh connection: the server serves, the latch of the key that
		// panicked is free, and the write acknowledged before the panic stays.
		c := DialRaw(t, addr)
		done := make(chan string, 1)
		go func() {
			rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			defer rc.Close()
			res, err := rc.Set(ctx, PanicKey, "after", 0).Result()
			if err != nil {
				res = err.Error()
			}
			done <- res
		}()
		select {
		case got := <-done:
			if got != "OK" {
				t.Fatalf("round %d: SET of the key that panicked = %q", round, got)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: SET of the key that panicked hangs: its latch was not released", round)
		}
		expectBytes(t, "PING after the panic", c.Do("PING"), "+PONG\r\n")
		expectBytes(t, "GET of the write before the panic", c.Do("GET", before), "$4\r\nkept\r\n")
	}

	stop.Store(true)
	wg.Wait()
	close(loadErrs)
	for err := range loadErrs {
		t.Errorf("a client beside the panics failed: %v", err)
	}
	// No acknowledged increment was lost.
	c := DialRaw(t, addr)
	for i := range loaders {
		key := fmt.Sprintf("panic:load:%d", i)
		want := acked[i].Load()
		if got := c.Do("GET", key); got != fmt.Sprintf("$%d\r\n%d\r\n", len(strconv.FormatInt(want, 10)), want) {
			t.Errorf("%s = %q after %d acknowledged INCRs", key, got, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
