package resp

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// evictLog records the evictions a budget makes.
type evictLog struct {
	mu   sync.Mutex
	gone map[string]int64
}

func (l *evictLog) account(m *ClientMemory, name string) *ClientAccount {
	return m.NewAccount(func(held int64, self bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.gone == nil {
			l.gone = map[string]int64{}
		}
		l.gone[name] = held
	})
}

func (l *evictLog) evicted(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.gone[name]
	return ok
}

// Past the budget the largest client goes first; the one growing is refused
// only when it is the largest; an evicted client's memory stops counting
// against others while it leaves.
func TestClientMemoryEvictsLargestFirst(t *testing.T) {
	m := NewClientMemory(100)
	var log evictLog
	a, b, c := log.account(m, "a"), log.account(m, "b"), log.account(m, "c")
	if !a.Grow(60) || !b.Grow(30) {
		t.Fatal("within the budget: refused")
	}
	// c grows to 20: 110 in all; a (60) is the largest and goes.
	if !c.Grow(20) {
		t.Fatal("c was refused though a held more")
	}
	if !log.evicted("a") || log.evicted("b") || log.evicted("c") {
		t.Fatalf("evicted %v, want a only", log.gone)
	}
	if log.gone["a"] != 60 || !a.Evicted() || a.Grow(1) {
		t.Fatalf("a: evicted with %d, Evicted %v", log.gone["a"], a.Evicted())
	}
	// a's 60 are leaving: b and c may take 100 between them meanwhile.
	if !c.Grow(45) {
		t.Fatal("c refused while a's memory was on its way out")
	}
	if m.Evictions() != 1 {
		t.Fatalf("evictions %d", m.Evictions())
	}
	// c (65) is now the largest: its next growth past the budget evicts it.
	if c.Grow(10) {
		t.Fatal("the largest client's growth past the budget was granted")
	}
	if !c.Evicted() || log.gone["c"] != 65 || log.evicted("b") {
		t.Fatalf("evicted %v", log.gone)
	}
	a.Close()
	c.Shrink(65)
	c.Close()
	if got := m.Used(); got != 30 {
		t.Fatalf("used %d after a and c left, want b's 30", got)
	}
	b.Shrink(30)
	b.Close()
	b.Shrink(5) // after Close: ignored
	if got := m.Used(); got != 0 {
		t.Fatalf("used %d after every client left", got)
	}
}

// Without a limit (maxmemory-clients 0) everything is granted and counted;
// a limit set later evicts at once those past it, largest first.
func TestClientMemoryLimitSetLater(t *testing.T) {
	m := NewClientMemory(0)
	var log evictLog
	a, b := log.account(m, "a"), log.account(m, "b")
	if !a.Grow(1<<40) || !b.Grow(10) || m.Used() != 1<<40+10 || m.Limit() != 0 {
		t.Fatalf("no limit: used %d", m.Used())
	}
	m.SetLimit(100)
	if !log.evicted("a") || log.evicted("b") || m.Evictions() != 1 {
		t.Fatalf("SetLimit(100) evicted %v", log.gone)
	}
	if !b.Grow(80) || b.Grow(20) {
		t.Fatal("b: 90 should fit the limit of 100, 110 not")
	}
	var none *ClientMemory
	if none.NewAccount(nil) != nil || none.Used() != 0 || none.Limit() != 0 {
		t.Fatal("a nil budget counted")
	}
	var acct *ClientAccount
	if !acct.Grow(1<<62) || acct.Evicted() {
		t.Fatal("a nil account refused")
	}
	acct.Shrink(1)
	acct.Close()
}

// A reply buffer counts what it holds past its free part; a reply the
// budget cannot hold overflows the writer (the client is closed) and gives
// its memory back.
func TestWriterCountsAgainstClientMemory(t *testing.T) {
	m := NewClientMemory(1 << 20)
	var log evictLog
	w := Writer{Mem: log.account(m, "w")}
	elem := []byte(strings.Repeat("x", 1000))
	for range 60 {
		w.Bulk(elem)
	}
	if w.Overflowed() || m.Used() != max(int64(cap(w.Bytes()))-accountFree, 0) || m.Used() > 1024 {
		t.Fatalf("60 KB reply: overflowed %v, used %d of cap %d (the first 64 KiB are free)", w.Overflowed(), m.Used(), cap(w.Bytes()))
	}
	for range 500 {
		w.Bulk(elem)
	}
	if w.Overflowed() || m.Used() < int64(w.Len()-accountFree) || m.Used() > int64(cap(w.Bytes())) {
		t.Fatalf("560 KB reply: overflowed %v, used %d, len %d cap %d", w.Overflowed(), m.Used(), w.Len(), cap(w.Bytes()))
	}
	w.Release()
	if m.Used() != 0 {
		t.Fatalf("used %d after Release", m.Used())
	}
	n := 0
	for ; n < 2000 && !w.Overflowed(); n++ {
		w.Bulk(elem)
	}
	if !w.Overflowed() || !log.evicted("w") || w.Len() != 0 {
		t.Fatalf("2 MB reply under a 1 MiB budget: overflowed %v after %d elements, evicted %v", w.Overflowed(), n, log.evicted("w"))
	}
	if m.Used() != 0 {
		t.Fatalf("used %d after the overflow", m.Used())
	}
	// The writer writes nothing more (the client is being closed).
	w.OK()
	if w.Len() != 0 {
		t.Fatal("an overflowed writer wrote")
	}
}

// A request's buffer counts too: a client sending a bulk the budget cannot
// hold is evicted, its bytes dropped.
func TestParserCountsAgainstClientMemory(t *testing.T) {
	m := NewClientMemory(1 << 20)
	var log evictLog
	p := NewParser(Limits{})
	p.Mem = log.account(m, "p")
	p.Feed([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4000000\r\n"))
	chunk := bytes.Repeat([]byte("v"), 64<<10)
	fed := 0
	for ; fed < 4000000 && !p.Evicted(); fed += len(chunk) {
		p.Feed(chunk)
		if m.Used() > 1<<20 {
			t.Fatalf("used %d past the 1 MiB budget", m.Used())
		}
	}
	if !p.Evicted() || !log.evicted("p") {
		t.Fatalf("a 4 MB request under a 1 MiB budget: not evicted after %d bytes", fed)
	}
	if fed > 2<<20 {
		t.Fatalf("evicted only after %d bytes", fed)
	}
	if p.Buffered() != 0 || m.Used() != 0 {
		t.Fatalf("buffered %d, used %d after the eviction", p.Buffered(), m.Used())
	}
	if n, err := p.Fill(bytes.NewReader(chunk)); n != 0 || err != ErrClientEvicted {
		t.Fatalf("Fill after the eviction: %d, %v", n, err)
	}
}

// A request of many empty arguments grows the parser's argument index
// (16 bytes per 6 received) past its buffer: the index counts too.
func TestParserCountsItsArgumentIndex(t *testing.T) {
	feed := func(budget int64) (*Parser, *ClientMemory) {
		m := NewClientMemory(budget)
		p := NewParser(Limits{})
		p.Mem = m.NewAccount(nil)
		p.Feed([]byte("*100000000\r\n"))
		chunk := bytes.Repeat([]byte("$0\r\n\r\n"), 10000)
		for range 300 { // 18 MB
			p.Feed(chunk)
			if args, err := p.Next(); args != nil || err != nil {
				t.Fatal(args, err)
			}
		}
		return p, m
	}
	p, _ := feed(1 << 30)
	idx := int64(cap(p.offs)) * 8
	if held := p.Mem.Held(); p.Evicted() || held < idx {
		t.Fatalf("the argument index holds %d bytes, the account counts %d in all", idx, held)
	}
	// 18 MB of buffer and ~48 MB of index do not fit 64 MiB.
	p, m := feed(64 << 20)
	if !p.Evicted() || m.Used() != 0 || cap(p.offs) != 0 {
		t.Fatalf("under 64 MiB: evicted %v, used %d, index %d", p.Evicted(), m.Used(), cap(p.offs))
	}
}
