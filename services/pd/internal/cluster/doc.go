// Package cluster is PD's view of the cluster: the region catalog (a tree of
// regions ordered by start key, with the leader and load each region last
// reported) and the store registry (addresses, heartbeat statistics and
// liveness).
//
// Region heartbeats are the source of truth for the catalog. A heartbeat whose
// epoch is older than what PD already knows is rejected with a
// [*StaleEpochError]; a newer one replaces the region and evicts every region
// its key range overlaps, so after a split the first heartbeat of either half
// wins over the stale parent. Changes to a region's epoch, range or peers, and
// every store address or state change, are written to [storage.Storage] in
// one synced batch before they become visible; leaders, pending and down peers,
// approximate sizes and store statistics are kept in memory only and are
// rebuilt from the next heartbeats after a restart.
//
// On the first start [Cluster.Bootstrap] seeds the catalog from the cluster
// file; from then on the persisted state wins and the file is ignored.
//
// Every method is safe for concurrent use. Values handed out are copies: a
// caller may modify them freely without touching the catalog.
package cluster
