package tsobench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"github.com/nokv/nokv/services/pd/internal/tso"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Pebble's background flush goroutines end asynchronously after Close.
		goleak.IgnoreTopFunction("github.com/cockroachdb/pebble.(*DB).maybeScheduleFlush.func1"),
	)
}

// tsoServer is a minimal PD serving only Tso: one Oracle.Get per request.
type tsoServer struct {
	pdpb.UnimplementedPDServer
	oracle   *tso.Oracle
	requests atomic.Int64 // TsoRequests answered
}

func (s *tsoServer) Tso(stream pdpb.PD_TsoServer) error {
	// One request and one response message for the stream's life: Send
	// marshals before returning, RecvMsg resets before unmarshalling.
	var req pdpb.TsoRequest
	var resp pdpb.TsoResponse
	for {
		if err := stream.RecvMsg(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		count := max(req.GetCount(), 1)
		first, err := s.oracle.Get(count)
		if err != nil {
			return fmt.Errorf("tso: %w", err)
		}
		s.requests.Add(1)
		resp.First, resp.Count = first, count
		if err := stream.Send(&resp); err != nil {
			return err
		}
	}
}

// staticWindow gives the server and the client fixed 1 MiB HTTP/2 flow
// control windows. That turns off gRPC's BDP estimation, whose pings add
// writes to every few round trips of a small-message stream.
var staticWindow = []any{
	grpc.InitialWindowSize(1 << 20), grpc.InitialConnWindowSize(1 << 20),
	grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20),
}

// start runs the server on a free loopback port and returns a client on it;
// everything is torn down at cleanup. opts are grpc.ServerOption and
// grpc.DialOption values.
func start(b *testing.B, opts ...any) (*pdclient.TSOClient, *tsoServer) {
	b.Helper()
	st, err := storage.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	oracle, err := tso.New(st, tso.Options{})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var srvOpts []grpc.ServerOption
	dialOpts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.ServerOption:
			srvOpts = append(srvOpts, o)
		case grpc.DialOption:
			dialOpts = append(dialOpts, o)
		default:
			b.Fatalf("option %T is neither a server nor a dial option", o)
		}
	}
	srv := grpc.NewServer(srvOpts...)
	svc := &tsoServer{oracle: oracle}
	pdpb.RegisterPDServer(srv, svc)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	conn, err := grpc.NewClient(lis.Addr().String(), dialOpts...)
	if err != nil {
		b.Fatal(err)
	}
	c, err := pdclient.NewTSOClient(pdpb.NewPDClient(conn), pdclient.TSOOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		conn.Close()
		srv.Stop()
		wg.Wait()
		oracle.Close()
		st.Close()
	})
	return c, svc
}

// BenchmarkTSO drives GetTS from 1, 16 and 256 concurrent callers with
// default gRPC options; every call is one timestamp, so ts/s is calls per
// second and ts/req the average batch.
func BenchmarkTSO(b *testing.B) {
	for _, callers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			c, svc := start(b)
			drive(b, c, svc, callers)
		})
	}
}

// BenchmarkTSOStaticWindow is BenchmarkTSO's 256 callers with static flow
// control windows (no BDP pings).
func BenchmarkTSOStaticWindow(b *testing.B) {
	b.Run("callers=256", func(b *testing.B) {
		c, svc := start(b, staticWindow...)
		drive(b, c, svc, 256)
	})
}

// drive runs b.N GetTS calls spread over callers goroutines.
func drive(b *testing.B, c *pdclient.TSOClient, svc *tsoServer, callers int) {
	ctx := context.Background()
	if _, err := c.GetTS(ctx); err != nil { // connected and warm
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	reqs := svc.requests.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			var last uint64
			for next.Add(1) <= int64(b.N) {
				ts, err := c.GetTS(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				if ts <= last {
					b.Errorf("timestamp %d after %d", ts, last)
					return
				}
				last = ts
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ts/s")
	b.ReportMetric(float64(b.N)/float64(svc.requests.Load()-reqs), "ts/req")
}
