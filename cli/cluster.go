package cli

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterInfo is what `samsa cluster info` shows.
type ClusterInfo struct {
	ClusterID  string          `json:"cluster_id" yaml:"cluster_id"`
	Controller int32           `json:"controller" yaml:"controller"` // -1: none
	Brokers    []BrokerInfo    `json:"brokers" yaml:"brokers"`
	Topics     int             `json:"topics" yaml:"topics"`
	Partitions int             `json:"partitions" yaml:"partitions"`
	APIs       []APIVersionSet `json:"apis" yaml:"apis"` // of the first broker that answered
}

// BrokerInfo is one broker of the cluster.
type BrokerInfo struct {
	ID         int32  `json:"id" yaml:"id"`
	Address    string `json:"address" yaml:"address"`
	Rack       string `json:"rack,omitempty" yaml:"rack,omitempty"`
	Controller bool   `json:"controller" yaml:"controller"`
	APIs       int    `json:"apis" yaml:"apis"` // API keys advertised; 0 when ApiVersions failed
	Error      string `json:"error,omitempty" yaml:"error,omitempty"`
}

// APIVersionSet is an API a broker serves and its version range.
type APIVersionSet struct {
	Key  int16  `json:"key" yaml:"key"`
	Name string `json:"name" yaml:"name"`
	Min  int16  `json:"min" yaml:"min"`
	Max  int16  `json:"max" yaml:"max"`
}

// ClusterInfoOptions are the arguments of `samsa cluster info`.
type ClusterInfoOptions struct {
	APIs bool // show the API versions table in text output
}

// ClusterDescribe prints the cluster id, controller, brokers and the API
// versions the brokers serve.
func ClusterDescribe(ctx context.Context, conn *Conn, p Printer, o ClusterInfoOptions) error {
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	info, err := clusterInfo(ctx, adm)
	if err != nil {
		return err
	}
	return p.Print(info, func() Text {
		var f Fields
		f.Add("cluster id", info.ClusterID)
		f.Add("controller", controllerCell(info.Controller))
		f.Add("brokers", len(info.Brokers))
		f.Add("topics", info.Topics)
		f.Add("partitions", info.Partitions)
		brokers := NewTable("id", "address", "rack", "controller", "apis")
		for _, b := range info.Brokers {
			apis := any(b.APIs)
			if b.Error != "" {
				apis = "error: " + b.Error
			}
			brokers.Add(b.ID, b.Address, b.Rack, b.Controller, apis)
		}
		out := Text{&f, brokers}
		if o.APIs {
			apis := NewTable("key", "api", "min", "max")
			for _, a := range info.APIs {
				apis.Add(a.Key, a.Name, a.Min, a.Max)
			}
			out = append(out, apis)
		}
		return out
	})
}

func controllerCell(id int32) any {
	if id < 0 {
		return "none"
	}
	return id
}

func clusterInfo(ctx context.Context, adm *kadm.Client) (ClusterInfo, error) {
	md, err := adm.Metadata(ctx)
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("metadata: %w", err)
	}
	info := ClusterInfo{ClusterID: md.Cluster, Controller: md.Controller, Topics: len(md.Topics), Brokers: []BrokerInfo{}, APIs: []APIVersionSet{}}
	md.Topics.EachPartition(func(kadm.PartitionDetail) { info.Partitions++ })
	versions, err := adm.ApiVersions(ctx)
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("api versions: %w", err)
	}
	for _, b := range md.Brokers {
		bi := BrokerInfo{ID: b.NodeID, Address: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), Controller: b.NodeID == md.Controller}
		if b.Rack != nil {
			bi.Rack = *b.Rack
		}
		v, ok := versions[b.NodeID]
		switch {
		case !ok:
			bi.Error = "no ApiVersions response"
		case v.Err != nil:
			bi.Error = v.Err.Error()
		default:
			v.EachKeySorted(func(key, min, max int16) {
				bi.APIs++
				if len(info.APIs) < bi.APIs {
					info.APIs = append(info.APIs, APIVersionSet{Key: key, Name: kmsg.NameForKey(key), Min: min, Max: max})
				}
			})
		}
		info.Brokers = append(info.Brokers, bi)
	}
	sort.Slice(info.Brokers, func(i, j int) bool { return info.Brokers[i].ID < info.Brokers[j].ID })
	return info, nil
}

// HealthCheck is one check of `samsa cluster health`.
type HealthCheck struct {
	Name   string `json:"name" yaml:"name"`
	OK     bool   `json:"ok" yaml:"ok"`
	Detail string `json:"detail" yaml:"detail"`
}

// Health is the result of `samsa cluster health`.
type Health struct {
	Healthy bool          `json:"healthy" yaml:"healthy"`
	Checks  []HealthCheck `json:"checks" yaml:"checks"`
}

// ClusterHealth checks that the cluster answers, has a controller, that
// every broker serves ApiVersions and that every partition has a leader and
// a full in-sync replica set. It prints the checks and fails when one does
// not pass; an unreachable cluster fails without a table.
func ClusterHealth(ctx context.Context, conn *Conn, p Printer) error {
	adm, err := conn.Admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	h := Health{Healthy: true}
	check := func(name string, ok bool, detail string) {
		h.Checks = append(h.Checks, HealthCheck{Name: name, OK: ok, Detail: detail})
		h.Healthy = h.Healthy && ok
	}
	info, err := clusterInfo(ctx, adm)
	if err != nil {
		return err
	}
	check("reachable", true, plural(len(info.Brokers), "broker"))
	if info.Controller >= 0 {
		check("controller", true, fmt.Sprintf("broker %d", info.Controller))
	} else {
		check("controller", false, "no active controller")
	}
	var down []string
	for _, b := range info.Brokers {
		if b.Error != "" {
			down = append(down, fmt.Sprintf("%d (%s)", b.ID, b.Error))
		}
	}
	if len(down) == 0 {
		check("brokers", true, fmt.Sprintf("%s answering ApiVersions", plural(len(info.Brokers), "broker")))
	} else {
		check("brokers", false, fmt.Sprintf("%d of %d do not answer: %s", len(down), len(info.Brokers), joinMax(down, 3)))
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var offline, under []string
	total := 0
	md.Topics.EachPartition(func(pd kadm.PartitionDetail) {
		total++
		name := fmt.Sprintf("%s/%d", pd.Topic, pd.Partition)
		if pd.Leader < 0 {
			offline = append(offline, name)
		} else if len(pd.ISR) < len(pd.Replicas) {
			under = append(under, name)
		}
	})
	sort.Strings(offline)
	sort.Strings(under)
	if len(offline) == 0 {
		check("leaders", true, fmt.Sprintf("%s, all with a leader", plural(total, "partition")))
	} else {
		check("leaders", false, fmt.Sprintf("%d partitions offline: %s", len(offline), joinMax(offline, 3)))
	}
	if len(under) == 0 {
		check("replicas", true, "no under-replicated partitions")
	} else {
		check("replicas", false, fmt.Sprintf("%d partitions under-replicated: %s", len(under), joinMax(under, 3)))
	}
	err = p.Print(h, func() Text {
		t := NewTable("check", "status", "detail")
		for _, c := range h.Checks {
			status := "ok"
			if !c.OK {
				status = "FAIL"
			}
			t.Add(c.Name, status, c.Detail)
		}
		return Text{t}
	})
	if err != nil {
		return err
	}
	if !h.Healthy {
		for _, c := range h.Checks {
			if !c.OK {
				return fmt.Errorf("cluster is unhealthy: %s: %s", c.Name, c.Detail)
			}
		}
	}
	return nil
}

// plural is "1 broker", "2 brokers".
func plural[N ~int | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// joinMax joins up to n items and says how many more there are.
func joinMax(items []string, n int) string {
	if len(items) <= n {
		return fmt.Sprint(orList(items))
	}
	return fmt.Sprintf("%s and %d more", joinComma(items[:n]), len(items)-n)
}

func joinComma(items []string) string {
	s := ""
	for i, it := range items {
		if i > 0 {
			s += ", "
		}
		s += it
	}
	return s
}
