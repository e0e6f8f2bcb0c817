package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/pdclient"
)

const memberSynopsis = "list | add <peer-url> | remove <name|id|peer-url>  [--pd-addr ADDRS | --config FILE [--scope host|docker]]"

// runPDMember runs `pd member list|add|remove`: the membership of a PD
// group through the members' own gRPC API (PD calls etcd's cluster API in
// process), so no etcd client port or etcdctl is needed.
func runPDMember(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: %s pd member %s\n", name, memberSynopsis)
		return 2
	}
	op := args[0]
	fs := newFlags("pd member "+op, "[--pd-addr ADDRS | --config FILE [--scope host|docker]] [--format text|json] "+map[string]string{"add": "<peer-url>", "remove": "<name|id|peer-url>"}[op])
	pdAddr := fs.String("pd-addr", "", "PD member `addresses`, comma-separated (default: the members of --config if given, else 127.0.0.1:2379)")
	path := fs.String("config", "", "cluster `file` to take the PD members' addresses from")
	scope := scopeFlag(fs)
	format := formatFlag(fs, "text", "json")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on the request")
	var arg string
	switch op {
	case "list":
		if code, ok := parse(fs, args[1:], stdout, stderr); !ok {
			return code
		}
	case "add", "remove":
		what := map[string]string{"add": "peer URL", "remove": "member"}[op]
		var out strings.Builder
		fs.SetOutput(&out)
		err := fs.Parse(args[1:])
		switch {
		case errors.Is(err, flag.ErrHelp):
			io.WriteString(stdout, out.String())
			return 0
		case err != nil:
			io.WriteString(stderr, out.String())
			return 2
		case fs.NArg() == 0:
			fmt.Fprintf(stderr, "%s pd member %s: the %s is missing\n", name, op, what)
			return 2
		case fs.NArg() > 1:
			fmt.Fprintf(stderr, "%s pd member %s: one %s after the flags, got %q\n", name, op, what, fs.Args())
			return 2
		}
		arg = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "Usage: %s pd member %s\n", name, memberSynopsis)
		return 2
	}
	addr := *pdAddr
	if addr == "" {
		addr = "127.0.0.1:2379"
		if *path != "" {
			c, ok := load("pd member", *path, stderr)
			if !ok {
				return 1
			}
			addr = c.PDAddr(*scope)
		}
	}
	addrs, err := pdclient.ParseMembers(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s pd member %s: %v\n", name, op, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s pd member %s: %v\n", name, op, err)
		return 1
	}
	var members []*pdpb.PDMember
	switch op {
	case "list":
		var resp *pdpb.ListMembersResponse
		err = anyMember(ctx, addrs, func(ctx context.Context, pd pdpb.PDClient) (err error) {
			resp, err = pd.ListMembers(ctx, &pdpb.ListMembersRequest{})
			return err
		})
		if err != nil {
			return fail(err)
		}
		members = resp.GetMembers()
	case "add":
		var resp *pdpb.AddMemberResponse
		err = anyMember(ctx, addrs, func(ctx context.Context, pd pdpb.PDClient) (err error) {
			resp, err = pd.AddMember(ctx, &pdpb.AddMemberRequest{PeerUrl: arg})
			return err
		})
		if err == nil {
			err = headerErr(resp.GetHeader())
		}
		if err != nil {
			return fail(err)
		}
		members = resp.GetMembers()
		if format.v == "text" {
			fmt.Fprintf(stdout, "member %016x added with peer URL %s: add it to pd.members of the cluster file, then start it on an empty workdir with nokv-pd --name <name> --join\n\n", resp.GetMember().GetId(), arg)
		}
	case "remove":
		var list *pdpb.ListMembersResponse
		err = anyMember(ctx, addrs, func(ctx context.Context, pd pdpb.PDClient) (err error) {
			list, err = pd.ListMembers(ctx, &pdpb.ListMembersRequest{})
			return err
		})
		if err != nil {
			return fail(err)
		}
		target, err := findMember(list.GetMembers(), arg)
		if err != nil {
			return fail(err)
		}
		// Ask the others first: a member that removed itself cannot list the
		// group afterwards.
		others := slices.DeleteFunc(slices.Clone(addrs), func(a string) bool {
			return slices.ContainsFunc(target.GetClientUrls(), func(u string) bool { return strings.TrimPrefix(u, "http://") == a })
		})
		var resp *pdpb.RemoveMemberResponse
		err = anyMember(ctx, others, func(ctx context.Context, pd pdpb.PDClient) (err error) {
			resp, err = pd.RemoveMember(ctx, &pdpb.RemoveMemberRequest{Id: target.GetId()})
			return err
		})
		if err == nil {
			err = headerErr(resp.GetHeader())
		}
		if err != nil {
			return fail(err)
		}
		members = resp.GetMembers()
		if format.v == "text" {
			fmt.Fprintf(stdout, "member %016x (%s) removed: its nokv-pd stops by itself; drop it from pd.members (its workdir cannot rejoin: to bring the machine back, add it again and start it on an empty workdir with --join)\n\n", target.GetId(), cmp.Or(target.GetName(), strings.Join(target.GetPeerUrls(), ",")))
		}
	}
	if format.v == "json" {
		return writeJSON(stdout, membersJSON(members))
	}
	return writeMembers(stdout, stderr, members)
}

// anyMember sends call to the members in turn until one answers: every
// member serves membership calls, leader or not, as long as the group has
// a quorum. A member that cannot be reached (or is not started) is skipped;
// the last error is returned if none answers.
func anyMember(ctx context.Context, addrs []string, call func(context.Context, pdpb.PDClient) error) error {
	var errs []error
	for _, a := range addrs {
		cc, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a, err))
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = call(actx, pdpb.NewPDClient(cc))
		cancel()
		cc.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %s", a, grpcstatus.Convert(err).Message()))
	}
	return errors.Join(errs...)
}

func headerErr(h *pdpb.ResponseHeader) error {
	if e := h.GetError(); e != nil {
		return fmt.Errorf("%s: %s", e.GetType(), e.GetMessage())
	}
	return nil
}

// findMember picks the member named by arg: its name, its id (hex, as
// listed), or one of its peer URLs.
func findMember(ms []*pdpb.PDMember, arg string) (*pdpb.PDMember, error) {
	var found []*pdpb.PDMember
	id, idErr := strconv.ParseUint(arg, 16, 64)
	for _, m := range ms {
		match := m.GetName() == arg || idErr == nil && m.GetId() == id
		for _, u := range m.GetPeerUrls() {
			match = match || u == arg
		}
		if match {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("no member is named %q (by name, hex id or peer URL); see pd member list", arg)
	}
	return nil, fmt.Errorf("%q names %d members; give the hex id", arg, len(found))
}

type memberJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls,omitempty"`
	Started    bool     `json:"started"`
	PDLeader   bool     `json:"pd_leader"`
	EtcdLeader bool     `json:"etcd_leader"`
}

func membersJSON(ms []*pdpb.PDMember) []memberJSON {
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberJSON{ID: fmt.Sprintf("%016x", m.GetId()), Name: m.GetName(), PeerURLs: m.GetPeerUrls(),
			ClientURLs: m.GetClientUrls(), Started: m.GetName() != "", PDLeader: m.GetPdLeader(), EtcdLeader: m.GetEtcdLeader()})
	}
	return out
}

func writeMembers(stdout, stderr io.Writer, ms []*pdpb.PDMember) int {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPEER URL\tPD ADDRESS\tSTATE")
	for _, m := range ms {
		var state []string
		if m.GetName() == "" {
			state = append(state, "added, not started")
		} else {
			state = append(state, "started")
		}
		if m.GetPdLeader() {
			state = append(state, "PD leader")
		}
		if m.GetEtcdLeader() {
			state = append(state, "etcd leader")
		}
		var pdAddr []string
		for _, u := range m.GetClientUrls() {
			pdAddr = append(pdAddr, strings.TrimPrefix(u, "http://"))
		}
		fmt.Fprintf(tw, "%016x\t%s\t%s\t%s\t%s\n", m.GetId(), cmp.Or(m.GetName(), "-"), strings.Join(m.GetPeerUrls(), ","),
			cmp.Or(strings.Join(pdAddr, ","), "-"), strings.Join(state, ", "))
	}
	return flush(tw, stderr)
}
