package command

import (
	"bytes"
	"fmt"
	"math"
	"testing"
)

func TestCursorResumesExactlyWhileHeld(t *testing.T) {
	tab := newCursorTable()
	for _, key := range []string{"", "a", "abcde", "abcdef", "user:1000:profile", "\xff\xff\xff\xff\xff\xff"} {
		c := tab.store([]byte(key))
		if c == 0 {
			t.Fatalf("store(%q) issued cursor 0, which means a new scan", key)
		}
		if got := tab.lookup(c); string(got) != key {
			t.Errorf("lookup(store(%q)) = %q", key, got)
		}
	}
}

// An evicted cursor resumes at or before its key: keys may come again,
// none is skipped.
func TestEvictedCursorResumesAtItsPrefix(t *testing.T) {
	tab := newCursorTable()
	keys := []string{"", "ab", "abcde", "abcdefgh", "user:1000:profile"}
	var cursors []uint64
	for _, k := range keys {
		cursors = append(cursors, tab.store([]byte(k)))
	}
	for range cursorTableSlots {
		tab.store([]byte("other"))
	}
	for i, k := range keys {
		got := tab.lookup(cursors[i])
		if bytes.Compare(got, []byte(k)) > 0 || !bytes.HasPrefix([]byte(k), got) {
			t.Errorf("evicted cursor of %q resumes at %q, past or beside the key", k, got)
		}
		if want := k[:min(len(k), cursorPrefixBytes)]; string(got) != want {
			t.Errorf("evicted cursor of %q resumes at %q, want %q", k, got, want)
		}
	}
}

// Every cursor a client can send is accepted, as Redis accepts any cursor.
func TestAnyCursorIsAccepted(t *testing.T) {
	tab := newCursorTable()
	for _, c := range []uint64{1, 2, 1 << 21, math.MaxUint32, math.MaxInt64, math.MaxUint64} {
		got := tab.lookup(c)
		if len(got) > cursorPrefixBytes {
			t.Errorf("lookup(%d) = %q, longer than a cursor's prefix", c, got)
		}
	}
	if got := tab.lookup(math.MaxUint64); string(got) != "\xff\xff\xff\xff\xff" {
		t.Errorf("lookup(2^64-1) = %q", got)
	}
}

// Huge resume keys cannot make the table hold unbounded memory.
func TestCursorTableBytesAreBounded(t *testing.T) {
	tab := newCursorTable()
	big := bytes.Repeat([]byte("k"), 1<<20)
	var last uint64
	for i := range 200 {
		last = tab.store(append(big[:len(big):len(big)], fmt.Sprint(i)...))
	}
	if tab.bytes > cursorTableBytes {
		t.Fatalf("table holds %d key bytes, budget %d", tab.bytes, cursorTableBytes)
	}
	if got := tab.lookup(last); len(got) != 1<<20+3 {
		t.Fatalf("the newest cursor lost its key (%d bytes)", len(got))
	}
}
