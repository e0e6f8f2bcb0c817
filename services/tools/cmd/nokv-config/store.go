package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/pkg/pdclient"
)

// runStore runs `store remove <id>`: the operator's half of replacing a
// store that lost its data directory (see services/store/README.md,
// "Failure model").
func runStore(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "remove" {
		fmt.Fprintf(stderr, "Usage: %s store remove [--pd-addr ADDR | --config FILE [--scope host|docker]] <store-id>\n", name)
		return 2
	}
	fs := newFlags("store remove", "[--pd-addr ADDR | --config FILE [--scope host|docker]] <store-id>")
	pdAddr := fs.String("pd-addr", "", "PD `address` (default: pd.addr of --config if given, else 127.0.0.1:2379)")
	path := fs.String("config", "", "cluster `file` to take PD's address from")
	scope := scopeFlag(fs)
	timeout := fs.Duration("timeout", 10*time.Second, "bound on the request to PD")
	// The store id comes last; flags may precede it.
	rest := args[1:]
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "%s store remove: the store id is missing\n", name)
		return 2
	}
	idArg := rest[len(rest)-1]
	if code, ok := parse(fs, rest[:len(rest)-1], stdout, stderr); !ok {
		return code
	}
	id, err := strconv.ParseUint(idArg, 10, 64)
	if err != nil || id == 0 {
		fmt.Fprintf(stderr, "%s store remove: %q is not a store id\n", name, idArg)
		return 2
	}
	addr := *pdAddr
	if addr == "" {
		addr = "127.0.0.1:2379"
		if *path != "" {
			c, ok := load("store remove", *path, stderr)
			if !ok {
				return 1
			}
			addr = c.PDAddr(*scope)
		}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "%s store remove: PD at %s: %v\n", name, addr, err)
		return 1
	}
	defer conn.Close()
	pd, err := pdclient.New(conn, pdclient.Options{MaxRetries: pdclient.NoRetries})
	if err != nil {
		fmt.Fprintf(stderr, "%s store remove: %v\n", name, err)
		return 1
	}
	defer pd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := pd.RemoveStore(ctx, id); err != nil {
		fmt.Fprintf(stderr, "%s store remove: PD at %s: %v\n", name, addr, err)
		return 1
	}
	fmt.Fprintf(stdout, "store %d removed: it is a tombstone; PD re-replicates its regions onto the other stores\n", id)
	return 0
}
