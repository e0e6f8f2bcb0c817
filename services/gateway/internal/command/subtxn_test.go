package command

import (
	"context"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Through every wrapper a command's Txn can come in, subTxn reaches the
// backend's sub-keys: a sub-key written through one is read back through
// another in the same transaction.
func TestSubTxnThroughWrappers(t *testing.T) {
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := keyspace.Key(0, []byte("h"))
	sub := keyspace.SubKey(0, []byte("h"), 1, keyspace.KindHashField, []byte("f"))
	err = st.Update(context.Background(), backend.WriteOptions{SubKeys: true}, [][]byte{key}, func(tx backend.Txn) error {
		w := &watchRegistry{}
		exec := &execTxn{Txn: touchTxn{Txn: tx, w: w}, read: map[string]bool{}, written: map[string]bool{}}
		wrapped := []backend.Txn{
			tx,
			&dbTxn{Txn: tx},
			touchTxn{Txn: tx, w: w},
			exec,
			&dbTxn{Txn: &cmdTxn{outer: exec, writes: map[string]*pendingWrite{}}},
		}
		subTxn(wrapped[0]).SetSub(sub, []byte("v"))
		for i, wt := range wrapped {
			s := subTxn(wt)
			if s == nil {
				t.Fatalf("wrapper %d (%T): no SubTxn", i, wt)
			}
			if v, ok, err := s.GetSub(sub); err != nil || !ok || string(v) != "v" {
				t.Fatalf("wrapper %d (%T): GetSub = %q %v %v", i, wt, v, ok, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if subTxn(nil) != nil {
		t.Fatal("subTxn(nil) found a SubTxn")
	}
}
