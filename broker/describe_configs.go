package broker

// DescribeConfigs (key 32), versions 0–4.
//
// Describes topics (resource type 2) and brokers (4). A topic lists every
// topic config with its value and source: DYNAMIC_TOPIC_CONFIG when the
// topic sets it, else that of its broker synonym (DYNAMIC_BROKER_CONFIG,
// DYNAMIC_DEFAULT_BROKER_CONFIG, STATIC_BROKER_CONFIG) or DEFAULT_CONFIG. A
// broker named by its node id lists every broker config (broker_configs.go),
// read-only unless dynamic; the resource name "" lists the cluster-wide
// dynamic defaults that are set, as Kafka does. Synonyms (v1+, when asked)
// come in Kafka's order, the one in force first. v0 reports is_default; v1+
// the source; v3+ the config type and, when asked, documentation. A list of
// keys limits the configs returned; null or empty means all. No config is
// sensitive. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION, an invalid name
// INVALID_TOPIC_EXCEPTION, another broker's id or another resource type
// INVALID_REQUEST.

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/metadata"
)

// describedConfig is one config as DescribeConfigs and CreateTopics report
// it. synonyms[0] is where its value comes from.
type describedConfig struct {
	name     string
	synonyms []configSynonym
	typ      int8
	readOnly bool
	doc      string
}

func (c describedConfig) value() (string, configSource) {
	if len(c.synonyms) == 0 {
		return "", sourceDefault
	}
	return c.synonyms[0].value, c.synonyms[0].source
}

// topicConfigEntries describes every topic config of a topic whose own
// configs are topic.
func (b *Broker) topicConfigEntries(img *metadata.Image, topic map[string]string) []describedConfig {
	layers := b.brokerLayers(img)
	out := make([]describedConfig, 0, len(topicConfigs))
	for _, def := range topicConfigs {
		out = append(out, describedConfig{
			name:     def.name,
			synonyms: topicConfigSynonyms(def, topic, layers),
			typ:      def.typ,
			doc:      def.doc,
		})
	}
	return out
}

// brokerConfigEntries describes the configs of a broker (node >= 0) or the
// cluster-wide dynamic defaults that are set (node -1).
func (b *Broker) brokerConfigEntries(img *metadata.Image, node int32) []describedConfig {
	layers := b.brokerLayers(img)
	var out []describedConfig
	for _, def := range brokerConfigTable() {
		syn := brokerConfigSynonyms(def.name, def.def, layers)
		if node == -1 {
			syn = slices.DeleteFunc(syn, func(s configSynonym) bool { return s.source != sourceDynamicDefaultBroker })
			if len(syn) == 0 {
				continue
			}
		}
		out = append(out, describedConfig{
			name:     def.name,
			synonyms: syn,
			typ:      def.typ,
			readOnly: !def.dynamic,
			doc:      def.doc,
		})
	}
	return out
}

// brokerResourceNode parses a broker resource name: "" is the cluster
// default (-1), else a registered node's id.
func brokerResourceNode(img *metadata.Image, name string) (int32, error) {
	if name == "" {
		return -1, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("broker id must be an integer, but it is %q", name)
	}
	if _, ok := img.Brokers[int32(id)]; !ok {
		return 0, fmt.Errorf("unknown broker id %d", id)
	}
	return int32(id), nil
}

func handleDescribeConfigs(b *Broker, ctx context.Context, r *request, req *kmsg.DescribeConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	img := b.meta.Image()
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		entries, err := b.describeResource(img, res)
		if err != nil {
			rr.ErrorCode = err.Code
			msg := err.Message
			if err.detail != "" {
				msg = err.detail
			}
			rr.ErrorMessage = &msg
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		for _, e := range entries {
			if len(res.ConfigNames) > 0 && !slices.Contains(res.ConfigNames, e.name) {
				continue
			}
			rr.Configs = append(rr.Configs, describeConfigEntry(r.version, req, e))
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// resourceError is a Kafka error with a message for the client.
type resourceError struct {
	*kerr.Error
	detail string
}

func newResourceError(err *kerr.Error, format string, args ...any) *resourceError {
	return &resourceError{Error: err, detail: fmt.Sprintf(format, args...)}
}

func (b *Broker) describeResource(img *metadata.Image, res kmsg.DescribeConfigsRequestResource) ([]describedConfig, *resourceError) {
	switch res.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if err := validateTopicName(res.ResourceName); err != nil {
			return nil, newResourceError(kerr.InvalidTopicException, "%v", err)
		}
		t, ok := img.Topics[res.ResourceName]
		if !ok {
			return nil, newResourceError(kerr.UnknownTopicOrPartition, "topic %q does not exist", res.ResourceName)
		}
		return b.topicConfigEntries(img, t.Configs), nil
	case kmsg.ConfigResourceTypeBroker:
		node, err := brokerResourceNode(img, res.ResourceName)
		if err != nil {
			return nil, newResourceError(kerr.InvalidRequest, "%v", err)
		}
		return b.brokerConfigEntries(img, node), nil
	default:
		return nil, newResourceError(kerr.InvalidRequest, "resource type %s is not supported", res.ResourceType)
	}
}

func describeConfigEntry(version int16, req *kmsg.DescribeConfigsRequest, e describedConfig) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	v, source := e.value()
	rc.Name = e.name
	rc.Value = &v
	rc.ReadOnly = e.readOnly
	rc.IsDefault = source == sourceDefault
	rc.Source = kmsg.ConfigSource(source)
	rc.ConfigType = kmsg.ConfigType(e.typ)
	if req.IncludeSynonyms && version >= 1 {
		for _, s := range e.synonyms {
			rs := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			rs.Name = s.name
			rs.Value = &s.value
			rs.Source = kmsg.ConfigSource(s.source)
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, rs)
		}
	}
	if req.IncludeDocumentation && version >= 3 {
		rc.Documentation = &e.doc
	}
	return rc
}
