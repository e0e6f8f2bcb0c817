// Package command implements the Redis commands once, against backend.Backend.
//
// A command table (table.go) names every command with its arity, flags, key
// positions and docs; dispatch, arity errors, COMMAND INFO/DOCS and metrics all come
// from it. Handlers parse their arguments, run one backend Update (or a read), and
// write the reply through resp.Writer. Handlers report failures by returning an
// error; errors.go is the one place errors become Redis error replies.
package command
