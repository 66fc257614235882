package broker

// IncrementalAlterConfigs (key 44), versions 0–1.
//
// Changes single dynamic configs of a topic (resource type 2) or a broker
// (4: its node id, or "" for the cluster-wide defaults), leaving the others
// as they are: SET (0) sets a value, DELETE (1) removes it (back to the
// broker's or the default value), APPEND (2) and SUBTRACT (3) add or remove
// comma-separated items of a LIST config (cleanup.policy, log.cleanup.policy),
// starting from the default when the config is not set, as Kafka does. The
// resulting configs are checked as a whole (INVALID_CONFIG with a message
// naming the config; APPEND or SUBTRACT on a config that is not a list is
// INVALID_CONFIG too). validate_only checks without changing anything. An
// unknown topic is UNKNOWN_TOPIC_OR_PARTITION; a resource or config named
// twice, a null value to SET, APPEND or SUBTRACT, an unknown operation or
// another resource type is INVALID_REQUEST.

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleIncrementalAlterConfigs(b *Broker, ctx context.Context, r *request, req *kmsg.IncrementalAlterConfigsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	dup := duplicateResources(len(req.Resources), func(i int) (kmsg.ConfigResourceType, string) {
		return req.Resources[i].ResourceType, req.Resources[i].ResourceName
	})
	for i, res := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		var err *resourceError
		if dup[i] {
			err = newResourceError(kerr.InvalidRequest, "resource %s %q appears more than once in the request", res.ResourceType, res.ResourceName)
		} else {
			err = b.alterResourceConfigs(ctx, res.ResourceType, res.ResourceName, req.ValidateOnly,
				func(configs map[string]string, listDefault func(string) (string, bool)) (map[string]string, *resourceError) {
					return applyConfigOps(configs, res.Configs, listDefault)
				})
		}
		rr.ErrorCode, rr.ErrorMessage = err.codeAndMessage()
		resp.Resources = append(resp.Resources, rr)
	}
	return resp
}

// applyConfigOps applies the operations to configs, in place. listDefault
// returns a config's default and whether it is a LIST config.
func applyConfigOps(configs map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig,
	listDefault func(string) (string, bool)) (map[string]string, *resourceError) {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Name] {
			return nil, newResourceError(kerr.InvalidRequest, "config %s appears more than once", op.Name)
		}
		seen[op.Name] = true
		if op.Value == nil && op.Op != kmsg.IncrementalAlterConfigOpDelete {
			return nil, newResourceError(kerr.InvalidRequest, "null value for config %s", op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			configs[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(configs, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			def, isList := listDefault(op.Name)
			if !isList {
				return nil, newResourceError(kerr.InvalidConfig, "cannot %s to config %s: its type is not LIST", op.Op, op.Name)
			}
			current, ok := configs[op.Name]
			if !ok {
				current = def
			}
			items := splitList(current)
			for _, v := range splitList(*op.Value) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, v) {
						items = append(items, v)
					}
				} else {
					items = slices.DeleteFunc(items, func(x string) bool { return x == v })
				}
			}
			configs[op.Name] = strings.Join(items, ",")
		default:
			return nil, newResourceError(kerr.InvalidRequest, "unknown operation %d on config %s", op.Op, op.Name)
		}
	}
	return configs, nil
}

// splitList splits a LIST config's value into its non-empty items.
func splitList(v string) []string {
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
