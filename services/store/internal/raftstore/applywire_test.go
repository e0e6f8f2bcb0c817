package raftstore

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/mvcc"
)

// TestPlainWritesMatchesDecoding holds the wire-level apply to the decoded
// one: for marshalled commands and for byte strings mangled from them, when
// plainWrites accepts the bytes they must decode to a command with only a
// header and PUT/DELETE writes, the same header, and applyPlainWrites must
// build byte for byte the batch mvcc.ApplyModifies builds from the decoded
// writes. Marshalled plain commands must be accepted (else the fast path
// would never run).
func TestPlainWritesMatchesDecoding(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rng := rand.New(rand.NewSource(14))
	randBytes := func(max int) []byte {
		if rng.Intn(5) == 0 {
			return nil
		}
		b := make([]byte, rng.Intn(max))
		rng.Read(b)
		return b
	}
	accepted, mangledAccepted := 0, 0
	for round := 0; round < 20000; round++ {
		cmd := &raftserverpb.RaftCmdRequest{}
		if rng.Intn(6) != 0 {
			cmd.Header = &raftserverpb.CmdHeader{RegionId: rng.Uint64() % 5, PeerId: rng.Uint64() % 5, ProposalId: rng.Uint64(), CheckConfVer: rng.Intn(2) == 0}
			if rng.Intn(4) != 0 {
				cmd.Header.RegionEpoch = &metapb.RegionEpoch{Version: rng.Uint64() % 9, ConfVer: rng.Uint64() % 9}
			}
		}
		for n := rng.Intn(30); n > 0; n-- {
			cmd.Writes = append(cmd.Writes, &raftserverpb.Modify{
				Op: raftserverpb.ModifyOp(rng.Intn(2)), Key: randBytes(40), Value: randBytes(300),
			})
		}
		plain := true
		switch rng.Intn(8) {
		case 0:
			cmd.GcSafePoint, plain = 1+rng.Uint64()%100, false
		case 1:
			cmd.DeleteRange, plain = &raftserverpb.DeleteRange{StartKey: []byte("a"), EndKey: []byte("b")}, false
		case 2:
			cmd.Admin, plain = &raftserverpb.AdminRequest{}, false
		}
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := plainWrites(data); ok != plain {
			t.Fatalf("round %d: plainWrites of a marshalled command = %v, want %v (%v)", round, ok, plain, cmd)
		}
		if plain {
			accepted++
		}
		check(t, db, data)
		// Mangled: a byte changed, bytes cut off, a field appended
		// (a repeated header, an unknown field, a write with a bad op or a
		// repeated key).
		m := append([]byte(nil), data...)
		switch rng.Intn(4) {
		case 0:
			if len(m) > 0 {
				m[rng.Intn(len(m))] ^= byte(1 + rng.Intn(255))
			}
		case 1:
			m = m[:rng.Intn(len(m)+1)]
		case 2:
			num := protowire.Number(1 + rng.Intn(7))
			m = protowire.AppendTag(m, num, protowire.BytesType)
			m = protowire.AppendBytes(m, []byte{0x08, byte(rng.Intn(4))})
		case 3:
			var mod []byte
			mod = protowire.AppendTag(mod, modFieldOp, protowire.VarintType)
			mod = protowire.AppendVarint(mod, uint64(rng.Intn(3)))
			for k := rng.Intn(3); k >= 0; k-- {
				mod = protowire.AppendTag(mod, protowire.Number(2+rng.Intn(3)), protowire.BytesType)
				mod = protowire.AppendBytes(mod, randBytes(8))
			}
			m = protowire.AppendTag(m, cmdFieldWrites, protowire.BytesType)
			m = protowire.AppendBytes(m, mod)
		}
		if check(t, db, m) {
			mangledAccepted++
		}
	}
	if accepted == 0 || mangledAccepted == 0 {
		t.Fatalf("accepted %d marshalled and %d mangled commands: the test does not exercise the fast path", accepted, mangledAccepted)
	}
}

// check compares the two apply paths on data; it reports whether
// plainWrites accepted it.
func check(t *testing.T, db *pebble.DB, data []byte) bool {
	t.Helper()
	h, ok := plainWrites(data)
	if !ok {
		return false
	}
	cmd := &raftserverpb.RaftCmdRequest{}
	if err := proto.Unmarshal(data, cmd); err != nil {
		t.Fatalf("plainWrites accepted %x, which does not decode: %v", data, err)
	}
	if cmd.GetAdmin() != nil || cmd.GetDeleteRange() != nil || cmd.GetGcSafePoint() != 0 || len(cmd.ProtoReflect().GetUnknown()) > 0 {
		t.Fatalf("plainWrites accepted %x, which decodes to more than writes: %v", data, cmd)
	}
	if (h == nil) != (cmd.GetHeader() == nil) || !proto.Equal(h, cmd.GetHeader()) {
		t.Fatalf("plainWrites header %v, decoded %v", h, cmd.GetHeader())
	}
	want, got := db.NewBatch(), db.NewBatch()
	defer want.Close()
	defer got.Close()
	wantErr := mvcc.ApplyModifies(want, cmd.GetWrites())
	written, gotErr := applyPlainWrites(got, data, nil)
	if wantErr != nil || gotErr != nil {
		t.Fatalf("apply: decoded %v, plain %v (%v)", wantErr, gotErr, cmd)
	}
	var wantWritten uint64
	for _, m := range cmd.GetWrites() {
		wantWritten += uint64(len(m.GetKey()) + len(m.GetValue()))
	}
	if !bytes.Equal(want.Repr(), got.Repr()) || written != wantWritten {
		t.Fatalf("batches differ (written %d, want %d) for %v", written, wantWritten, cmd)
	}
	return true
}

// BenchmarkApplyCommand: what applying a combined SET's command of 20 write
// records costs a replica before the engine: "decode" is proto.Unmarshal and
// mvcc.ApplyModifies (the path other commands take), "plain" the wire-level
// path. ns/op per command of 20 keys.
func BenchmarkApplyCommand(b *testing.B) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cmd := &raftserverpb.RaftCmdRequest{Header: &raftserverpb.CmdHeader{
		RegionId: 2, PeerId: 3, ProposalId: 12345, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1},
	}}
	for i := range 20 {
		cmd.Writes = append(cmd.Writes, &raftserverpb.Modify{
			Key: []byte(fmt.Sprintf("W\x00\x00\x00\x00key:%012d\xff\x00\x00\x00\x00\x00\x00\x00\xf7\xff\xff\xff\xff\xff\xff\xff", i)), Value: []byte("\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x64\x00\x03xxx"),
		})
	}
	data, err := proto.Marshal(cmd)
	if err != nil {
		b.Fatal(err)
	}
	batch := db.NewBatch()
	defer batch.Close()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			batch.Reset()
			c := &raftserverpb.RaftCmdRequest{}
			if err := proto.Unmarshal(data, c); err != nil {
				b.Fatal(err)
			}
			if err := mvcc.ApplyModifies(batch, c.GetWrites()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			batch.Reset()
			if _, ok := plainWrites(data); !ok {
				b.Fatal("not plain")
			}
			if _, err := applyPlainWrites(batch, data, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
