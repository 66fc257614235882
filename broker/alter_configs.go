package broker

// AlterConfigs (key 33), versions 0–2.
//
// Replaces the whole set of dynamic configs of a topic (resource type 2) or
// a broker (4: its node id, or "" for the cluster-wide defaults): configs
// not named are removed, as in Kafka. Every name and value is checked first
// (INVALID_CONFIG with a message naming the config); a static broker config
// cannot be set. validate_only checks without changing anything. An unknown
// topic is UNKNOWN_TOPIC_OR_PARTITION; a resource named twice, a null value,
// a config named twice or another resource type is INVALID_REQUEST. The new
// configs apply to the partition logs as soon as they are committed.

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(b *Broker, ctx context.Context, r *request, req *kmsg.AlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	dup := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, res := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		var err *resourceError
		if dup[i] {
			err = newResourceError(kerr.InvalidRequest, "resource %s %q appears more than once in the request", res.ResourceType, res.ResourceName)
		} else {
			err = b.alterResourceConfigs(ctx, res.ResourceType, res.ResourceName, req.ValidateOnly,
				func(map[string]string, func(string) (string, bool)) (map[string]string, *resourceError) {
					next := map[string]string{}
					for _, c := range res.Configs {
						if _, ok := next[c.Name]; ok {
							return nil, newResourceError(kerr.InvalidRequest, "config %s appears more than once", c.Name)
						}
						if c.Value == nil {
							return nil, newResourceError(kerr.InvalidRequest, "null value for config %s", c.Name)
						}
						next[c.Name] = *c.Value
					}
					return next, nil
				})
		}
		rr.ErrorCode, rr.ErrorMessage = err.codeAndMessage()
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// codeAndMessage is the error code and message of a result; nil is success.
func (e *resourceError) codeAndMessage() (int16, *string) {
	if e == nil {
		return 0, nil
	}
	msg := e.Message
	if e.detail != "" {
		msg = e.detail
	}
	return e.Code, &msg
}

// proposalError turns an error from a metadata proposal into a result.
func proposalError(err error) *resourceError {
	if err == nil {
		return nil
	}
	return newResourceError(kafkaError(err), "%v", err)
}

// duplicateResources marks the resources of a request that appear more than
// once.
func duplicateResources(n int, at func(int) (kmsg.ConfigResourceType, string)) []bool {
	type key struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	return repeated(n, func(i int) key {
		t, name := at(i)
		return key{t, name}
	})
}

// alterResourceConfigs replaces a resource's dynamic configs with what next
// makes of the current ones, after checking them. next gets the current
// configs (its own copy) and a lookup of a config's type-level default, for
// list operations on unset configs.
func (b *Broker) alterResourceConfigs(ctx context.Context, typ kmsg.ConfigResourceType, name string, validateOnly bool,
	next func(current map[string]string, defaultOf func(string) (string, bool)) (map[string]string, *resourceError)) *resourceError {
	img := b.meta.Image()
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if err := validateTopicName(name); err != nil {
			return newResourceError(kerr.InvalidTopicException, "%v", err)
		}
		t, ok := img.Topics[name]
		if !ok {
			return newResourceError(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
		}
		configs, rerr := next(cloneConfigs(t.Configs), func(name string) (string, bool) {
			def, ok := lookupTopicConfig(name)
			return def.def, ok && def.typ == typeList
		})
		if rerr != nil {
			return rerr
		}
		if err := validateTopicConfigs(configs); err != nil {
			return newResourceError(kerr.InvalidConfig, "%v", err)
		}
		if validateOnly {
			return nil
		}
		set, remove := configChanges(t.Configs, configs)
		return proposalError(b.meta.AlterTopicConfigs(ctx, t.ID, set, remove))
	case kmsg.ConfigResourceTypeBroker:
		node, err := brokerResourceNode(img, name)
		if err != nil {
			return newResourceError(kerr.InvalidRequest, "%v", err)
		}
		current := img.BrokerConfigs[node]
		configs, rerr := next(cloneConfigs(current), func(name string) (string, bool) {
			def, ok := lookupBrokerConfig(name)
			return def.def, ok && def.typ == typeList
		})
		if rerr != nil {
			return rerr
		}
		if err := validateBrokerConfigs(img, node, configs); err != nil {
			return newResourceError(kerr.InvalidConfig, "%v", err)
		}
		if validateOnly {
			return nil
		}
		set, remove := configChanges(current, configs)
		return proposalError(b.meta.AlterBrokerConfigs(ctx, node, set, remove))
	default:
		return newResourceError(kerr.InvalidRequest, "resource type %s is not supported", typ)
	}
}

// configChanges is what turns current into next: the configs to set and the
// ones to remove.
func configChanges(current, next map[string]string) (set map[string]string, remove []string) {
	for k, v := range next {
		if old, ok := current[k]; !ok || old != v {
			if set == nil {
				set = map[string]string{}
			}
			set[k] = v
		}
	}
	for _, k := range slices.Sorted(maps.Keys(current)) {
		if _, ok := next[k]; !ok {
			remove = append(remove, k)
		}
	}
	return set, remove
}

// cloneConfigs copies a config map; never nil.
func cloneConfigs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}
