package command

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// replyError is an error whose text is the exact Redis error reply, code included.
type replyError string

func (e replyError) Error() string { return string(e) }

// Redis's error replies, verbatim.
const (
	errSyntax        replyError = "ERR syntax error"
	errNotInteger    replyError = "ERR value is not an integer or out of range"
	errNotFloat      replyError = "ERR value is not a valid float"
	errOverflow      replyError = "ERR increment or decrement would overflow"
	errNaNOrInf      replyError = "ERR increment would produce NaN or Infinity"
	errWrongType     replyError = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNoSuchKey     replyError = "ERR no such key"
	errTooBig        replyError = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
	errOffsetRange   replyError = "ERR offset is out of range"
	errNoAuth        replyError = "NOAUTH Authentication required."
	errWrongPass     replyError = "WRONGPASS invalid username-password pair or user is disabled."
	errNoPassSet     replyError = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errDBIndex       replyError = "ERR DB index is out of range"
	errIntRange      replyError = "ERR value is out of range, value must between -2147483648 and 2147483647"
	errInvalidCursor replyError = "ERR invalid cursor"
	errNoProto       replyError = "NOPROTO unsupported protocol version"
	errBadClientName replyError = "ERR Client names cannot contain spaces, newlines or special characters."
	errShuttingDown  replyError = "ERR server is shutting down"
	errStoreLocked   replyError = "ERR data directory is locked by another process"
)

func errWrongArgs(name string) error {
	return replyError("ERR wrong number of arguments for '" + name + "' command")
}

func errInvalidExpire(name string) error {
	return replyError("ERR invalid expire time in '" + name + "' command")
}

func errUnknownSubcommand(sub []byte, cmd string) error {
	return replyError("ERR unknown subcommand '" + truncate(sub, 128) + "'. Try " + cmd + " HELP.")
}

// errSubcommandArgs is Redis's reply to a subcommand given more arguments
// than its syntax takes (addReplySubcommandSyntaxError).
func errSubcommandArgs(sub []byte, cmd string) error {
	return replyError("ERR unknown subcommand or wrong number of arguments for '" + truncate(sub, 128) + "'. Try " + cmd + " HELP.")
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// writeError is the RESP error-translation table: every error a handler returns
// reaches the client through here.
func writeError(w *resp.Writer, log *slog.Logger, cmd string, err error) {
	var re replyError
	switch {
	case errors.As(err, &re):
		w.Error(string(re))
	case errors.Is(err, backend.ErrClosed):
		w.Error(string(errShuttingDown))
	case errors.Is(err, backend.ErrLocked):
		w.Error(string(errStoreLocked))
	case errors.Is(err, backend.ErrUnavailable):
		w.Error("ERR cluster unavailable, nothing was written: " + err.Error())
	case errors.Is(err, backend.ErrConflict):
		w.Error("ERR too many concurrent writes to the same keys, nothing was written; retry: " + err.Error())
	case errors.Is(err, backend.ErrUndetermined):
		w.Error("ERR the write may or may not have been applied (a store failed while it committed): " + err.Error())
	case errors.Is(err, backend.ErrNotSupported):
		w.Error("ERR " + strings.TrimPrefix(err.Error(), backend.ErrNotSupported.Error()+": "))
	case errors.Is(err, backend.ErrTooLarge):
		// The wrapped text names the size and the limit; nothing was written.
		w.Error("ERR " + err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		w.Error("ERR request aborted: " + err.Error())
	default:
		log.Error("command failed", "cmd", cmd, "err", err)
		w.Error("ERR internal error: " + err.Error())
	}
}
