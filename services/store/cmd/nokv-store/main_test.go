package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

const examplePath = "../../../../raft_config.example.json"

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		environ    map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"help", []string{"--help"}, nil, 0, "Usage: nokv-store [flags]", ""},
		{"help lists env", []string{"-h"}, nil, 0, "NOKV_STORE_PD_ADDR", ""},
		{"bad flag", []string{"--nope"}, nil, 2, "", "flag provided but not defined: -nope"},
		{"bad store id flag", []string{"--store-id", "x"}, nil, 2, "", `invalid value "x" for flag -store-id`},
		{"extra args", []string{"serve"}, nil, 2, "", `unexpected arguments ["serve"]`},
		{"bad tick env", nil, map[string]string{"NOKV_STORE_STORE_ID": "1", "NOKV_STORE_RAFT_TICK_INTERVAL": "fast"}, 1, "", "NOKV_STORE_RAFT_TICK_INTERVAL"},
		{"busy address", []string{"--store-id", "1", "--workdir", "WORKDIR", "--addr", "BUSY"}, nil, 1, "", "listen on"},
		{"missing store id", []string{"--config", examplePath}, nil, 1, "", "nokv-store: store_id: must be set"},
		{"invalid settings", []string{"--pd-addr", "pd"}, nil, 1, "", "nokv-store: pd_addr: invalid address \"pd\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			for i, a := range tt.args {
				switch a {
				case "WORKDIR":
					tt.args[i] = t.TempDir()
				case "BUSY":
					tt.args[i] = busyAddr(t)
				}
			}
			environ := tt.environ
			if environ == nil {
				environ = map[string]string{}
			}
			code := run(tt.args, environ, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d\nstderr: %s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout %q does not contain %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// busyAddr returns an address some other listener holds for the test.
func busyAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
