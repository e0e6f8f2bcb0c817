package embedded

import (
	"testing"
	"time"
)

func TestSyncWindowOnlyWhenWritersWait(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	if s.opts.SyncWindow != DefaultSyncWindow {
		t.Fatalf("default SyncWindow = %v", s.opts.SyncWindow)
	}
	for waiters, want := range map[int64]time.Duration{0: 0, 1: 0, 2: DefaultSyncWindow, 50: DefaultSyncWindow} {
		s.syncWaiters.Store(waiters)
		if got := s.syncWindow(); got != want {
			t.Errorf("with %d waiting for an fsync the window is %v, want %v", waiters, got, want)
		}
	}
	s.syncWaiters.Store(0)

	off, err := Open(Options{Dir: t.TempDir(), Sync: SyncAlways, SyncWindow: -1, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	off.syncWaiters.Store(10)
	if got := off.syncWindow(); got != 0 {
		t.Errorf("a negative SyncWindow still waits %v", got)
	}
	off.syncWaiters.Store(0)
}
