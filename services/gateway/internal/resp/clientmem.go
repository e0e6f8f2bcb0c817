package resp

import (
	"sync"
	"sync/atomic"
)

// ClientMemory bounds the memory every client's buffers hold together:
// Redis 7's maxmemory-clients. The per-client limits (client-query-buffer-limit,
// client-output-buffer-limit) bound one client; without a bound over all of
// them, a thousand clients each holding a reply just under its limit (one
// SRANDMEMBER with a negative count of a hundred million asks for 1 GiB of
// reply from a one-member set) would need a terabyte. When the sum would
// pass the limit, the clients holding the most are evicted (closed), the
// largest first, as Redis evicts them; the client whose buffer was growing
// is among them only if it holds the most.
//
// Accounts reserve in steps (buffers grow by doubling or by a quarter), so
// the lock is taken once per step of a large buffer, never for the small
// replies of ordinary commands: every buffer's first accountFree bytes are
// not counted, bounded instead by maxclients.
type ClientMemory struct {
	limit atomic.Int64 // 0: none (accounts still count, for INFO and CLIENT LIST)

	mu   sync.Mutex
	used int64 // bytes reserved by every live account
	// leaving is what evicted accounts still hold: their owners release it
	// as they notice the eviction. The budget counts used-leaving, so that
	// one eviction is not followed by more while its memory is on its way
	// out.
	leaving  int64
	accounts map[*ClientAccount]struct{} // those holding anything

	evictions atomic.Int64
}

// accountFree is how much of each buffer an account does not count: what a
// connection keeps between commands (a read buffer, a small reply buffer).
const accountFree = 64 << 10

// NewClientMemory returns a budget of limit bytes over all clients (0:
// none, until SetLimit sets one; the clients' buffers are counted anyway).
// A nil *ClientMemory is valid too: it has no accounts and bounds nothing.
func NewClientMemory(limit int64) *ClientMemory {
	m := &ClientMemory{accounts: make(map[*ClientAccount]struct{})}
	m.limit.Store(max(limit, 0))
	return m
}

// Limit is the budget in bytes (0: none).
func (m *ClientMemory) Limit() int64 {
	if m == nil {
		return 0
	}
	return m.limit.Load()
}

// SetLimit changes the budget (CONFIG SET maxmemory-clients); clients past
// a lower one are evicted at once, largest first.
func (m *ClientMemory) SetLimit(limit int64) {
	m.limit.Store(max(limit, 0))
	m.mu.Lock()
	victims, sizes := m.evictOver(nil, 0)
	m.mu.Unlock()
	m.tell(nil, victims, sizes)
}

// Used is what the clients' buffers hold past their free part.
func (m *ClientMemory) Used() int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// Evictions counts the clients evicted so far (INFO's evicted_clients).
func (m *ClientMemory) Evictions() int64 {
	if m == nil {
		return 0
	}
	return m.evictions.Load()
}

// NewAccount opens the account of one client. evict is called, without any
// lock of the budget held, when the client is evicted to make room for
// another: it must make the client's connection close soon (its buffers are
// released as they are dropped). It is called on the goroutine of the
// client whose growth made room necessary; for that client itself with
// self true, and then it must take no lock (that goroutine may hold its
// client's): its Grow returns false, and its owner closes it. For others
// evict may take the victim's locks, as long as no client grows its
// buffers while holding a lock evict takes: nothing may grow a Writer or
// Parser under such a lock. A nil budget returns a nil account.
func (m *ClientMemory) NewAccount(evict func(held int64, self bool)) *ClientAccount {
	if m == nil {
		return nil
	}
	return &ClientAccount{m: m, evict: evict}
}

// ClientAccount is what one client's buffers hold of a ClientMemory. A nil
// account grants everything.
type ClientAccount struct {
	m     *ClientMemory
	evict func(held int64, self bool)

	// Guarded by m.mu.
	held    int64
	closed  bool
	evicted atomic.Bool // read without the lock by Evicted
}

// Evicted reports whether the client was evicted: it must be closed, and
// its buffers dropped.
func (a *ClientAccount) Evicted() bool { return a != nil && a.evicted.Load() }

// Grow reserves n more bytes for the client. It reports false if the client
// is evicted, now or before: the caller drops the buffer it was growing
// (and releases what it held of it) and the client is closed. Other clients
// evicted to make room are told through their evict functions before Grow
// returns.
func (a *ClientAccount) Grow(n int64) bool {
	if a == nil || n <= 0 {
		return true
	}
	m := a.m
	m.mu.Lock()
	if a.closed || a.evicted.Load() {
		m.mu.Unlock()
		return false
	}
	a.held += n
	m.used += n
	m.accounts[a] = struct{}{}
	victims, sizes := m.evictOver(a, n)
	granted := !a.evicted.Load()
	if !granted {
		// Not reserved after all; what it held before leaves with it.
		a.held -= n
		m.used -= n
		m.leaving -= n
	}
	m.mu.Unlock()
	m.tell(a, victims, sizes)
	return granted
}

// evictOver marks the largest accounts evicted until the rest fit the
// limit, and returns them with what each held (asking, growing by n, is
// reported with what it held before). The caller holds m.mu and tells
// them (tell) once it let go of it.
func (m *ClientMemory) evictOver(asking *ClientAccount, n int64) (victims []*ClientAccount, sizes []int64) {
	for lim := m.limit.Load(); lim > 0 && m.used-m.leaving > lim; {
		v := m.largest()
		if v == nil {
			break
		}
		v.evicted.Store(true)
		m.leaving += v.held
		victims = append(victims, v)
		if v == asking {
			sizes = append(sizes, v.held-n)
		} else {
			sizes = append(sizes, v.held)
		}
	}
	return victims, sizes
}

// tell counts the evictions and calls the accounts' evict functions (see
// NewAccount: asking's with self true).
func (m *ClientMemory) tell(asking *ClientAccount, victims []*ClientAccount, sizes []int64) {
	for i, v := range victims {
		m.evictions.Add(1)
		if v.evict != nil {
			v.evict(sizes[i], v == asking)
		}
	}
}

// largest is the live, not yet evicted account holding the most; nil if
// there is none. The caller holds m.mu.
func (m *ClientMemory) largest() *ClientAccount {
	var best *ClientAccount
	for a := range m.accounts {
		if !a.evicted.Load() && (best == nil || a.held > best.held) {
			best = a
		}
	}
	return best
}

// Shrink releases n bytes the client reserved.
func (a *ClientAccount) Shrink(n int64) {
	if a == nil || n <= 0 {
		return
	}
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	if !a.closed {
		a.release(min(n, a.held))
	}
}

// Close releases whatever the client still holds (its connection ended);
// the account grants nothing after it.
func (a *ClientAccount) Close() {
	if a == nil {
		return
	}
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	if !a.closed {
		a.release(a.held)
		a.closed = true
	}
}

// release gives back n of what a holds. The caller holds m.mu.
func (a *ClientAccount) release(n int64) {
	m := a.m
	a.held -= n
	m.used -= n
	if a.evicted.Load() {
		m.leaving -= n
	}
	if a.held == 0 {
		delete(m.accounts, a)
	}
}

// Held is what the client holds past its buffers' free parts.
func (a *ClientAccount) Held() int64 {
	if a == nil {
		return 0
	}
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	return a.held
}

// Reservation tracks one buffer's share of an account: Fit makes it follow
// the buffer's capacity, past accountFree.
type Reservation struct {
	held int64
}

// Fit reserves (or releases) so that the reservation covers a buffer of
// capacity c. It reports false if the account refused: the client is
// evicted, the caller drops the buffer and calls Fit(a, 0).
func (r *Reservation) Fit(a *ClientAccount, c int) bool {
	if a == nil {
		return true
	}
	want := max(int64(c)-accountFree, 0)
	switch {
	case want > r.held:
		if !a.Grow(want - r.held) {
			return false
		}
	case want < r.held:
		a.Shrink(r.held - want)
	}
	r.held = want
	return true
}

// Extend is Fit for a buffer that may hold more than its capacity says (a
// slice advanced past what was sent keeps its array): it only ever grows
// the reservation.
func (r *Reservation) Extend(a *ClientAccount, c int) bool {
	if max(int64(c)-accountFree, 0) <= r.held {
		return true
	}
	return r.Fit(a, c)
}
