// Package config loads and validates NoKV configuration.
//
// It has two independent parts.
//
// The cluster file (see raft_config.example.json at the repository root)
// describes the static topology shared by every NoKV process: the PD
// address, the stores and their addresses, and the initial regions with
// their peers. [Load] and [Parse] decode it strictly (unknown fields are
// errors) and run [Cluster.Validate], which checks ids, addresses, peer
// placement and that the regions tile the whole key space. Every error
// names the offending field by its JSON path, for example
//
//	config: regions[1].start_key: bad hex "zz": encoding/hex: invalid byte: U+007A 'z'
//
// and satisfies errors.Is(err, [ErrInvalid]).
//
// Addresses come in two scopes: [ScopeHost] for processes run directly on a
// machine and [ScopeDocker] for processes run inside the compose network.
// Accessors such as [Cluster.PDAddr] and [Cluster.StoreAddr] pick the
// docker_* variant for the docker scope and fall back to the host value
// when the docker field is empty.
//
// The settings helpers ([ApplyEnv], [ApplyFlags], [VisitedFlags]) let every
// service layer its own settings with the precedence
//
//	flag > environment > JSON file > default
//
// A service sets defaults in code, applies its JSON file (for NoKV services
// usually values taken from the cluster file), then calls [ApplyEnv], then
// [ApplyFlags] so that only flags given explicitly on the command line win.
package config
