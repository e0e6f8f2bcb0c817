package hostile_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The fixed-seed sample of FuzzExec's inputs
// (services/gateway/internal/command/fuzz_test.go), generated once per run by
// TestFuzzExecSample, so that the command sequences the fuzzer makes also run
// over the wire against the real binary on both backends.
var (
	sampleOnce sync.Once
	sample     [][]string
	sampleErr  error
)

func fuzzSample(t *testing.T) [][]string {
	t.Helper()
	sampleOnce.Do(func() {
		path := filepath.Join(binaries(t), "fuzzexec-sample.json")
		cmd := exec.Command("go", "test", "-count=1", "-run", "^TestFuzzExecSample$", "./internal/command/")
		cmd.Dir = "../../services/gateway"
		cmd.Env = append(os.Environ(), "NOKV_FUZZEXEC_SAMPLE="+path)
		if out, err := cmd.CombinedOutput(); err != nil {
			sampleErr = err
			t.Logf("TestFuzzExecSample:\n%s", out)
			return
		}
		data, err := os.ReadFile(path)
		if err != nil {
			sampleErr = err
			return
		}
		var raw [][][]byte
		if sampleErr = json.Unmarshal(data, &raw); sampleErr != nil {
			return
		}
		for _, args := range raw {
			cmd := make([]string, len(args))
			for i, a := range args {
				cmd[i] = string(a)
			}
			sample = append(sample, cmd)
		}
	})
	if sampleErr != nil {
		t.Fatalf("generating FuzzExec's sample: %v", sampleErr)
	}
	return sample
}

// testFuzzReplay sends every command of the sample, in order, each on its own
// connection, and checks the servers after each.
func testFuzzReplay(t *testing.T, tg *target) {
	cmds := fuzzSample(t)
	skipped := 0
	for _, args := range cmds {
		if reason := knownRequest(args); reason != "" {
			skipped++
			t.Logf("skipped %s (known: %s)", shortArgs(args), reason)
			continue
		}
		tg.exchange(t, tg.timeout, args)
		tg.check(t, shortArgs(args))
	}
	t.Logf("replayed %d of FuzzExec's commands (%d skipped as known)", len(cmds)-skipped, skipped)
}
