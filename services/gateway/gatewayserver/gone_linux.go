//go:build linux

package gatewayserver

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// fdGone reports whether the peer of socket fd closed its side (or the
// socket failed), without reading: bytes the client pipelined behind a
// blocked command stay for the commands after it. POLLRDHUP is reported
// even when such bytes are pending.
func fdGone(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return true
		}
		return n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
	}
}

// connGone is fdGone for a connection of redcon's server.
func connGone(c net.Conn) bool {
	if g, ok := c.(*resp.GuardedConn); ok {
		c = g.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	if err := raw.Control(func(fd uintptr) { gone = fdGone(int(fd)) }); err != nil {
		return true // closed
	}
	return gone
}
