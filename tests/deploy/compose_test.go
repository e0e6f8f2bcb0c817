package deploy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// imageTag is the tag the tests build and run, so that a user's :dev images
// are left alone; the images are removed when the tests end.
const imageTag = "deploytest"

var services = []string{"nokv-pd", "nokv-store-1", "nokv-store-2", "nokv-store-3", "nokv-redis"}

// requireDocker skips the test, saying why, where no Docker engine runs.
func requireDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI here, so no Docker engine: the compose tests need one")
	}
	if out, err := tryCommand(30*time.Second, "", nil, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Skipf("no Docker engine runs here (docker info: %v: %s): the compose tests need one", err, strings.TrimSpace(out))
	}
}

// The compose tools: the v2 plugin and docker-compose 1.29. Where a Docker
// engine runs, both must be installed (.ci/run installs them).
var (
	composeV2 = []string{"docker", "compose"}
	composeV1 = []string{"docker-compose"}
)

func requireTool(t *testing.T, tool []string) {
	t.Helper()
	out, err := tryCommand(30*time.Second, "", nil, tool[0], append(tool[1:], "version")...)
	if err != nil {
		t.Fatalf("%s is not installed (%v: %s); .ci/run installs it: docker-compose from Debian's docker-compose package, "+
			"the v2 plugin with go install github.com/docker/compose/v2/cmd@v2.29.7 copied to ~/.docker/cli-plugins/docker-compose",
			strings.Join(tool, " "), err, strings.TrimSpace(out))
	}
	t.Logf("%s: %s", strings.Join(tool, " "), strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]))
}

var (
	imagesOnce  sync.Once
	imagesErr   error
	imagesBuilt bool
)

// buildImages runs scripts/compose-build.sh once: static binaries on the
// host, FROM scratch images, nothing pulled.
func buildImages(t *testing.T) {
	t.Helper()
	imagesOnce.Do(func() {
		start := time.Now()
		out, err := tryCommand(15*time.Minute, "", []string{"NOKV_TAG=" + imageTag, "NOKV_VERSION=" + imageTag, "REGISTRY="}, "scripts/compose-build.sh")
		if err != nil {
			imagesErr = fmt.Errorf("scripts/compose-build.sh: %v\n%s", err, out)
			return
		}
		imagesBuilt = true
		t.Logf("scripts/compose-build.sh took %v:\n%s", time.Since(start).Round(time.Second), out)
	})
	if imagesErr != nil {
		t.Fatal(imagesErr)
	}
}

func cleanupImages() {
	if imagesBuilt {
		_, _ = tryCommand(time.Minute, "", nil, "docker", "rmi", "nokv-redis:"+imageTag, "nokv-pd:"+imageTag, "nokv-store:"+imageTag)
	}
}

// project is one compose project of the tests, on ports of its own.
type project struct {
	t     *testing.T
	tool  []string
	name  string
	ports map[string]int
	env   []string
	// files are the compose files after compose/docker-compose.yml.
	files []string
}

func newProject(t *testing.T, tool []string) *project {
	t.Helper()
	p := &project{t: t, tool: tool, name: fmt.Sprintf("nokvdeploy%d%s", os.Getpid(), strings.ReplaceAll(tool[len(tool)-1], "-", "")), ports: map[string]int{}}
	p.env = []string{"NOKV_TAG=" + imageTag}
	for _, v := range []string{"NOKV_REDIS_PORT", "NOKV_REDIS_METRICS_PORT", "NOKV_PD_PORT", "NOKV_PD_METRICS_PORT",
		"NOKV_STORE1_PORT", "NOKV_STORE2_PORT", "NOKV_STORE3_PORT",
		"NOKV_STORE1_METRICS_PORT", "NOKV_STORE2_METRICS_PORT", "NOKV_STORE3_METRICS_PORT", "NOKV_EMBEDDED_PORT",
		"NOKV_PD2_PORT", "NOKV_PD3_PORT"} {
		// Each port's listener stays open until all are chosen: closed at
		// once, the next call could be handed the same port, and two
		// services of the project would ask Docker for one host port
		// ("port is already allocated").
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		p.ports[v] = l.Addr().(*net.TCPAddr).Port
		p.env = append(p.env, fmt.Sprintf("%s=%d", v, p.ports[v]))
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := tryCommand(time.Minute, "", p.env, p.tool[0], p.args("--profile", "embedded", "logs", "--no-color", "--tail", "60")...)
			t.Logf("compose logs:\n%s", out)
		}
		// down -v even when the test failed: containers, network, volumes.
		if out, err := tryCommand(3*time.Minute, "", p.env, p.tool[0], p.args("--profile", "embedded", "down", "-v", "--remove-orphans", "--timeout", "20")...); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	return p
}

func (p *project) args(args ...string) []string {
	out := append(append([]string(nil), p.tool[1:]...), "-f", "compose/docker-compose.yml")
	for _, f := range p.files {
		out = append(out, "-f", f)
	}
	return append(append(out, "-p", p.name), args...)
}

// run runs a compose command of the project from the repository root.
func (p *project) run(args ...string) string {
	p.t.Helper()
	return command(p.t, 5*time.Minute, "", p.env, p.tool[0], p.args(args...)...)
}

func (p *project) addr(port string) string { return fmt.Sprintf("127.0.0.1:%d", p.ports[port]) }

// waitHealthy waits until every named service's container is healthy.
func (p *project) waitHealthy(d time.Duration, names ...string) {
	p.t.Helper()
	eventually(p.t, d, "healthy containers", func() error {
		out, err := tryCommand(30*time.Second, "", nil, "docker", "ps", "-a", "--filter", "label=com.docker.compose.project="+p.name,
			"--format", `{{.Label "com.docker.compose.service"}}|{{.Status}}`)
		if err != nil {
			return fmt.Errorf("docker ps: %v: %s", err, out)
		}
		status := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if svc, st, ok := strings.Cut(line, "|"); ok {
				status[svc] = st
			}
		}
		for _, n := range names {
			if !strings.Contains(status[n], "(healthy)") {
				return fmt.Errorf("%s: %q", n, status[n])
			}
		}
		return nil
	})
}

// TestImages checks what scripts/compose-build.sh built: one image per
// service, each under 40 MB (only the static binary: nokv-pd, which embeds
// etcd's server, is about 32 MB, the others about 22), with the OCI labels.
func TestImages(t *testing.T) {
	requireDocker(t)
	buildImages(t)
	revision := strings.TrimSpace(command(t, time.Minute, "", nil, "git", "rev-parse", "HEAD"))
	for _, img := range []string{"nokv-redis", "nokv-pd", "nokv-store"} {
		out := command(t, time.Minute, "", nil, "docker", "image", "inspect", img+":"+imageTag, "--format",
			`{{.Size}}|{{index .Config.Labels "org.opencontainers.image.source"}}|{{index .Config.Labels "org.opencontainers.image.version"}}|{{index .Config.Labels "org.opencontainers.image.revision"}}|{{json .Config.Entrypoint}}`)
		f := strings.Split(strings.TrimSpace(out), "|")
		size, _ := strconv.ParseInt(f[0], 10, 64)
		t.Logf("%s:%s: %.1f MB, source %s, version %s, revision %s, entrypoint %s", img, imageTag, float64(size)/1e6, f[1], f[2], f[3], f[4])
		if size <= 0 || size >= 40e6 {
			t.Errorf("%s is %d bytes, want under 40 MB", img, size)
		}
		if f[1] == "" || f[2] != imageTag || f[3] != revision || f[4] != `["/`+img+`"]` {
			t.Errorf("%s: labels source %q version %q revision %q (want %q), entrypoint %s", img, f[1], f[2], f[3], revision, f[4])
		}
		// Only the binary: one layer, one file.
		if layers := command(t, time.Minute, "", nil, "docker", "image", "inspect", img+":"+imageTag, "--format", "{{len .RootFS.Layers}}"); strings.TrimSpace(layers) != "1" {
			t.Errorf("%s has %s layers, want 1 (its binary)", img, strings.TrimSpace(layers))
		}
	}
}

// TestComposeCluster runs the compose cluster with the compose v2 plugin:
// up (images already built, nothing built or pulled), all healthy, SET/GET
// through the gateway on the raft backend, one store (a leader) stopped while
// writes go on, the store started again and caught up: its applied index
// reaches the others' and, made leader of every region, it serves every key.
func TestComposeCluster(t *testing.T) {
	requireDocker(t)
	requireTool(t, composeV2)
	buildImages(t)
	p := newProject(t, composeV2)

	start := time.Now()
	p.run("up", "-d")
	p.waitHealthy(90*time.Second, services...)
	t.Logf("compose v2: up to all healthy in %v", time.Since(start).Round(100*time.Millisecond))

	ctx := context.Background()
	c := redisClient(t, p.addr("NOKV_REDIS_PORT"))
	if info := c.Info(ctx, "server").Val(); !strings.Contains(info, "nokv_backend:raft") {
		t.Fatalf("the compose gateway does not run the raft backend:\n%s", info)
	}
	// Keys on both sides of the example file's split, database 0's "m"
	// (hex:000000006d: the gateway prefixes keys with the 4-byte db number).
	writeKeys(t, c, "a", 40)
	writeKeys(t, c, "z", 40)
	checkKeys(t, c, "a", 40)
	checkKeys(t, c, "z", 40)

	// Stop the store leading the first region: its regions need a new leader
	// before the writes can go on.
	pd := p.addr("NOKV_PD_PORT")
	var victim uint64
	eventually(t, 30*time.Second, "a leader for the first region", func() error {
		if r := status(t, pd).Regions; len(r) > 0 && r[0].Leader != nil {
			victim = r[0].Leader.StoreID
			return nil
		}
		return fmt.Errorf("none yet")
	})
	victimSvc := fmt.Sprintf("nokv-store-%d", victim)
	p.run("stop", victimSvc)
	stopped := time.Now()
	writeKeys(t, c, "b", 40)
	writeKeys(t, c, "y", 40)
	t.Logf("80 writes with %s (leader of the first region) stopped took %v", victimSvc, time.Since(stopped).Round(100*time.Millisecond))
	checkKeys(t, c, "a", 40)
	checkKeys(t, c, "b", 40)
	checkKeys(t, c, "y", 40)

	p.run("start", victimSvc)
	p.waitHealthy(60*time.Second, victimSvc)
	stores := map[uint64]string{1: p.addr("NOKV_STORE1_PORT"), 2: p.addr("NOKV_STORE2_PORT"), 3: p.addr("NOKV_STORE3_PORT")}
	st := status(t, pd)
	if len(st.Regions) == 0 {
		t.Fatalf("PD knows no regions: %+v", st)
	}
	for _, r := range st.Regions {
		waitCaughtUp(t, stores, r.ID, victim)
	}
	// Same data as the others: the restarted store leads every region and
	// serves every key.
	for attempt := 1; ; attempt++ {
		for _, r := range st.Regions {
			makeLeader(t, stores, r.ID, victim)
		}
		for _, prefix := range []string{"a", "b", "y", "z"} {
			checkKeys(t, c, prefix, 40)
		}
		if stillLed(t, stores, victim, st.Regions) {
			break
		}
		if attempt == 3 {
			t.Fatalf("PD kept moving leadership away from store %d while it served the reads", victim)
		}
	}
	eventually(t, 30*time.Second, "nokv-config status ready", func() error {
		if s := status(t, pd); !s.Ready {
			return fmt.Errorf("%v", s.Problems)
		}
		return nil
	})
	p.run("down", "-v", "--timeout", "20")
}

// TestComposeV1 runs the same compose file with docker-compose 1.29, the
// Debian package, as users of older machines do: up, all healthy, SET/GET on
// the raft gateway, the embedded gateway's profile, down.
func TestComposeV1(t *testing.T) {
	requireDocker(t)
	requireTool(t, composeV1)
	buildImages(t)
	p := newProject(t, composeV1)

	start := time.Now()
	p.run("up", "-d")
	p.waitHealthy(90*time.Second, services...)
	t.Logf("docker-compose 1.29: up to all healthy in %v", time.Since(start).Round(100*time.Millisecond))
	c := redisClient(t, p.addr("NOKV_REDIS_PORT"))
	writeKeys(t, c, "greeting", 5)
	checkKeys(t, c, "greeting", 5)

	p.run("--profile", "embedded", "up", "-d", "nokv-redis-embedded")
	p.waitHealthy(60*time.Second, "nokv-redis-embedded")
	e := redisClient(t, p.addr("NOKV_EMBEDDED_PORT"))
	if info := e.Info(context.Background(), "server").Val(); !strings.Contains(info, "nokv_backend:embedded") {
		t.Fatalf("the embedded profile's gateway:\n%s", info)
	}
	writeKeys(t, e, "local", 5)
	checkKeys(t, e, "local", 5)
	p.run("--profile", "embedded", "down", "-v", "--timeout", "20")
}

// TestComposePDGroup runs the compose cluster with a three-member PD group
// (compose/docker-compose.pd-group.yml over the base file, the cluster file
// raft_config.pd-group.example.json) with docker-compose 1.29: up, all
// healthy, SET/GET through the gateway, the PD leader's container killed
// (SIGKILL), writes again through the new leader, down.
func TestComposePDGroup(t *testing.T) {
	requireDocker(t)
	requireTool(t, composeV1)
	buildImages(t)
	p := newProject(t, composeV1)
	p.files = []string{"compose/docker-compose.pd-group.yml"}
	p.env = append(p.env, "NOKV_CLUSTER_FILE=../raft_config.pd-group.example.json")

	start := time.Now()
	p.run("up", "-d")
	members := []string{"nokv-pd", "nokv-pd-2", "nokv-pd-3"}
	p.waitHealthy(120*time.Second, append(services, members[1:]...)...)
	t.Logf("docker-compose 1.29, PD group: up to all healthy in %v", time.Since(start).Round(100*time.Millisecond))
	c := redisClient(t, p.addr("NOKV_REDIS_PORT"))
	writeKeys(t, c, "a", 20)
	writeKeys(t, c, "z", 20)
	checkKeys(t, c, "a", 20)

	addrs := []string{p.addr("NOKV_PD_PORT"), p.addr("NOKV_PD2_PORT"), p.addr("NOKV_PD3_PORT")}
	group := strings.Join(addrs, ",")
	leader := func() int {
		for i, a := range addrs {
			conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = pdpb.NewPDClient(conn).GetClusterInfo(ctx, &pdpb.GetClusterInfoRequest{})
			cancel()
			conn.Close()
			if err == nil {
				return i
			}
		}
		return -1
	}
	lead := -1
	eventually(t, 30*time.Second, "a PD leader", func() error {
		if lead = leader(); lead < 0 {
			return fmt.Errorf("no member serves")
		}
		return nil
	})
	if st := status(t, group); len(st.Regions) == 0 {
		t.Fatalf("PD group knows no regions: %+v", st)
	}
	killed := time.Now()
	command(t, time.Minute, "", nil, "docker", "kill", "-s", "KILL", p.container(members[lead]))
	// The gateway answers an error while no PD member leads (a lease and
	// an election, a few seconds): wait for the first write, then the rest
	// must go through as they come.
	eventually(t, 30*time.Second, "a write after the PD leader was killed", func() error {
		return c.Set(context.Background(), "b-first", "1", 0).Err()
	})
	t.Logf("PD leader %s killed: writes again %v later", members[lead], time.Since(killed).Round(100*time.Millisecond))
	writeKeys(t, c, "b", 20)
	if now := leader(); now < 0 || now == lead {
		t.Fatalf("leader after the kill: %d (was %d)", now, lead)
	}
	checkKeys(t, c, "a", 20)
	checkKeys(t, c, "b", 20)
	checkKeys(t, c, "z", 20)
	p.run("down", "-v", "--timeout", "20")
}

// container is the id of the service's container.
func (p *project) container(service string) string {
	p.t.Helper()
	out := command(p.t, time.Minute, "", nil, "docker", "ps", "-q", "--filter", "label=com.docker.compose.project="+p.name,
		"--filter", "label=com.docker.compose.service="+service)
	id := strings.TrimSpace(out)
	if id == "" || strings.Contains(id, "\n") {
		p.t.Fatalf("container of %s: %q", service, out)
	}
	return id
}

// TestDockerfilesInStep checks that compose/Dockerfile.prebuilt (the offline
// path) has exactly compose/Dockerfile's image stages, the binary copied from
// bin/ instead of the build stage.
func TestDockerfilesInStep(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(root + "/compose/" + name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i := strings.Index(s, "FROM scratch AS ")
		if i < 0 {
			t.Fatalf("compose/%s has no FROM scratch stage", name)
		}
		return s[i:]
	}
	multi := strings.ReplaceAll(read("Dockerfile"), "COPY --from=build /out/", "COPY bin/")
	if pre := read("Dockerfile.prebuilt"); pre != multi {
		t.Fatalf("compose/Dockerfile.prebuilt's stages differ from compose/Dockerfile's:\n--- Dockerfile (COPY from bin/)\n%s\n--- Dockerfile.prebuilt\n%s", multi, pre)
	}
	stages := regexp.MustCompile(`(?m)^FROM scratch AS (\S+)$`).FindAllStringSubmatch(multi, -1)
	if len(stages) != 3 {
		t.Fatalf("want the three service stages, got %v", stages)
	}
}

func dialStore(t *testing.T, addr string) storepb.StoreClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return storepb.NewStoreClient(conn)
}

func regionInfo(t *testing.T, addr string, region uint64) (*raftserverpb.RegionInfoResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := dialStore(t, addr).RegionInfo(ctx, &raftserverpb.RegionInfoRequest{RegionId: region})
	if err == nil && resp.GetRegionError() != nil {
		err = fmt.Errorf("region error: %v", resp.GetRegionError())
	}
	return resp, err
}

// waitCaughtUp waits until store id's replica of the region has applied as
// far as the furthest replica (no writes run meanwhile): the same log applied
// to the same index is the same data.
func waitCaughtUp(t *testing.T, stores map[uint64]string, region, id uint64) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("store %d catching up on region %d", id, region), func() error {
		var maxApplied, mine uint64
		for sid, addr := range stores {
			info, err := regionInfo(t, addr, region)
			if err != nil {
				return fmt.Errorf("store %d: %v", sid, err)
			}
			maxApplied = max(maxApplied, info.GetAppliedIndex())
			if sid == id {
				mine = info.GetAppliedIndex()
			}
		}
		if mine < maxApplied {
			return fmt.Errorf("store %d applied %d of %d", id, mine, maxApplied)
		}
		t.Logf("region %d: store %d applied index %d, as the others", region, id, mine)
		return nil
	})
}

// makeLeader moves the region's leadership to store id.
func makeLeader(t *testing.T, stores map[uint64]string, region, id uint64) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("store %d leading region %d", id, region), func() error {
		info, err := regionInfo(t, stores[id], region)
		if err != nil {
			return err
		}
		if info.GetLeader().GetStoreId() == id {
			return nil
		}
		var target *metapb.Peer
		for _, p := range info.GetRegion().GetPeers() {
			if p.GetStoreId() == id {
				target = p
			}
		}
		leader := stores[info.GetLeader().GetStoreId()]
		if target == nil || leader == "" {
			return fmt.Errorf("no peer on store %d or leader unknown: %v", id, info)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := dialStore(t, leader).TransferLeader(ctx, &raftserverpb.TransferLeaderRequest{RegionId: region, Peer: target})
		if err == nil && resp.GetRegionError() != nil {
			err = fmt.Errorf("region error: %v", resp.GetRegionError())
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("transfer asked; waiting")
	})
}

// stillLed reports whether store id still leads every region.
func stillLed(t *testing.T, stores map[uint64]string, id uint64, regions []regionJSON) bool {
	t.Helper()
	for _, r := range regions {
		info, err := regionInfo(t, stores[id], r.ID)
		if err != nil || info.GetLeader().GetStoreId() != id {
			return false
		}
	}
	return true
}
