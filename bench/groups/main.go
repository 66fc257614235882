// Command groups benchmarks Samsa's consumer groups against an in-process
// broker (package broker, on a real data directory):
//
//   - settle: a group of 100 franz-go members is stable; one more joins;
//     how long until every partition has one owner again in the members'
//     own view (their assign and revoke callbacks), for the classic eager
//     (range), classic cooperative (cooperative-sticky) and KIP-848
//     (server-side uniform) protocols;
//   - idle: the Go heap (after GC) and RSS added by 10,000 groups that
//     each committed one offset and have no members;
//   - commits: OffsetCommit requests per second (each durable before it is
//     answered), at several numbers of concurrent committers.
//
// Run it from the module root:
//
//	go run ./bench/groups -data-dir /tmp/groupsbench
//
// The data directory must be on a real disk (not tmpfs) for the commits'
// fsync to mean anything; it is removed after each phase. The clients run
// in the same process, so the heap figures include what they keep (one
// client, idle, for the idle phase). Results go to docs/benchmarks.md by
// hand; nothing here is asserted by a test.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"
)

type options struct {
	dataDir    string
	phases     map[string]bool
	rounds     int
	members    int
	partitions int
	heartbeat  time.Duration
	idleGroups int
	commitTime time.Duration
	commitConc []int
	memProfile string
	cpuProfile string
}

func main() {
	var o options
	var phases, conc string
	flag.StringVar(&o.dataDir, "data-dir", os.TempDir(), "where the broker's data directories go (a real disk)")
	flag.StringVar(&phases, "phases", "settle,idle,commits", "which phases to run")
	flag.IntVar(&o.rounds, "rounds", 3, "settle: rounds per protocol (the report gives each and the median)")
	flag.IntVar(&o.members, "members", 100, "settle: members in the group before one more joins")
	flag.IntVar(&o.partitions, "partitions", 202, "settle: partitions of the topic")
	flag.DurationVar(&o.heartbeat, "heartbeat", time.Second,
		"settle: heartbeat interval of classic members and group.consumer.heartbeat.interval.ms")
	flag.IntVar(&o.idleGroups, "idle-groups", 10000, "idle: groups that commit one offset")
	flag.DurationVar(&o.commitTime, "commit-time", 10*time.Second, "commits: how long each concurrency runs")
	flag.StringVar(&o.memProfile, "memprofile", "", "idle: write a heap profile here after the groups are in")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "idle: write a CPU profile of 10 scrapes of the group metrics here")
	flag.StringVar(&conc, "commit-concurrency", "1,16,64", "commits: concurrent committers, each on its own group")
	flag.Parse()
	o.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		o.phases[strings.TrimSpace(p)] = true
	}
	for _, c := range strings.Split(conc, ",") {
		var n int
		if _, err := fmt.Sscan(c, &n); err != nil || n <= 0 {
			log.Fatalf("bad -commit-concurrency %q", conc)
		}
		o.commitConc = append(o.commitConc, n)
	}
	fmt.Printf("# groups benchmark: %s, load average %s\n", time.Now().UTC().Format(time.RFC3339), loadAvg())
	if o.phases["settle"] {
		if err := benchSettle(o); err != nil {
			log.Fatalf("settle: %v", err)
		}
	}
	if o.phases["idle"] {
		if err := benchIdle(o); err != nil {
			log.Fatalf("idle: %v", err)
		}
	}
	if o.phases["commits"] {
		if err := benchCommits(o); err != nil {
			log.Fatalf("commits: %v", err)
		}
	}
	fmt.Printf("# done, load average %s\n", loadAvg())
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
