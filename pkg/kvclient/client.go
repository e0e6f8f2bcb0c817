package kvclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/pdclient"
)

// Client is NoKV's transactional KV client: snapshot reads and Percolator
// transactions over the cluster's multi-raft stores, routed with PD's
// region cache. It is safe for concurrent use; see the package
// documentation for the protocol and the retry rules.
type Client struct {
	pd   *pdclient.Client
	opts Options

	// ownPD is set when New created pd and pdConn: Close closes them.
	ownPD  bool
	pdConn *pdclient.MemberConn

	connMu sync.RWMutex
	conns  map[string]*storeConn // by store address

	resolver *lockResolver
	stats    counters

	// life is cancelled by Close; waits and calls in progress watch it.
	life      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once

	// bg counts the background retries of secondary commits and the lock
	// heartbeats of commits in progress, which Close stops and waits for;
	// bgMu orders their start against Close, and bgSlots bounds the
	// retries.
	bgMu    sync.Mutex
	bg      sync.WaitGroup
	bgSlots chan struct{}
}

type storeConn struct {
	cc     *grpc.ClientConn
	client storepb.StoreClient
}

// New dials PD at pdAddr (one address, or a PD group's members separated by
// commas: calls follow the group's leader), checks that it hands out a timestamp within ctx,
// and returns a client that owns its connections to PD and to the stores.
func New(ctx context.Context, pdAddr string, opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if pdAddr == "" {
		return nil, fmt.Errorf("%w: empty PD address", ErrInvalidOptions)
	}
	conn, err := pdclient.Dial(pdAddr, dialOptions(opts)...)
	if err != nil {
		return nil, fmt.Errorf("kvclient: dial PD %s: %w", pdAddr, err)
	}
	pd, err := pdclient.New(conn, opts.PD)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("kvclient: PD client: %w", err)
	}
	c := newClient(pd, opts)
	c.ownPD, c.pdConn = true, conn
	if _, err := c.pd.GetTS(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("kvclient: PD %s does not answer: %w", pdAddr, err)
	}
	return c, nil
}

// NewWithPD returns a client that routes and gets timestamps through pd,
// which the caller keeps ownership of (Close does not close it). The
// client shares pd's region cache.
func NewWithPD(pd *pdclient.Client, opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if pd == nil {
		return nil, fmt.Errorf("%w: nil PD client", ErrInvalidOptions)
	}
	return newClient(pd, opts), nil
}

func newClient(pd *pdclient.Client, opts Options) *Client {
	life, cancel := context.WithCancel(context.Background())
	c := &Client{
		pd:      pd,
		opts:    opts.withDefaults(),
		conns:   make(map[string]*storeConn),
		life:    life,
		cancel:  cancel,
		bgSlots: make(chan struct{}, maxSecondaryRetriers),
	}
	c.resolver = newLockResolver(c)
	return c
}

func dialOptions(opts Options) []grpc.DialOption {
	bc := backoff.DefaultConfig
	bc.MaxDelay = 2 * time.Second
	return append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A restarted store should be reachable again within a couple of
		// seconds, not gRPC's default two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 2 * time.Second}),
		// Whatever may be written must come back: a value up to
		// limits.MaxValueSize, pages of responses up to about
		// limits.ResponsePageBytes. gRPC's default of 4 MiB would not do.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limits.GRPCMaxMessageSize), grpc.MaxCallSendMsgSize(limits.GRPCMaxMessageSize)),
	}, opts.DialOptions...)
}

// Close fails calls in progress and later ones with ErrClosed, stops the
// background retries of secondary commits (their locks are left to readers
// and GC) and the lock heartbeats of commits in progress, and closes the client's store connections, and PD's if New
// created it. It is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		// Under bgMu, so that no background retry starts afterwards.
		c.bgMu.Lock()
		c.cancel()
		c.bgMu.Unlock()
		c.bg.Wait()
		c.connMu.Lock()
		conns := c.conns
		c.conns = map[string]*storeConn{}
		c.connMu.Unlock()
		for _, sc := range conns {
			sc.cc.Close()
		}
		if c.ownPD {
			c.pd.Close()
			c.pdConn.Close()
		}
	})
}

// PD returns the PD client the client routes with.
func (c *Client) PD() *pdclient.Client { return c.pd }

// storeClient returns the pooled connection to the store at addr.
func (c *Client) storeClient(addr string) (storepb.StoreClient, error) {
	c.connMu.RLock()
	sc := c.conns[addr]
	c.connMu.RUnlock()
	if sc != nil {
		return sc.client, nil
	}
	c.connMu.Lock()
	defer c.connMu.Unlock()
	if c.life.Err() != nil {
		return nil, ErrClosed
	}
	if sc = c.conns[addr]; sc != nil {
		return sc.client, nil
	}
	cc, err := grpc.NewClient(addr, dialOptions(c.opts)...)
	if err != nil {
		return nil, fmt.Errorf("kvclient: dial store %s: %w", addr, err)
	}
	sc = &storeConn{cc: cc, client: storepb.NewStoreClient(cc)}
	c.conns[addr] = sc
	return sc.client, nil
}

// storeAddr returns the address of a store, from PD's store cache.
func (c *Client) storeAddr(ctx context.Context, storeID uint64) (string, error) {
	st, err := c.pd.GetStore(ctx, storeID)
	if err != nil {
		return "", err
	}
	if st.GetState() == metapb.StoreState_TOMBSTONE || st.GetAddress() == "" {
		c.pd.InvalidateStore(storeID)
		return "", fmt.Errorf("kvclient: store %d is %v with address %q: %w", storeID, st.GetState(), st.GetAddress(), pdclient.ErrStoreTombstone)
	}
	return st.GetAddress(), nil
}

// getTS returns a fresh timestamp from PD, retrying a broken TSO stream
// within the retry budget of bo.
func (c *Client) getTS(ctx context.Context, bo *backoffer) (uint64, error) {
	for {
		if err := c.ctxErr(ctx); err != nil {
			return 0, err
		}
		ts, err := c.pd.GetTS(ctx)
		if err == nil {
			return ts, nil
		}
		if errors.Is(err, pdclient.ErrClosed) {
			return 0, ErrClosed
		}
		if !errors.Is(err, pdclient.ErrUnavailable) {
			if cerr := c.ctxErr(ctx); cerr != nil {
				return 0, cerr
			}
			return 0, fmt.Errorf("kvclient: get timestamp: %w", err)
		}
		if err := bo.retry(ctx, err, true, 0); err != nil {
			return 0, err
		}
	}
}

// CurrentTS returns a fresh timestamp from PD.
func (c *Client) CurrentTS(ctx context.Context) (uint64, error) {
	return c.getTS(ctx, c.newBackoffer())
}

// Get reads key at a fresh timestamp. found is false if the key is absent,
// deleted or expired.
func (c *Client) Get(ctx context.Context, key []byte) (e Entry, found bool, err error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return Entry{}, false, err
	}
	return c.Snapshot(ts).Get(ctx, key)
}

// BatchGet reads keys at one fresh timestamp; see Snapshot.BatchGet.
func (c *Client) BatchGet(ctx context.Context, keys [][]byte) (map[string]Entry, error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return nil, err
	}
	return c.Snapshot(ts).BatchGet(ctx, keys)
}

// GetHead reads key's head at a fresh timestamp; see Snapshot.GetHead.
func (c *Client) GetHead(ctx context.Context, key []byte, prefixLen int) (h Head, found bool, err error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return Head{}, false, err
	}
	return c.Snapshot(ts).GetHead(ctx, key, prefixLen)
}

// BatchGetHeads reads the heads of keys at one fresh timestamp; see
// Snapshot.BatchGetHeads.
func (c *Client) BatchGetHeads(ctx context.Context, keys [][]byte, prefixLen int) (map[string]Head, error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return nil, err
	}
	return c.Snapshot(ts).BatchGetHeads(ctx, keys, prefixLen)
}

// Scan reads [start, end) at one fresh timestamp; see Snapshot.Scan.
func (c *Client) Scan(ctx context.Context, start, end []byte, limit int) ([]Entry, error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return nil, err
	}
	return c.Snapshot(ts).Scan(ctx, start, end, limit)
}

// ScanFunc reads [start, end) at one fresh timestamp; see
// Snapshot.ScanFunc.
func (c *Client) ScanFunc(ctx context.Context, start, end []byte, opts ScanOptions, fn func(Entry) bool) ([]byte, error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return nil, err
	}
	return c.Snapshot(ts).ScanFunc(ctx, start, end, opts, fn)
}

// Set writes key=value (expiring at expiresAtMs, Unix milliseconds; 0
// never) in a transaction of its own, retried on conflicts.
func (c *Client) Set(ctx context.Context, key, value []byte, expiresAtMs int64) error {
	return c.RunTxn(ctx, func(txn *Txn) error { return txn.Set(key, value, expiresAtMs) })
}

// Delete deletes keys in one transaction, retried on conflicts.
func (c *Client) Delete(ctx context.Context, keys ...[]byte) error {
	return c.RunTxn(ctx, func(txn *Txn) error {
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Begin starts a transaction at a fresh timestamp from PD.
func (c *Client) Begin(ctx context.Context) (*Txn, error) {
	ts, err := c.CurrentTS(ctx)
	if err != nil {
		return nil, err
	}
	return c.newTxn(ts), nil
}

// Conflict backoff of RunTxn: full jitter over a window doubling from
// txnMinBackoff to txnMaxBackoff, so that contenders spread out quickly.
const (
	txnMinBackoff = 2 * time.Millisecond
	txnMaxBackoff = 200 * time.Millisecond
)

// RunTxn runs fn in a transaction and commits it. If fn or the commit
// fails with a retryable error (IsRetryable: a write conflict, or the
// transaction rolled back by another client), the transaction is rolled
// back and the whole of it, fn included, runs again with a new start
// timestamp, after a jittered backoff, at most Options.TxnRetries times.
// fn must therefore have no effects other than on its Txn. Any other error
// of fn rolls the transaction back and is returned as is; a commit error
// that is not retryable (ErrCommitUndetermined among them) is returned
// without retrying.
func (c *Client) RunTxn(ctx context.Context, fn func(txn *Txn) error) error {
	for attempt := 0; ; attempt++ {
		txn, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		err = fn(txn)
		if err == nil {
			err = txn.Commit(ctx)
		} else {
			txn.Rollback()
		}
		if err == nil || !IsRetryable(err) {
			return err
		}
		if attempt >= c.opts.TxnRetries {
			return fmt.Errorf("kvclient: transaction failed %d times, the last with: %w", attempt+1, err)
		}
		c.stats.txnRetries.Add(1)
		window := expBackoff(txnMinBackoff, txnMaxBackoff, attempt+1)
		if err := c.sleep(ctx, randDuration(window), err); err != nil {
			return err
		}
	}
}

// Stats counts what the client did since it was created.
type Stats struct {
	// Txns is the number of transactions that committed writes; OnePC and
	// TwoPC split it by protocol.
	Txns  uint64
	OnePC uint64
	TwoPC uint64
	// Conflicts counts commits that failed with a retryable error;
	// TxnRetries the retries RunTxn made.
	Conflicts  uint64
	TxnRetries uint64
	// RegionRetries counts failed attempts of requests (region errors,
	// unreachable stores) that were retried or gave up.
	RegionRetries uint64
	// LocksResolved counts locks committed or rolled back on behalf of
	// other transactions; LockWaits the waits for live locks.
	LocksResolved uint64
	LockWaits     uint64
	// SecondaryCommitFailures counts committed transactions whose
	// secondaries failed to commit at the first attempt; they are retried
	// in the background. SecondaryCommitsRecovered counts those a retry
	// committed, SecondaryCommitsAbandoned those given up (retries spent,
	// a store's definitive answer, too many retries at once, or Close),
	// whose locks readers and GC resolve from the primary.
	// RollbackFailures counts rollbacks that failed (the locks expire).
	SecondaryCommitFailures   uint64
	SecondaryCommitsRecovered uint64
	SecondaryCommitsAbandoned uint64
	RollbackFailures          uint64
	// LockHeartbeats counts the heartbeats that kept a committing
	// transaction's primary lock alive (TxnHeartBeat answered without an
	// error).
	LockHeartbeats uint64
	// Reads counts the read responses (Get, BatchGet, Scan; head reads
	// included) the stores answered without a region error; ValueBytesRead
	// the bytes of values they carried (a head read's prefixes only).
	Reads          uint64
	ValueBytesRead uint64
}

type counters struct {
	txns, onePC, twoPC, conflicts, txnRetries atomic.Uint64
	regionRetries, locksResolved, lockWaits   atomic.Uint64
	secondaryCommitErrors, rollbackErrors     atomic.Uint64
	secondaryRecovered, secondaryAbandoned    atomic.Uint64
	reads, valueBytesRead                     atomic.Uint64
	heartbeats                                atomic.Uint64
}

// countRead counts a read response carrying n bytes of values.
func (s *counters) countRead(n int) {
	s.reads.Add(1)
	s.valueBytesRead.Add(uint64(n))
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Txns:                      s.txns.Load(),
		OnePC:                     s.onePC.Load(),
		TwoPC:                     s.twoPC.Load(),
		Conflicts:                 s.conflicts.Load(),
		TxnRetries:                s.txnRetries.Load(),
		RegionRetries:             s.regionRetries.Load(),
		LocksResolved:             s.locksResolved.Load(),
		LockWaits:                 s.lockWaits.Load(),
		SecondaryCommitFailures:   s.secondaryCommitErrors.Load(),
		SecondaryCommitsRecovered: s.secondaryRecovered.Load(),
		SecondaryCommitsAbandoned: s.secondaryAbandoned.Load(),
		RollbackFailures:          s.rollbackErrors.Load(),
		LockHeartbeats:            s.heartbeats.Load(),
		Reads:                     s.reads.Load(),
		ValueBytesRead:            s.valueBytesRead.Load(),
	}
}
