// Command nokv-config reads the NoKV cluster file and asks a running cluster
// how it is doing.
//
//	nokv-config stores   --config raft_config.json [--scope host|docker] [--format table|json|simple]
//	nokv-config regions  --config raft_config.json [--format table|json|simple]
//	nokv-config pd       --config raft_config.json [--field addr|workdir] [--scope host|docker] [--format text|json]
//	nokv-config validate --config raft_config.json
//	nokv-config status   --pd-addr 127.0.0.1:2379 [--format table|json] [--wait 30s]
//	nokv-config store remove --pd-addr 127.0.0.1:2379 <store-id>
//
// The file is read by pkg/config, exactly as the services read it: validate
// reports the same errors a service would refuse to start with. Exit status:
// 0 on success, 1 on an invalid file or an unreachable cluster (or one not
// ready within --wait), 2 on bad usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nokv/nokv/pkg/config"
)

const name = "nokv-config"

// defaultConfig is the cluster file read when --config is not given (and
// NOKV_CONFIG is unset): the example at the repository root.
const defaultConfig = "raft_config.example.json"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"stores", "list the stores of the cluster file: id and addresses for a scope", runStores},
		{"regions", "list the initial regions of the cluster file: range, epoch, peers, leader", runRegions},
		{"pd", "print PD's address or work directory for a scope; pd member list|add|remove: a PD group's members", runPD},
		{"validate", "check a cluster file as the services do; exit 1 with every problem if it is invalid", runValidate},
		{"status", "ask PD for the live cluster: stores, regions, leaders, sizes, TSO, GC safe point", runStatus},
		{"store", "store remove <id>: remove a dead store for good (its peers are replaced elsewhere)", runStore},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", name)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\n%s <command> --help lists a command's flags. The cluster file defaults to\n$NOKV_CONFIG, else ./%s.\n", name, defaultConfig)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", name, args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set for a command, with --help going to stdout.
func newFlags(cmd, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name+" "+cmd, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s %s %s\n\nFlags:\n", name, cmd, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args into fs. ok=false means stop with status.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, ok bool) {
	var out strings.Builder
	fs.SetOutput(&out)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		io.WriteString(stdout, out.String())
		return 0, false
	case err != nil:
		io.WriteString(stderr, out.String())
		return 2, false
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (see --help)\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}

// configFlag registers --config, defaulting to $NOKV_CONFIG or the example.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("NOKV_CONFIG")
	if def == "" {
		def = defaultConfig
	}
	return fs.String("config", def, "cluster `file`")
}

// scopeFlag registers --scope.
func scopeFlag(fs *flag.FlagSet) *config.Scope {
	s := config.ScopeHost
	fs.Var(&s, "scope", "address `scope`: host or docker")
	return &s
}

// formatFlag registers --format with the allowed values, the first the default.
type formatValue struct {
	v       string
	allowed []string
}

func (f *formatValue) String() string { return f.v }

func (f *formatValue) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, a := range f.allowed {
		if s == a {
			f.v = s
			return nil
		}
	}
	return fmt.Errorf("%q: want %s", s, strings.Join(f.allowed, ", "))
}

func formatFlag(fs *flag.FlagSet, allowed ...string) *formatValue {
	f := &formatValue{v: allowed[0], allowed: allowed}
	fs.Var(f, "format", "output `format`: "+strings.Join(allowed, ", "))
	return f
}

// load reads the cluster file as the services do, printing the errors as
// they would (one problem a line) on failure.
func load(cmd, path string, stderr io.Writer) (*config.Cluster, bool) {
	c, err := config.Load(path)
	if err != nil {
		config.PrintError(stderr, name+" "+cmd, err)
		return nil, false
	}
	return c, true
}
