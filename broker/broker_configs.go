package broker

// The broker's own configs, as DescribeConfigs reports them and
// AlterConfigs / IncrementalAlterConfigs change them.
//
// Dynamic (changeable at run time, stored as metadata records, for one
// broker by its node id or for the whole cluster with the resource name ""):
//   - the broker synonyms of every topic config (log.retention.ms,
//     log.segment.bytes, message.max.bytes, compression.type, …): the
//     defaults of topics that do not set their own, applied to the logs at
//     once;
//   - num.partitions and auto.create.topics.enable, which Kafka only reads
//     at start-up: Samsa has one binary and no properties file to edit, so
//     it lets them change live, and the flags become their static values.
//
// Static (read-only, STATIC_BROKER_CONFIG; set by flags): node.id and its
// old name broker.id, listeners, advertised.listeners, log.dirs,
// socket.request.max.bytes, and default.replication.factor (1 until the
// cluster exists).
//
// Precedence, as in Kafka: per-broker dynamic, cluster-wide dynamic, static,
// default.

import (
	"fmt"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/storage"
)

// brokerConfig is one broker config Samsa reports.
type brokerConfig struct {
	name     string
	typ      int8
	def      string // "" when Kafka has no default
	dynamic  bool
	validate func(string) error // dynamic configs only
	doc      string
}

// brokerOnlyConfigs are the broker configs that are not a topic config's
// synonym.
var brokerOnlyConfigs = []brokerConfig{
	{"advertised.listeners", typeString, "", false, nil, "the address clients are told to connect to (--advertised-kafka-addr)"},
	{"auto.create.topics.enable", typeBoolean, "true", true, boolean, "create a topic when a client first asks for it (--auto-create-topics)"},
	{"broker.id", typeInt, "-1", false, nil, "the old name of node.id"},
	{"default.replication.factor", typeInt, "1", false, nil, "replication factor of automatically created topics; 1 until Samsa runs as a cluster"},
	{"listeners", typeString, "PLAINTEXT://:9092", false, nil, "the address the Kafka API listens on (--kafka-addr)"},
	{"log.dirs", typeString, "", false, nil, "the directory of the partition logs (<--data-dir>/logs)"},
	{"node.id", typeInt, "", false, nil, "this broker's id (--node-id)"},
	{"num.partitions", typeInt, "1", true, atLeast(1), "partitions of a topic created without a count (--default-partitions)"},
	{"socket.request.max.bytes", typeInt, "104857600", false, nil, "the largest request frame the broker accepts"},
}

// brokerConfigTable returns every broker config, sorted by name.
var brokerConfigTable = sync.OnceValue(func() []brokerConfig {
	out := slices.Clone(brokerOnlyConfigs)
	for _, tc := range topicConfigs {
		out = append(out, brokerConfig{
			name:     tc.synonym,
			typ:      tc.typ,
			def:      tc.def,
			dynamic:  true,
			validate: tc.validate,
			doc:      "default of the topic config " + tc.name + ": " + tc.doc,
		})
	}
	slices.SortFunc(out, func(a, b brokerConfig) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
})

// lookupBrokerConfig finds a broker config by name.
func lookupBrokerConfig(name string) (brokerConfig, bool) {
	table := brokerConfigTable()
	i := slices.IndexFunc(table, func(c brokerConfig) bool { return c.name == name })
	if i < 0 {
		return brokerConfig{}, false
	}
	return table[i], true
}

// staticConfigs are the broker configs the broker was started with. The
// ones with a default are listed only when they differ from it, so that
// a setting left alone reports DEFAULT_CONFIG.
func (b *Broker) staticConfigs() map[string]string {
	node := strconv.Itoa(int(b.cfg.NodeID))
	logDir, err := filepath.Abs(filepath.Join(b.cfg.DataDir, "logs"))
	if err != nil {
		logDir = filepath.Join(b.cfg.DataDir, "logs")
	}
	static := map[string]string{
		"node.id":              node,
		"broker.id":            node,
		"listeners":            "PLAINTEXT://" + b.ln.Addr().String(),
		"advertised.listeners": "PLAINTEXT://" + net.JoinHostPort(b.host, strconv.Itoa(int(b.port))),
		"log.dirs":             logDir,
	}
	for name, v := range map[string]string{
		"auto.create.topics.enable": strconv.FormatBool(b.cfg.AutoCreateTopics),
		"num.partitions":            strconv.Itoa(int(b.cfg.DefaultPartitions)),
		"socket.request.max.bytes":  strconv.Itoa(int(b.cfg.MaxRequestBytes)),
	} {
		if def, _ := lookupBrokerConfig(name); v != def.def {
			static[name] = v
		}
	}
	return static
}

// brokerLayers returns this broker's config layers in img.
func (b *Broker) brokerLayers(img *metadata.Image) brokerLayers {
	return brokerLayers{
		node:    img.BrokerConfigs[b.cfg.NodeID],
		cluster: img.BrokerConfigs[-1],
		static:  b.staticConfigs(),
	}
}

// brokerSetting is a broker config's current value on this broker.
func (b *Broker) brokerSetting(img *metadata.Image, name string) string {
	def, _ := lookupBrokerConfig(name)
	if syn := brokerConfigSynonyms(name, def.def, b.brokerLayers(img)); len(syn) > 0 {
		return syn[0].value
	}
	return ""
}

// autoCreateTopics is auto.create.topics.enable.
func (b *Broker) autoCreateTopics(img *metadata.Image) bool {
	return b.brokerSetting(img, "auto.create.topics.enable") == "true"
}

// defaultPartitions is num.partitions.
func (b *Broker) defaultPartitions(img *metadata.Image) int32 {
	n, err := strconv.ParseInt(b.brokerSetting(img, "num.partitions"), 10, 32)
	if err != nil || n < 1 {
		return 1
	}
	return int32(n)
}

// validateBrokerConfigs checks a new set of dynamic configs of one level
// (node is the node id, or -1 for the cluster default): every name a dynamic
// broker config, every value valid, and the topic defaults they make,
// combined with the other level's, a valid log config.
func validateBrokerConfigs(img *metadata.Image, node int32, configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		def, ok := lookupBrokerConfig(name)
		switch {
		case !ok:
			return fmt.Errorf("unknown broker config %q", name)
		case !def.dynamic:
			return fmt.Errorf("cannot update %s dynamically: it is a static setting, given by a flag at start-up", name)
		}
		if err := def.validate(configs[name]); err != nil {
			return fmt.Errorf("invalid value %q for config %s: %v", configs[name], name, err)
		}
	}
	// Check what every broker's logs would get.
	levels := []map[string]string{configs}
	if node == -1 {
		for id := range img.Brokers {
			levels = append(levels, mergeConfigs(configs, img.BrokerConfigs[id]))
		}
	} else {
		levels = append(levels, mergeConfigs(img.BrokerConfigs[-1], configs))
	}
	for _, effective := range levels {
		cfg := storage.DefaultConfig()
		applyTopicConfigs(&cfg, nil, effective)
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// mergeConfigs returns low overridden by high.
func mergeConfigs(low, high map[string]string) map[string]string {
	out := make(map[string]string, len(low)+len(high))
	for k, v := range low {
		out[k] = v
	}
	for k, v := range high {
		out[k] = v
	}
	return out
}
