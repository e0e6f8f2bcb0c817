package cluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Port is a loopback TCP port held for a server that has not started yet.
// The socket is bound but not listening: connections to it are refused at
// once (as to a stopped server), while the kernel will not hand the port to
// an outgoing connection of another server meanwhile — which a port only
// looked up and closed can suffer, since ephemeral ports come from the same
// range.
type Port struct {
	Addr string
	fd   int
}

// ReservePort holds a free loopback port, below the kernel's ephemeral
// range when there is room: between Release and its server's bind, a port
// in that range can be handed to an outgoing connection as its source port
// (a CI rehearsal's store failed to start on "address already in use" for
// its metrics port, with tests in other packages connecting meanwhile);
// ports below it are only ever taken by a bind.
func ReservePort() (*Port, error) {
	if lo := ephemeralLow(); lo > minFixedPort+1000 {
		for range 64 {
			if p, err := hold(net.IPv4(127, 0, 0, 1).To4(), minFixedPort+rand.IntN(lo-minFixedPort), false); err == nil {
				return p, nil
			}
		}
	}
	return HoldPort("127.0.0.1:0")
}

// minFixedPort is the lowest port ReservePort picks: past the usual
// services' (Redis 6379, etcd 2379, ...).
const minFixedPort = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (0 if
// unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0
	}
	return lo
}

// HoldPort holds the port of addr, e.g. again after its server stopped.
func HoldPort(addr string) (*Port, error) {
	tcp, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	// The server will bind with SO_REUSEADDR as Go does; so must we, or a
	// port in TIME_WAIT could not be held.
	return hold(tcp.IP.To4(), tcp.Port, true)
}

// hold binds ip:port (port 0: any). Without reuseAddr the bind fails on a
// port any socket holds, another process's hold included (two sockets bound
// with SO_REUSEADDR may share a port until one listens): a port picked by
// number must be free.
func hold(ip net.IP, port int, reuseAddr bool) (*Port, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve port: %w", err)
	}
	if reuseAddr {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if len(ip) != net.IPv4len {
		unix.Close(fd)
		return nil, fmt.Errorf("reserve port %d: %v is not an IPv4 address", port, ip)
	}
	sa := &unix.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("reserve port %d: %w", port, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("reserve port: %w", err)
	}
	in := got.(*unix.SockaddrInet4)
	return &Port{Addr: fmt.Sprintf("%s:%d", net.IP(in.Addr[:]), in.Port), fd: fd}, nil
}

// Release frees the port for its server to bind. It is idempotent.
func (p *Port) Release() {
	if p != nil && p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}
