package cluster

import (
	"net"
	"strconv"
	"testing"
)

// A reserved port is below the ephemeral range (where outgoing connections
// take their source ports) when there is room, and held: nobody else can
// reserve it, and its server binds it once it is released.
func TestReservePortHoldsAFixedPort(t *testing.T) {
	p, err := ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	_, portStr, _ := net.SplitHostPort(p.Addr)
	port, _ := strconv.Atoi(portStr)
	if lo := ephemeralLow(); lo > minFixedPort+1000 && (port < minFixedPort || port >= lo) {
		t.Fatalf("reserved %d, outside [%d, %d)", port, minFixedPort, lo)
	}
	if q, err := hold(net.IPv4(127, 0, 0, 1).To4(), port, false); err == nil {
		q.Release()
		t.Fatal("a held port was reserved again")
	}
	p.Release()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		t.Fatalf("the server cannot bind its released port: %v", err)
	}
	ln.Close()
	q, err := HoldPort(p.Addr)
	if err != nil {
		t.Fatalf("HoldPort again after the server stopped: %v", err)
	}
	q.Release()
}
