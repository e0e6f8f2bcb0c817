package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ParseCommandLine parses a service's flags the way every NoKV binary does: usage
// naming each setting's environment variable, --help to stdout with status 0, a
// bad flag or stray argument to stderr with status 2. register adds the flags.
// It returns the parsed set and ok=false with the exit status when the process
// should stop now.
func ParseCommandLine(name, summary, envPrefix string, args []string, register func(*flag.FlagSet), stdout, stderr io.Writer) (fs *flag.FlagSet, status int, ok bool) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: %s [flags]

%s

Each setting is taken from, in order of precedence: its flag, its
%s* environment variable, the cluster file (--config), the default.

Flags:
`, name, summary, envPrefix)
		fs.PrintDefaults()
	}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		_, _ = io.Copy(stdout, &usage)
		return fs, 0, false
	case err != nil:
		_, _ = io.Copy(stderr, &usage)
		return fs, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (see --help)\n", name, fs.Args())
		return fs, 2, false
	}
	return fs, 0, true
}

// PrintError writes err to w one line at a time, each prefixed with the command
// name, so that every problem of a joined validation error stands on its own line.
func PrintError(w io.Writer, name string, err error) {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(w, "%s: %s\n", name, strings.TrimSuffix(line, "\n"))
	}
}
