package metadata

import "errors"

// Errors a proposal returns. The broker maps them to Kafka error codes.
var (
	ErrTopicExists              = errors.New("metadata: topic already exists")                   // TOPIC_ALREADY_EXISTS
	ErrStaleProducerIDs         = errors.New("metadata: producer id reservation raced another")  // retried by ReserveProducerIDs
	ErrUnknownTopic             = errors.New("metadata: unknown topic")                          // UNKNOWN_TOPIC_ID / UNKNOWN_TOPIC_OR_PARTITION
	ErrInvalidTopic             = errors.New("metadata: invalid topic")                          // INVALID_TOPIC_EXCEPTION
	ErrInvalidPartitions        = errors.New("metadata: invalid number of partitions")           // INVALID_PARTITIONS
	ErrInvalidReplicationFactor = errors.New("metadata: invalid replication factor")             // INVALID_REPLICATION_FACTOR
	ErrInvalidBroker            = errors.New("metadata: invalid broker")                         // INVALID_REQUEST
	ErrNotController            = errors.New("metadata: this node is not the controller")        // NOT_CONTROLLER
	ErrClosed                   = errors.New("metadata: controller closed")                      // retriable on another node
	ErrDirInUse                 = errors.New("metadata: directory in use by another controller") // fatal at start-up
)

// Errors that mean a record itself is bad, not the change it asks for: a bug
// or a log written by incompatible code. They are a class apart from the
// proposal errors above.
var (
	ErrCorruptRecord = errors.New("metadata: corrupt record")
	ErrUnknownRecord = errors.New("metadata: unknown record type or version")
	ErrInvalidRecord = errors.New("metadata: invalid record")
)
