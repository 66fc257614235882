// Package loadgen measures a Kafka-compatible cluster's throughput and
// latency: the engine of `samsa bench produce|consume|e2e`, usable by any
// harness that wants the same numbers (the performance comparison runs it
// against other brokers).
//
// Three modes, in the spirit of kafka-producer-perf-test,
// kafka-consumer-perf-test and the OpenMessaging Benchmark:
//
//   - produce: producers send fixed-size records; latency is from the
//     intended send time to the broker's acknowledgement.
//   - consume: consumers read the topic from its start; throughput only.
//   - e2e: producers write the intended send time into the first 8 bytes of
//     each value (Unix nanoseconds, big endian); consumers, in the same
//     process and so on the same clock, record receive time minus that
//     stamp.
//
// Coordinated omission: with a target rate the k-th record of a producer is
// due at start + k/rate. Latency is measured from that intended time, not
// from when the record was actually handed to the client, so a stall in the
// broker shows up in the latency of every record that should have been sent
// during it, as a user at that rate would see. Without a target rate the
// intended time is the moment the record is handed to the client.
//
// Latencies go into HDR histograms (github.com/HdrHistogram/hdrhistogram-go)
// in microseconds, 1µs to one hour at 3 significant digits; one histogram per
// worker, merged for progress lines and the final [Result]. Throughput in
// MB/s counts value bytes and uses MB = 2^20 bytes, as
// kafka-producer-perf-test does.
//
// Nothing here prints on its own: [Run] reports [Snapshot]s through a
// callback about once a second and returns a [Result] that can be written as
// text or JSON.
package loadgen
