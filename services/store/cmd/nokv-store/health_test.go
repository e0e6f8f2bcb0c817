package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `nokv-store health` takes the store's own settings: with the cluster file
// and a store id it dials that store's listen address. (A store answering is
// checked end to end by tests/deploy.)
func TestHealthNamesTheAddressItTried(t *testing.T) {
	// The example file with store 3 on an address where nothing listens.
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	ln := busyAddr(t) // its port on 127.0.0.2, where nothing listens
	free := strings.Replace(ln, "127.0.0.1:", "127.0.0.2:", 1)
	file := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(data), "127.0.0.1:20162", free)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"health", "--config", file, "--store-id", "3", "--timeout", "500ms"}, map[string]string{"NOKV_STORE_SCOPE": "host"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "nokv-store health: "+free) {
		t.Fatalf("health: code %d, stderr %q; want 1 naming %s", code, stderr.String(), free)
	}
	stdout.Reset()
	if code := run([]string{"health", "-h"}, map[string]string{}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Usage: nokv-store health") {
		t.Fatalf("health -h: code %d, stdout %q", code, stdout.String())
	}
	stderr.Reset()
	if code := run([]string{"health", "--config", examplePath, "--store-id", "9"}, map[string]string{}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "unknown store 9") {
		t.Fatalf("health for a store the file lacks: code %d, stderr %q", code, stderr.String())
	}
}
