package config

import "testing"

func TestLocalDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:6380":    "127.0.0.1:6380",
		":2379":           "127.0.0.1:2379",
		"[::]:20160":      "[::1]:20160",
		"127.0.0.1:20160": "127.0.0.1:20160",
		"nokv-pd:2379":    "nokv-pd:2379",
		"10.1.2.3:6380":   "10.1.2.3:6380",
		"not an address":  "not an address",
		"[::1]:6380":      "[::1]:6380",
		"localhost:6380":  "localhost:6380",
		"0.0.0.0:0":       "127.0.0.1:0",
	} {
		if got := LocalDialAddr(in); got != want {
			t.Errorf("LocalDialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
