package webhook

import (
	"context"
	"sync"
	"time"
)

// fairShare is a capacity that clients share: bytes of request body memory, the one large-body slot, or handler
// slots. A client is who sends the request (clients.go): the API server, or any pod that can reach the port.
//
// Unpressed, it is first come, first served: any client takes what it asks while the capacity in use stays at or
// under half. Past that, a client that already holds some may take more only while it stays within an equal share,
// size/(k+1) for k clients holding or waiting (one share kept for a client yet to come), and one that holds nothing
// may always take what fits. So one client can never hold more than half (plus what it took while it was alone
// under half), and a client that arrives while another holds all it may is served from the other half. Waiting
// requests are served the client holding least first, so a client that asks often cannot crowd out one that asks
// rarely. This is the max-min fairness of Envoy's overload manager and of the API server's own priority and
// fairness, cut down to what one admission server needs: no queues to configure, one lock, nothing allocated on the
// path a client takes while the capacity is not under pressure.
type fairShare struct {
	mu   sync.Mutex
	size int64
	used int64
	// clients by key; active counts those holding something or waiting, waiting those waiting.
	clients         map[string]*shareClient
	active, waiting int
}

type shareClient struct {
	held  int64
	queue []*shareWaiter
}

type shareWaiter struct {
	n     int64
	ready chan struct{}
	done  bool // granted; under fairShare.mu
}

// maxIdleShareClients bounds the entries kept for clients that hold nothing (they are reused to save an allocation
// per request).
const maxIdleShareClients = 1024

func newFairShare(size int64) *fairShare {
	return &fairShare{size: size, clients: map[string]*shareClient{}}
}

// may says whether client c may take n more now.
func (s *fairShare) may(c *shareClient, n int64) bool {
	switch {
	case s.used+n > s.size:
		return false
	case s.used+n <= s.size/2 || c.held == 0:
		return true
	}
	return c.held+n <= s.size/int64(s.active+1)
}

// acquire takes n for client, waiting at most wait (and no longer than ctx) when it may not take it now. It reports
// whether it got it; release gives it back.
func (s *fairShare) acquire(ctx context.Context, client string, n int64, wait time.Duration) bool {
	s.mu.Lock()
	c := s.clients[client]
	if c == nil {
		if len(s.clients) >= maxIdleShareClients {
			s.prune()
		}
		c = &shareClient{}
		s.clients[client] = c
	}
	if c.held == 0 && len(c.queue) == 0 {
		s.active++
	}
	if len(c.queue) == 0 && s.may(c, n) {
		c.held += n
		s.used += n
		s.mu.Unlock()
		return true
	}
	w := &shareWaiter{n: n, ready: make(chan struct{})}
	c.queue = append(c.queue, w)
	s.waiting++
	s.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.done {
		return true // granted while the timer fired: the caller holds it now
	}
	for i, q := range c.queue {
		if q == w {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			break
		}
	}
	s.waiting--
	if c.held == 0 && len(c.queue) == 0 {
		s.active--
	}
	s.dispatch() // one waiter fewer may let others go
	return false
}

// release gives back n that client acquired.
func (s *fairShare) release(client string, n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	c := s.clients[client]
	c.held -= n
	s.used -= n
	if c.held == 0 && len(c.queue) == 0 {
		s.active--
	}
	if s.waiting > 0 {
		s.dispatch()
	}
	s.mu.Unlock()
}

// dispatch grants waiting requests, the client holding least first, while they may go. Called with mu held.
func (s *fairShare) dispatch() {
	for s.waiting > 0 {
		var next *shareClient
		for _, c := range s.clients {
			if len(c.queue) > 0 && (next == nil || c.held < next.held) && s.may(c, c.queue[0].n) {
				next = c
			}
		}
		if next == nil {
			return
		}
		w := next.queue[0]
		next.queue = next.queue[1:]
		s.waiting--
		next.held += w.n
		s.used += w.n
		w.done = true
		close(w.ready)
	}
}

// prune forgets the clients that hold nothing and wait for nothing. Called with mu held.
func (s *fairShare) prune() {
	for k, c := range s.clients {
		if c.held == 0 && len(c.queue) == 0 {
			delete(s.clients, k)
		}
	}
}
