package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

const floorName = "noop (floor)"

func renderReport(o options, pinned bool, servers []server, scs []scenario, rs []result, rss map[string]int64) string {
	var b strings.Builder
	b.WriteString("## Load harness results\n\n")
	fmt.Fprintf(&b, "- date: %s\n- commit: %s\n- machine: %d CPUs (%s), %s\n- Go: %s\n", time.Now().UTC().Format(time.RFC3339),
		gitCommit(), runtime.NumCPU(), cpuModel(), memTotal(), runtime.Version())
	if pinned {
		b.WriteString("- servers pinned to CPU 0, load client to CPU 1 (taskset)\n")
	} else {
		b.WriteString("- not pinned (taskset or a second CPU missing): client and server share CPUs\n")
	}
	fmt.Fprintf(&b, "- per measurement: %d rounds, the servers interleaved in a rotating order, each round at most %d "+
		"requests or %s after 300 warm-up requests; the median round is reported; policy of %d entries\n\n",
		o.rounds, o.requests, o.maxDuration, o.entries)

	floor := map[string]result{}
	crAllow := map[string]result{}
	for _, r := range rs {
		key := fmt.Sprintf("%s/%d", r.scenario, r.concurrency)
		switch r.server {
		case floorName:
			floor[key] = r
		case "controller-runtime allow-all":
			crAllow[key] = r
		}
	}
	b.WriteString("| scenario | conc | server | req/s | ×floor | ×cr | p50 | p90 | p99 | ×floor p99 | max | errors | CPU s/10k |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range scs {
		for _, c := range o.concurrency {
			for _, s := range servers {
				for _, r := range rs {
					if r.server != s.name || r.scenario != sc.name || r.concurrency != c {
						continue
					}
					key := fmt.Sprintf("%s/%d", sc.name, c)
					f, cr := floor[key], crAllow[key]
					fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %.2f | %.2f | %s | %s | %s | %.2f | %s | %d | %.2f |\n",
						sc.name, c, s.name, r.rps(), r.rps()/f.rps(), r.rps()/cr.rps(), ms(r.p50), ms(r.p90), ms(r.p99),
						float64(r.p99)/float64(f.p99), ms(r.max), r.errors, r.cpuPer10k())
				}
			}
		}
	}
	b.WriteString("\nPeak RSS over the whole run (VmHWM):\n\n| server | peak RSS |\n|---|---:|\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "| %s | %.1f MiB |\n", s.name, float64(rss[s.name])/(1<<20))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			_, _ = fmt.Sscan(strings.TrimSpace(v), &kb)
			return fmt.Sprintf("%.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return "unknown RAM"
}
