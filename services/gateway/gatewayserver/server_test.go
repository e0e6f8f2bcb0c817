package gatewayserver_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis's pool reaper and Pebble's background goroutines end
		// asynchronously after Close.
		goleak.IgnoreTopFunction("github.com/cockroachdb/pebble.(*DB).maybeScheduleFlush.func1"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// startServer runs an embedded gateway on a free loopback port.
func startServer(t testing.TB, mutate func(*gatewayserver.Config)) *gatewayserver.Server {
	t.Helper()
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.WorkDir = t.TempDir()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := gatewayserver.New(cfg, nil)
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return srv
}

func TestConformanceEmbedded(t *testing.T) {
	srv := startServer(t, nil)
	conformance.Run(t, conformance.Target{Addr: srv.Addr()})
}

// redcon's server serves the raft backend, and the embedded one off Linux.
func TestConformanceEmbeddedRedconServer(t *testing.T) {
	t.Cleanup(gatewayserver.ServeWithRedcon())
	srv := startServer(t, nil)
	conformance.Run(t, conformance.Target{Addr: srv.Addr()})
}

// Random draws (SPOP, SRANDMEMBER, HRANDFIELD, ZRANDMEMBER) walk the
// elements rather than read them: bounded reads, fair draws.
func TestRandomPicksEmbedded(t *testing.T) {
	srv := startServer(t, nil)
	conformance.RunRandomPicks(t, srv.Addr(), conformance.RandomPicks{})
}

// Pops from both ends of a sorted set step over a bounded number of
// sub-keys each, not the deletions earlier pops left (command/zmarks.go).
func TestZPopStepsEmbedded(t *testing.T) {
	srv := startServer(t, nil)
	conformance.RunZPopSteps(t, srv.Addr(), 3000)
}
