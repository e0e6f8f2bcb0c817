package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nokv/nokv/pkg/config"
)

const examplePath = "../../../../raft_config.example.json"

func runCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestFileCommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no command", nil, 2, "", "Usage: nokv-config <command>"},
		{"help", []string{"--help"}, 0, "status", ""},
		{"unknown command", []string{"catalogue"}, 2, "", `unknown command "catalogue"`},
		{"store without remove", []string{"store"}, 2, "", "Usage: nokv-config store remove"},
		{"store remove without id", []string{"store", "remove"}, 2, "", "the store id is missing"},
		{"store remove bad id", []string{"store", "remove", "--pd-addr", "127.0.0.1:1", "x"}, 2, "", `"x" is not a store id`},
		{"store remove unreachable PD", []string{"store", "remove", "--pd-addr", "127.0.0.1:1", "--timeout", "1s", "2"}, 1, "", "store remove: PD at 127.0.0.1:1"},
		{"stores table", []string{"stores", "--config", examplePath}, 0, "STORE  ADDR (host)      LISTEN (host)\n1      127.0.0.1:20160  127.0.0.1:20160\n", ""},
		{"stores docker", []string{"stores", "--config", examplePath, "--scope", "docker"}, 0, "3      nokv-store-3:20160  0.0.0.0:20160", ""},
		{"stores simple", []string{"stores", "--config", examplePath, "--format", "simple"}, 0,
			"1 127.0.0.1:20160 127.0.0.1:20160 0.0.0.0:20160 nokv-store-1:20160\n2 127.0.0.1:20161 127.0.0.1:20161 0.0.0.0:20160 nokv-store-2:20160\n", ""},
		{"stores bad format", []string{"stores", "--config", examplePath, "--format", "yaml"}, 2, "", `"yaml": want table, json, simple`},
		{"stores bad scope", []string{"stores", "--scope", "k8s"}, 2, "", `invalid scope "k8s"`},
		{"regions table", []string{"regions", "--config", examplePath}, 0,
			"REGION  START           END             EPOCH (ver/conf)  PEERS (store:peer)  LEADER STORE\n" +
				"1       -inf            hex:000000006d  1/1               1:101,2:102,3:103   1\n" +
				"2       hex:000000006d  +inf            1/1               1:201,2:202,3:203   2\n", ""},
		{"regions simple", []string{"regions", "--config", examplePath, "--format", "simple"}, 0,
			"1 - hex:000000006d 1 1 1:101,2:102,3:103 1\n2 hex:000000006d - 1 1 1:201,2:202,3:203 2\n", ""},
		{"pd addr", []string{"pd", "--config", examplePath}, 0, "127.0.0.1:2379\n", ""},
		{"pd docker addr", []string{"pd", "--config", examplePath, "--scope", "docker", "--field", "addr"}, 0, "nokv-pd:2379\n", ""},
		{"pd workdir", []string{"pd", "--config", examplePath, "--field", "workdir"}, 0, "./data/pd\n", ""},
		{"pd docker workdir", []string{"pd", "--config", examplePath, "--field", "workdir", "--scope", "docker"}, 0, "/var/lib/nokv/pd\n", ""},
		{"pd json", []string{"pd", "--config", examplePath, "--format", "json", "--scope", "docker"}, 0, `"addr": "nokv-pd:2379"`, ""},
		{"pd bad field", []string{"pd", "--config", examplePath, "--field", "port"}, 2, "", `"port": want addr, workdir`},
		{"pd member without op", []string{"pd", "member"}, 2, "", "Usage: nokv-config pd member list | add"},
		{"pd member unknown op", []string{"pd", "member", "promote"}, 2, "", "Usage: nokv-config pd member list | add"},
		{"pd member add without url", []string{"pd", "member", "add", "--pd-addr", "127.0.0.1:1"}, 2, "", "the peer URL is missing"},
		{"pd member remove without member", []string{"pd", "member", "remove"}, 2, "", "the member is missing"},
		{"pd member list unreachable", []string{"pd", "member", "list", "--pd-addr", "127.0.0.1:1,127.0.0.1:2", "--timeout", "2s"}, 1, "",
			"pd member list: 127.0.0.1:1: "},
		{"validate ok", []string{"validate", "--config", examplePath}, 0, "ok: " + examplePath + ": 3 stores, 2 regions, 6 peers", ""},
		{"missing file", []string{"validate", "--config", "missing.json"}, 1, "", "nokv-config validate: load cluster file missing.json: open missing.json"},
		{"extra args", []string{"validate", "x"}, 2, "", `unexpected arguments ["x"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(tt.args...)
			if code != tt.wantCode || !strings.Contains(stdout, tt.wantStdout) || !strings.Contains(stderr, tt.wantStderr) {
				t.Fatalf("%v: code %d, stdout:\n%s\nstderr:\n%s\nwant code %d, stdout containing %q, stderr containing %q",
					tt.args, code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}

func TestJSONOutputs(t *testing.T) {
	code, stdout, stderr := runCmd("stores", "--config", examplePath, "--format", "json")
	var stores []storeRow
	if code != 0 || json.Unmarshal([]byte(stdout), &stores) != nil || len(stores) != 3 ||
		stores[1] != (storeRow{StoreID: 2, Addr: "127.0.0.1:20161", ListenAddr: "127.0.0.1:20161", DockerAddr: "nokv-store-2:20160", DockerListenAddr: "0.0.0.0:20160"}) {
		t.Fatalf("stores json: code %d, %v\n%s%s", code, stores, stdout, stderr)
	}
	code, stdout, stderr = runCmd("regions", "--config", examplePath, "--format", "json")
	var regions []config.Region
	if code != 0 || json.Unmarshal([]byte(stdout), &regions) != nil || len(regions) != 2 ||
		string(regions[0].EndKey) != "\x00\x00\x00\x00m" || string(regions[1].StartKey) != "\x00\x00\x00\x00m" || regions[1].LeaderStoreID != 2 || len(regions[1].Peers) != 3 || regions[1].Peers[2].PeerID != 203 {
		t.Fatalf("regions json: code %d, %+v\n%s%s", code, regions, stdout, stderr)
	}
}

// validate reports what the services would refuse to start with, in the same
// words, one problem a line, and exits 1.
func TestValidateInvalidFile(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	bad := string(data)
	for _, e := range []struct{ old, new string }{
		{`"store_id": 3, "peer_id": 203`, `"store_id": 4, "peer_id": 203`},
		{`"start_key": "hex:000000006d"`, `"start_key": "hex:zz"`},
	} {
		if !strings.Contains(bad, e.old) {
			t.Fatalf("the example file no longer contains %s; update this test", e.old)
		}
		bad = strings.Replace(bad, e.old, e.new, 1)
	}
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, want := config.Load(path)
	if want == nil {
		t.Fatal("config.Load accepted the broken file")
	}
	code, stdout, stderr := runCmd("validate", "--config", path)
	if code != 1 || stdout != "" {
		t.Fatalf("validate: code %d, stdout %q; want 1 and nothing", code, stdout)
	}
	var wantOut bytes.Buffer
	config.PrintError(&wantOut, "nokv-config validate", want)
	if stderr != wantOut.String() || !strings.Contains(stderr, `bad hex "zz"`) {
		t.Fatalf("validate stderr:\n%s\nwant:\n%s", stderr, wantOut.String())
	}

	unknown := strings.Replace(string(data), `"max_retries": 8`, `"max_retries": 8, "max_retry": 9`, 1)
	if err := os.WriteFile(path, []byte(unknown), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCmd("validate", "--config", path); code != 1 || !strings.Contains(stderr, "max_retry") {
		t.Fatalf("validate with an unknown field: code %d, stderr %q", code, stderr)
	}
}

// NOKV_CONFIG names the file when --config is not given.
func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("NOKV_CONFIG", examplePath)
	if code, stdout, stderr := runCmd("pd"); code != 0 || stdout != "127.0.0.1:2379\n" {
		t.Fatalf("pd with NOKV_CONFIG: code %d, %q %q", code, stdout, stderr)
	}
}
