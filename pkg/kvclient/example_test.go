package kvclient_test

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
)

// An INCR as the gateway runs it: read, modify and write one key
// atomically, keeping its expiry; RunTxn retries the whole function on
// conflicts.
func ExampleClient_RunTxn() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := kvclient.New(ctx, "127.0.0.1:2379", kvclient.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	key := []byte("counter")
	var n int64
	err = c.RunTxn(ctx, func(txn *kvclient.Txn) error {
		e, found, err := txn.Get(ctx, key)
		if err != nil {
			return err
		}
		n = 0
		if found {
			if n, err = strconv.ParseInt(string(e.Value), 10, 64); err != nil {
				return err
			}
		}
		n++
		return txn.Set(key, strconv.AppendInt(nil, n, 10), e.ExpiresAt)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n)
}

// SET key value PX 1000: the expiry is computed from the transaction's
// clock, the one reads judge expiry by.
func ExampleTxn_Set() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := kvclient.New(ctx, "127.0.0.1:2379", kvclient.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	err = c.RunTxn(ctx, func(txn *kvclient.Txn) error {
		return txn.Set([]byte("session"), []byte("token"), txn.Now()+1000)
	})
	fmt.Println(err)
}
