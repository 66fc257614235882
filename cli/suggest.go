package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Suggest returns the candidates close to name, closest first: those within
// an edit distance of about a third of name's length (at least 1, at most 3),
// and those that contain name or are contained in it. At most 3 are
// returned.
func Suggest(name string, candidates []string) []string {
	maxDist := len(name) / 3
	if maxDist < 1 {
		maxDist = 1
	}
	if maxDist > 3 {
		maxDist = 3
	}
	type scored struct {
		name string
		dist int
	}
	var close []scored
	lower := strings.ToLower(name)
	for _, c := range candidates {
		if c == name {
			continue
		}
		d := levenshtein(lower, strings.ToLower(c))
		if d <= maxDist || (len(name) >= 3 && (strings.Contains(strings.ToLower(c), lower) || strings.Contains(lower, strings.ToLower(c)))) {
			close = append(close, scored{c, d})
		}
	}
	sort.Slice(close, func(i, j int) bool {
		if close[i].dist != close[j].dist {
			return close[i].dist < close[j].dist
		}
		return close[i].name < close[j].name
	})
	if len(close) > 3 {
		close = close[:3]
	}
	out := make([]string, len(close))
	for i, s := range close {
		out[i] = s.name
	}
	return out
}

// levenshtein is the edit distance between a and b, counted in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// UnknownTopicError says that topic does not exist and, when some of
// existing are close to it, names them.
func UnknownTopicError(topic string, existing []string) error {
	return unknownNameError("topic", topic, existing, "samsa topic list")
}

// UnknownGroupError says that group does not exist and, when some of
// existing are close to it, names them.
func UnknownGroupError(group string, existing []string) error {
	return unknownNameError("group", group, existing, "samsa group list")
}

func unknownNameError(kind, name string, existing []string, list string) error {
	s := Suggest(name, existing)
	if len(s) == 0 {
		return fmt.Errorf("%s %q does not exist (see '%s')", kind, name, list)
	}
	quoted := make([]string, len(s))
	for i, n := range s {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	return fmt.Errorf("%s %q does not exist; did you mean %s?", kind, name, orList(quoted))
}

// orList joins "a", "a or b", "a, b or c".
func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// CheckTopics returns an [UnknownTopicError] for the first of topics that
// does not exist, nil when all do.
func CheckTopics(ctx context.Context, adm *kadm.Client, topics ...string) error {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	for _, t := range topics {
		if !details.Has(t) {
			return UnknownTopicError(t, details.Names())
		}
	}
	return nil
}
