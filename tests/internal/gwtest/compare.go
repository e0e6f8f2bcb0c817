package gwtest

import (
	"fmt"
	"testing"

	"github.com/nokv/nokv/tests/cluster"
)

// RaftSplit splits database 0 inside its keys and the databases from what
// lies past them, so that multi-key commands span regions.
var RaftSplit = cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00c", "\x80"}}

// RandomSeeds and RandomSteps size the random comparisons on the raft
// backend (tests/gatewaycompare/hashes and zsets). The sequences are the
// embedded backend's (gatewayserver runs seeds 1 to 4 for 2000 steps each
// over hashes, 3000 over sorted sets, so it runs these same commands and
// more); what the raft backend adds is its storage, transactions and
// region routing. Measured with -coverpkg over services/... and pkg/...
// (non-race, 2026-12-06): 3 seeds of 2000 steps covered 5 (sorted sets)
// and 6 (hashes) statements that 3 seeds of 600 steps plus the rest of
// the comparisons did not — three in command/randpick.go, one in glob,
// two in kvsvc and one in raftstore (timing), four in the comparison's own
// reply matching — and none in the raft backend, kvclient or the stores'
// MVCC. Each step is a cluster transaction or two, which the race
// detector and a loaded machine stretch to tens of milliseconds.
const RandomSeeds = 3

// RandomSteps is the steps of each seed (fewer with -short).
func RandomSteps() int {
	if testing.Short() {
		return 150
	}
	return 800
}

// CompareRandomOnTheRaftBackend runs each seed's random sequence, one
// after another. Not side by side: two in-process clusters in this one
// race-detector process starved each other's raft ticks on a loaded
// machine (leaders lost, "cluster unavailable" after 11 attempts, replies
// past 30 s).
func CompareRandomOnTheRaftBackend(t *testing.T, ours, theirs string, random func(t *testing.T, ours, theirs string, seed, steps int)) {
	for seed := 1; seed <= RandomSeeds; seed++ {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) { random(t, ours, theirs, seed, RandomSteps()) })
	}
}
