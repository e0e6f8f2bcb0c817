package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nokv/nokv/api/metapb"
)

// Cluster is the decoded cluster file.
type Cluster struct {
	// MaxRetries bounds client retries (for example on region errors).
	MaxRetries int      `json:"max_retries"`
	PD         PD       `json:"pd"`
	Stores     []Store  `json:"stores"`
	Regions    []Region `json:"regions"`
}

// PD holds the placement driver's addresses and data directories: either
// one PD at addr, or the members of a PD group (members; then addr may be
// left out).
type PD struct {
	Addr          string `json:"addr,omitempty"`
	DockerAddr    string `json:"docker_addr,omitempty"`
	WorkDir       string `json:"work_dir,omitempty"`
	DockerWorkDir string `json:"docker_work_dir,omitempty"`
	// Members are the PD processes of a group sharing their state through
	// embedded etcd; one of them leads. Empty means the one PD at addr.
	Members []PDMember `json:"members,omitempty"`
}

// PDMember is one PD process of a group.
type PDMember struct {
	// Name identifies the member (nokv-pd --name) and is its etcd name.
	Name string `json:"name"`
	// Addr is the gRPC address stores and clients dial (and the member
	// binds).
	Addr       string `json:"addr"`
	DockerAddr string `json:"docker_addr,omitempty"`
	// PeerURL is the member's etcd peer URL (http://host:port): the other
	// members replicate PD's state through it.
	PeerURL       string `json:"peer_url"`
	DockerPeerURL string `json:"docker_peer_url,omitempty"`
	// ClientURL, if set, serves etcd's client API (for etcdctl).
	ClientURL       string `json:"client_url,omitempty"`
	DockerClientURL string `json:"docker_client_url,omitempty"`
	// WorkDir is the member's data directory; empty means
	// <pd.work_dir>/<name>.
	WorkDir       string `json:"work_dir,omitempty"`
	DockerWorkDir string `json:"docker_work_dir,omitempty"`
}

// PDMemberAddrs is a member's addresses resolved for one scope.
type PDMemberAddrs struct {
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	PeerURL   string `json:"peer_url"`
	ClientURL string `json:"client_url,omitempty"`
	WorkDir   string `json:"work_dir,omitempty"`
}

// Store describes one store process.
type Store struct {
	StoreID uint64 `json:"store_id"`
	// ListenAddr is the address the store binds; empty means Addr.
	ListenAddr string `json:"listen_addr,omitempty"`
	// Addr is the address other processes dial.
	Addr             string `json:"addr"`
	DockerListenAddr string `json:"docker_listen_addr,omitempty"`
	DockerAddr       string `json:"docker_addr,omitempty"`
}

// Region is one initial region: the key range [StartKey, EndKey) and its
// replicas.
type Region struct {
	ID       uint64 `json:"id"`
	StartKey Key    `json:"start_key"`
	EndKey   Key    `json:"end_key"`
	Epoch    Epoch  `json:"epoch"`
	Peers    []Peer `json:"peers"`
	// LeaderStoreID is the store expected to hold the leader; 0 means any.
	LeaderStoreID uint64 `json:"leader_store_id,omitempty"`
}

// Epoch is a region epoch.
type Epoch struct {
	Version     uint64 `json:"version"`
	ConfVersion uint64 `json:"conf_version"`
}

// Peer is one replica of a region.
type Peer struct {
	StoreID uint64 `json:"store_id"`
	PeerID  uint64 `json:"peer_id"`
}

// Contains reports whether key falls in [r.StartKey, r.EndKey).
func (r Region) Contains(key []byte) bool {
	return bytes.Compare(key, r.StartKey) >= 0 &&
		(r.EndKey.Unbounded() || bytes.Compare(key, r.EndKey) < 0)
}

// Load reads, decodes and validates the cluster file at path.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load cluster file %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load cluster file %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a cluster file. Unknown fields are errors.
// All errors are *FieldError values (joined with errors.Join when
// validation finds several) and match ErrInvalid.
func Parse(data []byte) (*Cluster, error) {
	c, err := decode(data)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// PDAddr returns the PD address for scope: with members, their addresses
// joined by commas (pkg/pdclient dials such a list and follows the leader).
func (c *Cluster) PDAddr(scope Scope) string {
	return strings.Join(c.PDAddrs(scope), ",")
}

// PDAddrs returns the gRPC address of every PD member for scope (pd.addr
// alone when there are no members).
func (c *Cluster) PDAddrs(scope Scope) []string {
	if len(c.PD.Members) == 0 {
		return []string{pick(scope, c.PD.Addr, c.PD.DockerAddr)}
	}
	addrs := make([]string, len(c.PD.Members))
	for i, m := range c.PD.Members {
		addrs[i] = pick(scope, m.Addr, m.DockerAddr)
	}
	return addrs
}

// PDMembers returns the PD members resolved for scope, or nil when the
// file names one PD by pd.addr.
func (c *Cluster) PDMembers(scope Scope) []PDMemberAddrs {
	var out []PDMemberAddrs
	for _, m := range c.PD.Members {
		dir := pick(scope, m.WorkDir, m.DockerWorkDir)
		if dir == "" {
			if base := c.PDWorkDir(scope); base != "" {
				dir = filepath.Join(base, m.Name)
			}
		}
		out = append(out, PDMemberAddrs{
			Name: m.Name, Addr: pick(scope, m.Addr, m.DockerAddr),
			PeerURL: pick(scope, m.PeerURL, m.DockerPeerURL), ClientURL: pick(scope, m.ClientURL, m.DockerClientURL),
			WorkDir: dir,
		})
	}
	return out
}

// PDWorkDir returns the PD data directory for scope.
func (c *Cluster) PDWorkDir(scope Scope) string {
	return pick(scope, c.PD.WorkDir, c.PD.DockerWorkDir)
}

// Store returns the store with the given id.
func (c *Cluster) Store(storeID uint64) (Store, bool) {
	for _, s := range c.Stores {
		if s.StoreID == storeID {
			return s, true
		}
	}
	return Store{}, false
}

// StoreAddr returns the address other processes use to reach the store in
// scope. It returns an error matching ErrUnknownStore if there is no such
// store.
func (c *Cluster) StoreAddr(storeID uint64, scope Scope) (string, error) {
	s, ok := c.Store(storeID)
	if !ok {
		return "", fmt.Errorf("%w %d", ErrUnknownStore, storeID)
	}
	return pick(scope, s.Addr, s.DockerAddr), nil
}

// StoreListenAddr returns the address the store binds in scope. As in the
// file, an empty listen address defaults to the dial address of the same
// scope: in the docker scope the order is docker_listen_addr, docker_addr,
// listen_addr, addr.
func (c *Cluster) StoreListenAddr(storeID uint64, scope Scope) (string, error) {
	s, ok := c.Store(storeID)
	if !ok {
		return "", fmt.Errorf("%w %d", ErrUnknownStore, storeID)
	}
	if scope == ScopeDocker {
		if s.DockerListenAddr != "" {
			return s.DockerListenAddr, nil
		}
		if s.DockerAddr != "" {
			return s.DockerAddr, nil
		}
	}
	if s.ListenAddr != "" {
		return s.ListenAddr, nil
	}
	return s.Addr, nil
}

// Meta returns the region as cluster metadata; every peer is a voter.
func (r Region) Meta() *metapb.Region {
	meta := &metapb.Region{
		Id:          r.ID,
		StartKey:    bytes.Clone(r.StartKey),
		EndKey:      bytes.Clone(r.EndKey),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: r.Epoch.ConfVersion, Version: r.Epoch.Version},
	}
	for _, p := range r.Peers {
		meta.Peers = append(meta.Peers, &metapb.Peer{Id: p.PeerID, StoreId: p.StoreID, Role: metapb.PeerRole_VOTER})
	}
	return meta
}
