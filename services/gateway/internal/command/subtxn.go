package command

import "github.com/nokv/nokv/services/gateway/internal/backend"

// subTxn returns the backend's SubTxn under the wrappers a command's Txn
// may come in (the database's, the watch registry's, EXEC's and a queued
// command's view), or nil if the backend has none. Sub-keys are full
// stored sub-keys (keyspace.SubKey, database included), so no wrapper
// translates them; a sub-key write marks watchers through the metadata
// write every collection command makes (docs/architecture.md,
// "Collections").
func subTxn(tx backend.Txn) backend.SubTxn {
	for {
		switch t := tx.(type) {
		case *dbTxn:
			tx = t.Txn
		case touchTxn:
			tx = t.Txn
		case *execTxn:
			tx = t.Txn
		case *cmdTxn:
			tx = t.outer
		case backend.SubTxn:
			return t
		default:
			return nil
		}
	}
}
