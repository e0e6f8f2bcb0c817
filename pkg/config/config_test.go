package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const examplePath = "../../raft_config.example.json"

// exampleSplit is the key at which raft_config.example.json splits its two
// regions: database 0's key "m" in the gateway's encoding (4-byte big-endian
// database number, then the Redis key).
const exampleSplit = "hex:000000006d"

// exampleCluster returns a cluster equivalent to raft_config.example.json.
func exampleCluster() *Cluster {
	c := validCluster()
	split := Key("\x00\x00\x00\x00m")
	c.Regions[0].EndKey = split
	c.Regions[1].StartKey = split
	return c
}

// validCluster returns the example cluster's layout with its regions split
// at the readable key "m", so that validation messages stay legible.
func validCluster() *Cluster {
	return &Cluster{
		MaxRetries: 8,
		PD: PD{
			Addr:          "127.0.0.1:2379",
			DockerAddr:    "nokv-pd:2379",
			WorkDir:       "./data/pd",
			DockerWorkDir: "/var/lib/nokv/pd",
		},
		Stores: []Store{
			{StoreID: 1, ListenAddr: "127.0.0.1:20160", Addr: "127.0.0.1:20160", DockerListenAddr: "0.0.0.0:20160", DockerAddr: "nokv-store-1:20160"},
			{StoreID: 2, ListenAddr: "127.0.0.1:20161", Addr: "127.0.0.1:20161", DockerListenAddr: "0.0.0.0:20160", DockerAddr: "nokv-store-2:20160"},
			{StoreID: 3, ListenAddr: "127.0.0.1:20162", Addr: "127.0.0.1:20162", DockerListenAddr: "0.0.0.0:20160", DockerAddr: "nokv-store-3:20160"},
		},
		Regions: []Region{
			{
				ID: 1, StartKey: nil, EndKey: Key("m"), Epoch: Epoch{Version: 1, ConfVersion: 1},
				Peers:         []Peer{{StoreID: 1, PeerID: 101}, {StoreID: 2, PeerID: 102}, {StoreID: 3, PeerID: 103}},
				LeaderStoreID: 1,
			},
			{
				ID: 2, StartKey: Key("m"), EndKey: nil, Epoch: Epoch{Version: 1, ConfVersion: 1},
				Peers:         []Peer{{StoreID: 1, PeerID: 201}, {StoreID: 2, PeerID: 202}, {StoreID: 3, PeerID: 203}},
				LeaderStoreID: 2,
			},
		},
	}
}

func readExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// wantErr checks that err is an ErrInvalid error whose message contains
// every string in want, or that err is nil if want is empty.
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
}

func TestLoadExample(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if want := exampleCluster(); !reflect.DeepEqual(c, want) {
		t.Errorf("Load(%s) =\n%+v\nwant\n%+v", examplePath, c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	_, err := Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "load cluster file "+missing+": ") {
		t.Errorf("Load(missing) = %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"foo": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	wantErr(t, err, "load cluster file "+bad+`: config: unknown field "foo"`)
}

func threeMembers() []PDMember {
	var ms []PDMember
	for i := range 3 {
		ms = append(ms, PDMember{
			Name: fmt.Sprintf("pd%d", i+1), Addr: fmt.Sprintf("127.0.0.1:%d", 2379+10*i), DockerAddr: fmt.Sprintf("pd%d:2379", i+1),
			PeerURL: fmt.Sprintf("http://127.0.0.1:%d", 2380+10*i), DockerPeerURL: fmt.Sprintf("http://pd%d:2380", i+1),
		})
	}
	return ms
}

// TestPDMembers: with pd.members every member's address for the scope, in
// file order, and PDAddr the comma-separated list clients dial.
func TestPDMembers(t *testing.T) {
	c := &Cluster{PD: PD{WorkDir: "/data/pd", DockerWorkDir: "/var/lib/pd", Members: threeMembers()}}
	c.PD.Members[2].WorkDir = "/elsewhere"
	if got := c.PDAddr(ScopeHost); got != "127.0.0.1:2379,127.0.0.1:2389,127.0.0.1:2399" {
		t.Fatalf("PDAddr(host) = %q", got)
	}
	if got := c.PDAddr(ScopeDocker); got != "pd1:2379,pd2:2379,pd3:2379" {
		t.Fatalf("PDAddr(docker) = %q", got)
	}
	ms := c.PDMembers(ScopeDocker)
	if len(ms) != 3 || ms[1] != (PDMemberAddrs{Name: "pd2", Addr: "pd2:2379", PeerURL: "http://pd2:2380", WorkDir: "/var/lib/pd/pd2"}) {
		t.Fatalf("PDMembers(docker) = %+v", ms)
	}
	if ms := c.PDMembers(ScopeHost); ms[2].WorkDir != "/elsewhere" || ms[0].WorkDir != "/data/pd/pd1" {
		t.Fatalf("PDMembers(host) work dirs = %+v", ms)
	}
	single := &Cluster{PD: PD{Addr: "h:1", DockerAddr: "d:1"}}
	if single.PDAddr(ScopeDocker) != "d:1" || single.PDMembers(ScopeHost) != nil {
		t.Fatalf("one PD: %q %v", single.PDAddr(ScopeDocker), single.PDMembers(ScopeHost))
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Cluster)
		want   string // substring of the error; "" means valid
	}{
		{"example", func(c *Cluster) {}, ""},
		{"zero max_retries", func(c *Cluster) { c.MaxRetries = 0 }, ""},
		{"negative max_retries", func(c *Cluster) { c.MaxRetries = -1 }, "config: max_retries: must be >= 0, got -1"},

		{"empty pd addr", func(c *Cluster) { c.PD.Addr = "" }, "config: pd.addr: must not be empty"},
		{"blank pd addr", func(c *Cluster) { c.PD.Addr = "  " }, "config: pd.addr: must not be empty"},
		{"pd addr without port", func(c *Cluster) { c.PD.Addr = "localhost" }, `config: pd.addr: invalid address "localhost": want host:port`},
		{"pd addr empty port", func(c *Cluster) { c.PD.Addr = "localhost:" }, `config: pd.addr: invalid address "localhost:"`},
		{"bad pd docker addr", func(c *Cluster) { c.PD.DockerAddr = "nokv-pd" }, `config: pd.docker_addr: invalid address "nokv-pd"`},
		{"optional pd fields empty", func(c *Cluster) { c.PD = PD{Addr: ":2379"} }, ""},
		{"pd members without pd addr", func(c *Cluster) { c.PD = PD{Members: threeMembers()} }, ""},
		{"pd member without name", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[1].Name = "" }, "config: pd.members[1].name: must not be empty"},
		{"pd member name with =", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[1].Name = "a=b" }, `config: pd.members[1].name: "a=b": must not contain`},
		{"duplicate pd member name", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[2].Name = "pd1" }, `config: pd.members[2].name: duplicate member name "pd1"`},
		{"pd member without addr", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[0].Addr = "" }, "config: pd.members[0].addr: must not be empty"},
		{"pd member without peer url", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[0].PeerURL = "" }, "config: pd.members[0].peer_url: must not be empty"},
		{"pd member peer url not http", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[0].PeerURL = "https://h:1" }, `config: pd.members[0].peer_url: "https://h:1": want http://host:port`},
		{"pd member peer url without port", func(c *Cluster) { c.PD = PD{Members: threeMembers()}; c.PD.Members[0].DockerPeerURL = "http://h" }, `config: pd.members[0].docker_peer_url: "http://h": want http://host:port`},
		{"pd members share an address", func(c *Cluster) {
			c.PD = PD{Members: threeMembers()}
			c.PD.Members[1].PeerURL = "http://127.0.0.1:2379"
		}, "config: pd.members[1].peer_url: 127.0.0.1:2379 is also pd.members[0].addr"},
		{"eight pd members", func(c *Cluster) {
			c.PD = PD{Members: threeMembers()}
			for i := range 5 {
				c.PD.Members = append(c.PD.Members, PDMember{Name: fmt.Sprintf("x%d", i), Addr: fmt.Sprintf("10.0.0.%d:1", i), PeerURL: fmt.Sprintf("http://10.0.0.%d:2", i)})
			}
		}, "config: pd.members: at most 7 members, got 8"},

		{"no stores", func(c *Cluster) { c.Stores = nil }, "config: stores: at least one store is required"},
		{"zero store id", func(c *Cluster) { c.Stores[1].StoreID = 0 }, "config: stores[1].store_id: must be nonzero"},
		{"duplicate store id", func(c *Cluster) { c.Stores[0].StoreID = 3 }, "config: stores[2].store_id: duplicate store id 3"},
		{"empty store addr", func(c *Cluster) { c.Stores[0].Addr = "" }, "config: stores[0].addr: must not be empty"},
		{"bad store addr", func(c *Cluster) { c.Stores[0].Addr = "nohost" }, `config: stores[0].addr: invalid address "nohost"`},
		{"empty listen addr defaults", func(c *Cluster) { c.Stores[0].ListenAddr = "" }, ""},
		{"bad listen addr", func(c *Cluster) { c.Stores[1].ListenAddr = "x" }, `config: stores[1].listen_addr: invalid address "x"`},
		{"bad docker addr", func(c *Cluster) { c.Stores[2].DockerAddr = "x" }, `config: stores[2].docker_addr: invalid address "x"`},
		{"bad docker listen addr", func(c *Cluster) { c.Stores[2].DockerListenAddr = "x" }, `config: stores[2].docker_listen_addr: invalid address "x"`},
		{"docker fields empty", func(c *Cluster) {
			for i := range c.Stores {
				c.Stores[i].DockerAddr, c.Stores[i].DockerListenAddr = "", ""
			}
		}, ""},

		{"no regions", func(c *Cluster) { c.Regions = nil }, "config: regions: at least one region is required"},
		{"zero region id", func(c *Cluster) { c.Regions[1].ID = 0 }, "config: regions[1].id: must be nonzero"},
		{"duplicate region id", func(c *Cluster) { c.Regions[1].ID = 1 }, "config: regions[1].id: duplicate region id 1"},
		{"no peers", func(c *Cluster) { c.Regions[0].Peers = nil; c.Regions[0].LeaderStoreID = 0 }, "config: regions[0].peers: at least one peer is required"},
		{"zero peer id", func(c *Cluster) { c.Regions[0].Peers[1].PeerID = 0 }, "config: regions[0].peers[1].peer_id: must be nonzero"},
		{"duplicate peer id in region", func(c *Cluster) { c.Regions[0].Peers[2].PeerID = 101 },
			"config: regions[0].peers[2].peer_id: duplicate peer id 101 (also regions[0].peers[0])"},
		{"duplicate peer id across regions", func(c *Cluster) { c.Regions[1].Peers[0].PeerID = 103 },
			"config: regions[1].peers[0].peer_id: duplicate peer id 103 (also regions[0].peers[2])"},
		{"zero peer store", func(c *Cluster) { c.Regions[1].Peers[2].StoreID = 0 }, "config: regions[1].peers[2].store_id: must be nonzero"},
		{"unknown peer store", func(c *Cluster) { c.Regions[1].Peers[2].StoreID = 9 }, "config: regions[1].peers[2].store_id: unknown store id 9"},
		{"two peers on one store", func(c *Cluster) { c.Regions[0].Peers[2].StoreID = 1 },
			"config: regions[0].peers[2].store_id: region already has a peer on store 1"},
		{"leader without peer", func(c *Cluster) { c.Regions[0].Peers = c.Regions[0].Peers[1:] },
			"config: regions[0].leader_store_id: store 1 holds no peer of this region"},
		{"unknown leader store", func(c *Cluster) { c.Regions[1].LeaderStoreID = 7 },
			"config: regions[1].leader_store_id: store 7 holds no peer of this region"},
		{"no leader", func(c *Cluster) { c.Regions[0].LeaderStoreID = 0 }, ""},
		{"single peer", func(c *Cluster) { c.Regions[1].Peers = c.Regions[1].Peers[1:2] }, ""},

		{"start equals end", func(c *Cluster) { c.Regions[1].EndKey = Key("m") },
			`config: regions[1].end_key: must be greater than start_key "m", got "m"`},
		{"start after end", func(c *Cluster) { c.Regions[1].EndKey = Key("a") },
			`config: regions[1].end_key: must be greater than start_key "m", got "a"`},
		{"first region not at -inf", func(c *Cluster) { c.Regions[0].StartKey = Key("a") },
			`config: regions[0].start_key: gap in key space: no region starts at "", the lowest start key is "a"`},
		{"gap", func(c *Cluster) { c.Regions[1].StartKey = Key("n") },
			`config: regions[1].start_key: gap in key space: start key "n" does not equal the end key "m" of regions[0]`},
		{"overlap", func(c *Cluster) { c.Regions[1].StartKey = Key("l") },
			`config: regions[1].start_key: start key "l" overlaps regions[0] ["", "m")`},
		{"last region not at +inf", func(c *Cluster) { c.Regions[1].EndKey = Key("z") },
			`config: regions[1].end_key: gap in key space: the highest region must end at "", got "z"`},
		{"unbounded region overlaps later one", func(c *Cluster) { c.Regions[0].EndKey = nil },
			`config: regions[1].start_key: start key "m" overlaps regions[0] ["", "")`},
		{"two regions start at -inf", func(c *Cluster) { c.Regions[1].StartKey = nil },
			`config: regions[1].start_key: start key "" overlaps regions[0] ["", "m")`},
		{"regions listed out of order", func(c *Cluster) { c.Regions[0], c.Regions[1] = c.Regions[1], c.Regions[0] }, ""},
		{"one region covering everything", func(c *Cluster) { c.Regions[0].EndKey = nil; c.Regions = c.Regions[:1] }, ""},
		{"binary boundary", func(c *Cluster) {
			c.Regions[0].EndKey = Key{0x00, 0xff}
			c.Regions[1].StartKey = Key{0x00, 0xff}
		}, ""},
		{"binary boundary mismatch", func(c *Cluster) {
			c.Regions[0].EndKey = Key{0x00, 0xff}
			c.Regions[1].StartKey = Key{0x00, 0xfe}
		}, `config: regions[1].start_key: start key "hex:00fe" overlaps regions[0] ["", "hex:00ff")`},
		{"three regions", func(c *Cluster) {
			r := c.Regions[1]
			r.ID, r.StartKey, r.EndKey = 3, Key("t"), nil
			r.Peers = []Peer{{StoreID: 3, PeerID: 301}}
			r.LeaderStoreID = 3
			c.Regions[1].EndKey = Key("t")
			c.Regions = append(c.Regions, r)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCluster()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == "" {
				wantErr(t, err)
			} else {
				wantErr(t, err, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validCluster()
	c.MaxRetries = -2
	c.Stores[1].Addr = ""
	c.Regions[1].Peers[0].StoreID = 42
	err := c.Validate()
	wantErr(t, err,
		"config: max_retries: must be >= 0, got -2",
		"config: stores[1].addr: must not be empty",
		"config: regions[1].peers[0].store_id: unknown store id 42")
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "max_retries" {
		t.Errorf("errors.As(*FieldError) = %v, first path %q", fe, fe.Path)
	}
}

// edit returns the example file with the first occurrence of old replaced.
func edit(t *testing.T, old, new string) string {
	t.Helper()
	src := readExample(t)
	if !strings.Contains(src, old) {
		t.Fatalf("example file does not contain %q", old)
	}
	return strings.Replace(src, old, new, 1)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"unknown top-level field", edit(t, `"max_retries": 8,`, `"max_retries": 8, "foo": 1,`), `config: unknown field "foo"`},
		{"unknown pd field", edit(t, `"addr": "127.0.0.1:2379",`, `"addr": "127.0.0.1:2379", "foo": 1,`), `config: pd: unknown field "foo"`},
		{"unknown store field", edit(t, `"store_id": 2,`, `"store_id": 2, "foo": 1,`), `config: stores[1]: unknown field "foo"`},
		{"unknown region field", edit(t, `"id": 2,`, `"id": 2, "foo": 1,`), `config: regions[1]: unknown field "foo"`},
		{"unknown epoch field", edit(t, `"conf_version": 1 }`, `"conf_version": 1, "foo": 1 }`), `config: regions[0].epoch: unknown field "foo"`},
		{"unknown peer field", edit(t, `"peer_id": 203 }`, `"peer_id": 203, "foo": 1 }`), `config: regions[1].peers[2]: unknown field "foo"`},

		{"bad hex start key", edit(t, `"start_key": "`+exampleSplit+`"`, `"start_key": "hex:zz"`),
			`config: regions[1].start_key: bad hex "zz": encoding/hex: invalid byte: U+007A 'z'`},
		{"odd hex end key", edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": "hex:6"`),
			`config: regions[0].end_key: bad hex "6": encoding/hex: odd length hex string`},
		{"hex keys tile", strings.Replace(edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": "hex:000000006d"`), `"start_key": "`+exampleSplit+`"`, `"start_key": "hex:000000006D"`, 1), ""},
		{"escaped raw key tiles with hex", edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": "\u0000\u0000\u0000\u0000m"`), ""},
		{"hex key mismatch", strings.Replace(edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": "hex:000000006d00"`), `"start_key": "`+exampleSplit+`"`, `"start_key": "hex:000000006d"`, 1),
			`config: regions[1].start_key: start key "hex:000000006d" overlaps regions[0] ["", "hex:000000006d00")`},
		{"empty hex is unbounded", edit(t, `"start_key": ""`, `"start_key": "hex:"`), ""},

		{"string store id", edit(t, `"store_id": 3,`, `"store_id": "3",`), `config: stores[2].store_id: cannot use JSON string as non-negative integer`},
		{"negative store id", edit(t, `"store_id": 3,`, `"store_id": -3,`), `config: stores[2].store_id: cannot use JSON number -3 as non-negative integer`},
		{"fractional peer id", edit(t, `"peer_id": 102`, `"peer_id": 1.5`), `config: regions[0].peers[1].peer_id: cannot use JSON number 1.5 as non-negative integer`},
		{"string max_retries", edit(t, `"max_retries": 8`, `"max_retries": "8"`), `config: max_retries: cannot use JSON string as integer`},
		{"stores not an array", `{"stores": {}}`, `config: stores: cannot use JSON object as array`},
		{"pd not an object", `{"pd": 5}`, `config: pd: cannot use JSON number as object`},
		{"store not an object", `{"stores": [true]}`, `config: stores[0]: cannot use JSON bool as object`},
		{"numeric key", edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": 7`), `config: regions[0].end_key: cannot use JSON number as string`},
		{"top level array", `[]`, `config: cannot use JSON array as object`},

		{"syntax error", "{\n  \"max_retries\": 8,\n}", `config: syntax error at line 3, column 1: invalid character '}'`},
		{"truncated", `{"max_retries": 8`, `config: unexpected end of input`},
		{"empty", ``, `config: empty document`},
		{"whitespace only", " \n", `config: empty document`},
		{"trailing data", readExample(t) + "{}", `config: unexpected data after the top-level object`},
		{"trailing whitespace", readExample(t) + "\n\n", ""},

		{"validation runs after decoding", edit(t, `"store_id": 3,`, `"store_id": 2,`), `config: stores[2].store_id: duplicate store id 2`},
		{"empty object fails validation", `{}`, `config: pd.addr: must not be empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.data))
			if tt.want == "" {
				wantErr(t, err)
				if c == nil {
					t.Fatal("Parse returned nil cluster without error")
				}
				return
			}
			wantErr(t, err, tt.want)
			if c != nil {
				t.Errorf("Parse returned a cluster along with error %v", err)
			}
		})
	}
}

func TestParseHexKeys(t *testing.T) {
	data := strings.Replace(edit(t, `"end_key": "`+exampleSplit+`"`, `"end_key": "hex:00ff"`), `"start_key": "`+exampleSplit+`"`, `"start_key": "hex:00FF"`, 1)
	c, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := []byte(c.Regions[0].EndKey); !bytes.Equal(got, []byte{0x00, 0xff}) {
		t.Errorf("end key = %x, want 00ff", got)
	}
	if got := []byte(c.Regions[1].StartKey); !bytes.Equal(got, []byte{0x00, 0xff}) {
		t.Errorf("start key = %x, want 00ff", got)
	}
	if c.Regions[0].StartKey != nil || c.Regions[1].EndKey != nil {
		t.Errorf("unbounded keys decoded as %q, %q; want nil", c.Regions[0].StartKey, c.Regions[1].EndKey)
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in      string
		want    Key
		wantErr string
	}{
		{"", nil, ""},
		{"m", Key("m"), ""},
		{"user:42", Key("user:42"), ""},
		{"hex:", nil, ""},
		{"hex:6d", Key("m"), ""},
		{"hex:6D", Key("m"), ""},
		{"hex:00ff", Key{0x00, 0xff}, ""},
		{"HEX:6d", Key("HEX:6d"), ""}, // the prefix is case-sensitive
		{"hex:zz", nil, `bad hex "zz": encoding/hex: invalid byte: U+007A 'z'`},
		{"hex:abc", nil, `bad hex "abc": encoding/hex: odd length hex string`},
	}
	for _, tt := range tests {
		got, err := ParseKey(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseKey(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestKeyString(t *testing.T) {
	tests := []struct {
		key  Key
		want string
	}{
		{nil, ""},
		{Key{}, ""},
		{Key("m"), "m"},
		{Key("a b/c"), "a b/c"},
		{Key("héllo"), "héllo"},
		{Key{0x00, 0xff}, "hex:00ff"},
		{Key("a\nb"), "hex:610a62"},
		{Key{0xc3}, "hex:c3"},               // invalid UTF-8
		{Key("hex:6d"), "hex:6865783a3664"}, // literal prefix must not be misread
	}
	for _, tt := range tests {
		if got := tt.key.String(); got != tt.want {
			t.Errorf("Key(%q).String() = %q, want %q", []byte(tt.key), got, tt.want)
		}
		back, err := ParseKey(tt.key.String())
		if err != nil || !bytes.Equal(back, tt.key) {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", tt.key.String(), back, err, []byte(tt.key))
		}
		js, err := json.Marshal(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		var dec Key
		if err := json.Unmarshal(js, &dec); err != nil || !bytes.Equal(dec, tt.key) {
			t.Errorf("JSON round trip of %q via %s = %q, %v", []byte(tt.key), js, dec, err)
		}
	}
}

func TestKeyUnmarshalJSON(t *testing.T) {
	var k Key = Key("x")
	if err := json.Unmarshal([]byte(`null`), &k); err != nil || k != nil {
		t.Errorf("null: got %q, %v", k, err)
	}
	if err := json.Unmarshal([]byte(`5`), &k); err == nil || err.Error() != "key must be a JSON string" {
		t.Errorf("number: got %v", err)
	}
	if err := json.Unmarshal([]byte(`"hex:q"`), &k); err == nil || !strings.Contains(err.Error(), `bad hex "q"`) {
		t.Errorf("bad hex: got %v", err)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := validCluster()
	c.Regions[0].EndKey = Key{0x6d, 0x00}
	c.Regions[1].StartKey = Key{0x6d, 0x00}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"end_key": "hex:6d00"`)) {
		t.Errorf("marshalled binary key not hex-encoded:\n%s", data)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(Marshal(c)): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip =\n%+v\nwant\n%+v", back, c)
	}
}

func TestRegionContains(t *testing.T) {
	c := validCluster()
	tests := []struct {
		region int
		key    string
		want   bool
	}{
		{0, "", true},
		{0, "a", true},
		{0, "lzzz", true},
		{0, "m", false},
		{1, "m", true},
		{1, "zzzz", true},
		{1, "l", false},
	}
	for _, tt := range tests {
		if got := c.Regions[tt.region].Contains([]byte(tt.key)); got != tt.want {
			t.Errorf("regions[%d].Contains(%q) = %v, want %v", tt.region, tt.key, got, tt.want)
		}
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want Scope
		ok   bool
	}{
		{"host", ScopeHost, true},
		{"docker", ScopeDocker, true},
		{" Docker ", ScopeDocker, true},
		{"HOST", ScopeHost, true},
		{"", "", false},
		{"k8s", "", false},
	}
	for _, tt := range tests {
		got, err := ParseScope(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseScope(%q) = %q, %v", tt.in, got, err)
		}
		if !tt.ok && !errors.Is(err, ErrInvalidScope) {
			t.Errorf("ParseScope(%q) error %v does not match ErrInvalidScope", tt.in, err)
		}
	}

	var s Scope
	if err := s.UnmarshalText([]byte("docker")); err != nil || s != ScopeDocker {
		t.Errorf("UnmarshalText = %q, %v", s, err)
	}
	if err := s.Set("nope"); err == nil || s != ScopeDocker {
		t.Errorf("Set(nope) = %v, scope now %q", err, s)
	}
	if b, _ := ScopeHost.MarshalText(); string(b) != "host" {
		t.Errorf("MarshalText = %q", b)
	}
}

func TestScopeResolution(t *testing.T) {
	c, err := Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	// A store with only the required field, and one with only host fields.
	c.Stores = append(c.Stores,
		Store{StoreID: 4, Addr: "10.0.0.4:20160"},
		Store{StoreID: 5, Addr: "10.0.0.5:20160", ListenAddr: "0.0.0.0:20160", DockerAddr: "nokv-store-5:20160"},
	)

	str := func(s string, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		return s
	}
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"pd addr host", c.PDAddr(ScopeHost), "127.0.0.1:2379"},
		{"pd addr docker", c.PDAddr(ScopeDocker), "nokv-pd:2379"},
		{"pd addr empty scope means host", c.PDAddr(""), "127.0.0.1:2379"},
		{"pd workdir host", c.PDWorkDir(ScopeHost), "./data/pd"},
		{"pd workdir docker", c.PDWorkDir(ScopeDocker), "/var/lib/nokv/pd"},

		{"store addr host", str(c.StoreAddr(2, ScopeHost)), "127.0.0.1:20161"},
		{"store addr docker", str(c.StoreAddr(2, ScopeDocker)), "nokv-store-2:20160"},
		{"store listen host", str(c.StoreListenAddr(3, ScopeHost)), "127.0.0.1:20162"},
		{"store listen docker", str(c.StoreListenAddr(3, ScopeDocker)), "0.0.0.0:20160"},

		{"fallback addr docker", str(c.StoreAddr(4, ScopeDocker)), "10.0.0.4:20160"},
		{"fallback listen host", str(c.StoreListenAddr(4, ScopeHost)), "10.0.0.4:20160"},
		{"fallback listen docker", str(c.StoreListenAddr(4, ScopeDocker)), "10.0.0.4:20160"},
		{"listen docker falls back to docker addr", str(c.StoreListenAddr(5, ScopeDocker)), "nokv-store-5:20160"},
		{"listen host uses listen_addr", str(c.StoreListenAddr(5, ScopeHost)), "0.0.0.0:20160"},

		{"unknown store addr", str(c.StoreAddr(9, ScopeHost)), "error: unknown store 9"},
		{"unknown store listen", str(c.StoreListenAddr(9, ScopeDocker)), "error: unknown store 9"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}

	c.PD.DockerAddr, c.PD.DockerWorkDir = "", ""
	if got := c.PDAddr(ScopeDocker); got != "127.0.0.1:2379" {
		t.Errorf("PDAddr(docker) without docker_addr = %q", got)
	}
	if got := c.PDWorkDir(ScopeDocker); got != "./data/pd" {
		t.Errorf("PDWorkDir(docker) without docker_work_dir = %q", got)
	}
	if _, err := c.StoreAddr(9, ScopeHost); !errors.Is(err, ErrUnknownStore) {
		t.Errorf("StoreAddr(9) error %v does not match ErrUnknownStore", err)
	}
	if s, ok := c.Store(4); !ok || s.Addr != "10.0.0.4:20160" {
		t.Errorf("Store(4) = %+v, %v", s, ok)
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:2379":     true,
		":2379":              true,
		"nokv-pd:2379":       true,
		"[::1]:20160":        true,
		"":                   false,
		"localhost":          false,
		"localhost:":         false,
		"::1":                false,
		"nokv-store-1:20160": true,
	} {
		if err := CheckAddr(addr); (err == nil) != ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
}
