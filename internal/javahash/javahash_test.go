package javahash

import "testing"

// Expected values are Java's String.hashCode computed by hand from its
// definition (s[0]*31^(n-1) + … + s[n-1], in int32, over UTF-16 code
// units), then Kafka's Utils.abs (MinInt32 → 0) modulo n.
func TestPartitionMatchesKafka(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    int32
		want int32
	}{
		{"", 50, 0},
		{"a", 50, 47},                     // 97
		{"ab", 50, 5},                     // 97*31+98 = 3105
		{"hello", 50, 22},                 // 99162322
		{"Aa", 50, 12},                    // 2112, Java's classic collision
		{"BB", 50, 12},                    // 2112
		{"polygenelubricants", 50, 0},     // hash is MinInt32
		{"polygenelubricants", 13, 0},     // abs(MinInt32) is 0 in Kafka
		{"my-group", 50, 12},              // -1906497762: abs, not a sign mask (36)
		{"my-group", 7, 1},                // 1906497762 % 7
		{"test-group-negative", 50, 6},    // -1662195106
		{"console-consumer-12345", 50, 6}, // 158455506
		{"é", 50, 33},                     // U+00E9 = 233
		{"组", 50, 2},                      // U+7EC4 = 32452
		{"😀", 50, 49},                     // surrogates D83D DE00: 55357*31+56832
		{"𝄞clef", 50, 28},                 // surrogates D834 DD1E, then ASCII
	} {
		if got := Partition(tc.id, tc.n); got != tc.want {
			t.Errorf("Partition(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}

func TestStringHash(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want int32
	}{
		{"", 0},
		{"hello", 99162322},
		{"my-group", -1906497762},
		{"polygenelubricants", -1 << 31},
		{"😀", 55357*31 + 56832},
	} {
		if got := StringHash(tc.s); got != tc.want {
			t.Errorf("StringHash(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func TestAbs(t *testing.T) {
	for _, tc := range []struct{ n, want int32 }{
		{0, 0}, {5, 5}, {-5, 5}, {-1 << 31, 0}, {1<<31 - 1, 1<<31 - 1}, {-(1<<31 - 1), 1<<31 - 1},
	} {
		if got := Abs(tc.n); got != tc.want {
			t.Errorf("Abs(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
