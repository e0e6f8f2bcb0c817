package raftstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/sstable"
	"github.com/cockroachdb/pebble/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// Received snapshots never sit in memory: the receiver writes the stream's
// keys into SST files in a directory of their own under the store's
// snapshot directory as they arrive, and the raft loop ingests the files
// (a link and a manifest edit, not a rewrite). Every file also carries a
// range deletion over the part of the region's keyspace it covers, so one
// ingest clears the region's old data and adds the new, atomically, and at
// a sequence number above everything the engine holds.

// ErrBadSnapshot: a snapshot stream was malformed (out of order, outside
// its region, cut short, or failing its digest). Nothing of it is kept.
var ErrBadSnapshot = errors.New("raftstore: bad snapshot stream")

// snapFileTarget is the size at which the receiver starts a new SST file.
var snapFileTarget = 64 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// snapDigest accumulates a SnapshotDigest.
type snapDigest struct {
	keys, bytes uint64
	crc         hash.Hash32
	buf         [binary.MaxVarintLen64]byte
}

func newSnapDigest() *snapDigest { return &snapDigest{crc: crc32.New(crcTable)} }

func (d *snapDigest) add(key, value []byte) {
	d.keys++
	d.bytes += uint64(len(key) + len(value))
	for _, b := range [][]byte{key, value} {
		n := binary.PutUvarint(d.buf[:], uint64(len(b)))
		d.crc.Write(d.buf[:n])
		d.crc.Write(b)
	}
}

func (d *snapDigest) proto() *raftserverpb.SnapshotDigest {
	return &raftserverpb.SnapshotDigest{Keys: d.keys, Bytes: d.bytes, Crc32C: d.crc.Sum32()}
}

// incomingSnap is a received snapshot's files, waiting to be ingested.
type incomingSnap struct {
	dir   string
	files []string
	keys  uint64
	bytes uint64
}

// remove deletes the snapshot's files: it was applied (the engine has its
// own links to them) or will not be.
func (in *incomingSnap) remove() {
	if in != nil {
		_ = os.RemoveAll(in.dir)
	}
}

// snapSpan is one column family's part of a region's keyspace.
type snapSpan struct{ lo, hi []byte }

func regionSpans(start, end []byte) []snapSpan {
	spans := make([]snapSpan, 0, len(keys.CFs))
	for _, cf := range keys.CFs {
		lo, hi := keys.DataRange(cf, start, end)
		spans = append(spans, snapSpan{lo, hi})
	}
	return spans
}

// snapWriter turns a key-ordered stream into SST files, one column family's
// span after another, rolling to a new file about every snapFileTarget
// bytes. A file ends where the next begins, and its range deletion covers
// exactly that part of its span, so the files never overlap.
type snapWriter struct {
	dir    string
	format sstable.TableFormat
	spans  []snapSpan
	// span is the index of the span the stream is in.
	span  int
	w     *sstable.Writer
	path  string
	lo    []byte // where the open file's part of the span starts
	size  int
	roll  bool // the open file is full: end it at the next key
	last  []byte
	files []string
}

func (sw *snapWriter) open(lo []byte) error {
	sw.path = filepath.Join(sw.dir, fmt.Sprintf("%06d.sst", len(sw.files)))
	f, err := vfs.Default.Create(sw.path)
	if err != nil {
		return fmt.Errorf("raftstore: create snapshot file: %w", err)
	}
	sw.w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), sstable.WriterOptions{TableFormat: sw.format})
	sw.lo, sw.size, sw.roll = append([]byte(nil), lo...), 0, false
	return nil
}

// finish ends the open file (opening an empty one if none is) with a range
// deletion over [its start, hi).
func (sw *snapWriter) finish(hi []byte) error {
	if sw.w == nil {
		if err := sw.open(sw.spans[sw.span].lo); err != nil {
			return err
		}
	}
	if err := sw.w.DeleteRange(sw.lo, hi); err != nil {
		return fmt.Errorf("raftstore: snapshot file range deletion: %w", err)
	}
	err := sw.w.Close() // syncs the file
	sw.w = nil
	if err != nil {
		return fmt.Errorf("raftstore: write snapshot file: %w", err)
	}
	sw.files = append(sw.files, sw.path)
	return nil
}

func (sw *snapWriter) add(key, value []byte) error {
	if sw.last != nil && bytes.Compare(key, sw.last) <= 0 {
		return fmt.Errorf("%w: key %x after %x", ErrBadSnapshot, key, sw.last)
	}
	for sw.span < len(sw.spans) && bytes.Compare(key, sw.spans[sw.span].hi) >= 0 {
		if err := sw.finish(sw.spans[sw.span].hi); err != nil {
			return err
		}
		sw.span++
	}
	if sw.span == len(sw.spans) || bytes.Compare(key, sw.spans[sw.span].lo) < 0 {
		return fmt.Errorf("%w: key %x outside the region", ErrBadSnapshot, key)
	}
	if sw.roll {
		// The full file ends where this key's file begins.
		if err := sw.finish(key); err != nil {
			return err
		}
		if err := sw.open(key); err != nil {
			return err
		}
	}
	if sw.w == nil {
		if err := sw.open(sw.spans[sw.span].lo); err != nil {
			return err
		}
	}
	if err := sw.w.Set(key, value); err != nil {
		return fmt.Errorf("raftstore: write snapshot file: %w", err)
	}
	sw.last = append(sw.last[:0], key...)
	sw.size += len(key) + len(value)
	sw.roll = sw.size >= snapFileTarget
	return nil
}

// close finishes the open file and writes the (range deletion only) files
// of any spans the stream never reached.
func (sw *snapWriter) close() error {
	for ; sw.span < len(sw.spans); sw.span++ {
		if err := sw.finish(sw.spans[sw.span].hi); err != nil {
			return err
		}
	}
	d, err := vfs.Default.OpenDir(sw.dir)
	if err != nil {
		return fmt.Errorf("raftstore: open snapshot directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("raftstore: sync snapshot directory: %w", err)
	}
	return nil
}

func (sw *snapWriter) abort() {
	if sw.w != nil {
		_ = sw.w.Close()
		sw.w = nil
	}
}

// receiveSnapshot reads one snapshot stream into SST files in a new
// directory under dir. On any error the files are gone.
func receiveSnapshot(dir string, format sstable.TableFormat, recv func() (*raftserverpb.SnapshotChunk, error)) (msg *raftserverpb.RaftMessage, in *incomingSnap, err error) {
	chunk, err := recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("%w: empty stream", ErrBadSnapshot)
		}
		return nil, nil, err
	}
	msg = chunk.GetMessage()
	if msg == nil {
		return nil, nil, fmt.Errorf("%w: the stream must start with its raft message", ErrBadSnapshot)
	}
	var m raftpb.Message
	if err := m.Unmarshal(msg.GetMessage()); err != nil || m.Type != raftpb.MsgSnap || m.Snapshot == nil {
		return nil, nil, fmt.Errorf("%w: the first message is not a raft snapshot", ErrBadSnapshot)
	}
	meta := &raftserverpb.SnapshotMeta{}
	if err := proto.Unmarshal(m.Snapshot.Data, meta); err != nil || meta.GetRegion() == nil {
		return nil, nil, fmt.Errorf("%w: snapshot metadata: %v", ErrBadSnapshot, err)
	}
	region := meta.GetRegion()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("raftstore: snapshot directory: %w", err)
	}
	sdir, err := os.MkdirTemp(dir, fmt.Sprintf("r%d-%d-%d-", msg.GetRegionId(), m.Snapshot.Metadata.Term, m.Snapshot.Metadata.Index))
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: snapshot directory: %w", err)
	}
	sw := &snapWriter{dir: sdir, format: format, spans: regionSpans(region.GetStartKey(), region.GetEndKey())}
	defer func() {
		if err != nil {
			sw.abort()
			_ = os.RemoveAll(sdir)
		}
	}()
	sum := newSnapDigest()
	var digest *raftserverpb.SnapshotDigest
	for {
		if digest != nil {
			return nil, nil, fmt.Errorf("%w: data after the digest", ErrBadSnapshot)
		}
		for _, kv := range chunk.GetKvs() {
			if err := sw.add(kv.GetKey(), kv.GetValue()); err != nil {
				return nil, nil, err
			}
			sum.add(kv.GetKey(), kv.GetValue())
		}
		digest = chunk.GetDigest()
		if chunk, err = recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, nil, fmt.Errorf("raftstore: receive snapshot: %w", err)
		}
		if chunk.GetMessage() != nil {
			return nil, nil, fmt.Errorf("%w: a second raft message", ErrBadSnapshot)
		}
	}
	if digest == nil {
		return nil, nil, fmt.Errorf("%w: the stream ended without its digest", ErrBadSnapshot)
	}
	if got := sum.proto(); !proto.Equal(got, digest) {
		return nil, nil, fmt.Errorf("%w: digest mismatch: received %d keys, %d bytes, crc %08x; sender says %d, %d, %08x",
			ErrBadSnapshot, got.GetKeys(), got.GetBytes(), got.GetCrc32C(), digest.GetKeys(), digest.GetBytes(), digest.GetCrc32C())
	}
	if err := sw.close(); err != nil {
		return nil, nil, err
	}
	return msg, &incomingSnap{dir: sdir, files: sw.files, keys: sum.keys, bytes: sum.bytes}, nil
}
