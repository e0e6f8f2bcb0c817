package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/nokv/nokv/pkg/config"
)

// storeRow is one store with its addresses resolved for both scopes, with the
// fallbacks the services apply (an empty listen address is the dial address,
// an empty docker address the host one).
type storeRow struct {
	StoreID          uint64 `json:"store_id"`
	Addr             string `json:"addr"`
	ListenAddr       string `json:"listen_addr"`
	DockerAddr       string `json:"docker_addr"`
	DockerListenAddr string `json:"docker_listen_addr"`
}

func storeRows(c *config.Cluster) []storeRow {
	rows := make([]storeRow, 0, len(c.Stores))
	for _, s := range c.Stores {
		r := storeRow{StoreID: s.StoreID}
		// The ids come from the file, so the lookups cannot fail.
		r.Addr, _ = c.StoreAddr(s.StoreID, config.ScopeHost)
		r.ListenAddr, _ = c.StoreListenAddr(s.StoreID, config.ScopeHost)
		r.DockerAddr, _ = c.StoreAddr(s.StoreID, config.ScopeDocker)
		r.DockerListenAddr, _ = c.StoreListenAddr(s.StoreID, config.ScopeDocker)
		rows = append(rows, r)
	}
	return rows
}

func runStores(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("stores", "[--config FILE] [--scope host|docker] [--format table|json|simple]")
	path := configFlag(fs)
	scope := scopeFlag(fs)
	format := formatFlag(fs, "table", "json", "simple")
	if status, ok := parse(fs, args, stdout, stderr); !ok {
		return status
	}
	c, ok := load("stores", *path, stderr)
	if !ok {
		return 1
	}
	rows := storeRows(c)
	switch format.v {
	case "json":
		return writeJSON(stdout, rows)
	case "simple":
		// One store a line, no header, for `while read -r id listen addr
		// docker_listen docker_addr`: every scope, whatever --scope says.
		for _, r := range rows {
			fmt.Fprintf(stdout, "%d %s %s %s %s\n", r.StoreID, r.ListenAddr, r.Addr, r.DockerListenAddr, r.DockerAddr)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "STORE\tADDR (%s)\tLISTEN (%s)\n", *scope, *scope)
	for _, r := range rows {
		addr, listen := r.Addr, r.ListenAddr
		if *scope == config.ScopeDocker {
			addr, listen = r.DockerAddr, r.DockerListenAddr
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", r.StoreID, addr, listen)
	}
	return flush(tw, stderr)
}

func runRegions(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("regions", "[--config FILE] [--format table|json|simple]")
	path := configFlag(fs)
	format := formatFlag(fs, "table", "json", "simple")
	if status, ok := parse(fs, args, stdout, stderr); !ok {
		return status
	}
	c, ok := load("regions", *path, stderr)
	if !ok {
		return 1
	}
	switch format.v {
	case "json":
		// The regions as the file has them (keys in the file's string form).
		regions := c.Regions
		if regions == nil {
			regions = []config.Region{}
		}
		return writeJSON(stdout, regions)
	case "simple":
		// id start end version conf_version store:peer,... leader_store_id;
		// an unbounded key is "-".
		for _, r := range c.Regions {
			fmt.Fprintf(stdout, "%d %s %s %d %d %s %d\n", r.ID, simpleKey(r.StartKey), simpleKey(r.EndKey),
				r.Epoch.Version, r.Epoch.ConfVersion, filePeers(r.Peers), r.LeaderStoreID)
		}
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tSTART\tEND\tEPOCH (ver/conf)\tPEERS (store:peer)\tLEADER STORE")
	for _, r := range c.Regions {
		leader := "any"
		if r.LeaderStoreID != 0 {
			leader = strconv.FormatUint(r.LeaderStoreID, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID, startKey(r.StartKey), endKey(r.EndKey),
			r.Epoch.Version, r.Epoch.ConfVersion, filePeers(r.Peers), leader)
	}
	return flush(tw, stderr)
}

func runPD(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "member" {
		return runPDMember(args[1:], stdout, stderr)
	}
	fs := newFlags("pd", "[--config FILE] [--field addr|workdir|members] [--scope host|docker] [--format text|json]")
	path := configFlag(fs)
	scope := scopeFlag(fs)
	field := &formatValue{v: "addr", allowed: []string{"addr", "workdir", "members"}}
	fs.Var(field, "field", "`field` to print: addr (with pd.members: every member's, comma-separated), workdir, or members (one member name per line; none without pd.members)")
	format := formatFlag(fs, "text", "json")
	if status, ok := parse(fs, args, stdout, stderr); !ok {
		return status
	}
	c, ok := load("pd", *path, stderr)
	if !ok {
		return 1
	}
	addr, workdir := c.PDAddr(*scope), c.PDWorkDir(*scope)
	if format.v == "json" {
		return writeJSON(stdout, struct {
			Scope   config.Scope           `json:"scope"`
			Addr    string                 `json:"addr"`
			WorkDir string                 `json:"work_dir"`
			Members []config.PDMemberAddrs `json:"members,omitempty"`
		}{*scope, addr, workdir, c.PDMembers(*scope)})
	}
	if field.v == "members" {
		for _, m := range c.PDMembers(*scope) {
			fmt.Fprintln(stdout, m.Name)
		}
		return 0
	}
	v := addr
	if field.v == "workdir" {
		v = workdir
		if v == "" {
			fmt.Fprintf(stderr, "%s pd: the cluster file sets no pd.work_dir for the %s scope (PD then uses its default, ./data/pd)\n", name, *scope)
			return 1
		}
	}
	fmt.Fprintln(stdout, v)
	return 0
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "[--config FILE]")
	path := configFlag(fs)
	if status, ok := parse(fs, args, stdout, stderr); !ok {
		return status
	}
	c, ok := load("validate", *path, stderr)
	if !ok {
		return 1
	}
	peers := 0
	for _, r := range c.Regions {
		peers += len(r.Peers)
	}
	fmt.Fprintf(stdout, "ok: %s: %d stores, %d regions, %d peers; PD at %s (host) / %s (docker)\n",
		*path, len(c.Stores), len(c.Regions), peers, c.PDAddr(config.ScopeHost), c.PDAddr(config.ScopeDocker))
	return 0
}

func filePeers(peers []config.Peer) string {
	parts := make([]string, len(peers))
	for i, p := range peers {
		parts[i] = fmt.Sprintf("%d:%d", p.StoreID, p.PeerID)
	}
	return strings.Join(parts, ",")
}

// startKey and endKey show a key for a table: the unbounded ends as -inf
// and +inf, others in the cluster file's form (hex: for binary keys).
func startKey(k []byte) string {
	if len(k) == 0 {
		return "-inf"
	}
	return config.Key(k).String()
}

func endKey(k []byte) string {
	if len(k) == 0 {
		return "+inf"
	}
	return config.Key(k).String()
}

// simpleKey shows a key for the simple format: "-" when unbounded. A key with
// a space is written in hex, so that each line splits into its fields.
func simpleKey(k []byte) string {
	if len(k) == 0 {
		return "-"
	}
	s := config.Key(k).String()
	if strings.ContainsAny(s, " \t") || s == "-" {
		return fmt.Sprintf("%s%x", config.HexPrefix, k)
	}
	return s
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(w, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func flush(tw *tabwriter.Writer, stderr io.Writer) int {
	if err := tw.Flush(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
