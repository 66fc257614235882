package broker

import (
	"math/bits"
	"sync"
)

// Request frames, encoded responses and Fetch read buffers are taken from
// and given back to one bufferPool, so that a request on the produce and
// fetch paths allocates no buffer once the pool is warm. Buffers are kept by
// size class, powers of two from minPooledBuffer to maxPooledBuffer: a
// buffer taken for n bytes comes from the class n rounds up to, and one
// given back goes to the class its capacity rounds down to, so that every
// buffer of a class has room for the class's size. A buffer travels with
// its *[]byte, which the pool stores: giving one back allocates nothing.

const (
	minPooledShift  = 9  // 512 B: a Produce response to one partition, a Fetch request
	maxPooledShift  = 26 // 64 MiB: larger buffers are left to the collector
	minPooledBuffer = 1 << minPooledShift
	maxPooledBuffer = 1 << maxPooledShift
)

// bufferPool recycles byte buffers by size class. The zero value is ready
// to use; it is safe for concurrent use.
type bufferPool struct {
	classes [maxPooledShift - minPooledShift + 1]sync.Pool // of *[]byte
}

// get returns a pooled buffer, emptied, with room for n bytes, or nil when
// the pool has none (or n is above maxPooledBuffer).
func (p *bufferPool) get(n int) *[]byte {
	if n > maxPooledBuffer {
		return nil
	}
	bp, _ := p.classes[classUp(n)].Get().(*[]byte)
	if bp != nil {
		*bp = (*bp)[:0]
	}
	return bp
}

// take is get, allocating a buffer of n's class when the pool has none.
func (p *bufferPool) take(n int) *[]byte {
	if bp := p.get(n); bp != nil {
		return bp
	}
	buf := make([]byte, 0, classSize(n))
	return &buf
}

// put gives a buffer back; nothing refers to its bytes any more. A buffer
// smaller than minPooledBuffer or larger than maxPooledBuffer is dropped.
func (p *bufferPool) put(bp *[]byte) {
	if bp == nil || cap(*bp) < minPooledBuffer || cap(*bp) > maxPooledBuffer {
		return
	}
	p.classes[bits.Len(uint(cap(*bp)))-1-minPooledShift].Put(bp)
}

// classUp is the class whose buffers have room for n bytes.
func classUp(n int) int {
	if n <= minPooledBuffer {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledShift
}

// classSize is the capacity to allocate for n bytes so that the buffer
// goes back to the class it would be taken from: n rounded up to a power of
// two, at least minPooledBuffer; n itself above maxPooledBuffer.
func classSize(n int) int {
	if n > maxPooledBuffer {
		return n
	}
	return 1 << (classUp(n) + minPooledShift)
}
