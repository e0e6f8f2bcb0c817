package main

import (
	"bytes"
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
		{"help", []string{"--help"}, nil, 0, "Usage: nokv-pd [flags]", ""},
		{"help lists env", []string{"-h"}, nil, 0, "NOKV_PD_METRICS_ADDR", ""},
		{"bad flag", []string{"--nope"}, nil, 2, "", "flag provided but not defined: -nope"},
		{"bad scope flag", []string{"--scope", "k8s"}, nil, 2, "", `invalid scope "k8s"`},
		{"extra args", []string{"serve"}, nil, 2, "", `unexpected arguments ["serve"]`},
		{"empty state without cluster file", []string{"--addr", "127.0.0.1:0", "--workdir", "WORKDIR"}, map[string]string{}, 1, "", "no cluster file was given"},
		{"bad duration", []string{"--store-down-after", "0s"}, map[string]string{}, 1, "", "store_down_after"},
		{"missing cluster file", []string{"--config", "missing.json"}, map[string]string{}, 1, "", "nokv-pd: load cluster file missing.json"},
		{"invalid settings", []string{"--workdir", ""}, map[string]string{}, 1, "", "nokv-pd: workdir: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			environ := tt.environ
			if environ == nil {
				environ = map[string]string{}
			}
			args := append([]string(nil), tt.args...)
			for i, a := range args {
				if a == "WORKDIR" {
					args[i] = t.TempDir()
				}
			}
			code := run(args, environ, &stdout, &stderr)
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
