package webhook

import "sync"

// buffers recycles the buffers of request bodies, patches and answers. A busy server would allocate three per request,
// and with a large policy as live heap each allocated byte costs the garbage collector more than in a small process.
// A buffer is returned only once nothing refers to it: decoding copies every string and raw value out of a body, and
// the answer is written before the body and the patch go back. sync.Pool drops what a quiet server does not reuse.
var buffers bufferPool

// maxPooledBuffer keeps a rare large body's buffer from being held by the pool.
const maxPooledBuffer = 64 << 10

type bufferPool struct{ pool sync.Pool }

// get returns an empty buffer with room for at least n bytes.
func (p *bufferPool) get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		if cap(*b) >= n {
			return b
		}
		p.pool.Put(b)
	}
	b := make([]byte, 0, max(n, 4<<10))
	return &b
}

// put gives a buffer back; a large one is left to the garbage collector.
func (p *bufferPool) put(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	p.pool.Put(b)
}
