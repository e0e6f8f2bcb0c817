package cluster

import (
	"fmt"
	"net"

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

// ReservePort holds a free loopback port.
func ReservePort() (*Port, error) { return HoldPort("127.0.0.1:0") }

// HoldPort holds the port of addr, e.g. again after its server stopped.
func HoldPort(addr string) (*Port, error) {
	tcp, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reserve port: %w", err)
	}
	// The server will bind with SO_REUSEADDR as Go does; so must we, or a
	// port in TIME_WAIT could not be held.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	sa := &unix.SockaddrInet4{Port: tcp.Port}
	copy(sa.Addr[:], tcp.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("reserve port %s: %w", addr, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("reserve port: %w", err)
	}
	in := got.(*unix.SockaddrInet4)
	return &Port{Addr: fmt.Sprintf("127.0.0.1:%d", in.Port), fd: fd}, nil
}

// Release frees the port for its server to bind. It is idempotent.
func (p *Port) Release() {
	if p != nil && p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}
