package command

import "strings"

func init() {
	register(&Command{Name: "shutdown", Arity: -1, Flags: flagNoScript | flagLoading | flagStale,
		noMulti: true, Group: "server", Since: "1.0.0",
		Summary:    "Synchronously saves the database(s) to disk and shuts down the Redis server.",
		Complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
		Handler:    cmdShutdown})
}

// errNoShutdown answers SHUTDOWN ABORT: a nokv-redis shutdown never waits
// (there are no replicas to catch up and nothing to save), so none is ever
// in progress.
const errNoShutdown replyError = "ERR No shutdown in progress."

// >> SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]
//
// Stops the gateway as SIGTERM does: every write it acknowledged is already
// durable (embedded: fsynced; raft: committed in the cluster), so SAVE and
// NOSAVE change nothing and NOW and FORCE have nothing to skip. As in
// Redis, a successful SHUTDOWN sends no reply: the connection closes.
func cmdShutdown(r *Request) error {
	var save, nosave, abort, other bool
	if len(r.Args) > 6 {
		return errSyntax
	}
	for _, a := range r.Args[1:] {
		switch strings.ToLower(string(a)) {
		case "nosave":
			nosave = true
		case "save":
			save = true
		case "now", "force":
			other = true
		case "abort":
			abort = true
		default:
			return errSyntax
		}
	}
	if (abort && (save || nosave || other)) || (save && nosave) {
		return errSyntax
	}
	if abort {
		return errNoShutdown
	}
	stop := r.e.opts.OnShutdown
	if stop == nil {
		return replyError("ERR Errors trying to SHUTDOWN. Check logs.")
	}
	r.e.log.Warn("SHUTDOWN requested by a client", "client", r.c.Addr, "id", r.c.ID)
	r.c.CloseAfterReply = true
	stop()
	return nil
}
