package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/samsa-io/samsa/metadata"
	"github.com/samsa-io/samsa/record"
	"github.com/samsa-io/samsa/storage"
)

// errorCode maps an error from storage, record or metadata to the Kafka
// error code a client expects. Unknown errors are UNKNOWN_SERVER_ERROR.
func errorCode(err error) int16 {
	return kafkaError(err).Code
}

func kafkaError(err error) *kerr.Error {
	var ke *kerr.Error
	switch {
	case err == nil:
		return &kerr.Error{Message: "NONE", Code: 0}
	case errors.As(err, &ke):
		return ke
	case errors.Is(err, record.ErrCorrupt):
		return kerr.CorruptMessage
	case errors.Is(err, record.ErrInvalidRecord):
		return kerr.InvalidRecord
	case errors.Is(err, record.ErrUnsupportedCodec):
		return kerr.UnsupportedCompressionType
	case errors.Is(err, storage.ErrMessageTooLarge):
		return kerr.MessageTooLarge
	case errors.Is(err, storage.ErrInvalidTimestamp):
		return kerr.InvalidTimestamp
	case errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange
	case errors.Is(err, storage.ErrClosed), errors.Is(err, storage.ErrLogFailed):
		return kerr.KafkaStorageError
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists
	case errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions
	case errors.Is(err, metadata.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor
	case errors.Is(err, metadata.ErrInvalidTopic):
		return kerr.InvalidTopicException
	case errors.Is(err, metadata.ErrNotController), errors.Is(err, metadata.ErrClosed):
		return kerr.NotController
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut
	default:
		return kerr.UnknownServerError
	}
}
