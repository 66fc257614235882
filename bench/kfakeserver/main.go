// Command kfakeserver runs franz-go's in-memory fake Kafka cluster
// (github.com/twmb/franz-go/pkg/kfake) with one broker as a process of its
// own, so that bench/broker can measure its CPU time and memory the way it
// measures `samsa serve`. It prints "ready <addr>" on stdout once it
// listens and stops on SIGTERM or SIGINT.
//
// By default kfake keeps every record in memory and syncs nothing: acks=-1
// there means "appended to a Go slice", not "on disk".
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 9092, "port to listen on (127.0.0.1)")
	dataDir := flag.String("data-dir", "", "persist to this directory (kfake.DataDir); empty keeps everything in memory")
	syncWrites := flag.Bool("sync-writes", false, "fsync every batch (kfake.SyncWrites); only with -data-dir")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	fmt.Println("ready", cluster.ListenAddrs()[0])

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	cluster.Close()
}
