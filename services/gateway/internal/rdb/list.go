package rdb

// List payloads. DUMP writes RDB_TYPE_LIST (a count, then each element as
// an RDB string), which every Redis restores (converting it to its own
// encoding); RESTORE also reads what Redis dumps itself: a quicklist of
// listpacks or plain nodes (RDB_TYPE_LIST_QUICKLIST_2, Redis 7.0) and a
// quicklist of ziplists (RDB_TYPE_LIST_QUICKLIST, Redis 3.2 to 6.2).
const (
	TypeList           = 1
	TypeListQuicklist  = 14
	TypeListQuicklist2 = 18

	quicklistNodePlain  = 1
	quicklistNodePacked = 2
)

// IsList reports whether payload p holds a list (not whether it is valid).
func IsList(p []byte) bool {
	return len(p) > 0 && (p[0] == TypeList || p[0] == TypeListQuicklist || p[0] == TypeListQuicklist2)
}

// DumpList returns DUMP's payload for a list's elements, head first.
func DumpList(elems [][]byte) []byte {
	p := []byte{TypeList}
	p = appendLen(p, uint64(len(elems)))
	for _, e := range elems {
		p = AppendString(p, e)
	}
	return Seal(p)
}

// DecodeList verifies a list payload and returns its elements, head
// first. limit is asked about each element's length before it is
// allocated. An empty list is ErrBadFormat, as Redis refuses it.
func DecodeList(p []byte, limit func(n uint64) error) ([][]byte, error) {
	if err := Verify(p); err != nil {
		return nil, err
	}
	r := reader{p: p, pos: 1}
	n, enc, ok := r.length()
	if !ok || enc || n == 0 || n > uint64(len(p)) {
		return nil, ErrBadFormat
	}
	var out [][]byte
	for range n {
		container := uint64(quicklistNodePacked)
		if p[0] == TypeListQuicklist2 {
			if container, enc, ok = r.length(); !ok || enc || (container != quicklistNodePlain && container != quicklistNodePacked) {
				return nil, ErrBadFormat
			}
		}
		s, err := r.string(limit)
		if err != nil {
			return nil, err
		}
		switch {
		case p[0] == TypeList || container == quicklistNodePlain:
			out = append(out, s)
			continue
		case p[0] == TypeListQuicklist:
			s, err := ziplistEntries(s)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		default:
			s, err := listpackEntries(s)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
	}
	for _, e := range out {
		if err := limit(uint64(len(e))); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, ErrBadFormat
	}
	return out, nil
}
