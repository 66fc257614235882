package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceOptions are the arguments of `samsa produce`.
type ProduceOptions struct {
	Topic string
	// Template frames the input (see [ParseRecordTemplate]); "" means one
	// value per line, or "%k<KeySeparator>%v\n" when KeySeparator is set.
	Template     string
	KeySeparator string
	Key          *string           // a key for every record that has none
	Headers      map[string]string // headers added to every record
	Partition    int32             // -1: by key hash, else sticky
	Compression  string            // none, gzip, snappy, lz4, zstd
	Acks         string            // all, 1 (leader), 0 (none)
	// PrintOffsets writes topic/partition@offset for each record as it is
	// acknowledged (in order within a partition).
	PrintOffsets bool
}

// Produce reads records from in and writes them to the topic. out gets the
// offsets when asked; errOut gets a summary on a terminal.
func Produce(ctx context.Context, conn *Conn, in io.Reader, out, errOut io.Writer, o ProduceOptions) error {
	tmpl, err := produceTemplate(o)
	if err != nil {
		return err
	}
	opts, err := produceOpts(o, tmpl)
	if err != nil {
		return err
	}
	reader, err := tmpl.newReader(in)
	if err != nil {
		return err
	}
	cl, err := conn.Client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := checkProduceTopic(ctx, kadm.NewClient(cl), o.Topic, o.Partition); err != nil {
		return err
	}

	var (
		mu       sync.Mutex
		firstErr error
		written  int64
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
				cancel()
			}
			return
		}
		written++
		if o.PrintOffsets {
			fmt.Fprintf(out, "%s/%d@%d\n", r.Topic, r.Partition, r.Offset)
		}
	}
	read := 0
	for {
		rec, err := reader.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cl.Flush(context.Background())
			return err
		}
		rec.Topic = o.Topic
		if rec.Key == nil && o.Key != nil {
			rec.Key = []byte(*o.Key)
		}
		for k, v := range o.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		if rec.Partition < 0 {
			rec.Partition = o.Partition
		}
		if ctx.Err() != nil {
			break
		}
		read++
		cl.Produce(ctx, rec, done)
	}
	if err := cl.Flush(ctx); err != nil && firstErr == nil && !errors.Is(err, context.Canceled) {
		firstErr = err
	}
	mu.Lock()
	defer mu.Unlock()
	if firstErr != nil {
		return fmt.Errorf("produce to %q: %v (%d of %d records written)", o.Topic, firstErr, written, read)
	}
	if IsTerminal(errOut) {
		fmt.Fprintf(errOut, "wrote %d records to %s\n", written, o.Topic)
	}
	return nil
}

func produceTemplate(o ProduceOptions) (*RecordTemplate, error) {
	src := o.Template
	switch {
	case src != "" && o.KeySeparator != "":
		return nil, Usagef("give --format or --key-separator, not both")
	case src == "" && o.KeySeparator != "":
		src = "%k" + strings.ReplaceAll(strings.ReplaceAll(o.KeySeparator, `\`, `\\`), "%", "%%") + `%v\n`
	case src == "":
		src = DefaultRecordTemplate
	}
	return ParseRecordTemplate(src)
}

func produceOpts(o ProduceOptions, tmpl *RecordTemplate) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	switch o.Acks {
	case "all", "-1", "":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1", "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0", "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, Usagef("--acks %q: use all, 1 or 0", o.Acks)
	}
	codec, err := ParseCompression(o.Compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if o.Partition >= 0 || tmpl.has('p') {
		// Each record goes to the partition it names (%p) or to
		// --partition; otherwise kgo's default: by key hash, sticky for
		// records without a key.
		opts = append(opts, kgo.RecordPartitioner(partitionFromRecord{}))
	}
	return opts, nil
}

// partitionFromRecord sends each record to the partition it names.
type partitionFromRecord struct{}

func (partitionFromRecord) ForTopic(string) kgo.TopicPartitioner { return partitionFromRecord{} }
func (partitionFromRecord) RequiresConsistency(*kgo.Record) bool { return true }
func (partitionFromRecord) Partition(r *kgo.Record, n int) int   { return int(r.Partition) }

// ParseCompression maps a codec name to kgo's codec.
func ParseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), Usagef("--compression %q: use none, gzip, snappy, lz4 or zstd", s)
}

// checkProduceTopic fails when the topic does not exist (naming close ones)
// or has no such partition.
func checkProduceTopic(ctx context.Context, adm *kadm.Client, topic string, partition int32) error {
	details, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	if !details.Has(topic) {
		return UnknownTopicError(topic, details.Names())
	}
	if n := int32(len(details[topic].Partitions)); partition >= n {
		return Usagef("--partition %d: topic %q has %d partitions (0 to %d)", partition, topic, n, n-1)
	}
	return nil
}
