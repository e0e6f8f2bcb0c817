package config

import (
	"fmt"
	"strings"
)

// Scope selects which set of addresses a process uses: the host ones or the
// docker_* ones used inside the compose network.
//
// *Scope implements flag.Value and encoding.TextUnmarshaler, so it can be
// bound to a flag with fs.Var and read from the environment by ApplyEnv.
type Scope string

const (
	// ScopeHost selects the plain address fields.
	ScopeHost Scope = "host"
	// ScopeDocker selects the docker_* fields, falling back to the plain
	// ones when a docker_* field is empty.
	ScopeDocker Scope = "docker"
)

// ParseScope parses "host" or "docker" (case-insensitive, surrounding
// spaces ignored). Other values return an error matching ErrInvalidScope.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(strings.ToLower(strings.TrimSpace(s))); sc {
	case ScopeHost, ScopeDocker:
		return sc, nil
	}
	return "", fmt.Errorf("%w %q: want %q or %q", ErrInvalidScope, s, ScopeHost, ScopeDocker)
}

func (s Scope) String() string { return string(s) }

// Set implements flag.Value.
func (s *Scope) Set(v string) error {
	sc, err := ParseScope(v)
	if err != nil {
		return err
	}
	*s = sc
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (s Scope) MarshalText() ([]byte, error) { return []byte(s), nil }

// UnmarshalText implements encoding.TextUnmarshaler using ParseScope.
func (s *Scope) UnmarshalText(b []byte) error { return s.Set(string(b)) }

// pick returns docker for ScopeDocker when it is non-empty, else host.
func pick(scope Scope, host, docker string) string {
	if scope == ScopeDocker && docker != "" {
		return docker
	}
	return host
}
