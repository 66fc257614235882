// Package metadata is Samsa's controller: cluster metadata kept as a
// replicated log, after Kafka's KRaft. Every change — cluster named, broker
// registered, topic created with its id, partitions added, configs altered,
// topic deleted — is a record appended to a hashicorp/raft log and, once
// committed, applied in log order to an in-memory Image. A single broker is a
// one-voter quorum; a cluster is the same code with more voters and another
// raft.Transport. Nothing else writes metadata.
//
// # Invariants
//
//   - Apply is pure: (image, offset, record) → (new image, error). It never
//     modifies its input; the new image shares every map and topic the
//     record leaves alone (copy-on-write, so a topic change costs a copy of
//     the two topic maps, O(topics)). Published images are immutable and are
//     read without locks.
//   - Apply decides: a record that cannot apply (a name taken by a record
//     applied just before, a topic already deleted) leaves the image as it
//     was, Offset included, and its proposer gets the error. Apply depends
//     only on its arguments, so every replica reaches the same verdict.
//   - Records carry every choice the proposer made — topic ids, partition
//     assignments — so replay never depends on randomness or on the
//     assignment algorithm of the code that replays.
//   - A proposal returns after its record is applied and every OnChange
//     listener has seen it.
//
// # On disk
//
//	<Dir>/
//	  raft.db                raft log and stable store (bbolt), locked while open
//	  snapshots/<term>-<index>-<ms>/
//	    meta.json            raft's snapshot metadata
//	    state.bin            the image (below); the newest two are kept
//
// # Record format
//
// A record is one raft log entry of type LogCommand:
//
//	+-----------+--------------+-----------------------------+
//	| type (u8) | version (u8) | body: one JSON object       |
//	+-----------+--------------+-----------------------------+
//
// The type numbers are the Type* constants (1 cluster init, 2 leader change,
// 3 register broker, 4 create topic, 5 create partitions, 6 delete topic,
// 7 alter topic configs, 8 alter broker configs); the body is the matching
// *Record struct encoded by encoding/json, topic ids as their 22-character
// base64 text. Every type is at version 0. A change to a body's shape bumps
// its version; the decoder refuses types, versions and fields it does not
// know rather than apply half a record. Type numbers are never reused.
//
// # Snapshot format
//
// A snapshot's state.bin is one JSON object: a format version (0), the
// cluster id, controller id and offset, the brokers sorted by node id, the
// topics sorted by name (with partitions and configs), and the broker
// configs. Equal images give equal bytes.
//
// # Start-up
//
// Open bootstraps a one-voter configuration when the directory is empty,
// starts raft (which restores the newest snapshot), waits to become leader
// and for a barrier (every earlier record applied), and then appends only
// what the image lacks: a cluster id (16 random bytes, base64 as Kafka
// prints it), this node as controller, this broker's registration.
package metadata
