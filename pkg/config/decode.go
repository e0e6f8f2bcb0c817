package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// The cluster file is decoded one object at a time so that every error can
// name its full JSON path (encoding/json reports neither array indexes nor
// the location of unknown fields). Nested objects are held as raw messages
// and decoded strictly with their own path.

type clusterJSON struct {
	MaxRetries int               `json:"max_retries"`
	PD         json.RawMessage   `json:"pd"`
	Stores     []json.RawMessage `json:"stores"`
	Regions    []json.RawMessage `json:"regions"`
}

type regionJSON struct {
	ID            uint64            `json:"id"`
	StartKey      string            `json:"start_key"`
	EndKey        string            `json:"end_key"`
	Epoch         json.RawMessage   `json:"epoch"`
	Peers         []json.RawMessage `json:"peers"`
	LeaderStoreID uint64            `json:"leader_store_id"`
}

func decode(data []byte) (*Cluster, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cj clusterJSON
	if err := dec.Decode(&cj); err != nil {
		return nil, decodeError("", data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &FieldError{Msg: "unexpected data after the top-level object"}
	}

	c := &Cluster{MaxRetries: cj.MaxRetries}
	if err := decodeStrict(cj.PD, "pd", &c.PD); err != nil {
		return nil, err
	}
	c.Stores = make([]Store, len(cj.Stores))
	for i, raw := range cj.Stores {
		if err := decodeStrict(raw, fmt.Sprintf("stores[%d]", i), &c.Stores[i]); err != nil {
			return nil, err
		}
	}
	c.Regions = make([]Region, len(cj.Regions))
	for i, raw := range cj.Regions {
		if err := decodeRegion(raw, fmt.Sprintf("regions[%d]", i), &c.Regions[i]); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func decodeRegion(raw json.RawMessage, path string, r *Region) error {
	var rj regionJSON
	if err := decodeStrict(raw, path, &rj); err != nil {
		return err
	}
	r.ID = rj.ID
	r.LeaderStoreID = rj.LeaderStoreID
	var err error
	if r.StartKey, err = ParseKey(rj.StartKey); err != nil {
		return &FieldError{Path: path + ".start_key", Msg: err.Error(), Err: err}
	}
	if r.EndKey, err = ParseKey(rj.EndKey); err != nil {
		return &FieldError{Path: path + ".end_key", Msg: err.Error(), Err: err}
	}
	if err := decodeStrict(rj.Epoch, path+".epoch", &r.Epoch); err != nil {
		return err
	}
	r.Peers = make([]Peer, len(rj.Peers))
	for j, praw := range rj.Peers {
		if err := decodeStrict(praw, fmt.Sprintf("%s.peers[%d]", path, j), &r.Peers[j]); err != nil {
			return err
		}
	}
	return nil
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields. An
// absent value (nil raw message) leaves v untouched.
func decodeStrict(raw json.RawMessage, path string, v any) error {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(path, raw, err)
	}
	return nil
}

// decodeError turns an encoding/json error for the value at path into a
// *FieldError.
func decodeError(path string, data []byte, err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return &FieldError{
			Path: joinPath(path, typeErr.Field),
			Msg:  fmt.Sprintf("cannot use JSON %s as %s", typeErr.Value, describeType(typeErr.Type)),
			Err:  err,
		}
	case errors.As(err, &syntaxErr):
		line, col := position(data, syntaxErr.Offset)
		return &FieldError{
			Path: path,
			Msg:  fmt.Sprintf("syntax error at line %d, column %d: %v", line, col, err),
			Err:  err,
		}
	case err == io.EOF:
		return &FieldError{Path: path, Msg: "empty document", Err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Path: path, Msg: "unexpected end of input", Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no exported type for this error.
		return &FieldError{Path: path, Msg: strings.TrimPrefix(err.Error(), "json: "), Err: err}
	}
	return &FieldError{Path: path, Msg: err.Error(), Err: err}
}

func joinPath(path, field string) string {
	switch {
	case field == "":
		return path
	case path == "":
		return field
	}
	return path + "." + field
}

// describeType names a Go type in JSON terms for error messages.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

// position returns the 1-based line and column of the byte that caused a
// json.SyntaxError; Offset counts the bytes read up to and including it.
func position(data []byte, offset int64) (line, col int) {
	idx := int(min(max(offset-1, 0), int64(len(data))))
	before := data[:idx]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = idx - bytes.LastIndexByte(before, '\n')
	return line, col
}
