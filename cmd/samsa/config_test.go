package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/samsa-io/samsa/storage"
)

// load parses args as `samsa serve` flags and merges env and the file
// holding yamlText (no file when empty).
func load(t *testing.T, args []string, env map[string]string, yamlText string) (serveConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	defineServeFlags(fs)
	if yamlText != "" {
		path := filepath.Join(t.TempDir(), "samsa.yaml")
		if err := os.WriteFile(path, []byte(yamlText), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return loadServeConfig(fs, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}

func TestServeConfigDefaults(t *testing.T) {
	c, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := serveConfig{
		DataDir:           "./samsa-data",
		KafkaAddr:         ":9092",
		HTTPAddr:          ":9644",
		NodeID:            0,
		AutoCreateTopics:  true,
		DefaultPartitions: 1,
		FetchSessionSlots: 1000,
		SyncFSMinLogs:     storage.DefaultSyncFSThreshold,
		LogLevel:          "info",
		LogFormat:         "auto",
	}
	if c != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestServeConfigPrecedence(t *testing.T) {
	// Each row sets one setting from some of the sources; the highest
	// present must win: flag > env > file > default.
	type row struct {
		name string
		flag string            // "--name=value", or ""
		env  map[string]string // SAMSA_* variables
		file string            // YAML, or ""
		get  func(serveConfig) any
		want any
	}
	dataDir := func(c serveConfig) any { return c.DataDir }
	nodeID := func(c serveConfig) any { return c.NodeID }
	autoCreate := func(c serveConfig) any { return c.AutoCreateTopics }
	advertised := func(c serveConfig) any { return c.AdvertisedKafkaAddr }
	rows := []row{
		{name: "default", get: dataDir, want: "./samsa-data"},
		{name: "file over default", file: "data-dir: /file", get: dataDir, want: "/file"},
		{name: "env over file", env: map[string]string{"SAMSA_DATA_DIR": "/env"}, file: "data-dir: /file", get: dataDir, want: "/env"},
		{name: "flag over env and file", flag: "--data-dir=/flag", env: map[string]string{"SAMSA_DATA_DIR": "/env"}, file: "data-dir: /file", get: dataDir, want: "/flag"},
		{name: "flag over file", flag: "--data-dir=/flag", file: "data-dir: /file", get: dataDir, want: "/flag"},
		{name: "flag over env", flag: "--data-dir=/flag", env: map[string]string{"SAMSA_DATA_DIR": "/env"}, get: dataDir, want: "/flag"},
		{name: "empty env is unset", env: map[string]string{"SAMSA_DATA_DIR": ""}, file: "data-dir: /file", get: dataDir, want: "/file"},
		{name: "int from file", file: "node-id: 7", get: nodeID, want: int32(7)},
		{name: "int env over file", env: map[string]string{"SAMSA_NODE_ID": "3"}, file: "node-id: 7", get: nodeID, want: int32(3)},
		{name: "int flag over env", flag: "--node-id=5", env: map[string]string{"SAMSA_NODE_ID": "3"}, file: "node-id: 7", get: nodeID, want: int32(5)},
		{name: "bool false from file", file: "auto-create-topics: false", get: autoCreate, want: false},
		{name: "bool env over file", env: map[string]string{"SAMSA_AUTO_CREATE_TOPICS": "true"}, file: "auto-create-topics: false", get: autoCreate, want: true},
		{name: "bool flag over env", flag: "--auto-create-topics=false", env: map[string]string{"SAMSA_AUTO_CREATE_TOPICS": "true"}, get: autoCreate, want: false},
		{name: "multi-word name", env: map[string]string{"SAMSA_ADVERTISED_KAFKA_ADDR": "kafka.example:9092"}, file: "advertised-kafka-addr: other:1", get: advertised, want: "kafka.example:9092"},
		{name: "flag equal to default still wins", flag: "--data-dir=./samsa-data", env: map[string]string{"SAMSA_DATA_DIR": "/env"}, get: dataDir, want: "./samsa-data"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var args []string
			if r.flag != "" {
				args = []string{r.flag}
			}
			c, err := load(t, args, r.env, r.file)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.get(c); got != r.want {
				t.Fatalf("got %v (%T), want %v (%T)", got, got, r.want, r.want)
			}
		})
	}
}

func TestServeConfigFileNamedByEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "samsa.yaml")
	if err := os.WriteFile(path, []byte("default-partitions: 4\nlog-level: debug\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, nil, map[string]string{"SAMSA_CONFIG": path}, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultPartitions != 4 || c.LogLevel != "debug" {
		t.Fatalf("got %+v, want default-partitions 4 and log-level debug from the file", c)
	}
}

func TestServeConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string // substrings of the error
	}{
		{name: "unknown YAML key", file: "data-dir: /x\nkafka_addr: :1\n", want: []string{`unknown key "kafka_addr"`, "line 2"}},
		{name: "config key in the file", file: "config: other.yaml\n", want: []string{`unknown key "config"`}},
		{name: "duplicate key", file: "node-id: 1\nnode-id: 2\n", want: []string{`"node-id" given twice`}},
		{name: "not a mapping", file: "- data-dir\n", want: []string{"want a mapping"}},
		{name: "nested value", file: "data-dir:\n  path: /x\n", want: []string{"data-dir: want a single value"}},
		{name: "bad int in file", file: "node-id: one\n", want: []string{"line 1", "node-id"}},
		{name: "bad env value", env: map[string]string{"SAMSA_DEFAULT_PARTITIONS": "many"}, want: []string{"SAMSA_DEFAULT_PARTITIONS"}},
		{name: "bad log level", args: []string{"--log-level=verbose"}, want: []string{`log-level: "verbose"`}},
		{name: "bad log format", env: map[string]string{"SAMSA_LOG_FORMAT": "xml"}, want: []string{`log-format: "xml"`}},
		{name: "zero partitions", file: "default-partitions: 0", want: []string{"default-partitions: 0"}},
		{name: "negative node id", args: []string{"--node-id=-1"}, want: []string{"node-id: -1"}},
		{name: "negative fetch session slots", args: []string{"--fetch-session-cache-slots=-2"}, want: []string{"fetch-session-cache-slots: -2"}},
		{name: "negative syncfs min logs", args: []string{"--syncfs-min-logs=-1"}, want: []string{"syncfs-min-logs: -1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.args, c.env, c.file)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestServeConfigMissingFile(t *testing.T) {
	_, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "absent.yaml")}, nil, "")
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("err = %v, want one naming the file", err)
	}
}

func TestEmptyConfigFile(t *testing.T) {
	if _, err := load(t, nil, nil, "# nothing set\n"); err != nil {
		t.Fatal(err)
	}
}

// --fetch-session-cache-slots reaches the broker; 0 turns sessions off,
// which the broker's config spells as a negative count.
func TestServeConfigFetchSessionSlots(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 1000},
		{[]string{"--fetch-session-cache-slots=5"}, 5},
		{[]string{"--fetch-session-cache-slots=0"}, -1},
	} {
		c, err := load(t, tc.args, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.brokerConfig(nil).FetchSessionCacheSlots; got != tc.want {
			t.Errorf("%v: broker FetchSessionCacheSlots %d, want %d", tc.args, got, tc.want)
		}
	}
}

// --syncfs-min-logs reaches the broker; 0 turns syncfs off, which the
// broker's config spells as a negative threshold.
func TestServeConfigSyncFSMinLogs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, storage.DefaultSyncFSThreshold},
		{[]string{"--syncfs-min-logs=1"}, 1},
		{[]string{"--syncfs-min-logs=0"}, -1},
	} {
		c, err := load(t, tc.args, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := c.brokerConfig(nil).SyncFSThreshold; got != tc.want {
			t.Errorf("%v: broker SyncFSThreshold %d, want %d", tc.args, got, tc.want)
		}
	}
}
