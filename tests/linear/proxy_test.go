package linear

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxy forwards TCP connections to one store. It knows which process
// opened each connection (from /proc, as all run on this machine), so the
// test can cut the store off from some processes and not others: a cut
// closes their open connections and holds new ones open without
// forwarding a byte, as a network that drops packets would.
type proxy struct {
	ln       net.Listener
	target   string
	sourceOf func(port int) string

	mu    sync.Mutex
	cuts  map[string]bool
	conns map[net.Conn]string // accepted connection → its source
	held  map[net.Conn]bool   // accepted from a cut source, not forwarded
	wg    sync.WaitGroup
}

func startProxy(target string, sourceOf func(port int) string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &proxy{ln: ln, target: target, sourceOf: sourceOf,
		cuts: map[string]bool{}, conns: map[net.Conn]string{}, held: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		src := p.sourceOf(conn.RemoteAddr().(*net.TCPAddr).Port)
		p.mu.Lock()
		if p.cuts[src] {
			p.held[conn] = true
			p.mu.Unlock()
			continue
		}
		p.conns[conn] = src
		p.mu.Unlock()
		p.wg.Add(1)
		go p.forward(conn)
	}
}

// forward copies both ways between conn and a new connection to the store.
func (p *proxy) forward(conn net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, conn)
		p.mu.Unlock()
		conn.Close()
	}()
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return // the store is down: the client sees its connection closed
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
	<-done
	// One side ended: end both, and wait for the other copy.
	conn.Close()
	up.Close()
	<-done
}

// cut stops traffic from the process named src.
func (p *proxy) cut(src string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts[src] = true
	for conn, s := range p.conns {
		if s == src {
			conn.Close()
		}
	}
}

// heal lifts every cut; connections held meanwhile are closed, so their
// clients dial again.
func (p *proxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts = map[string]bool{}
	for conn := range p.held {
		conn.Close()
	}
	p.held = map[net.Conn]bool{}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for conn := range p.conns {
		conn.Close()
	}
	for conn := range p.held {
		conn.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// ownerOfPort finds which of pids owns the loopback TCP socket bound to
// local port port, and returns its name from pids, or "".
func ownerOfPort(port int, pids map[int]string) string {
	inode, err := socketInode(port)
	if err != nil || inode == "" {
		return ""
	}
	want := "socket:[" + inode + "]"
	for pid, name := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if link, err := os.Readlink(dir + "/" + e.Name()); err == nil && link == want {
				return name
			}
		}
	}
	return ""
}

// socketInode reads /proc/net/tcp for the socket whose local address is
// 127.0.0.1:port.
func socketInode(port int) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == local {
			if _, err := strconv.Atoi(fields[9]); err == nil && fields[9] != "0" {
				return fields[9], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no socket")
}
