// Command natsserver runs one NATS server with JetStream on file storage
// (github.com/nats-io/nats-server/v2) as a process of its own, so that
// bench/compare can measure its CPU time, memory and open files the way it
// measures `samsa serve`. It prints "ready <addr>" on stdout once it accepts
// connections and stops on SIGTERM or SIGINT.
//
// -sync-always makes JetStream fsync every write before it acknowledges a
// publish (the server's `sync_interval: always`), the counterpart of
// Samsa's default flush policy under acks=all. Without it JetStream writes
// to the page cache and fsyncs every 2 minutes (its default).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	port := flag.Int("port", 4222, "client port (127.0.0.1)")
	storeDir := flag.String("store-dir", "", "JetStream file store directory (required)")
	syncAlways := flag.Bool("sync-always", false, "fsync every write before acknowledging it")
	flag.Parse()
	if *storeDir == "" {
		fmt.Fprintln(os.Stderr, "natsserver: -store-dir is required")
		os.Exit(2)
	}

	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       *port,
		JetStream:  true,
		StoreDir:   *storeDir,
		SyncAlways: *syncAlways,
		NoSigs:     true,
		NoLog:      true,
		// The benchmark's messages are 100 bytes to 1 KiB; 8 MiB leaves
		// the default's head room for the JetStream API.
		MaxPayload: 8 << 20,
	}
	if *syncAlways {
		opts.SyncInterval = 2 * time.Minute // unused with SyncAlways; set so the default is not applied
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsserver:", err)
		os.Exit(1)
	}
	go s.Start()
	if !s.ReadyForConnections(60 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsserver: not ready within 60 s")
		os.Exit(1)
	}
	fmt.Println("ready", s.ClientURL())

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	s.Shutdown()
	s.WaitForShutdown()
}
