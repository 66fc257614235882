package broker

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// Kafka's config types, as DescribeConfigs reports them.
const (
	typeBoolean int8 = 1
	typeString  int8 = 2
	typeInt     int8 = 3
	typeLong    int8 = 5
	typeDouble  int8 = 6
	typeList    int8 = 7
)

// topicConfig is one topic config Samsa knows, by Kafka's name, with its
// default, the broker config that supplies a cluster-wide default (its
// synonym), how a value is checked, and how it shapes a partition log.
type topicConfig struct {
	name     string
	typ      int8
	def      string
	synonym  string
	validate func(string) error
	apply    func(v string, c *storage.Config) // nil: not a storage setting
	doc      string
}

// topicConfigs is every topic config Samsa accepts. Kafka's names and
// defaults, except flush.messages: Samsa fsyncs every append by default.
var topicConfigs = []topicConfig{
	{"cleanup.policy", typeList, "delete", "log.cleanup.policy", validateCleanupPolicy, func(v string, c *storage.Config) {
		c.Compact, c.Delete = strings.Contains(v, "compact"), strings.Contains(v, "delete")
	}, "delete, compact, or compact,delete"},
	{"compression.type", typeString, "producer", "compression.type", validateCompressionType, nil,
		"producer keeps the producer's codec; or one of uncompressed, gzip, snappy, lz4, zstd"},
	{"delete.retention.ms", typeLong, "86400000", "log.cleaner.delete.retention.ms", nonNegative, func(v string, c *storage.Config) {
		c.DeleteRetention = ms(v)
	}, "how long tombstones survive compaction"},
	{"file.delete.delay.ms", typeLong, "60000", "log.segment.delete.delay.ms", nonNegative, nil, "accepted; Samsa deletes at once, readers keep open files"},
	{"flush.messages", typeLong, "1", "log.flush.interval.messages", atLeast(1), func(v string, c *storage.Config) {
		c.FlushMessages = parseInt(v)
	}, "fsync after this many records; Samsa's default 1 fsyncs every append (group commit)"},
	{"flush.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.flush.interval.ms", nonNegative, func(v string, c *storage.Config) {
		if n := parseInt(v); n == math.MaxInt64 {
			c.FlushInterval = -1
		} else {
			c.FlushInterval = ms(v)
		}
	}, "fsync at least this often"},
	{"index.interval.bytes", typeInt, "4096", "log.index.interval.bytes", nonNegative, func(v string, c *storage.Config) {
		c.IndexIntervalBytes = parseInt(v)
	}, "bytes between offset index entries"},
	{"max.compaction.lag.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.cleaner.max.compaction.lag.ms", atLeast(1), nil, "accepted; not yet enforced"},
	{"max.message.bytes", typeInt, "1048588", "message.max.bytes", nonNegative, func(v string, c *storage.Config) {
		c.MaxMessageBytes = parseInt(v)
	}, "largest record batch accepted"},
	{"message.timestamp.after.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.message.timestamp.after.max.ms", nonNegative, func(v string, c *storage.Config) {
		c.TimestampAfterMax = msOrUnlimited(v)
	}, "how far in the future a CreateTime timestamp may be"},
	{"message.timestamp.before.max.ms", typeLong, strconv.FormatInt(math.MaxInt64, 10), "log.message.timestamp.before.max.ms", nonNegative, func(v string, c *storage.Config) {
		c.TimestampBeforeMax = msOrUnlimited(v)
	}, "how far in the past a CreateTime timestamp may be"},
	{"message.timestamp.type", typeString, "CreateTime", "log.message.timestamp.type", oneOf("CreateTime", "LogAppendTime"), func(v string, c *storage.Config) {
		c.LogAppendTime = v == "LogAppendTime"
	}, "CreateTime or LogAppendTime"},
	{"min.cleanable.dirty.ratio", typeDouble, "0.5", "log.cleaner.min.cleanable.ratio", ratio, func(v string, c *storage.Config) {
		c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(v, 64)
	}, "share of the log that must be uncompacted before compaction runs"},
	{"min.compaction.lag.ms", typeLong, "0", "log.cleaner.min.compaction.lag.ms", nonNegative, func(v string, c *storage.Config) {
		c.MinCompactionLag = ms(v)
	}, "records younger than this are not compacted"},
	{"min.insync.replicas", typeInt, "1", "min.insync.replicas", atLeast(1), nil, "replicas that must acknowledge an acks=all write"},
	{"preallocate", typeBoolean, "false", "log.preallocate", boolean, nil, "accepted; Samsa does not preallocate segments"},
	{"retention.bytes", typeLong, "-1", "log.retention.bytes", atLeast(-1), func(v string, c *storage.Config) {
		c.RetentionBytes = parseInt(v)
	}, "delete old segments while the partition is larger; -1 is no limit"},
	{"retention.ms", typeLong, "604800000", "log.retention.ms", atLeast(-1), func(v string, c *storage.Config) {
		if n := parseInt(v); n < 0 {
			c.Retention = -1
		} else {
			c.Retention = ms(v)
		}
	}, "delete segments older than this; -1 keeps forever"},
	{"segment.bytes", typeInt, "1073741824", "log.segment.bytes", atLeast(14), func(v string, c *storage.Config) {
		c.SegmentBytes = parseInt(v)
	}, "segment file size at which a new one starts"},
	{"segment.index.bytes", typeInt, "10485760", "log.index.size.max.bytes", atLeast(4), nil, "accepted; Samsa's indexes grow as needed"},
	{"segment.jitter.ms", typeLong, "0", "log.roll.jitter.ms", nonNegative, nil, "accepted; no jitter is applied"},
	{"segment.ms", typeLong, "604800000", "log.roll.ms", atLeast(1), func(v string, c *storage.Config) {
		c.SegmentAge = ms(v)
	}, "start a new segment when the active one is this old"},
	{"unclean.leader.election.enable", typeBoolean, "false", "unclean.leader.election.enable", boolean, nil, "elect an out-of-sync replica when no in-sync one is left"},
}

// lookupTopicConfig finds a topic config by name.
func lookupTopicConfig(name string) (topicConfig, bool) {
	i := slices.IndexFunc(topicConfigs, func(c topicConfig) bool { return c.name == name })
	if i < 0 {
		return topicConfig{}, false
	}
	return topicConfigs[i], true
}

// validateTopicConfigs checks names and values, returning the first
// problem as Kafka's INVALID_CONFIG message would word it.
func validateTopicConfigs(configs map[string]string) error {
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range configs {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		def, ok := lookupTopicConfig(name)
		if !ok {
			return fmt.Errorf("unknown topic config %q", name)
		}
		if err := def.validate(configs[name]); err != nil {
			return fmt.Errorf("invalid value %q for config %s: %v", configs[name], name, err)
		}
	}
	var cfg storage.Config = storage.DefaultConfig()
	applyTopicConfigs(&cfg, configs, nil)
	return cfg.Validate()
}

// topicConfigValue resolves one config: the topic's own value, else the
// broker's synonym, else the default; with its source.
func topicConfigValue(def topicConfig, topic, broker map[string]string) (string, configSource) {
	if v, ok := topic[def.name]; ok {
		return v, sourceTopic
	}
	if v, ok := broker[def.synonym]; ok {
		return v, sourceDynamicDefaultBroker
	}
	return def.def, sourceDefault
}

// applyTopicConfigs sets the storage settings of cfg from the resolved
// configs.
func applyTopicConfigs(cfg *storage.Config, topic, broker map[string]string) {
	for _, def := range topicConfigs {
		if def.apply == nil {
			continue
		}
		v, _ := topicConfigValue(def, topic, broker)
		if def.validate(v) == nil {
			def.apply(v, cfg)
		}
	}
}

// configSource is DescribeConfigs' config source.
type configSource int8

const (
	sourceTopic                configSource = 1 // DYNAMIC_TOPIC_CONFIG
	sourceDynamicBroker        configSource = 2 // DYNAMIC_BROKER_CONFIG
	sourceDynamicDefaultBroker configSource = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
	sourceStaticBroker         configSource = 4 // STATIC_BROKER_CONFIG
	sourceDefault              configSource = 5 // DEFAULT_CONFIG
)

// configSynonym is one place a config's value comes from: DescribeConfigs'
// synonyms. A config's value and source are those of its first synonym.
type configSynonym struct {
	name   string
	value  string
	source configSource
}

// brokerLayers are the broker-level values a config may take, besides its
// default: this broker's dynamic configs, the cluster-wide dynamic defaults
// and the static settings the broker was started with.
type brokerLayers struct {
	node, cluster, static map[string]string
}

// topicConfigSynonyms lists where a topic config's value may come from, in
// Kafka's order of precedence: the topic's own value, then its broker
// synonym as a dynamic per-broker config, a dynamic cluster default, a static
// setting, and the default.
func topicConfigSynonyms(def topicConfig, topic map[string]string, bl brokerLayers) []configSynonym {
	var out []configSynonym
	if v, ok := topic[def.name]; ok {
		out = append(out, configSynonym{def.name, v, sourceTopic})
	}
	return append(out, brokerConfigSynonyms(def.synonym, def.def, bl)...)
}

// brokerConfigSynonyms lists where a broker config's value may come from,
// in Kafka's order of precedence. def is its default ("" for none).
func brokerConfigSynonyms(name, def string, bl brokerLayers) []configSynonym {
	var out []configSynonym
	for _, layer := range []struct {
		m      map[string]string
		source configSource
	}{{bl.node, sourceDynamicBroker}, {bl.cluster, sourceDynamicDefaultBroker}, {bl.static, sourceStaticBroker}} {
		if v, ok := layer.m[name]; ok {
			out = append(out, configSynonym{name, v, layer.source})
		}
	}
	if def != "" {
		out = append(out, configSynonym{name, def, sourceDefault})
	}
	return out
}

func parseInt(v string) int64 { n, _ := strconv.ParseInt(v, 10, 64); return n }

func ms(v string) time.Duration {
	n := parseInt(v)
	if n > math.MaxInt64/int64(time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n) * time.Millisecond
}

func msOrUnlimited(v string) time.Duration {
	if parseInt(v) == math.MaxInt64 {
		return -1
	}
	return ms(v)
}

func atLeast(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

var nonNegative = atLeast(0)

func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("must be a number between 0 and 1")
	}
	return nil
}

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("must be true or false")
	}
	return nil
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("must be one of %s", strings.Join(values, ", "))
		}
		return nil
	}
}

func validateCleanupPolicy(v string) error {
	parts := strings.Split(v, ",")
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			return fmt.Errorf("must be delete, compact or both")
		}
	}
	return nil
}

func validateCompressionType(v string) error {
	switch v {
	case "producer", "uncompressed":
		return nil
	}
	if _, err := record.ParseCodec(v); err != nil {
		return fmt.Errorf("must be producer, uncompressed, gzip, snappy, lz4 or zstd")
	}
	return nil
}
