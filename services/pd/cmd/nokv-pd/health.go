package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/pdserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/nokv/nokv/services/pd/internal/grpcsvc"
)

// health implements `nokv-pd health [flags]`: with the settings PD itself
// would resolve from the same flags, environment and cluster file, it dials
// PD's gRPC address and asks for the stores (PD answers from its loaded
// catalog). Images built FROM scratch have no shell: compose health checks
// run this.
func health(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	defaults := pdserver.DefaultConfig()
	var timeout *time.Duration
	register := func(fs *flag.FlagSet) {
		defaults.RegisterFlags(fs)
		timeout = config.RegisterHealthFlags(fs)
	}
	summary := fmt.Sprintf(config.HealthSummary, name, "it answers GetAllStores over gRPC")
	fs, status, ok := config.ParseCommandLine(name+" health", summary, pdserver.EnvPrefix, args, register, stdout, stderr)
	if !ok {
		return status
	}
	cfg, _, err := config.Resolve[pdserver.Config](fs, config.EnvOptions{Prefix: pdserver.EnvPrefix, Environment: environ}, pdserver.DefaultConfig)
	if err != nil {
		config.PrintError(stderr, name+" health", err)
		return 1
	}
	addr := config.LocalDialAddr(cfg.Addr)
	start := time.Now()
	n, leader, err := checkPD(addr, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s health: %s: %v\n", name, addr, err)
		return 1
	}
	if leader != "" {
		// A follower of a PD group is healthy: it stands by and names the
		// leader.
		fmt.Fprintf(stdout, "ok: %s at %s follows the leader at %s; answered in %v\n", name, addr, leader, time.Since(start).Round(time.Millisecond))
		return 0
	}
	fmt.Fprintf(stdout, "ok: %s at %s knows %d stores; answered in %v\n", name, addr, n, time.Since(start).Round(time.Millisecond))
	return 0
}

// checkPD asks PD for its stores. A follower of a PD group refuses, naming
// the leader: then leader is the leader's address and err nil.
func checkPD(addr string, timeout time.Duration) (stores int, leader string, err error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var trailer metadata.MD
	resp, err := pdpb.NewPDClient(conn).GetAllStores(ctx, &pdpb.GetAllStoresRequest{}, grpc.Trailer(&trailer))
	if err != nil {
		if v := trailer.Get(grpcsvc.LeaderKey); len(v) > 0 {
			return 0, v[0], nil
		}
		return 0, "", err
	}
	if e := resp.GetHeader().GetError(); e != nil {
		return 0, "", fmt.Errorf("%s: %s", e.GetType(), e.GetMessage())
	}
	return len(resp.GetStores()), "", nil
}
