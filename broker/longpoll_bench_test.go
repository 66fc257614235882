//go:build unix

package broker

// What a long-polling Fetch over many idle partitions costs the broker each
// time one of them gets a record: the fetch waits, an append to one
// partition wakes it, it answers with that partition, and the client asks
// again. cpu-µs/wake is the process's CPU time (user and system, the client
// side included: it is the same in every version) per wake; wake-µs the
// time from the append to the response read. fetch=none is the same loop
// without fetches (the appends, and what the broker spends meanwhile on
// its own): the fetches cost the difference.
//
//	go test ./broker -run '^$' -bench BenchmarkFetchLongPollWake -benchtime 200x
//
// The append comes longPollSettle after the request is written, so that
// the fetch is waiting by then.

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

const (
	longPollPartitions = 2500
	longPollSettle     = 5 * time.Millisecond
)

func BenchmarkFetchLongPollWake(b *testing.B) {
	br := startHotpathBroker(b)
	createHotpathTopic(b, br, dialHotpath(b, br), "idle", longPollPartitions)
	id := br.meta.Image().Topics["idle"].ID
	logs := topicLogs(b, br, "idle", longPollPartitions)
	batch := hotpathBatch(b, 1)
	for _, mode := range []string{"session", "sessionless", "none"} {
		b.Run(fmt.Sprintf("partitions=%d/fetch=%s", longPollPartitions, mode), func(b *testing.B) {
			lp := &longPoller{c: dialHotpath(b, br), topicID: id, logs: logs, session: mode == "session"}
			fetch := mode != "none"
			if fetch {
				lp.open(b)
			}
			var wake time.Duration
			cpu := processCPU()
			p := 0
			for b.Loop() {
				p = (p + 7919) % longPollPartitions // a prime: every partition in turn
				if fetch {
					lp.send(b)
				}
				time.Sleep(longPollSettle)
				if _, err := logs[p].Append(batch); err != nil {
					b.Fatal(err)
				}
				appended := time.Now()
				if fetch {
					lp.receive(b, p)
				}
				wake += time.Since(appended)
			}
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/wake")
			b.ReportMetric(float64(wake.Microseconds())/float64(b.N), "wake-µs")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
