//go:build race

package gateway

// raceEnabled: the race detector slows the in-process cluster ten times
// over, so tests scale their bulk down.
const raceEnabled = true
