package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// subKey is a collection element's key as services/gateway's keyspace
// package lays it out (docs/architecture.md, "Collections"): the database
// id with its top bit set, the Redis key's length and bytes, the version,
// the kind and the element. Spelled out here because the package is
// internal to the gateway; the bytes are the persisted format.
func subKey(db byte, key string, version byte, elem string) []byte {
	k := []byte{0x80, 0, 0, db, 0, 0, 0, byte(len(key))}
	k = append(k, key...)
	k = append(k, 0, 0, 0, 0, 0, 0, 0, version, 'f')
	return append(k, elem...)
}

// Collection elements stored in the cluster are not Redis keys: INFO
// keyspace and DBSIZE do not count them (or invent a database for them),
// and FLUSHDB of their database deletes them, leaving other databases'
// elements alone.
func TestRaftSubKeysOutsideDatabases(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
	t.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	kc, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	subs := [][]byte{subKey(1, "h", 1, "a"), subKey(1, "h", 1, "b"), subKey(2, "h", 1, "a")}
	if err := kc.RunTxn(ctx, func(tx *kvclient.Txn) error {
		for _, k := range subs {
			if err := tx.Set(k, []byte("v"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := rc.Set(ctx, "s", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	info, err := rc.Info(ctx, "keyspace").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(info, "keys=") != 1 || !strings.Contains(info, "db0:keys=1,") {
		t.Fatalf("INFO keyspace counts sub-keys:\n%s", info)
	}
	p := rc.Pipeline()
	p.Select(ctx, 1)
	dbsize := p.DBSize(ctx)
	flush := p.FlushDB(ctx)
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if dbsize.Val() != 0 || flush.Err() != nil {
		t.Fatalf("db 1: DBSIZE %d, FLUSHDB %v", dbsize.Val(), flush.Err())
	}
	for i, k := range subs {
		_, found, err := kc.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := i == 2; found != want {
			t.Fatalf("sub-key %q present %v after FLUSHDB of db 1, want %v", k, found, want)
		}
	}
}
