package tso

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// helperDirEnv tells the test binary to run as the crash helper process on the
// storage in that directory.
const helperDirEnv = "NOKV_TSO_CRASH_HELPER_DIR"

// TestHelperProcess is not a test: run by TestCrashRestart in a child process,
// it issues timestamps forever, printing the last of every block as "ts N",
// until it is killed. Its clock runs a millisecond ahead on every reading, so
// it races far ahead of the wall clock and crosses the (small) window often.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("only run as the crash helper process")
	}
	var ms atomic.Int64
	ms.Store(time.Now().UnixMilli())
	fast := func() time.Time { return time.UnixMilli(ms.Add(1)) }
	st := openStorage(t, dir)
	o, err := New(st, Options{Window: 20 * time.Millisecond, Now: fast})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	for i := uint32(0); ; i++ {
		count := i%1000 + 1
		first, err := o.Get(count)
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		// Unbuffered: a printed timestamp was certainly issued.
		fmt.Fprintf(os.Stdout, "ts %d\n", first+uint64(count)-1)
	}
}

// TestCrashRestart kills a process that is issuing timestamps with SIGKILL and
// checks that an Oracle started afterwards on the same storage, with the real
// (now far behind) clock, issues above everything the dead process printed.
func TestCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var max uint64
	for round := range 3 {
		printed := runAndKill(t, dir, 2000)
		if printed <= max {
			t.Fatalf("round %d: helper printed max %d, not above the previous %d", round, printed, max)
		}
		max = printed

		st := openStorage(t, dir)
		o, err := New(st, Options{Window: 20 * time.Millisecond})
		if err != nil {
			t.Fatalf("round %d: restart: %v", round, err)
		}
		ts, err := o.Get(1)
		o.Close()
		st.Close()
		if err != nil {
			t.Fatalf("round %d: Get after restart: %v", round, err)
		}
		if ts <= max {
			t.Fatalf("round %d: after kill -9, first ts %d (%d/%d) <= max printed %d (%d/%d)",
				round, ts, Physical(ts), Logical(ts), max, Physical(max), Logical(max))
		}
		if ahead := Physical(max) - time.Now().UnixMilli(); ahead <= 0 {
			t.Logf("round %d: helper clock was not ahead of the wall clock (%d ms)", round, ahead)
		}
		max = ts
	}
}

// runAndKill runs the helper on dir, SIGKILLs it after it printed lines
// timestamps and returns the largest timestamp it printed.
func runAndKill(t *testing.T, dir string, lines int) uint64 {
	t.Helper()
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
	var max uint64
	n := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "ts ")
		if !ok {
			continue
		}
		ts, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Errorf("helper printed %q: %v", sc.Text(), err)
			continue
		}
		if ts <= max {
			t.Errorf("helper issued %d after %d", ts, max)
		}
		max = ts
		if n++; n == lines {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatalf("kill helper: %v", err)
			}
		}
	}
	// Lines written before the kill are still read to the end of the pipe.
	err = cmd.Wait()
	if n < lines {
		t.Fatalf("helper exited after %d lines (%v): %s", n, err, stderr.String())
	}
	return max
}
