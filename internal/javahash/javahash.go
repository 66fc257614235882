// Package javahash computes Java's String.hashCode, which Kafka uses to
// place a consumer group or a transactional id on a partition of its
// internal topic (__consumer_offsets, __transaction_state). Clients find
// their coordinator through that placement, so it must match Kafka's bit
// for bit.
package javahash

// StringHash is Java's String.hashCode of s: s[0]*31^(n-1) + … + s[n-1] in
// int32 arithmetic, over the UTF-16 code units of s (a code point above
// U+FFFF counts as its two surrogates).
func StringHash(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	return h
}

// Abs is Kafka's Utils.abs: the absolute value, except that MinInt32 (which
// has none) maps to 0.
func Abs(n int32) int32 {
	switch {
	case n == -1<<31:
		return 0
	case n < 0:
		return -n
	}
	return n
}

// Partition is Kafka's partitionFor: Utils.abs(s.hashCode()) % n. n must
// be positive.
func Partition(s string, n int32) int32 { return Abs(StringHash(s)) % n }
