package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultBrokers is where a client command connects when neither
// -b/--brokers nor SAMSA_BROKERS says otherwise.
const DefaultBrokers = "localhost:9092"

// BrokersEnv is the environment variable that gives the brokers when the
// flag is not set.
const BrokersEnv = "SAMSA_BROKERS"

// DefaultDialTimeout bounds the first contact with the cluster.
const DefaultDialTimeout = 5 * time.Second

// Conn says how a command reaches the cluster. The zero value connects to
// [DefaultBrokers].
type Conn struct {
	// Brokers are seed addresses, host:port. Empty means SAMSA_BROKERS,
	// else DefaultBrokers (see [Conn.Seeds]).
	Brokers []string
	// DialTimeout bounds the check that a broker answers; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// AddFlags defines -b/--brokers on fs, filling c.Brokers.
func (c *Conn) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVarP(&c.Brokers, "brokers", "b", nil,
		"broker addresses, host:port, comma-separated (env "+BrokersEnv+", default "+DefaultBrokers+")")
}

// Seeds are the addresses to contact: c.Brokers if set, else the
// comma-separated SAMSA_BROKERS, else DefaultBrokers.
func (c *Conn) Seeds() []string {
	if len(c.Brokers) > 0 {
		return splitAddrs(c.Brokers)
	}
	lookup := c.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(BrokersEnv); ok && strings.TrimSpace(v) != "" {
		return splitAddrs([]string{v})
	}
	return []string{DefaultBrokers}
}

func splitAddrs(in []string) []string {
	var out []string
	for _, s := range in {
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

// Client makes a kgo client for the seeds, with opts added, and checks that
// a broker answers within the dial timeout. When none does, the error is
// one line naming the addresses and suggesting `samsa serve`; the client is
// then already closed.
func (c *Conn) Client(ctx context.Context, opts ...kgo.Opt) (*kgo.Client, error) {
	seeds := c.Seeds()
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	all := append([]kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(timeout),
		kgo.ClientID("samsa-cli"),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, Usagef("bad client options: %v", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := cl.Ping(pingCtx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unreachableError(seeds, err)
	}
	return cl, nil
}

// Admin is [Conn.Client] wrapped in a kadm client. Closing the admin client
// closes the kgo client.
func (c *Conn) Admin(ctx context.Context, opts ...kgo.Opt) (*kadm.Client, error) {
	cl, err := c.Client(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return kadm.NewClient(cl), nil
}

// unreachableError is the one line shown when no broker answers.
func unreachableError(seeds []string, err error) error {
	return fmt.Errorf("cannot reach a broker at %s (%s); start one with 'samsa serve' or point -b/--brokers (or %s) at a running one",
		strings.Join(seeds, ","), shortNetError(err), BrokersEnv)
}

// shortNetError turns a dial error into a few words.
func shortNetError(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}
