package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/samsa-io/samsa/broker"
	"github.com/samsa-io/samsa/storage"
)

// serveConfig is what `samsa serve` runs with, after flags, environment and
// the YAML file are merged.
type serveConfig struct {
	DataDir             string
	KafkaAddr           string
	AdvertisedKafkaAddr string
	HTTPAddr            string // empty: no HTTP API
	NodeID              int32
	AutoCreateTopics    bool
	DefaultPartitions   int32
	FetchSessionSlots   int    // 0: no fetch sessions
	SyncFSMinLogs       int    // 0: never syncfs
	LogLevel            string // debug, info, warn, error
	LogFormat           string // auto, text, json
}

// configFlag names the YAML file; it is the one flag with no YAML key.
const configFlag = "config"

// defineServeFlags declares the flags of `samsa serve` on fs. Every flag but
// --config is also the environment variable SAMSA_<NAME> and the key <name>
// of the YAML file.
func defineServeFlags(fs *pflag.FlagSet) {
	d := broker.DefaultConfig()
	fs.String("data-dir", d.DataDir, "directory of the partition logs and the metadata log")
	fs.String("kafka-addr", d.KafkaAddr, "address the Kafka API listens on")
	fs.String("advertised-kafka-addr", "", "host:port clients are told to connect to (default: the listener's address, localhost when it listens on all interfaces)")
	fs.String("http-addr", ":9644", "address of the HTTP API (/healthz, /readyz, /metrics, /debug/pprof/); empty disables it")
	fs.Int32("node-id", d.NodeID, "this broker's node id")
	fs.Bool("auto-create-topics", d.AutoCreateTopics, "create a topic when a client first uses it (auto.create.topics.enable)")
	fs.Int32("default-partitions", d.DefaultPartitions, "partitions of an auto-created topic (num.partitions)")
	fs.Int("fetch-session-cache-slots", 1000, "incremental fetch sessions (KIP-227) kept, least recently used evicted (max.incremental.fetch.session.cache.slots); 0 turns sessions off")
	fs.Int("syncfs-min-logs", storage.DefaultSyncFSThreshold, "a group commit covering at least this many partition logs makes them durable with one syncfs(2) of the data directory's filesystem instead of an fdatasync per log; 0 never uses syncfs (for a filesystem shared with other busy writers, whose data syncfs would flush too)")
	fs.String("log-level", "info", "debug, info, warn or error")
	fs.String("log-format", "auto", "text, json, or auto: text when stderr is a terminal, json otherwise")
	fs.String(configFlag, "", "YAML file whose keys are these flags' names (also SAMSA_CONFIG)")
}

// envName is the environment variable of a flag: data-dir → SAMSA_DATA_DIR.
func envName(flag string) string {
	return "SAMSA_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// loadServeConfig merges the parsed flags fs with the environment (read
// through lookupEnv) and the YAML file named by --config or SAMSA_CONFIG:
// a flag given on the command line wins over SAMSA_<NAME>, which wins over
// the file, which wins over the default. An empty environment variable
// counts as unset. Every error is the user's to fix (a usage error).
func loadServeConfig(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (serveConfig, error) {
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(envName(name))
		return v, ok && v != ""
	}
	// Environment first: it may name the config file.
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		if v, ok := env(f.Name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if len(errs) > 0 {
		return serveConfig{}, errors.Join(errs...)
	}
	if path, _ := fs.GetString(configFlag); path != "" {
		// Only flags set neither on the command line nor in the environment
		// take the file's value; fs.Set marks those it sets as Changed, so
		// remember which were set before the file.
		set := map[string]bool{}
		fs.Visit(func(f *pflag.Flag) { set[f.Name] = true })
		if err := applyConfigFile(fs, path, set); err != nil {
			return serveConfig{}, err
		}
	}
	return serveConfigFrom(fs)
}

// applyConfigFile sets from the YAML file at path every flag not in set.
func applyConfigFile(fs *pflag.FlagSet, path string, set map[string]bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	values, err := parseConfigFile(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for _, kv := range values {
		f := fs.Lookup(kv.key)
		if f == nil || kv.key == configFlag {
			return fmt.Errorf("config file %s: line %d: unknown key %q", path, kv.line, kv.key)
		}
		if set[kv.key] {
			continue
		}
		if err := fs.Set(kv.key, kv.value); err != nil {
			return fmt.Errorf("config file %s: line %d: %s: %w", path, kv.line, kv.key, err)
		}
	}
	return nil
}

type configValue struct {
	key, value string
	line       int
}

// parseConfigFile reads a YAML mapping of scalar values, in file order. An
// empty file is an empty mapping.
func parseConfigFile(r io.Reader) ([]configValue, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(r).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping of flag names to values", m.Line)
	}
	var out []configValue
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: keys must be flag names", k.Line)
		}
		if seen[k.Value] {
			return nil, fmt.Errorf("line %d: key %q given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s: want a single value", v.Line, k.Value)
		}
		value := v.Value
		if v.Tag == "!!null" {
			value = ""
		}
		out = append(out, configValue{key: k.Value, value: value, line: k.Line})
	}
	return out, nil
}

// serveConfigFrom reads the merged flags and checks them.
func serveConfigFrom(fs *pflag.FlagSet) (serveConfig, error) {
	var c serveConfig
	var errs []error
	str := func(name string) string {
		v, err := fs.GetString(name)
		errs = append(errs, err)
		return v
	}
	c.DataDir = str("data-dir")
	c.KafkaAddr = str("kafka-addr")
	c.AdvertisedKafkaAddr = str("advertised-kafka-addr")
	c.HTTPAddr = str("http-addr")
	c.LogLevel = str("log-level")
	c.LogFormat = str("log-format")
	var err error
	c.NodeID, err = fs.GetInt32("node-id")
	errs = append(errs, err)
	c.AutoCreateTopics, err = fs.GetBool("auto-create-topics")
	errs = append(errs, err)
	c.DefaultPartitions, err = fs.GetInt32("default-partitions")
	errs = append(errs, err)
	c.FetchSessionSlots, err = fs.GetInt("fetch-session-cache-slots")
	errs = append(errs, err)
	c.SyncFSMinLogs, err = fs.GetInt("syncfs-min-logs")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c serveConfig) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data-dir: must not be empty"))
	}
	if c.KafkaAddr == "" {
		errs = append(errs, errors.New("kafka-addr: must not be empty"))
	}
	if c.NodeID < 0 {
		errs = append(errs, fmt.Errorf("node-id: %d is negative", c.NodeID))
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("default-partitions: %d, want at least 1", c.DefaultPartitions))
	}
	if c.FetchSessionSlots < 0 {
		errs = append(errs, fmt.Errorf("fetch-session-cache-slots: %d is negative", c.FetchSessionSlots))
	}
	if c.SyncFSMinLogs < 0 {
		errs = append(errs, fmt.Errorf("syncfs-min-logs: %d is negative", c.SyncFSMinLogs))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log-format: %q, want text, json or auto", c.LogFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log-level: %q, want debug, info, warn or error", s)
}

// newLogger writes to w at the configured level and format; auto is text
// when w is a terminal.
func (c serveConfig) newLogger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	format := c.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// brokerConfig is the broker's config for c.
func (c serveConfig) brokerConfig(logger *slog.Logger) broker.Config {
	bc := broker.DefaultConfig()
	bc.NodeID = c.NodeID
	bc.DataDir = c.DataDir
	bc.KafkaAddr = c.KafkaAddr
	bc.AdvertisedAddr = c.AdvertisedKafkaAddr
	bc.AutoCreateTopics = c.AutoCreateTopics
	bc.DefaultPartitions = c.DefaultPartitions
	bc.FetchSessionCacheSlots = c.FetchSessionSlots
	if c.FetchSessionSlots == 0 {
		bc.FetchSessionCacheSlots = -1 // the broker's zero is its default
	}
	bc.SyncFSThreshold = c.SyncFSMinLogs
	if c.SyncFSMinLogs == 0 {
		bc.SyncFSThreshold = -1 // the broker's zero is its default
	}
	bc.Logger = logger
	return bc
}
