package command

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// validReply consumes exactly one RESP value from rd.
func validReply(rd *bufio.Reader) error {
	line, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("truncated reply %q: %w", line, err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-':
		if bytes.ContainsAny([]byte(body), "\r\n") {
			return fmt.Errorf("newline inside simple reply %q", line)
		}
		return nil
	case ':':
		_, err := strconv.ParseInt(body, 10, 64)
		return err
	case '_':
		return nil
	case ',':
		_, err := strconv.ParseFloat(body, 64)
		return err
	case '$', '=':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad bulk length %q", line)
		}
		if n == -1 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil || buf[n] != '\r' || buf[n+1] != '\n' {
			return fmt.Errorf("bad bulk payload: %v", err)
		}
		return nil
	case '*', '~', '%':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad aggregate length %q", line)
		}
		if line[0] == '%' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := validReply(rd); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type %q", line)
}

// extremeNumbers are what every numeric argument position gets: the edges
// of int32, int64 and uint64, one past them, long digit strings, and
// almost-numbers that a lenient parser would take.
var extremeNumbers = []string{
	"0", "1", "-1", "-0",
	"2147483647", "2147483648", "2147483649", "-2147483647", "-2147483648", "-2147483649",
	"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"18446744073709551615", "18446744073709551616", "18446744073709551617", "-18446744073709551616",
	"123456789012345678901234", "-123456789012345678901234", "000000000000000000000007",
	"+5", " 5", "5 ", "0x10", "1e3", "1.5", "inf", "-inf", "nan", "",
	"536870911", "536870912", "1048575", "1048576",
}

// numericTemplates are commands with their numeric positions marked "#"
// (arguments NUL-separated, as FuzzExec's input).
var numericTemplates = []string{
	"SET\x00k\x00v\x00EX\x00#", "SET\x00k\x00v\x00PX\x00#", "SET\x00k\x00v\x00EXAT\x00#", "SET\x00k\x00v\x00PXAT\x00#",
	"SET\x00k\x00v\x00GET\x00EX\x00#", "SET\x00k\x00v\x00EX\x00#\x00EX\x00#",
	"SETEX\x00k\x00#\x00v", "PSETEX\x00k\x00#\x00v",
	"GETEX\x00k\x00EX\x00#", "GETEX\x00k\x00PX\x00#", "GETEX\x00k\x00EXAT\x00#", "GETEX\x00k\x00PXAT\x00#",
	"EXPIRE\x00k\x00#", "PEXPIRE\x00k\x00#", "EXPIREAT\x00k\x00#", "PEXPIREAT\x00k\x00#",
	"EXPIRE\x00k\x00#\x00GT", "PEXPIRE\x00k\x00#\x00LT", "EXPIREAT\x00k\x00#\x00NX", "PEXPIREAT\x00k\x00#\x00XX",
	"SETRANGE\x00k\x00#\x00x", "SETRANGE\x00k\x00#\x00", "SETRANGE\x00k\x00#\x00xyz",
	"GETRANGE\x00k\x00#\x005", "GETRANGE\x00k\x000\x00#", "GETRANGE\x00k\x00#\x00#",
	"SUBSTR\x00k\x00#\x00#",
	"INCRBY\x00k\x00#", "DECRBY\x00k\x00#", "INCRBYFLOAT\x00k\x00#",
	"SET\x00k\x00#", "SCAN\x00#", "SCAN\x000\x00COUNT\x00#", "SCAN\x00#\x00MATCH\x00*\x00COUNT\x00#",
	"SELECT\x00#", "HELLO\x00#", "CLIENT\x00LIST\x00ID\x00#",
	"MOVE\x00k\x00#", "COPY\x00k\x00j\x00DB\x00#", "COPY\x00k\x00k\x00DB\x00#\x00REPLACE", "SWAPDB\x00#\x00#", "SWAPDB\x000\x00#",
	"SETBIT\x00k\x00#\x001", "SETBIT\x00k\x007\x00#", "GETBIT\x00k\x00#",
	"BITCOUNT\x00k\x00#\x00#", "BITCOUNT\x00k\x00#\x00-1\x00BIT", "BITCOUNT\x00k\x000\x00#\x00BYTE",
	"BITPOS\x00k\x00#", "BITPOS\x00k\x000\x00#", "BITPOS\x00k\x001\x00#\x00#", "BITPOS\x00k\x000\x00#\x00#\x00BIT",
	"BITFIELD\x00k\x00GET\x00u8\x00#", "BITFIELD\x00k\x00SET\x00i64\x00#\x00#", "BITFIELD\x00k\x00INCRBY\x00u63\x000\x00#",
	"BITFIELD\x00k\x00OVERFLOW\x00SAT\x00INCRBY\x00i64\x000\x00#", "BITFIELD\x00k\x00OVERFLOW\x00FAIL\x00INCRBY\x00u1\x00#\x00#",
	"BITFIELD\x00k\x00OVERFLOW\x00WRAP\x00SET\x00i7\x00#\x00#", "BITFIELD_RO\x00k\x00GET\x00i64\x00#",
	"LCS\x00k\x00k\x00IDX\x00MINMATCHLEN\x00#", "LCS\x00k\x00j\x00MINMATCHLEN\x00#\x00LEN",
	// A payload cannot hold a NUL here, which every real one has (the
	// string type is 0): these reach the TTL and option checks, and the
	// decoder has its own fuzz target (internal/rdb FuzzDecode).
	"RESTORE\x00k\x00#\x00payload", "RESTORE\x00k\x00#\x00payload\x00ABSTTL\x00REPLACE",
	"RESTORE\x00k\x000\x00payload\x00IDLETIME\x00#", "RESTORE\x00k\x000\x00payload\x00REPLACE\x00FREQ\x00#",
	"RESTORE\x00k\x00#\x00payload\x00IDLETIME\x00#\x00FREQ\x00#",
	"SLOWLOG\x00GET\x00#", "MEMORY\x00USAGE\x00k\x00SAMPLES\x00#", "CONFIG\x00SET\x00slowlog-max-len\x00#",
	"CONFIG\x00SET\x00slowlog-log-slower-than\x00#", "CONFIG\x00SET\x00latency-monitor-threshold\x00#",
	"CONFIG\x00SET\x00maxclients\x00#", "CLIENT\x00PAUSE\x00#\x00WRITE", "CLIENT\x00KILL\x00ID\x00#",
	"CLIENT\x00KILL\x00MAXAGE\x00#\x00TYPE\x00master",
}

// fillTemplate puts v in every "#" position of a template.
func fillTemplate(tmpl, v string) []byte {
	args := bytes.Split([]byte(tmpl), []byte{0})
	for i, a := range args {
		if string(a) == "#" {
			args[i] = []byte(v)
		}
	}
	return bytes.Join(args, []byte{0})
}

// substitute is FuzzExec's mutator for numbers: byte i-1 of subst, when not
// zero, replaces argument i (1 to 8) with one of extremeNumbers. The fuzzing
// engine mutates subst like any input, so it moves extreme values into any
// position of any command it has found.
func substitute(args [][]byte, subst uint64) [][]byte {
	for i := 1; i < len(args) && i <= 8; i++ {
		if b := byte(subst >> (8 * (i - 1))); b != 0 {
			args[i] = []byte(extremeNumbers[int(b-1)%len(extremeNumbers)])
		}
	}
	return args
}

// fuzzSeeds are FuzzExec's seed inputs: hand-picked commands, and every
// numeric template with every extreme number.
func fuzzSeeds() []string {
	seeds := []string{
		"SET\x00k\x00v\x00EX\x0010",
		"SET\x00k\x00v\x00PXAT\x00-1",
		"SET\x00k\x00v\x00NX\x00GET\x00KEEPTTL",
		"GETEX\x00k\x00PERSIST",
		"INCRBYFLOAT\x00k\x001e4000",
		"INCRBY\x00k\x00-9223372036854775808",
		"SETRANGE\x00k\x00100\x00x",
		"GETRANGE\x00k\x00-9223372036854775808\x009223372036854775807",
		"EXPIRE\x00k\x00-9223372036854775808\x00GT",
		"SCAN\x000\x00MATCH\x00[\x00COUNT\x001",
		"KEYS\x00*[a-\\",
		"MSET\x00a\x00b\x00c",
		"HELLO\x003\x00AUTH\x00default\x00x\x00SETNAME\x00n",
		"CLIENT\x00SETINFO\x00lib-name\x00x y",
		"COMMAND\x00INFO\x00get\x00nosuch",
		"CONFIG\x00GET\x00*",
		"INFO\x00everything",
		"INFO\x00default\x00commandstats\x00errorstats\x00cpu",
		"CONFIG\x00SET\x00maxclients\x0010\x00slowlog-max-len\x00-1",
		"CONFIG\x00RESETSTAT",
		"SLOWLOG\x00GET\x00-1",
		"LATENCY\x00LATEST",
		"MONITOR",
		"CLIENT\x00KILL\x00ADDR\x00127.0.0.1:1\x00SKIPME\x00no",
		"CLIENT\x00REPLY\x00SKIP",
		"RENAME\x00a\x00a",
		"BITFIELD\x00k\x00GET\x00i64\x00#9223372036854775807",
		"BITFIELD\x00k\x00SET\x00u63\x00#16383\x00-1\x00GET\x00u8\x00#-1",
		"BITFIELD\x00k\x00OVERFLOW\x00FAIL\x00SET\x00i64\x000\x00-9223372036854775808\x00INCRBY\x00i64\x000\x00-1",
		"BITFIELD_RO\x00k\x00SET\x00u8\x000\x001",
		"BITOP\x00AND\x00d\x00k\x00nokey\x00k",
		"BITOP\x00NOT\x00d\x00k",
		"BITOP\x00XOR\x00k\x00k\x00d",
		"BITPOS\x00k\x000\x000\x00-1\x00BIT",
		"COPY\x00k\x00k", "COPY\x00k\x00j\x00DB", "COPY\x00k\x00j\x00REPLACE\x00FOO", "MOVE\x00k\x000",
		"FLUSHDB\x00ASYNC", "SWAPDB\x001\x002",
		"DUMP\x00k", "OBJECT\x00ENCODING\x00k", "OBJECT\x00REFCOUNT\x00k", "OBJECT\x00IDLETIME\x00k", "OBJECT\x00FREQ\x00k",
		"OBJECT\x00HELP", "OBJECT\x00help\x00x", "OBJECT\x00nosuch\x00k",
		"RESTORE\x00k\x000\x00\xc3\x02\x80\xff\xff\xff\xff\x01a\n\x01\x01\x01\x01\x01\x01\x01\x01\x01",
		"RESTORE\x00k\x000\x00garbage\x00REPLACE\x00ABSTTL\x00IDLETIME\x001\x00FREQ\x001",
		"HSET\x00h\x00f\x00v\x00g\x00w", "HINCRBY\x00h\x00f\x00-9223372036854775808", "HINCRBYFLOAT\x00h\x00f\x001e4000",
		"HRANDFIELD\x00h\x00-5\x00WITHVALUES", "HSCAN\x00h\x000\x00MATCH\x00*\x00COUNT\x001", "HGETALL\x00h", "HDEL\x00h\x00f\x00g",
		"SADD\x00s\x001\x00a", "SPOP\x00s\x002", "SRANDMEMBER\x00s\x00-3", "SINTERCARD\x002\x00s\x00h\x00LIMIT\x001",
		"SUNIONSTORE\x00s\x00s\x00k", "SMOVE\x00s\x00t\x00a", "SSCAN\x00s\x000\x00COUNT\x001", "RENAME\x00h\x00s", "COPY\x00s\x00h\x00REPLACE",
		"ZADD\x00z\x00GT\x00CH\x001e400\x00a\x00-0\x00b", "ZINCRBY\x00z\x00-inf\x00a", "ZRANGE\x00z\x00(1\x00+inf\x00BYSCORE\x00REV\x00LIMIT\x00-1\x00-1",
		"ZRANGEBYLEX\x00z\x00[a\x00+", "ZPOPMAX\x00z\x009223372036854775807", "ZMPOP\x002\x00z\x00s\x00MIN\x00COUNT\x002",
		"ZUNIONSTORE\x00z\x002\x00z\x00s\x00WEIGHTS\x00inf\x000\x00AGGREGATE\x00MIN", "ZSCAN\x00z\x000\x00COUNT\x001",
		"ZRANDMEMBER\x00z\x00-5\x00WITHSCORES", "ZREMRANGEBYRANK\x00z\x000\x00-2", "ZRANGESTORE\x00y\x00z\x000\x00-1",
		"",
	}
	for _, tmpl := range numericTemplates {
		for _, v := range extremeNumbers {
			seeds = append(seeds, string(fillTemplate(tmpl, v)))
		}
	}
	return seeds
}

// fuzzExecutor is an Executor over a fresh embedded store, as FuzzExec runs it.
func fuzzExecutor(tb testing.TB) *Executor {
	store, err := embedded.Open(embedded.Options{Dir: tb.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return New(store, Options{MaxBulkLen: 1 << 20, MaxClients: 10, SyncPolicy: "no", Addr: "127.0.0.1:6380"})
}

// execOne runs one command on a fresh client and fails tb unless it was
// answered with exactly one well-formed RESP reply, without a panic (which
// Exec contains, answering ERR internal error) or another internal error.
func execOne(tb testing.TB, e *Executor, args [][]byte) {
	tb.Helper()
	c := e.NewClient("127.0.0.1:1", "127.0.0.1:6380")
	defer e.CloseClient(c)
	panics := e.Panics()
	if err := e.Exec(context.Background(), c, args, true); err != nil {
		tb.Fatalf("Exec(%q): %v", args, err)
	}
	out := c.Out.Bytes()
	if len(out) == 0 && len(args) == 3 && equalFold(args[0], "client") && equalFold(args[1], "reply") &&
		(equalFold(args[2], "off") || equalFold(args[2], "skip")) {
		return // as in Redis: CLIENT REPLY OFF and SKIP answer nothing
	}
	if e.Panics() != panics {
		tb.Fatalf("Exec(%q) panicked (replied %q)", args, out)
	}
	if bytes.HasPrefix(out, []byte("-ERR internal error")) {
		tb.Fatalf("Exec(%q) replied %q", args, out)
	}
	rd := bufio.NewReader(bytes.NewReader(out))
	if err := validReply(rd); err != nil {
		tb.Fatalf("Exec(%q) replied %q: %v", args, out, err)
	}
	if rest, _ := io.ReadAll(rd); len(rest) != 0 {
		tb.Fatalf("Exec(%q) replied more than one value: %q", args, out)
	}
}

// FuzzExec feeds arbitrary argument vectors (NUL-separated in in, with the
// extreme numbers that subst selects put in) to the command layer over a real
// embedded store: whatever comes in, the command must not panic and must be
// answered with exactly one well-formed RESP reply.
func FuzzExec(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add([]byte(seed), uint64(0))
	}
	// Substitutions in the first positions of a few commands.
	f.Add([]byte("SETRANGE\x00k\x000\x00x"), uint64(11)<<8)
	f.Add([]byte("GETRANGE\x00k\x000\x00-1"), uint64(13)<<16|uint64(12)<<8)
	f.Add([]byte("SET\x00k\x00v\x00EX\x0010"), uint64(15)<<24)
	e := fuzzExecutor(f)
	f.Fuzz(func(t *testing.T, in []byte, subst uint64) {
		args := bytes.Split(in, []byte{0})
		if len(args) == 0 || len(args[0]) == 0 {
			return
		}
		execOne(t, e, substitute(args, subst))
	})
}

// fuzzExecSample generates n commands the way FuzzExec's inputs are made
// (a seed, then extreme numbers substituted into one to three positions),
// from a fixed seed, so that a run can be repeated elsewhere.
func fuzzExecSample(seed uint64, n int) [][][]byte {
	rng := rand.New(rand.NewPCG(seed, 0x6e6f6b76))
	seeds := fuzzSeeds()
	var out [][][]byte
	for len(out) < n {
		args := bytes.Split([]byte(seeds[rng.IntN(len(seeds))]), []byte{0})
		if len(args[0]) == 0 {
			continue
		}
		var subst uint64
		if len(args) > 1 && rng.IntN(3) > 0 {
			for range 1 + rng.IntN(3) {
				pos := rng.IntN(min(len(args)-1, 8))
				subst |= uint64(1+rng.IntN(len(extremeNumbers))) << (8 * pos)
			}
		}
		args = substitute(args, subst)
		if bigBitmapWrite(args) {
			continue
		}
		out = append(out, args)
	}
	return out
}

// bigBitmapWrite reports whether args is a SETBIT or BITFIELD that would
// build a string past 32 MiB at the default proto-max-bulk-len. The sample
// leaves them out: tests/hostile replays it against the real binary and
// fails a command that grows the server by more than 256 MiB, as a 256 MiB
// bitmap legitimately does (it leaves out SETRANGE far out likewise).
func bigBitmapWrite(args [][]byte) bool {
	const limit = 32 << 20
	e := &Executor{opts: Options{MaxBulkLen: resp.DefaultMaxBulkLen}}
	switch {
	case equalFold(args[0], "setbit") && len(args) == 4:
		off, err := e.bitOffset(args[2], false, 0)
		return err == nil && off>>3 >= limit
	case equalFold(args[0], "bitfield") && len(args) >= 2:
		r := &Request{e: e, Args: args}
		_, readonly, highest, err := r.parseBitfield()
		return err == nil && !readonly && highest>>3 >= limit
	}
	return false
}

// TestFuzzExecSample runs a fixed-seed sample of FuzzExec's inputs in order
// against one store, so that state carries from command to command. With
// NOKV_FUZZEXEC_SAMPLE=<file> it also writes the sample there (JSON, an array
// of argument vectors, each argument base64), which tests/hostile replays over
// the wire against the real binary on both backends.
func TestFuzzExecSample(t *testing.T) {
	sample := fuzzExecSample(1, 600)
	if path := os.Getenv("NOKV_FUZZEXEC_SAMPLE"); path != "" {
		data, err := json.Marshal(sample)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := fuzzExecutor(t)
	for _, args := range sample {
		execOne(t, e, args)
	}
}

// FuzzParseInt checks the strict integer parser against its definition: it
// accepts exactly the canonical decimal forms of int64 values.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-1", "01", "+1", " 1", "-0", "9223372036854775807", "-9223372036854775808", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseInt([]byte(s))
		canonical := false
		if m, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(m, 10) == s {
			canonical = true
			if ok && n != m {
				t.Fatalf("parseInt(%q) = %d, want %d", s, n, m)
			}
		}
		if ok != canonical {
			t.Fatalf("parseInt(%q) ok=%v, canonical=%v", s, ok, canonical)
		}
	})
}
