package config

import "errors"

var (
	// ErrInvalid is matched (via errors.Is) by every error that Parse, Load
	// and Cluster.Validate report about the content of a cluster file.
	ErrInvalid = errors.New("invalid cluster config")

	// ErrUnknownStore is returned by store lookups for an id that is not in
	// the cluster file.
	ErrUnknownStore = errors.New("unknown store")

	// ErrInvalidScope is returned by ParseScope for an unrecognised scope.
	ErrInvalidScope = errors.New("invalid scope")
)

// FieldError describes one problem with a cluster file. Its message has the
// form "config: <path>: <problem>", where path is the JSON path of the
// offending field, such as "stores[2].store_id".
type FieldError struct {
	// Path is the JSON path of the field, or "" for the whole document.
	Path string
	// Msg describes the problem.
	Msg string
	// Err is the underlying cause, if any (for example a hex decoding error).
	Err error
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return "config: " + e.Msg
	}
	return "config: " + e.Path + ": " + e.Msg
}

// Unwrap returns ErrInvalid and, if set, the underlying cause.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}
