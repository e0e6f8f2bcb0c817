package command

import "github.com/nokv/nokv/services/gateway/internal/resp"

// commandMeta is what Redis's COMMAND INFO reports of a command beyond its
// name, arity and key positions. redismeta.go holds it for every command
// the gateway implements, generated from a real redis-server, so that
// clients that read the command table (cluster-aware clients, GUIs) see
// what Redis would tell them.
type commandMeta struct {
	Flags, ACL, Tips []string
	KeySpecs         []keySpec
}

// keySpec is one of Redis 7's key specifications: where a command's keys
// start (begin_search) and how many follow (find_keys).
type keySpec struct {
	Flags []string
	Notes string
	Begin keySearch
	Find  keySearch
}

// keySearch is a begin_search or find_keys clause: its type and the
// fields of its spec, in Redis's order.
type keySearch struct {
	Type   string
	Fields []specField
}

type specField struct {
	Name string
	Int  int64
	Str  string // for a string field (a keyword); Int is unused then
}

func beginIndex(i int64) keySearch {
	return keySearch{"index", []specField{{Name: "index", Int: i}}}
}

func beginKeyword(keyword string, startFrom int64) keySearch {
	return keySearch{"keyword", []specField{{Name: "keyword", Str: keyword}, {Name: "startfrom", Int: startFrom}}}
}

func beginUnknown() keySearch { return keySearch{Type: "unknown"} }

func findRange(lastKey, keyStep, limit int64) keySearch {
	return keySearch{"range", []specField{{Name: "lastkey", Int: lastKey}, {Name: "keystep", Int: keyStep}, {Name: "limit", Int: limit}}}
}

func findKeynum(keyNumIdx, firstKey, keyStep int64) keySearch {
	return keySearch{"keynum", []specField{{Name: "keynumidx", Int: keyNumIdx}, {Name: "firstkey", Int: firstKey}, {Name: "keystep", Int: keyStep}}}
}

func findUnknown() keySearch { return keySearch{Type: "unknown"} }

// meta returns c's COMMAND INFO metadata: Redis's where it is known (every
// command Redis 7.0 has), else one derived from the command table.
func (c *Command) meta() commandMeta {
	if m, ok := redisMeta[c.Name]; ok {
		return m
	}
	m := commandMeta{Flags: c.flagList(), ACL: []string{"@" + c.Group}}
	if c.FirstKey > 0 {
		last := int64(c.LastKey)
		if last > 0 {
			last -= int64(c.FirstKey)
		}
		m.KeySpecs = []keySpec{{Begin: beginIndex(int64(c.FirstKey)), Find: findRange(last, int64(c.Step), 0)}}
	}
	return m
}

func writeStatusSet(w *resp.Writer, items []string) {
	w.Set(len(items))
	for _, s := range items {
		w.Simple(s)
	}
}

func writeBulkSet(w *resp.Writer, items []string) {
	w.Set(len(items))
	for _, s := range items {
		w.BulkString(s)
	}
}

func writeKeySpecs(w *resp.Writer, specs []keySpec) {
	w.Set(len(specs))
	for _, ks := range specs {
		n := 3
		if ks.Notes != "" {
			n++
		}
		w.Map(n)
		if ks.Notes != "" {
			w.BulkString("notes")
			w.BulkString(ks.Notes)
		}
		w.BulkString("flags")
		writeStatusSet(w, ks.Flags)
		w.BulkString("begin_search")
		writeKeySearch(w, ks.Begin)
		w.BulkString("find_keys")
		writeKeySearch(w, ks.Find)
	}
}

func writeKeySearch(w *resp.Writer, s keySearch) {
	w.Map(2)
	w.BulkString("type")
	w.BulkString(s.Type)
	w.BulkString("spec")
	w.Map(len(s.Fields))
	for _, f := range s.Fields {
		w.BulkString(f.Name)
		if f.Name == "keyword" {
			w.BulkString(f.Str)
		} else {
			w.Int(f.Int)
		}
	}
}
