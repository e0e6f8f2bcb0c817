//go:build v2

package main

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

const version = "v2"

type pdb struct{ db *pebble.DB }
type pbatch struct{ b *pebble.Batch }

func open(dir string, mem int) *pdb {
	c := pebble.NewCache(1 << 30)
	o := &pebble.Options{Cache: c, MemTableSize: uint64(mem) << 20}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	o.FormatMajorVersion = pebble.FormatNewest
	o.EnsureDefaults()
	db, err := pebble.Open(dir, o)
	if err != nil {
		panic(err)
	}
	return &pdb{db}
}
func (d *pdb) batch() *pbatch     { return &pbatch{d.db.NewBatch()} }
func (b *pbatch) set(k, v []byte) { b.b.Set(k, v, nil) }
func (b *pbatch) commit()         { b.b.Commit(pebble.NoSync); b.b.Close() }
func (d *pdb) flush()             { d.db.Flush() }
func (d *pdb) compacting() bool   { return d.db.Metrics().Compact.NumInProgress > 0 }
func (d *pdb) metrics() string    { return d.db.Metrics().String() }
func (d *pdb) close()             { d.db.Close() }
func (d *pdb) get(k []byte) {
	v, c, err := d.db.Get(k)
	if err != nil || len(v) == 0 {
		panic(err)
	}
	c.Close()
}
