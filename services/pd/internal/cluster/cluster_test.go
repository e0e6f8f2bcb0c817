package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"google.golang.org/protobuf/proto"
)

func TestBootstrapOnceThenPersistedStateWins(t *testing.T) {
	e := newEnv(t)
	if ok, err := e.c.Bootstrapped(); err != nil || ok {
		t.Fatalf("Bootstrapped() = %v, %v on an empty workdir", ok, err)
	}
	if err := e.c.Bootstrap(mustParse(t, clusterFile)); err != nil {
		t.Fatal(err)
	}
	want := []string{"1[,m)v1c1", "2[m,)v1c1"}
	if got := layout(e.c); !slices.Equal(got, want) {
		t.Fatalf("bootstrapped catalog = %v, want %v", got, want)
	}
	r, l := e.c.GetRegionByID(2)
	if l.GetId() != 202 || len(r.GetPeers()) != 3 || r.GetPeers()[0].GetRole() != metapb.PeerRole_VOTER {
		t.Fatalf("region 2 = %v leader %v; want 3 voters, leader 202", r, l)
	}
	if s, err := e.c.GetStore(2); err != nil || s.GetAddress() != "127.0.0.1:20161" || s.GetState() != metapb.StoreState_UP {
		t.Fatalf("store 2 = %v, %v", s, err)
	}

	// The catalog moves on.
	if err := e.c.HandleRegionHeartbeat(heartbeat(region(3, "g", "m", 2, 1, 1, 2, 3), 1)); err != nil {
		t.Fatal(err)
	}

	// A restart with a different cluster file: the persisted state wins.
	e.reopen()
	other := mustParse(t, strings.ReplaceAll(clusterFile, `"m"`, `"q"`))
	if err := e.c.Bootstrap(other); err != nil {
		t.Fatal(err)
	}
	want = []string{"3[g,m)v2c1", "2[m,)v1c1"}
	if got := layout(e.c); !slices.Equal(got, want) {
		t.Fatalf("catalog after restart = %v, want %v", got, want)
	}
	if up, _, _ := e.c.StoreCounts(); up != 3 {
		t.Fatalf("%d stores UP after restart, want 3", up)
	}
}

func TestBootstrapDockerScope(t *testing.T) {
	e := newEnv(t)
	e.opts.Scope = config.ScopeDocker
	e.c = New(e.st, e.opts)
	if err := e.c.Bootstrap(mustParse(t, clusterFile)); err != nil {
		t.Fatal(err)
	}
	if s, _ := e.c.GetStore(1); s.GetAddress() != "s1:20160" {
		t.Fatalf("store 1 address = %q, want the docker one", s.GetAddress())
	}
}

func TestBootstrapWithoutFile(t *testing.T) {
	e := newEnv(t)
	if err := e.c.Bootstrap(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Bootstrap(nil) = %v, want ErrInvalidArgument", err)
	}
	if ok, _ := e.c.Bootstrapped(); ok {
		t.Fatal("a failed bootstrap left the marker")
	}
}

func TestLoadCorruptRecord(t *testing.T) {
	tests := []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"undecodable region", storage.RegionKey(7), []byte{0x08}},
		{"region under another id", storage.RegionKey(7), mustMarshal(t, region(8, "x", "y", 1, 1, 1))},
		{"region without epoch", storage.RegionKey(7), mustMarshal(t, &metapb.Region{Id: 7, Peers: []*metapb.Peer{{Id: 1, StoreId: 1}}})},
		{"overlapping region", storage.RegionKey(7), mustMarshal(t, region(7, "a", "b", 1, 1, 1))},
		{"short region key", append([]byte(nil), storage.PrefixRegion...), mustMarshal(t, region(7, "x", "y", 1, 1, 1))},
		{"undecodable store", storage.StoreKey(9), []byte{0x08}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bootstrapped(t)
			b := e.st.NewBatch()
			b.Put(tt.key, tt.value)
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			err := e.c.Bootstrap(mustParse(t, clusterFile))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("load = %v, want ErrCorrupt", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, e.dir) || !strings.Contains(msg, strings.Trim(strconvQuote(tt.key), `"`)) {
				t.Fatalf("error %q does not name the key %q and the workdir %s", msg, tt.key, e.dir)
			}
		})
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strconvQuote(b []byte) string { return fmt.Sprintf("%q", b) }
