package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
)

// split creates many regions through the stores' admin split (the path
// PD's split operators and the size check take), for scripts/bench-regions.sh:
//
//	nokv-bench split --stores ADDR1,ADDR2,ADDR3 --region ID:STORE:PREFIX ... --count N
//
// Each --region names a region of the cluster file, the store (1-based,
// the position in --stores) that leads it, and a key prefix inside its
// range; the region is split at prefix+%07d keys into count/len(regions)
// regions, by halving: every split cuts a region's remaining keys in two,
// and both halves go on in parallel (--workers at a time).
func split(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nokv-bench split", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stores := fs.String("stores", "", "store addresses, comma-separated, in store id order")
	count := fs.Int("count", 10000, "regions to end with, in all")
	workers := fs.Int("workers", 8, "splits in flight")
	var regions []splitRegion
	fs.Func("region", "ID:STORE:PREFIX: a region to split, its leader store (1-based), and a key prefix in its range", func(v string) error {
		parts := strings.SplitN(v, ":", 3)
		if len(parts) != 3 {
			return errors.New("want ID:STORE:PREFIX")
		}
		id, err1 := strconv.ParseUint(parts[0], 10, 64)
		st, err2 := strconv.Atoi(parts[1])
		if err1 != nil || err2 != nil || st < 1 {
			return errors.New("want ID:STORE:PREFIX with numbers")
		}
		regions = append(regions, splitRegion{id: id, store: st - 1, prefix: parts[2]})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return 2
	}
	addrs := strings.Split(*stores, ",")
	if *stores == "" || len(regions) == 0 || *count < len(regions) || *workers < 1 {
		fmt.Fprintln(stderr, "nokv-bench split: needs --stores, at least one --region, --count at least the regions, --workers positive")
		return 2
	}
	var clients []storepb.StoreClient
	for _, a := range addrs {
		cc, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintf(stderr, "nokv-bench split: %v\n", err)
			return 1
		}
		defer cc.Close()
		clients = append(clients, storepb.NewStoreClient(cc))
	}
	sp := &splitter{clients: clients, sem: make(chan struct{}, *workers)}
	start := time.Now()
	per := *count / len(regions)
	for i, r := range regions {
		n := per
		if i == 0 {
			n += *count - per*len(regions)
		}
		keys := make([][]byte, n-1)
		for k := range keys {
			keys[k] = fmt.Appendf(nil, "%s%07d", r.prefix, k+1)
		}
		sp.wg.Add(1)
		go sp.run(r.id, r.store, keys)
	}
	sp.wg.Wait()
	if err := sp.err.Load(); err != nil {
		fmt.Fprintf(stderr, "nokv-bench split: %v\n", *err)
		return 1
	}
	fmt.Fprintf(stdout, "splits=%d secs=%.1f\n", sp.done.Load(), time.Since(start).Seconds())
	return 0
}

type splitRegion struct {
	id     uint64
	store  int
	prefix string
}

type splitter struct {
	clients []storepb.StoreClient
	sem     chan struct{}
	wg      sync.WaitGroup
	done    atomic.Int64
	err     atomic.Pointer[error]
}

// run splits region (led by store, 0-based) at the middle of keys, then
// both halves at theirs.
func (sp *splitter) run(region uint64, store int, keys [][]byte) {
	defer sp.wg.Done()
	if len(keys) == 0 || sp.err.Load() != nil {
		return
	}
	mid := len(keys) / 2
	sp.sem <- struct{}{}
	left, right, store, err := sp.splitAt(region, store, keys[mid])
	<-sp.sem
	if err != nil {
		sp.err.CompareAndSwap(nil, &err)
		return
	}
	sp.done.Add(1)
	sp.wg.Add(2)
	go sp.run(left, store, keys[:mid])
	go sp.run(right, store, keys[mid+1:])
}

// splitAt splits the region at key on its leader, following leader hints
// and waiting out a leader not yet elected (a new region campaigns right
// after its split).
func (sp *splitter) splitAt(region uint64, store int, key []byte) (left, right uint64, leader int, err error) {
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, rerr := sp.clients[store].SplitRegion(ctx, &raftserverpb.SplitRegionRequest{RegionId: region, SplitKey: key})
		cancel()
		if rerr == nil && resp.GetRegionError() == nil {
			return resp.GetLeft().GetId(), resp.GetRight().GetId(), store, nil
		}
		if time.Now().After(deadline) {
			if rerr == nil {
				rerr = fmt.Errorf("%v", resp.GetRegionError())
			}
			return 0, 0, 0, fmt.Errorf("split region %d at %q: %w", region, key, rerr)
		}
		if nl := resp.GetRegionError().GetNotLeader(); nl != nil && nl.GetLeader().GetStoreId() != 0 {
			if s := int(nl.GetLeader().GetStoreId()) - 1; s < len(sp.clients) {
				store = s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
