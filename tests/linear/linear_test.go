// Package linear checks that the cluster's reads and writes are
// linearizable under faults: concurrent clients run gets, puts and
// increments through pkg/kvclient while a nemesis partitions leaders and
// restarts stores, and porcupine checks the recorded history against a
// sequential key-value model.
package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

type opKind int

const (
	opGet opKind = iota
	opPut
	opIncr
	// opIncrAny is an increment whose result was never seen (it failed
	// with an unknown outcome): the model may apply it or not.
	opIncrAny
)

type input struct {
	kind  opKind
	key   string
	value int // put: the value written
}

type output struct {
	value int  // get, incr: the value read (incr: after the increment)
	found bool // get: whether the key existed
}

// kvModel is a map of independent integer registers, partitioned by key.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(input).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	// The state of one key: -1 absent, else its value.
	Init: func() any { return -1 },
	Step: func(state, in, out any) (bool, any) {
		s, i, o := state.(int), in.(input), out.(output)
		switch i.kind {
		case opGet:
			if s < 0 {
				return !o.found, s
			}
			return o.found && o.value == s, s
		case opPut:
			return true, i.value
		case opIncrAny:
			return true, max(s, 0) + 1
		default: // incr
			next := max(s, 0) + 1
			return o.value == next, next
		}
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		switch i.kind {
		case opGet:
			return fmt.Sprintf("get(%s) -> %d/%v", i.key, o.value, o.found)
		case opPut:
			return fmt.Sprintf("put(%s, %d)", i.key, i.value)
		default:
			return fmt.Sprintf("incr(%s) -> %d", i.key, o.value)
		}
	},
}

// history records operations from many goroutines.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

func TestLinearizableUnderFaults(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}})
	kc, err := kvclient.NewWithPD(c.PDClient, kvclient.Options{MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)

	keys := []string{"a", "b", "x", "y"} // two per region
	var (
		h       history
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		start   = time.Now()
		nextVal = 0
		valMu   sync.Mutex
		done    atomic.Int64 // operations completed
	)
	// progress waits until n more operations completed (at most a minute),
	// so each fault falls on a working cluster however slow the machine.
	progress := func(n int64) {
		want, deadline := done.Load()+n, time.Now().Add(time.Minute)
		for done.Load() < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	now := func() int64 { return int64(time.Since(start)) }
	for client := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				in := input{kind: opKind(rng.IntN(3)), key: keys[rng.IntN(len(keys))]}
				if in.kind == opPut {
					valMu.Lock()
					nextVal++
					in.value = 1000 + nextVal
					valMu.Unlock()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := now()
				out, err := apply(ctx, kc, in)
				ret := now()
				cancel()
				switch {
				case err == nil:
					h.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
					done.Add(1)
				case in.kind != opGet:
					// A failed write may still take effect, at any time after
					// its call: it is recorded as never returning, unless it
					// surely failed.
					if !surelyFailed(err) {
						h.add(porcupine.Operation{ClientId: client, Input: indeterminate(in), Call: call, Output: output{}, Return: math.MaxInt64})
					}
				}
				// A failed read has no effect: nothing to record.
			}
		}()
	}

	// The nemesis: isolate a region leader's store, heal; stop and restart a store.
	nemesisDone := make(chan struct{})
	go func() {
		defer close(nemesisDone)
		for round := 0; round < 4; round++ {
			time.Sleep(400 * time.Millisecond)
			progress(15)
			region := c.RegionFor([]byte(keys[round%len(keys)])).GetId()
			if l := c.Leader(region); l != nil {
				if round%2 == 0 {
					c.Isolate(l.GetStoreId())
					time.Sleep(600 * time.Millisecond)
					c.Heal()
				} else {
					c.StopStore(l.GetStoreId())
					time.Sleep(600 * time.Millisecond)
					c.StartStore(l.GetStoreId())
				}
			}
		}
		time.Sleep(400 * time.Millisecond)
		progress(15)
	}()
	<-nemesisDone
	close(stop)
	wg.Wait()

	ops := h.ops
	completed := 0
	for _, op := range ops {
		if op.Return != math.MaxInt64 {
			completed++
		}
	}
	if completed < 50 {
		t.Fatalf("only %d operations completed: the cluster made too little progress under faults", completed)
	}
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, 30*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("linearizable: %d operations (%d completed) under partitions and store restarts", len(ops), completed)
	case porcupine.Illegal:
		path := filepath.Join(artifactDir(t), "history.html")
		if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
			t.Errorf("write the visualization: %v", err)
		}
		t.Fatalf("history of %d operations is NOT linearizable: see %s", len(ops), path)
	default:
		t.Fatalf("linearizability check did not finish (%d operations)", len(ops))
	}
}

// indeterminate is the input to record for a write whose outcome is
// unknown: a put stays a put (it may or may not apply, at any time after
// its call), an increment loses its unseen result.
func indeterminate(in input) input {
	if in.kind == opIncr {
		return input{kind: opIncrAny, key: in.key}
	}
	return in
}

// surelyFailed reports errors after which the write certainly did not
// happen: it was refused before anything was committed.
func surelyFailed(err error) bool {
	return errors.Is(err, kvclient.ErrWriteConflict) || errors.Is(err, kvclient.ErrTxnAborted)
}

func apply(ctx context.Context, kc *kvclient.Client, in input) (output, error) {
	switch in.kind {
	case opGet:
		e, found, err := kc.Get(ctx, []byte(in.key))
		if err != nil || !found {
			return output{}, err
		}
		v, err := strconv.Atoi(string(e.Value))
		return output{value: v, found: true}, err
	case opPut:
		return output{}, kc.Set(ctx, []byte(in.key), []byte(strconv.Itoa(in.value)), 0)
	default:
		var got int
		err := kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
			e, found, err := txn.Get(ctx, []byte(in.key))
			if err != nil {
				return err
			}
			cur := 0
			if found {
				if cur, err = strconv.Atoi(string(e.Value)); err != nil {
					return err
				}
			}
			got = cur + 1
			return txn.Set([]byte(in.key), []byte(strconv.Itoa(got)), 0)
		})
		return output{value: got}, err
	}
}

// TestCheckerCatchesStaleRead makes sure the model and checker would flag
// a read that misses a completed write.
func TestCheckerCatchesStaleRead(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: input{kind: opPut, key: "k", value: 1}, Call: 0, Output: output{}, Return: 10},
		{ClientId: 1, Input: input{kind: opGet, key: "k"}, Call: 20, Output: output{found: false}, Return: 30},
	}
	if porcupine.CheckOperations(kvModel, ops) {
		t.Fatal("a read after a completed put that does not see it passed as linearizable")
	}
	ops[1].Call = 5 // concurrent with the put: either answer is fine
	if !porcupine.CheckOperations(kvModel, ops) {
		t.Fatal("a read concurrent with a put was rejected")
	}
}
