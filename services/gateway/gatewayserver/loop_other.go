//go:build !linux

package gatewayserver

import (
	"errors"
	"net"
)

// eventLoop exists on Linux only; elsewhere every backend uses redcon's
// server.
type eventLoop struct{ done chan struct{} }

func newEventLoop(*Server, net.Listener) (*eventLoop, error) {
	return nil, errors.New("event loop: Linux only")
}

func (l *eventLoop) run()  {}
func (l *eventLoop) stop() {}
