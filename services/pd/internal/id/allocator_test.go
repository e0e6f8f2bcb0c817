package id

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/nokv/nokv/services/pd/internal/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Pebble's background flush goroutines end asynchronously after Close.
		goleak.IgnoreTopFunction("github.com/cockroachdb/pebble.(*DB).maybeScheduleFlush.func1"),
	)
}

func openStorage(t testing.TB, dir string) *storage.Storage {
	t.Helper()
	st, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	return st
}

func newAllocator(t testing.TB, st *storage.Storage, floor uint64) *Allocator {
	t.Helper()
	a, err := New(st, floor)
	if err != nil {
		t.Fatalf("new allocator: %v", err)
	}
	return a
}

func mustAlloc(t testing.TB, a *Allocator, count uint32) uint64 {
	t.Helper()
	first, err := a.Alloc(count)
	if err != nil {
		t.Fatalf("Alloc(%d): %v", count, err)
	}
	return first
}

func mark(t testing.TB, st *storage.Storage) uint64 {
	t.Helper()
	v, err := st.GetUint64(storage.KeyIDHighWater)
	if err != nil {
		t.Fatalf("read mark: %v", err)
	}
	return v
}

func TestAllocReserves(t *testing.T) {
	st := openStorage(t, t.TempDir())
	defer st.Close()
	a := newAllocator(t, st, 0)
	if _, err := a.Alloc(0); !errors.Is(err, ErrInvalidCount) {
		t.Fatalf("Alloc(0): err = %v, want ErrInvalidCount", err)
	}
	if m := mark(t, st); m != 0 {
		t.Fatalf("mark before the first Alloc = %d, want nothing written", m)
	}
	if first := mustAlloc(t, a, 1); first != 1 {
		t.Fatalf("first id = %d, want 1 (0 is never handed out)", first)
	}
	if m := mark(t, st); m != 1+Step {
		t.Fatalf("mark = %d, want %d", m, 1+Step)
	}
	// Served from the reservation: the mark does not move.
	for want := uint64(2); want < 1+Step; want++ {
		if got := mustAlloc(t, a, 1); got != want {
			t.Fatalf("id = %d, want %d", got, want)
		}
	}
	if m := mark(t, st); m != 1+Step {
		t.Fatalf("mark moved to %d within the reservation", m)
	}
	// A block larger than Step reserves the whole block.
	first := mustAlloc(t, a, 5000)
	if first != 1+Step {
		t.Fatalf("big block first = %d, want %d", first, 1+Step)
	}
	if m := mark(t, st); m != first+5000 {
		t.Fatalf("mark = %d, want %d", m, first+5000)
	}
}

func TestFloor(t *testing.T) {
	tests := []struct {
		name      string
		savedMark uint64 // from an earlier run; 0: fresh storage
		floor     uint64
		want      uint64
	}{
		{"fresh, no floor", 0, 0, 1},
		{"fresh, floor", 0, 42, 43},
		{"mark above floor", 1500, 42, 1500},
		{"floor above mark", 1500, 9000, 9001},
		{"floor at mark", 1500, 1500, 1501},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStorage(t, t.TempDir())
			defer st.Close()
			if tt.savedMark != 0 {
				b := st.NewBatch()
				b.PutUint64(storage.KeyIDHighWater, tt.savedMark)
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			a := newAllocator(t, st, tt.floor)
			if got := mustAlloc(t, a, 3); got != tt.want {
				t.Fatalf("first = %d, want %d", got, tt.want)
			}
		})
	}
	st := openStorage(t, t.TempDir())
	defer st.Close()
	if _, err := New(st, ^uint64(0)); !errors.Is(err, ErrExhausted) {
		t.Fatalf("New with max floor: err = %v, want ErrExhausted", err)
	}
}

func TestExhausted(t *testing.T) {
	st := openStorage(t, t.TempDir())
	defer st.Close()
	a := newAllocator(t, st, ^uint64(0)-10)
	if got := mustAlloc(t, a, 5); got != ^uint64(0)-9 {
		t.Fatalf("first = %d", got)
	}
	if _, err := a.Alloc(10); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Alloc past the end: err = %v, want ErrExhausted", err)
	}
}

func TestConcurrentUnique(t *testing.T) {
	st := openStorage(t, t.TempDir())
	defer st.Close()
	a := newAllocator(t, st, 100)
	const workers, perWorker = 64, 200
	ids := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				count := uint32(i%7 + 1)
				first, err := a.Alloc(count)
				if err != nil {
					t.Errorf("Alloc: %v", err)
					return
				}
				for j := range uint64(count) {
					ids[w] = append(ids[w], first+j)
				}
			}
		})
	}
	wg.Wait()
	all := slices.Concat(ids...)
	slices.Sort(all)
	for i, v := range all {
		if v <= 100 {
			t.Fatalf("id %d at or below the floor", v)
		}
		if i > 0 && v == all[i-1] {
			t.Fatalf("id %d handed out twice", v)
		}
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	var max uint64
	for run := range 3 {
		st := openStorage(t, dir)
		a := newAllocator(t, st, 10)
		first := mustAlloc(t, a, 1)
		if first <= max {
			t.Fatalf("run %d: first id %d <= previous max %d", run, first, max)
		}
		for range 50 {
			max = mustAlloc(t, a, 37) + 36
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

const helperDirEnv = "NOKV_ID_CRASH_HELPER_DIR"

// TestHelperProcess is not a test: run by TestCrashRestart in a child process,
// it allocates ids forever, printing the last of every block as "id N".
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("only run as the crash helper process")
	}
	st := openStorage(t, dir)
	a := newAllocator(t, st, 0)
	for i := uint32(0); ; i++ {
		count := i%300 + 1
		first, err := a.Alloc(count)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		fmt.Fprintf(os.Stdout, "id %d\n", first+uint64(count)-1)
	}
}

// TestCrashRestart SIGKILLs a process that is allocating ids and checks that
// an allocator started afterwards hands out ids above all it printed.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var max uint64
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start helper: %v", err)
		}
		n := 0
		for sc := bufio.NewScanner(out); sc.Scan(); {
			v, ok := strings.CutPrefix(sc.Text(), "id ")
			if !ok {
				continue
			}
			id, err := strconv.ParseUint(v, 10, 64)
			if err != nil || id <= max {
				t.Errorf("round %d: helper printed %q after %d (%v)", round, sc.Text(), max, err)
			}
			max = id
			if n++; n == 2000 {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatalf("kill helper: %v", err)
				}
			}
		}
		werr := cmd.Wait()
		if n < 2000 {
			t.Fatalf("round %d: helper exited after %d lines (%v): %s", round, n, werr, stderr.String())
		}
		st := openStorage(t, dir)
		a := newAllocator(t, st, 0)
		first := mustAlloc(t, a, 1)
		st.Close()
		if first <= max {
			t.Fatalf("round %d: after kill -9, first id %d <= max printed %d", round, first, max)
		}
		max = first
	}
}
