package gatewayserver_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// SPOP without a count picks any member, not one end of the byte order:
// popping and re-adding from a set of 8 members meets every member, and
// pops leave exactly the others.
func TestSPopPicksEveryMember(t *testing.T) {
	srv := startServer(t, nil)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	ctx := context.Background()
	var members []any
	for i := range 8 {
		members = append(members, fmt.Sprintf("m%d", i))
	}
	if err := rc.SAdd(ctx, "s", members...).Err(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for range 400 {
		m, err := rc.SPop(ctx, "s").Result()
		if err != nil {
			t.Fatal(err)
		}
		seen[m]++
		if n, err := rc.SCard(ctx, "s").Result(); err != nil || n != 7 {
			t.Fatalf("SCARD after SPOP = %d, %v", n, err)
		}
		if ok, err := rc.SIsMember(ctx, "s", m).Result(); err != nil || ok {
			t.Fatalf("%s still a member after SPOP (%v)", m, err)
		}
		if err := rc.SAdd(ctx, "s", m).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		// 400 draws of 8: each expected 50 times; under 15 is a broken pick.
		if seen[m.(string)] < 15 {
			t.Fatalf("SPOP drew %v: %s only %d times", seen, m, seen[m.(string)])
		}
	}
	for range 8 {
		if err := rc.SPop(ctx, "s").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := rc.Exists(ctx, "s").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after popping every member = %d, %v", n, err)
	}
}
