package mvcc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nokv/nokv/api/kvrpcpb"
)

// ErrCorrupt reports an engine record this package cannot have written: an
// unknown format version, a truncated or oversized field, trailing bytes, or
// a value missing from the default column family.
var ErrCorrupt = errors.New("mvcc: corrupt record")

// ShortValueMax is the longest value kept inline in a lock or write record.
// Longer values go to the default column family, keyed by the writer's
// start_ts, so that the lock and write column families stay small and fast to
// scan.
const ShortValueMax = 255

// Short names for the record kinds: the proto's Op numbers, which the
// records store as one byte.
const (
	opPut      = kvrpcpb.Op_PUT
	opDel      = kvrpcpb.Op_DEL
	opLock     = kvrpcpb.Op_LOCK
	opRollback = kvrpcpb.Op_ROLLBACK
)

// recordV1 is the leading byte of every record this version writes. A later
// format gets a new leading byte; decoders reject any byte they do not know,
// so an old binary never misreads a newer record.
const recordV1 byte = 1

// Flag bits of the third byte of a record.
const (
	flagInline     byte = 0x01 // the value follows inline
	flagOverlapped byte = 0x02 // write records only: see Write.OverlappedRollback

	lockFlags  = flagInline
	writeFlags = flagInline | flagOverlapped
)

// Lock is the lock column family record a prewrite leaves on a key until the
// transaction commits or rolls back.
type Lock struct {
	// Op is PUT, DEL or LOCK.
	Op      kvrpcpb.Op
	Primary []byte
	StartTS uint64
	// TTL is in milliseconds after the physical time of StartTS.
	TTL     uint64
	TxnSize uint64
	// ExpiresAt is the value's expiry (Unix ms, 0 = never), carried to the
	// write record at commit.
	ExpiresAt int64
	// Inline says Value holds the value (PUT only, at most ShortValueMax
	// bytes); a PUT without it has its value in the default column family.
	Inline bool
	Value  []byte
}

// Write is the write column family record at WriteKey(key, commit_ts). A
// rollback record sits at commit_ts = start_ts.
type Write struct {
	// Kind is PUT, DEL, LOCK or ROLLBACK.
	Kind      kvrpcpb.Op
	StartTS   uint64
	ExpiresAt int64
	// Inline says Value holds the value (PUT only); a PUT without it has its
	// value at DefaultKey(key, StartTS).
	Inline bool
	Value  []byte
	// OverlappedRollback marks a commit record whose commit_ts equals the
	// start_ts of another transaction rolled back on the same key. Both would
	// live at the same engine key; the commit wins the slot and carries the
	// rollback as this flag, so neither the committed value nor the rollback
	// protection is lost.
	OverlappedRollback bool
}

// Encode returns the lock record bytes (see the package documentation).
func (l *Lock) Encode() []byte {
	n := 3 + 8 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + len(l.Primary)
	var flags byte
	if l.Inline {
		flags |= flagInline
		n += binary.MaxVarintLen64 + len(l.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, recordV1, byte(l.Op), flags)
	b = binary.BigEndian.AppendUint64(b, l.StartTS)
	b = binary.AppendUvarint(b, l.TTL)
	b = binary.AppendUvarint(b, l.TxnSize)
	b = binary.AppendVarint(b, l.ExpiresAt)
	b = appendBytes(b, l.Primary)
	if l.Inline {
		b = appendBytes(b, l.Value)
	}
	return b
}

// DecodeLock parses a lock record. The result aliases b.
func DecodeLock(b []byte) (Lock, error) {
	var l Lock
	d := decoder{b: b, record: "lock"}
	op, flags := d.header(lockFlags)
	l.Op = kvrpcpb.Op(op)
	l.StartTS = d.fixed64()
	l.TTL = d.uvarint()
	l.TxnSize = d.uvarint()
	l.ExpiresAt = d.varint()
	l.Primary = d.bytes()
	l.Inline = flags&flagInline != 0
	if l.Inline {
		l.Value = d.bytes()
	}
	if err := d.finish(); err != nil {
		return Lock{}, err
	}
	switch {
	case l.Op != opPut && l.Op != opDel && l.Op != opLock:
		return Lock{}, fmt.Errorf("%w: lock: op %d", ErrCorrupt, op)
	case l.Inline && l.Op != opPut:
		return Lock{}, fmt.Errorf("%w: lock: inline value on a %v lock", ErrCorrupt, l.Op)
	}
	return l, nil
}

// Encode returns the write record bytes (see the package documentation).
func (w *Write) Encode() []byte {
	n := 3 + 8 + binary.MaxVarintLen64
	var flags byte
	if w.Inline {
		flags |= flagInline
		n += binary.MaxVarintLen64 + len(w.Value)
	}
	if w.OverlappedRollback {
		flags |= flagOverlapped
	}
	b := make([]byte, 0, n)
	b = append(b, recordV1, byte(w.Kind), flags)
	b = binary.BigEndian.AppendUint64(b, w.StartTS)
	b = binary.AppendVarint(b, w.ExpiresAt)
	if w.Inline {
		b = appendBytes(b, w.Value)
	}
	return b
}

// DecodeWrite parses a write record. The result aliases b.
func DecodeWrite(b []byte) (Write, error) {
	var w Write
	d := decoder{b: b, record: "write"}
	kind, flags := d.header(writeFlags)
	w.Kind = kvrpcpb.Op(kind)
	w.StartTS = d.fixed64()
	w.ExpiresAt = d.varint()
	w.Inline = flags&flagInline != 0
	w.OverlappedRollback = flags&flagOverlapped != 0
	if w.Inline {
		w.Value = d.bytes()
	}
	if err := d.finish(); err != nil {
		return Write{}, err
	}
	switch {
	case w.Kind < opPut || w.Kind > opRollback:
		return Write{}, fmt.Errorf("%w: write: kind %d", ErrCorrupt, kind)
	case w.Inline && w.Kind != opPut:
		return Write{}, fmt.Errorf("%w: write: inline value on a %v record", ErrCorrupt, w.Kind)
	case w.OverlappedRollback && w.Kind == opRollback:
		return Write{}, fmt.Errorf("%w: write: rollback record flagged as overlapped", ErrCorrupt)
	}
	return w, nil
}

// Equal reports whether two locks are the same record (tests and fuzzing).
func (l *Lock) Equal(o *Lock) bool {
	return l.Op == o.Op && bytes.Equal(l.Primary, o.Primary) && l.StartTS == o.StartTS &&
		l.TTL == o.TTL && l.TxnSize == o.TxnSize && l.ExpiresAt == o.ExpiresAt &&
		l.Inline == o.Inline && bytes.Equal(l.Value, o.Value)
}

// Equal reports whether two write records are the same record.
func (w *Write) Equal(o *Write) bool {
	return w.Kind == o.Kind && w.StartTS == o.StartTS && w.ExpiresAt == o.ExpiresAt &&
		w.Inline == o.Inline && bytes.Equal(w.Value, o.Value) && w.OverlappedRollback == o.OverlappedRollback
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// decoder reads fields front to back and remembers the first failure, so the
// record parsers read as a plain list of fields.
type decoder struct {
	b      []byte
	record string
	err    error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s", ErrCorrupt, d.record, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *decoder) header(allowedFlags byte) (op, flags byte) {
	if len(d.b) < 3 {
		d.fail("truncated header")
		return 0, 0
	}
	if d.b[0] != recordV1 {
		d.fail("unknown format version %d", d.b[0])
		return 0, 0
	}
	op, flags = d.b[1], d.b[2]
	if flags&^allowedFlags != 0 {
		d.fail("unknown flags %#x", flags)
		return 0, 0
	}
	d.b = d.b[3:]
	return op, flags
}

func (d *decoder) fixed64() uint64 {
	if len(d.b) < 8 {
		d.fail("truncated timestamp")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}
