package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Validate checks the cluster and returns every problem found, joined with
// errors.Join. Each problem is a *FieldError naming the field by its JSON
// path; all of them match ErrInvalid.
//
// Rules: max_retries >= 0; pd.addr is set unless pd.members is; at most
// seven members, each with a unique non-empty name, an addr and a peer_url
// (http://host:port), no two sharing an address; every address that is set is
// host:port; there is at least one store and one region; store ids are
// nonzero and unique and every store has an addr; region ids are nonzero
// and unique; every region has at least one peer; peer ids are nonzero and
// unique across the file; peers reference known stores, at most one per
// store in a region; a nonzero leader_store_id names a store holding one of
// the region's peers; start_key < end_key when end_key is bounded; and the
// regions, sorted by start key, tile the key space from "" to "" with no
// gap and no overlap.
func (c *Cluster) Validate() error {
	v := &validator{}
	if c.MaxRetries < 0 {
		v.addf("max_retries", "must be >= 0, got %d", c.MaxRetries)
	}
	if len(c.PD.Members) == 0 {
		v.requiredAddr("pd.addr", c.PD.Addr)
	} else {
		v.optionalAddr("pd.addr", c.PD.Addr)
	}
	v.optionalAddr("pd.docker_addr", c.PD.DockerAddr)
	v.checkPDMembers(c.PD.Members)

	stores := v.checkStores(c.Stores)
	v.checkRegions(c.Regions, stores)
	v.checkTiling(c.Regions)
	return errors.Join(v.errs...)
}

type validator struct {
	errs []error
}

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) requiredAddr(path, addr string) {
	if strings.TrimSpace(addr) == "" {
		v.addf(path, "must not be empty")
		return
	}
	v.optionalAddr(path, addr)
}

func (v *validator) optionalAddr(path, addr string) {
	if addr == "" {
		return
	}
	if err := CheckAddr(addr); err != nil {
		v.addf(path, "%v", err)
	}
}

// CheckAddr reports whether addr has the host:port form used for every
// NoKV address. The host may be empty (":2379"); the port may not.
func CheckAddr(addr string) error {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("invalid address %q: want host:port", addr)
	}
	return nil
}

// maxPDMembers bounds a PD group: etcd's writes slow down with every member
// and more than seven buys no availability worth it.
const maxPDMembers = 7

func (v *validator) checkPDMembers(members []PDMember) {
	if len(members) > maxPDMembers {
		v.addf("pd.members", "at most %d members, got %d", maxPDMembers, len(members))
	}
	names := map[string]bool{}
	addrs := map[string]string{}
	for i, m := range members {
		p := fmt.Sprintf("pd.members[%d]", i)
		switch {
		case strings.TrimSpace(m.Name) == "":
			v.addf(p+".name", "must not be empty")
		case strings.ContainsAny(m.Name, "=, "):
			v.addf(p+".name", "%q: must not contain '=', ',' or spaces", m.Name)
		case names[m.Name]:
			v.addf(p+".name", "duplicate member name %q", m.Name)
		}
		names[m.Name] = true
		v.requiredAddr(p+".addr", m.Addr)
		v.optionalAddr(p+".docker_addr", m.DockerAddr)
		v.peerURL(p+".peer_url", m.PeerURL, true)
		v.peerURL(p+".docker_peer_url", m.DockerPeerURL, false)
		v.peerURL(p+".client_url", m.ClientURL, false)
		v.peerURL(p+".docker_client_url", m.DockerClientURL, false)
		for _, a := range []struct{ field, addr string }{
			{"addr", m.Addr}, {"peer_url", strings.TrimPrefix(m.PeerURL, "http://")}, {"client_url", strings.TrimPrefix(m.ClientURL, "http://")},
		} {
			if a.addr == "" {
				continue
			}
			if other, dup := addrs[a.addr]; dup {
				v.addf(p+"."+a.field, "%s is also %s", a.addr, other)
			}
			addrs[a.addr] = p + "." + a.field
		}
	}
}

// peerURL checks an etcd URL: http://host:port.
func (v *validator) peerURL(path, u string, required bool) {
	if u == "" {
		if required {
			v.addf(path, "must not be empty")
		}
		return
	}
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok || CheckAddr(rest) != nil {
		v.addf(path, "%q: want http://host:port", u)
	}
}

// CheckAddrList reports whether list is one or more host:port addresses
// separated by commas, the form of a PD address with pd.members.
func CheckAddrList(list string) error {
	if strings.TrimSpace(list) == "" {
		return errors.New("must not be empty")
	}
	for _, a := range strings.Split(list, ",") {
		if err := CheckAddr(strings.TrimSpace(a)); err != nil {
			return err
		}
	}
	return nil
}

// checkStores validates the stores and returns the set of valid store ids.
func (v *validator) checkStores(stores []Store) map[uint64]bool {
	if len(stores) == 0 {
		v.addf("stores", "at least one store is required")
	}
	ids := make(map[uint64]bool, len(stores))
	for i, s := range stores {
		p := fmt.Sprintf("stores[%d]", i)
		switch {
		case s.StoreID == 0:
			v.addf(p+".store_id", "must be nonzero")
		case ids[s.StoreID]:
			v.addf(p+".store_id", "duplicate store id %d", s.StoreID)
		default:
			ids[s.StoreID] = true
		}
		v.requiredAddr(p+".addr", s.Addr)
		v.optionalAddr(p+".listen_addr", s.ListenAddr)
		v.optionalAddr(p+".docker_addr", s.DockerAddr)
		v.optionalAddr(p+".docker_listen_addr", s.DockerListenAddr)
	}
	return ids
}

func (v *validator) checkRegions(regions []Region, stores map[uint64]bool) {
	if len(regions) == 0 {
		v.addf("regions", "at least one region is required")
	}
	regionIDs := make(map[uint64]bool, len(regions))
	peerIDs := make(map[uint64]string) // peer id -> path of its first use
	for i, r := range regions {
		p := fmt.Sprintf("regions[%d]", i)
		switch {
		case r.ID == 0:
			v.addf(p+".id", "must be nonzero")
		case regionIDs[r.ID]:
			v.addf(p+".id", "duplicate region id %d", r.ID)
		default:
			regionIDs[r.ID] = true
		}
		if !r.EndKey.Unbounded() && bytes.Compare(r.StartKey, r.EndKey) >= 0 {
			v.addf(p+".end_key", "must be greater than start_key %q, got %q", r.StartKey, r.EndKey)
		}
		if len(r.Peers) == 0 {
			v.addf(p+".peers", "at least one peer is required")
		}
		onStore := make(map[uint64]bool, len(r.Peers))
		for j, peer := range r.Peers {
			pp := fmt.Sprintf("%s.peers[%d]", p, j)
			switch first, dup := peerIDs[peer.PeerID]; {
			case peer.PeerID == 0:
				v.addf(pp+".peer_id", "must be nonzero")
			case dup:
				v.addf(pp+".peer_id", "duplicate peer id %d (also %s)", peer.PeerID, first)
			default:
				peerIDs[peer.PeerID] = pp
			}
			switch {
			case peer.StoreID == 0:
				v.addf(pp+".store_id", "must be nonzero")
			case !stores[peer.StoreID]:
				v.addf(pp+".store_id", "unknown store id %d", peer.StoreID)
			case onStore[peer.StoreID]:
				v.addf(pp+".store_id", "region already has a peer on store %d", peer.StoreID)
			}
			onStore[peer.StoreID] = true
		}
		if r.LeaderStoreID != 0 && !onStore[r.LeaderStoreID] {
			v.addf(p+".leader_store_id", "store %d holds no peer of this region", r.LeaderStoreID)
		}
	}
}

// checkTiling checks that the regions, ordered by start key, cover the whole
// key space exactly once.
func (v *validator) checkTiling(regions []Region) {
	if len(regions) == 0 {
		return
	}
	order := make([]int, len(regions))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return bytes.Compare(regions[a].StartKey, regions[b].StartKey)
	})

	first := order[0]
	if !regions[first].StartKey.Unbounded() {
		v.addf(fmt.Sprintf("regions[%d].start_key", first),
			"gap in key space: no region starts at \"\", the lowest start key is %q", regions[first].StartKey)
	}
	for k := 1; k < len(order); k++ {
		prev, cur := order[k-1], order[k]
		prevEnd, curStart := regions[prev].EndKey, regions[cur].StartKey
		path := fmt.Sprintf("regions[%d].start_key", cur)
		switch {
		case prevEnd.Unbounded() || bytes.Compare(curStart, prevEnd) < 0:
			v.addf(path, "start key %q overlaps regions[%d] [%q, %q)",
				curStart, prev, regions[prev].StartKey, prevEnd)
		case bytes.Compare(curStart, prevEnd) > 0:
			v.addf(path, "gap in key space: start key %q does not equal the end key %q of regions[%d]",
				curStart, prevEnd, prev)
		}
	}
	last := order[len(order)-1]
	if !regions[last].EndKey.Unbounded() {
		v.addf(fmt.Sprintf("regions[%d].end_key", last),
			"gap in key space: the highest region must end at \"\", got %q", regions[last].EndKey)
	}
}
