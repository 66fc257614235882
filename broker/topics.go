package broker

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// validateTopicName applies Kafka's rules: 1 to 249 characters from
// [a-zA-Z0-9._-], and not "." or "..".
func validateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name cannot be %q", name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("topic name is %d characters, the limit is %d", len(name), maxTopicNameLen)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("topic name %q has an illegal character %q; use only a-z, A-Z, 0-9, '.', '_' and '-'", name, name[i])
	}
	return nil
}

// isInternalTopic reports Kafka's internal topics.
func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// withRequestTimeout bounds ctx by an admin request's timeout_ms; zero or
// less leaves it unbounded.
func withRequestTimeout(ctx context.Context, ms int32) (context.Context, context.CancelFunc) {
	if ms <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
}

// repeated marks which of n items have a key that another item has too: a
// request that names a topic or resource twice gets INVALID_REQUEST for it.
func repeated[K comparable](n int, key func(int) K) []bool {
	count := make(map[K]int, n)
	for i := range n {
		count[key(i)]++
	}
	dup := make([]bool, n)
	for i := range n {
		dup[i] = count[key(i)] > 1
	}
	return dup
}
