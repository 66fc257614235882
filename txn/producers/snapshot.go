package producers

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"time"
)

// ErrCorruptSnapshot is a snapshot that does not decode (see the format in
// doc.go).
var ErrCorruptSnapshot = errors.New("corrupt producer state snapshot")

const (
	snapshotMagic   = "SMPS"
	snapshotVersion = 1
	// snapshotHeader is magic, version and CRC.
	snapshotHeader = 4 + 2 + 4
	producerFixed  = 8 + 2 + 4 + 8 + 8 + 1
	batchSize      = 4 + 4 + 8 + 8 + 8
	abortedSize    = 8 + 8 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the snapshot of the state as of offset: the caller
// guarantees that every batch below offset, and none after, was applied.
func (s *State) Encode(offset int64) []byte {
	ids := make([]int64, 0, len(s.byID))
	n := snapshotHeader + 8 + 4 + 4 + len(s.aborted)*abortedSize
	for id, p := range s.byID {
		ids = append(ids, id)
		n += producerFixed + len(p.Batches)*batchSize
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, snapshotHeader, n)
	copy(b, snapshotMagic)
	binary.BigEndian.PutUint16(b[4:], snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		p := s.byID[id]
		b = binary.BigEndian.AppendUint64(b, uint64(p.ID))
		b = binary.BigEndian.AppendUint16(b, uint16(p.Epoch))
		b = binary.BigEndian.AppendUint32(b, uint32(p.CoordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.LastTimestamp))
		b = binary.BigEndian.AppendUint64(b, uint64(p.TxnFirstOffset))
		b = append(b, byte(len(p.Batches)))
		for _, bt := range p.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(bt.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(bt.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(bt.LogAppendTime))
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[snapshotHeader:], castagnoli))
	return b
}

// decoder reads big-endian fields, remembering the first overrun.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8   { return d.take(1)[0] }
func (d *decoder) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorruptSnapshot, fmt.Sprintf(format, args...))
}

// Decode reads a snapshot into a new state with the given expiration, and
// returns the offset it was taken at.
func Decode(data []byte, expiration time.Duration) (*State, int64, error) {
	if len(data) < snapshotHeader || string(data[:4]) != snapshotMagic {
		return nil, 0, corrupt("bad magic")
	}
	if v := binary.BigEndian.Uint16(data[4:]); v != snapshotVersion {
		return nil, 0, corrupt("version %d, want %d", v, snapshotVersion)
	}
	if want, got := binary.BigEndian.Uint32(data[6:]), crc32.Checksum(data[snapshotHeader:], castagnoli); want != got {
		return nil, 0, corrupt("crc32c %08x, computed %08x", want, got)
	}
	d := &decoder{b: data[snapshotHeader:]}
	s := New(expiration)
	offset := int64(d.u64())
	count := d.u32()
	if uint64(count)*producerFixed > uint64(len(d.b)) {
		return nil, 0, corrupt("%d producers in %d bytes", count, len(d.b))
	}
	var lastID int64
	for range count {
		p := &Producer{
			ID:               int64(d.u64()),
			Epoch:            int16(d.u16()),
			CoordinatorEpoch: int32(d.u32()),
			LastTimestamp:    int64(d.u64()),
			TxnFirstOffset:   int64(d.u64()),
		}
		nb := int(d.u8())
		if nb > BatchesKept {
			return nil, 0, corrupt("producer %d has %d batches", p.ID, nb)
		}
		for range nb {
			p.Batches = append(p.Batches, Batch{
				FirstSeq:      int32(d.u32()),
				LastSeq:       int32(d.u32()),
				FirstOffset:   int64(d.u64()),
				LastOffset:    int64(d.u64()),
				LogAppendTime: int64(d.u64()),
			})
		}
		if d.bad {
			break
		}
		if count > 0 && len(s.byID) > 0 && p.ID <= lastID {
			return nil, 0, corrupt("producer %d out of order", p.ID)
		}
		lastID = p.ID
		if p.TxnFirstOffset < -1 || p.TxnFirstOffset >= offset {
			return nil, 0, corrupt("producer %d transaction starts at %d, snapshot at %d", p.ID, p.TxnFirstOffset, offset)
		}
		if p.TxnFirstOffset >= 0 {
			s.ongoing++
		}
		s.byID[p.ID] = p
	}
	na := d.u32()
	if uint64(na)*abortedSize != uint64(len(d.b)) {
		return nil, 0, corrupt("%d aborted transactions in %d bytes", na, len(d.b))
	}
	for range na {
		a := AbortedTxn{ProducerID: int64(d.u64()), FirstOffset: int64(d.u64()), LastOffset: int64(d.u64())}
		if n := len(s.aborted); a.FirstOffset > a.LastOffset || (n > 0 && a.LastOffset <= s.aborted[n-1].LastOffset) {
			return nil, 0, corrupt("aborted transactions out of order")
		}
		s.aborted = append(s.aborted, a)
	}
	if d.bad || len(d.b) != 0 {
		return nil, 0, corrupt("truncated or trailing bytes")
	}
	return s, offset, nil
}
