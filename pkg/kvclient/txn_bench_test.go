package kvclient

import (
	"fmt"
	"testing"
)

// BenchmarkTxnBuffer20: buffering the writes of a combined transaction of
// 20 SETs (the gateway's typical batch under load), each after a savepoint
// as the gateway takes them, without the commit.
func BenchmarkTxnBuffer20(b *testing.B) {
	c := &Client{}
	keys := make([][]byte, 20)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "\x00\x00\x00\x00key:%012d", i)
	}
	value := make([]byte, 4)
	b.ReportAllocs()
	for b.Loop() {
		t := c.newTxn(1 << 18)
		for _, k := range keys {
			t.Savepoint()
			if err := t.Set(k, value, 0); err != nil {
				b.Fatal(err)
			}
		}
		if t.Len() != len(keys) {
			b.Fatal(t.Len())
		}
	}
}
