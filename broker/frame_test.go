package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestReadFrameAllocatesForTheBytesThatArrive(t *testing.T) {
	// A frame that declares 100 MiB and then sends 10 bytes.
	var stream bytes.Buffer
	binary.Write(&stream, binary.BigEndian, int32(100<<20))
	stream.Write(make([]byte, 10))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(&stream, 100<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2<<20 {
		t.Fatalf("reading 10 bytes of a frame that declares 100 MiB allocated %d bytes", grew)
	}
}

func TestReadFrameReadsWholeFramesInPieces(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB: several growth steps
	var stream bytes.Buffer
	binary.Write(&stream, binary.BigEndian, int32(len(payload)))
	stream.Write(payload)
	got, err := readFrame(io.MultiReader(&stream), int32(len(payload)))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("frame of %d bytes read back as %d bytes, err %v", len(payload), len(got), err)
	}
}
