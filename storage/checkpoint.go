package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"github.com/samsa-io/samsa/internal/vfs"
)

// checkpointName is the file in a partition directory that records what the
// segment files cannot: the log start offset (moved by DeleteRecords) and the
// recovery point (every segment below it was fsynced with its indexes, so
// recovery after a crash scans only from there).
const checkpointName = "checkpoint"

const checkpointHeader = "samsa-log-checkpoint 1"

type checkpoint struct {
	LogStart      int64
	RecoveryPoint int64
	// CleanedTo is where the last compaction stopped: records below it have
	// been compacted once (the cleaner's "first dirty offset").
	CleanedTo int64
}

func (c checkpoint) encode() []byte {
	body := fmt.Sprintf("%s\nlog-start-offset %d\nrecovery-point %d\ncleaned-to %d\n",
		checkpointHeader, c.LogStart, c.RecoveryPoint, c.CleanedTo)
	return fmt.Appendf(nil, "%scrc32c %08x\n", body, crc32.Checksum([]byte(body), castagnoli))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errBadCheckpoint = errors.New("storage: unreadable checkpoint")

func decodeCheckpoint(b []byte) (checkpoint, error) {
	var c checkpoint
	i := bytes.LastIndex(b, []byte("crc32c "))
	if i < 0 {
		return c, errBadCheckpoint
	}
	var sum uint32
	if _, err := fmt.Sscanf(string(b[i:]), "crc32c %08x\n", &sum); err != nil || sum != crc32.Checksum(b[:i], castagnoli) {
		return c, errBadCheckpoint
	}
	sc := bufio.NewScanner(bytes.NewReader(b[:i]))
	if !sc.Scan() || sc.Text() != checkpointHeader {
		return c, errBadCheckpoint
	}
	for sc.Scan() {
		var key string
		var v int64
		if _, err := fmt.Sscanf(sc.Text(), "%s %d", &key, &v); err != nil {
			return c, errBadCheckpoint
		}
		switch key {
		case "log-start-offset":
			c.LogStart = v
		case "recovery-point":
			c.RecoveryPoint = v
		case "cleaned-to":
			c.CleanedTo = v
		}
	}
	return c, nil
}

// readCheckpoint returns the checkpoint of dir, ok false when there is none
// or it cannot be read; missing says there is no file at all. A log whose
// checkpoint cannot be read opens as if it were the zero checkpoint (log
// start 0, recovery point 0: every segment is scanned).
func readCheckpoint(fs vfs.FS, dir string) (c checkpoint, ok, missing bool) {
	f, err := fs.Open(filepath.Join(dir, checkpointName))
	if err != nil {
		return checkpoint{}, false, errors.Is(err, notExist)
	}
	defer f.Close()
	b, err := readAll(f)
	if err != nil {
		return checkpoint{}, false, false
	}
	c, err = decodeCheckpoint(b)
	return c, err == nil, false
}

// createCheckpoint writes a new log's first checkpoint straight into the
// file, which does not exist yet: no temporary file, no rename. That
// checkpoint is the zero one, which is also what a missing or unreadable
// checkpoint means when the log is opened (readCheckpoint), so a crash that
// loses or tears the write leaves a log that opens the same. Every later
// checkpoint replaces it with writeCheckpoint. With sync false it syncs
// neither the file nor the directory, for a syncfs by the caller.
func createCheckpoint(fs vfs.FS, dir string, c checkpoint, sync bool) error {
	if c != (checkpoint{}) {
		return fmt.Errorf("storage: checkpoint %+v written in place; only a new log's zero checkpoint may be", c)
	}
	f, err := fs.Create(filepath.Join(dir, checkpointName))
	if err != nil {
		return err
	}
	_, err = f.Write(c.encode())
	if err == nil && sync {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil || !sync {
		return err
	}
	return fs.SyncDir(dir)
}

// writeCheckpoint replaces the checkpoint: write a temporary file, sync it,
// rename it over the old one, sync the directory. With sync false it does
// neither sync, for a syncfs by the caller to make it durable.
func writeCheckpoint(fs vfs.FS, dir string, c checkpoint, sync bool) error {
	tmp := filepath.Join(dir, checkpointName+".tmp")
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(c.encode())
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := fs.Rename(tmp, filepath.Join(dir, checkpointName)); err != nil || !sync {
		return err
	}
	return fs.SyncDir(dir)
}
