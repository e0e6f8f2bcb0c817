package storeserver

import (
	"strings"
	"testing"
)

func testConfig(t *testing.T, storeID uint64, dir string) Config {
	cfg := DefaultConfig()
	cfg.StoreID, cfg.WorkDir, cfg.Addr = storeID, dir, "127.0.0.1:0"
	// PD is dialled lazily: these tests never need it.
	cfg.PDAddr = "127.0.0.1:1"
	return cfg
}

func TestSecondServerOnAWorkdirIsRefused(t *testing.T) {
	dir := t.TempDir()
	first, err := New(testConfig(t, 1, dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = New(testConfig(t, 1, dir), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "is another nokv-store using it?") {
		t.Fatalf("second server on %s: %v", dir, err)
	}
}

func TestWorkdirOfAnotherStoreIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, err := New(testConfig(t, 1, dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = New(testConfig(t, 2, dir), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "belongs to store 1, not 2") {
		t.Fatalf("store 2 on store 1's workdir: %v", err)
	}
}
