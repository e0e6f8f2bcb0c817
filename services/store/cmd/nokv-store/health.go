package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/store/storeserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// health implements `nokv-store health [flags]`: with the settings the store
// itself would resolve from the same flags, environment and cluster file, it
// dials the store's gRPC address and asks its raft loop about a region (id 0,
// which no store holds: the answer, region_not_found, proves the loop runs).
// Images built FROM scratch have no shell: compose health checks run this.
func health(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	defaults := storeserver.DefaultConfig()
	var timeout *time.Duration
	register := func(fs *flag.FlagSet) {
		defaults.RegisterFlags(fs)
		timeout = config.RegisterHealthFlags(fs)
	}
	summary := fmt.Sprintf(config.HealthSummary, name, "its gRPC server and raft loop answer RegionInfo")
	fs, status, ok := config.ParseCommandLine(name+" health", summary, storeserver.EnvPrefix, args, register, stdout, stderr)
	if !ok {
		return status
	}
	cfg, _, err := config.Resolve[storeserver.Config](fs, config.EnvOptions{Prefix: storeserver.EnvPrefix, Environment: environ}, storeserver.DefaultConfig)
	if err != nil {
		config.PrintError(stderr, name+" health", err)
		return 1
	}
	addr := config.LocalDialAddr(cfg.Addr)
	start := time.Now()
	if err := checkStore(addr, *timeout); err != nil {
		fmt.Fprintf(stderr, "%s health: %s: %v\n", name, addr, err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s %d at %s answered in %v\n", name, cfg.StoreID, addr, time.Since(start).Round(time.Millisecond))
	return 0
}

func checkStore(addr string, timeout time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = storepb.NewStoreClient(conn).RegionInfo(ctx, &raftserverpb.RegionInfoRequest{})
	return err
}
