package raftstore

import (
	"github.com/cockroachdb/pebble"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/raftserverpb"
)

// Field numbers of RaftCmdRequest and Modify (api/proto/raftserverpb.proto).
const (
	cmdFieldHeader = 1
	cmdFieldWrites = 2
	modFieldOp     = 1
	modFieldKey    = 2
	modFieldValue  = 3
)

// plainWrites recognises the command almost every entry carries — a header
// and a list of PUT and DELETE modifies, nothing else — straight from its
// protobuf bytes, so that applying it needs no RaftCmdRequest: decoding one
// allocated a Modify and copied its key and value for every key of a
// combined transaction, on every replica (about 15% of a follower's CPU under
// cluster SET load). It returns the header and true only if data is exactly
// such a command, encoded as proto.Marshal encodes it: each field once where
// protobuf would merge repeats, no unknown fields, ops PUT or DELETE. For
// anything else it returns false and the caller decodes data in full, so the
// outcome never depends on which path ran.
func plainWrites(data []byte) (*raftserverpb.CmdHeader, bool) {
	var header []byte
	seenHeader := false
	for b := data; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return nil, false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch num {
		case cmdFieldHeader:
			if seenHeader {
				return nil, false // protobuf would merge the two
			}
			header, seenHeader = v, true
		case cmdFieldWrites:
			if _, _, _, ok := plainModify(v); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if !seenHeader {
		return nil, true // as decoding leaves it: GetHeader() is nil
	}
	h := &raftserverpb.CmdHeader{}
	if err := proto.Unmarshal(header, h); err != nil {
		return nil, false
	}
	return h, true
}

// plainModify decodes one Modify's bytes: op, key and value, each at most
// once, nothing else, op PUT or DELETE. key and value alias m.
func plainModify(m []byte) (op raftserverpb.ModifyOp, key, value []byte, ok bool) {
	var seen [4]bool
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 || num < modFieldOp || num > modFieldValue || seen[num] {
			return 0, nil, nil, false
		}
		seen[num] = true
		m = m[n:]
		switch {
		case num == modFieldOp && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(m)
			if n < 0 {
				return 0, nil, nil, false
			}
			op, m = raftserverpb.ModifyOp(int32(v)), m[n:]
		case num != modFieldOp && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return 0, nil, nil, false
			}
			if num == modFieldKey {
				key = v
			} else {
				value = v
			}
			m = m[n:]
		default:
			return 0, nil, nil, false
		}
	}
	if op != raftserverpb.ModifyOp_MODIFY_PUT && op != raftserverpb.ModifyOp_MODIFY_DELETE {
		return 0, nil, nil, false
	}
	return op, key, value, true
}

// applyPlainWrites applies the modifies of a command plainWrites accepted, in
// order, as mvcc.ApplyModifies applies the decoded ones (the batch copies
// keys and values, so they may alias data), and returns the bytes of keys
// and values written. It notes what the writes do to write records in note
// (if not nil), for GC.
func applyPlainWrites(b *pebble.Batch, data []byte, note *gcNote) (written uint64, err error) {
	for len(data) > 0 {
		num, _, n := protowire.ConsumeTag(data)
		data = data[n:]
		v, n := protowire.ConsumeBytes(data)
		data = data[n:]
		if num != cmdFieldWrites {
			continue
		}
		op, key, value, _ := plainModify(v)
		if op == raftserverpb.ModifyOp_MODIFY_PUT {
			err = b.Set(key, value, nil)
			if note != nil {
				note.put(key)
			}
		} else {
			err = b.Delete(key, nil)
			if note != nil {
				note.del(key)
			}
		}
		if err != nil {
			return written, err
		}
		written += uint64(len(key) + len(value))
	}
	return written, nil
}
