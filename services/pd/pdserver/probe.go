package pdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/config"
)

// probeTimeout bounds the question to each store of the cluster file; a
// store that does not answer in time is taken as not running. A running
// store answers in milliseconds; one that accepts connections but does not
// answer yet is starting, waiting for this PD to answer its claim, and so
// holds no cluster id. The probes run in parallel: PD starts at most this
// much later.
const probeTimeout = time.Second

// storeClusterIDKey is the metadata key under which a store announces the
// cluster id of its data in every response.
const storeClusterIDKey = "nokv-cluster-id"

// ErrStoresHoldCluster refuses a bootstrap: running stores of the cluster
// file already belong to a cluster, so PD's state was lost rather than
// never created.
var ErrStoresHoldCluster = errors.New("pdserver: stores of the cluster file already belong to a cluster")

// probeStores asks every store of the cluster file that answers which
// cluster its data belongs to, and refuses the bootstrap if one holds a
// cluster id other than cfg.RecoverClusterID. Stores that are not running
// cannot be asked: a PD bootstrapped while they are down gets a new cluster
// id, which they refuse when they start (see the README).
func probeStores(file *config.Cluster, cfg Config, log *slog.Logger) error {
	type answer struct {
		store uint64
		addr  string
		id    uint64
	}
	var (
		mu   sync.Mutex
		held []answer
		wg   sync.WaitGroup
	)
	for _, st := range file.Stores {
		addr, err := file.StoreAddr(st.StoreID, cfg.Scope)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := storeClusterID(addr)
			if err != nil {
				log.Debug("bootstrap probe: store did not answer", "store", st.StoreID, "addr", addr, "err", err)
				return
			}
			if id != 0 && id != cfg.RecoverClusterID {
				mu.Lock()
				held = append(held, answer{st.StoreID, addr, id})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(held) == 0 {
		return nil
	}
	var parts []string
	for _, a := range held {
		parts = append(parts, fmt.Sprintf("store %d at %s holds cluster %d", a.store, a.addr, a.id))
	}
	err := fmt.Errorf("%w: %s. PD's workdir %s is empty, so its state was lost: bootstrapping a new cluster over these stores "+
		"would reuse their ids. Restore PD's workdir, or rebuild it with nokv-pd --recover-cluster-id %d --recover-id-floor <n> "+
		"(n above every region, peer and store id in use; see services/pd/README.md, \"Losing PD's workdir\")",
		ErrStoresHoldCluster, strings.Join(parts, "; "), cfg.WorkDir, held[0].id)
	log.Error("refusing to bootstrap", "err", err)
	return err
}

// storeClusterID asks a store for the cluster id of its data: any answer
// carries it in the response header metadata.
func storeClusterID(addr string) (uint64, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var md metadata.MD
	// Region 0 never exists; the answer (a region error) does not matter.
	_, err = storepb.NewStoreClient(cc).RegionInfo(ctx, &raftserverpb.RegionInfoRequest{RegionId: 0}, grpc.Header(&md))
	vals := md.Get(storeClusterIDKey)
	if len(vals) == 0 {
		if err == nil {
			err = errors.New("no cluster id in the answer")
		}
		return 0, err
	}
	return strconv.ParseUint(vals[0], 10, 64)
}
