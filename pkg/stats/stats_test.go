package stats

import (
	"encoding/json"
	"expvar"
	"testing"
)

func TestRegisterSections(t *testing.T) {
	Register("a", func() any { return 1 })
	Register("b", func() any { return map[string]int{"x": 2} })
	Register("a", func() any { return 3 })
	var got map[string]any
	if err := json.Unmarshal([]byte(expvar.Get("NoKV.Stats").String()), &got); err != nil {
		t.Fatal(err)
	}
	if got["a"] != float64(3) || got["b"].(map[string]any)["x"] != float64(2) {
		t.Fatalf("NoKV.Stats = %v", got)
	}
}
