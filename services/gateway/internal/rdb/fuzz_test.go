package rdb

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds RESTORE's decoder arbitrary payloads (their CRC made
// right half of the time, so that the fuzzer gets past the checksum):
// it must never panic, must ask the limit before it allocates a string,
// and must hand back nothing larger than the limit allowed or the payload
// could hold. Whatever decodes must survive DUMP and decode to itself.
func FuzzDecode(f *testing.F) {
	for _, c := range knownDumps {
		f.Add([]byte(c.payload), true)
	}
	f.Add([]byte("\x00\xc3\x02\x80\xff\xff\xff\xff\x00a"), true)        // LZF claiming 4 GiB
	f.Add([]byte("\x00\xc3\x80\x7f\xff\xff\xff\x01\x00a"), true)        // compressed length past the end
	f.Add([]byte("\x00\x81\x00\x00\x00\x01\x00\x00\x00\x00"), true)     // 4 GiB verbatim
	f.Add([]byte("\x00\xc3\x04\x05\x01ab\x20\x00"), true)               // a back reference
	f.Add([]byte("\x00\xc3\x03\xff\x00a\xe0\xff\x00"), true)            // long back references
	f.Add(DumpString(bytes.Repeat([]byte("abc"), 300))[:20], true)      // a real stream, cut
	f.Add(DumpString(bytes.Repeat([]byte("xyz0123456789"), 50)), false) // a whole payload
	f.Add([]byte("\x04\x00"), true)                                     // a hash
	f.Fuzz(func(t *testing.T, body []byte, seal bool) {
		p := body
		if seal {
			p = Seal(bytes.Clone(body))
		}
		const max = 1 << 20
		errCap := errors.New("over the limit")
		var asked uint64
		asks := 0
		out, err := Decode(p, func(n uint64) error {
			asked, asks = n, asks+1
			if n > max {
				return errCap
			}
			return nil
		})
		if err != nil {
			if out != nil {
				t.Fatalf("Decode returned %d bytes with error %v", len(out), err)
			}
			return
		}
		if uint64(len(out)) > max || uint64(len(out)) > uint64(len(p))*lzfMaxRatio {
			t.Fatalf("Decode returned %d bytes from a payload of %d", len(out), len(p))
		}
		// Integers are built from 4 bytes at most; anything else was asked for.
		if len(out) > 11 && (asks != 1 || asked != uint64(len(out))) {
			t.Fatalf("Decode returned %d bytes; the limit was asked %d times, last for %d", len(out), asks, asked)
		}
		back, err := Decode(DumpString(out), func(uint64) error { return nil })
		if err != nil || !bytes.Equal(back, out) {
			t.Fatalf("DUMP of a decoded %q does not decode to itself: %q, %v", out, back, err)
		}
	})
}

// FuzzLZF: whatever the compressor emits decompresses to its input, and
// the decompressor survives any input.
func FuzzLZF(f *testing.F) {
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 10)
	f.Add(bytes.Repeat([]byte("hello world "), 100), 1000)
	f.Add([]byte("\xe0\xff\x00\x1f"), 3)
	f.Fuzz(func(t *testing.T, in []byte, room int) {
		room = min(max(room, 0), 1<<16)
		scratch := make([]byte, room)
		_ = lzfDecompress(in, scratch) // must not panic
		out := make([]byte, len(in)+16)
		n := lzfCompress(in, out)
		if n == 0 {
			return // does not fit: Redis stores such a string verbatim
		}
		back := make([]byte, len(in))
		if m := lzfDecompress(out[:n], back); m != len(in) || !bytes.Equal(back, in) {
			t.Fatalf("round trip of %q: %d bytes, %q", in, m, back)
		}
	})
}
