package kvsvc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/store/internal/mvcc"
)

// gcPD is PD for advanceSafePoint: a clock and a safe point, with a log of
// what was asked.
type gcPD struct {
	now, safePoint uint64
	log            []string
}

func (p *gcPD) GetTS(context.Context) (uint64, error) { return p.now, nil }
func (p *gcPD) GetGCSafePoint(context.Context) (uint64, error) {
	return p.safePoint, nil
}
func (p *gcPD) UpdateGCSafePoint(_ context.Context, sp uint64) (uint64, error) {
	p.log = append(p.log, "update")
	p.safePoint = max(p.safePoint, sp)
	return p.safePoint, nil
}

type gcLocks struct {
	pd  *gcPD
	at  []uint64
	err error
}

func (l *gcLocks) ResolveLocksForGC(_ context.Context, sp uint64) (int, error) {
	l.pd.log = append(l.pd.log, "resolve")
	l.at = append(l.at, sp)
	return 3, l.err
}

func TestAdvanceSafePointResolvesLocksFirst(t *testing.T) {
	ctx := context.Background()
	now := uint64(1_000_000) << mvcc.PhysicalShift
	want := uint64(1_000_000-10_000) << mvcc.PhysicalShift
	pd := &gcPD{now: now}
	locks := &gcLocks{pd: pd}
	n, err := advanceSafePoint(ctx, pd, locks, 10*time.Second)
	if err != nil || n != 3 {
		t.Fatalf("advanceSafePoint = %d, %v", n, err)
	}
	if pd.safePoint != want || len(locks.at) != 1 || locks.at[0] != want || strings.Join(pd.log, ",") != "resolve,update" {
		t.Fatalf("safe point %d, resolved at %v, calls %v; want locks resolved at %d, then the safe point stored", pd.safePoint, locks.at, pd.log, want)
	}

	// Nothing new to collect: no walk.
	pd.log = nil
	if n, err := advanceSafePoint(ctx, pd, locks, 10*time.Second); err != nil || n != 0 || len(pd.log) != 0 {
		t.Fatalf("again at the same time: %d, %v, calls %v", n, err, pd.log)
	}

	// A region that cannot be scanned or resolved keeps the safe point
	// where it was.
	pd.now += 5_000 << mvcc.PhysicalShift
	locks.err = errors.New("region unavailable")
	if _, err := advanceSafePoint(ctx, pd, locks, 10*time.Second); err == nil {
		t.Fatal("advanceSafePoint succeeded although lock resolution failed")
	}
	if pd.safePoint != want || strings.Join(pd.log, ",") != "resolve" {
		t.Fatalf("safe point %d (calls %v) after a failed resolution, want it left at %d", pd.safePoint, pd.log, want)
	}
	if _, err := advanceSafePoint(ctx, pd, nil, 10*time.Second); err == nil || pd.safePoint != want {
		t.Fatalf("without a lock resolver: %v, safe point %d", err, pd.safePoint)
	}
}
