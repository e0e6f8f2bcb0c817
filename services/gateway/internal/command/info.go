package command

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

var adminOnce sync.Once

// markAdmin flags the commands Redis marks admin (from its metadata), which
// MONITOR does not show.
func markAdmin() {
	adminOnce.Do(func() {
		mark := func(c *Command) {
			c.admin = slices.Contains(redisMeta[c.Name].Flags, "admin")
		}
		for _, c := range ordered {
			mark(c)
			for _, s := range c.Subcommands {
				mark(s)
			}
		}
	})
}

// runID is INFO's run_id: random, new at every start, as in Redis.
var runID = func() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// infoSections are Redis 7.0's sections in its order; dflt marks those
// INFO and INFO default report. INFO all adds the rest, as does
// everything (there are no modules).
var infoSections = []struct {
	name string
	dflt bool
}{
	{"Server", true}, {"Clients", true}, {"Memory", true}, {"Persistence", true}, {"Stats", true},
	{"Replication", true}, {"CPU", true}, {"Modules", true}, {"Commandstats", false},
	{"Errorstats", true}, {"Latencystats", false}, {"Cluster", true}, {"Keyspace", true},
}

// >> INFO [section ...]
// Sections as Redis 7: none, "default", "all", "everything" or any names
// (case-insensitive), several at once.
func cmdInfo(r *Request) error {
	want := map[string]bool{}
	dflt, all := len(r.Args) == 1, false
	for _, a := range r.Args[1:] {
		switch s := string(lower(nil, a)); s {
		case "default":
			dflt = true
		case "all", "everything":
			all = true
		default:
			want[s] = true
		}
	}
	var sb strings.Builder
	for _, sec := range infoSections {
		if !all && !(dflt && sec.dflt) && !want[strings.ToLower(sec.name)] {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString("\r\n")
		}
		sb.WriteString("# " + sec.name + "\r\n")
		if err := r.e.infoSection(r, sec.name, &sb); err != nil {
			return err
		}
	}
	r.w.Verbatim(sb.String())
	return nil
}

func (e *Executor) infoSection(r *Request, name string, b *strings.Builder) error {
	kv := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	now := e.opts.Now()
	switch name {
	case "Server":
		exe, _ := os.Executable()
		kv("redis_version", RedisVersion)
		kv("redis_git_sha1", "00000000")
		kv("redis_git_dirty", 0)
		kv("redis_build_id", "0")
		kv("redis_mode", "standalone")
		kv("nokv_backend", e.opts.Backend)
		kv("os", runtime.GOOS+" "+runtime.GOARCH)
		kv("arch_bits", strconv.IntSize)
		kv("monotonic_clock", "POSIX clock_gettime")
		kv("multiplexing_api", "epoll")
		kv("go_version", runtime.Version())
		kv("process_id", os.Getpid())
		kv("process_supervised", "no")
		kv("run_id", runID)
		kv("tcp_port", e.configValue("port"))
		kv("server_time_usec", now.UnixMicro())
		kv("uptime_in_seconds", int64(now.Sub(e.started).Seconds()))
		kv("uptime_in_days", int64(now.Sub(e.started).Hours()/24))
		kv("hz", 10)
		kv("configured_hz", 10)
		kv("lru_clock", now.Unix()&(1<<24-1))
		kv("executable", exe)
		kv("config_file", "")
		kv("io_threads_active", 0)
	case "Clients":
		kv("connected_clients", e.ConnectedClients())
		kv("cluster_connections", 0)
		kv("maxclients", e.MaxClients())
		kv("client_recent_max_input_buffer", 0)
		kv("client_recent_max_output_buffer", 0)
		kv("blocked_clients", e.BlockedClients())
		kv("tracking_clients", 0)
		kv("clients_in_timeout_table", e.blocking.timed.Load())
	case "Memory":
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		kv("used_memory", ms.HeapAlloc)
		kv("used_memory_human", bytesToHuman(ms.HeapAlloc))
		kv("used_memory_rss", ms.Sys)
		kv("used_memory_rss_human", bytesToHuman(ms.Sys))
		kv("used_memory_peak", ms.HeapSys)
		kv("used_memory_peak_human", bytesToHuman(ms.HeapSys))
		kv("maxmemory", 0)
		kv("maxmemory_human", "0B")
		kv("maxmemory_policy", "noeviction")
		kv("mem_clients_normal", e.opts.ClientMemory.Used())
		kv("mem_allocator", "go-"+runtime.Version())
	case "Persistence":
		kv("loading", 0)
		kv("async_loading", 0)
		kv("rdb_bgsave_in_progress", 0)
		kv("rdb_last_save_time", e.started.Unix())
		kv("rdb_last_bgsave_status", "ok")
		kv("aof_enabled", 1)
		kv("aof_rewrite_in_progress", 0)
		kv("aof_last_write_status", "ok")
		kv("nokv_sync_policy", e.opts.SyncPolicy)
	case "Stats":
		kv("total_connections_received", e.connectionsTotal.Load())
		kv("total_commands_processed", e.in.commandsProcessed.Load())
		kv("instantaneous_ops_per_sec", e.opsPerSec())
		kv("rejected_connections", e.rejectedConns.Load())
		kv("expired_keys", e.expiredKeys())
		kv("evicted_keys", 0)
		kv("evicted_clients", e.opts.ClientMemory.Evictions())
		kv("keyspace_hits", e.keyspaceHits.Load())
		kv("keyspace_misses", e.keyspaceMisses.Load())
		kv("pubsub_channels", 0)
		kv("pubsub_patterns", 0)
		kv("total_forks", 0)
		kv("total_error_replies", e.in.totalErrors.Load())
		kv("nokv_panics", e.panics.Load())
	case "Replication":
		kv("role", "master")
		kv("connected_slaves", 0)
		kv("master_failover_state", "no-failover")
		kv("master_repl_offset", 0)
	case "CPU":
		self, children := cpuUsage()
		kv("used_cpu_sys", fmtCPU(self[0]))
		kv("used_cpu_user", fmtCPU(self[1]))
		kv("used_cpu_sys_children", fmtCPU(children[0]))
		kv("used_cpu_user_children", fmtCPU(children[1]))
		// Go runs commands on whichever thread is free; there is no main
		// thread, so these are the process's figures.
		kv("used_cpu_sys_main_thread", fmtCPU(self[0]))
		kv("used_cpu_user_main_thread", fmtCPU(self[1]))
	case "Commandstats":
		stat := func(c *Command) {
			calls, usec, rej, failed := c.Calls.Load(), c.Usec.Load(), c.Rejected.Load(), c.Failed.Load()
			if calls == 0 && rej == 0 && failed == 0 {
				return
			}
			per := 0.0
			if calls > 0 {
				per = float64(usec) / float64(calls)
			}
			fmt.Fprintf(b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d\r\n",
				c.Name, calls, usec, per, rej, failed)
		}
		for _, c := range ordered {
			stat(c)
			for _, s := range c.Subcommands {
				stat(s)
			}
		}
	case "Errorstats":
		e.in.errMu.Lock()
		codes := make([]string, 0, len(e.in.errStats))
		for code := range e.in.errStats {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		for _, code := range codes {
			fmt.Fprintf(b, "errorstat_%s:count=%d\r\n", code, e.in.errStats[code])
		}
		e.in.errMu.Unlock()
	case "Cluster":
		kv("cluster_enabled", 0)
	case "Keyspace":
		dbs, err := e.be.Keyspace(r.ctx)
		if err != nil {
			return err
		}
		for _, d := range dbs {
			if d.Keys > 0 {
				fmt.Fprintf(b, "db%d:keys=%d,expires=%d,avg_ttl=0\r\n", d.DB, d.Keys, d.Expires)
			}
		}
	}
	return nil
}

// fmtCPU prints a duration in seconds with microseconds, as Redis's
// "%ld.%06ld" of a timeval.
func fmtCPU(d time.Duration) string {
	us := d.Microseconds()
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// bytesToHuman is Redis's bytesToHuman.
func bytesToHuman(n uint64) string {
	d := float64(n)
	switch {
	case n < 1024:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.2fK", d/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.2fM", d/(1<<20))
	case n < 1<<40:
		return fmt.Sprintf("%.2fG", d/(1<<30))
	case n < 1<<50:
		return fmt.Sprintf("%.2fT", d/(1<<40))
	}
	return fmt.Sprintf("%.2fP", d/(1<<50))
}
