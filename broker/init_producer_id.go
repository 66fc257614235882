package broker

// InitProducerId (key 22), versions 0–5, for idempotent producers.
//
// A request without a transactional id gets a new producer id with epoch 0,
// as Kafka answers idempotent producers (it ignores the producer id and
// epoch that v3+ may carry for KIP-360, except that they must be both set or
// both -1: INVALID_REQUEST otherwise). v2 made the encoding flexible; v4 and
// v5 changed nothing for idempotent producers.
//
// Transactions are not served yet: a non-null transactional id is refused
// with TRANSACTIONAL_ID_NOT_FOUND and a message saying so (an empty one is
// INVALID_REQUEST, as in Kafka). The error is not retriable, so a
// transactional client fails at once with a clear error instead of retrying
// until it times out.
//
// Producer ids are unique across restarts. Until the metadata log has a
// record for producer id blocks, they are reserved in blocks of
// producerIDBlockSize through the file producer-ids in the data directory,
// written to a temporary file, fsynced, renamed over the old one and the
// directory fsynced before any id of the block is handed out:
//
//	samsa-producer-ids 1
//	next 3000
//
// "next" is the first id of the next block to reserve. Ids of a block not
// used before a restart are skipped, never reused.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/samsa-io/samsa/internal/vfs"
)

func handleInitProducerID(b *Broker, _ context.Context, r *request, req *kmsg.InitProducerIDRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	case req.TransactionalID != nil:
		r.conn.logger.Info("refusing a transactional producer: transactions are not supported yet",
			"transactional_id", *req.TransactionalID)
		resp.ErrorCode = kerr.TransactionalIDNotFound.Code
		return resp
	case (req.ProducerID == -1) != (req.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	id, err := b.producerIDs.allocate(b.cfg.FS, b.cfg.DataDir)
	if err != nil {
		b.logger.Error("allocating a producer id", "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp
}

// producerIDBlockSize is how many producer ids one durable reservation
// covers (Kafka's block size).
const producerIDBlockSize = 1000

// producerIDsName is the file in the data directory that reserves blocks.
const producerIDsName = "producer-ids"

const producerIDsHeader = "samsa-producer-ids 1"

// producerIDAllocator hands out producer ids from durably reserved blocks.
// Its zero value is ready: it reads the file on first use.
type producerIDAllocator struct {
	mu          sync.Mutex
	next, limit int64 // ids in [next, limit) are reserved and unused; guarded by mu
}

// allocate returns a producer id never returned before by a broker on this
// data directory.
func (a *producerIDAllocator) allocate(fsys vfs.FS, dir string) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.limit {
		start, err := readProducerIDs(fsys, dir)
		if err != nil {
			return 0, err
		}
		start = max(start, a.limit)
		if err := writeProducerIDs(fsys, dir, start+producerIDBlockSize); err != nil {
			return 0, err
		}
		a.next, a.limit = start, start+producerIDBlockSize
	}
	id := a.next
	a.next++
	return id, nil
}

// readProducerIDs returns the first unreserved id: 0 without a file.
func readProducerIDs(fsys vfs.FS, dir string) (int64, error) {
	f, err := fsys.Open(filepath.Join(dir, producerIDsName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	lines := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	if len(lines) == 2 && lines[0] == producerIDsHeader {
		if v, ok := strings.CutPrefix(lines[1], "next "); ok {
			if next, err := strconv.ParseInt(v, 10, 64); err == nil && next >= 0 {
				return next, nil
			}
		}
	}
	return 0, fmt.Errorf("%s: unreadable producer id reservation %q", filepath.Join(dir, producerIDsName), buf[:n])
}

// writeProducerIDs durably records next as the first unreserved id.
func writeProducerIDs(fsys vfs.FS, dir string, next int64) error {
	name := filepath.Join(dir, producerIDsName)
	f, err := fsys.Create(name + ".tmp")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s\nnext %d\n", producerIDsHeader, next)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := fsys.Rename(name+".tmp", name); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}
