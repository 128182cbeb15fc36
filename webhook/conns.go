package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// connLimiter keeps the TLS server's open connections under a cap without ever leaving a connection waiting in the
// kernel's accept queue: every connection is accepted at once, and room is made by closing connections of the client
// holding the most. The API server opens a few connections and keeps them busy; a pod that opens hundreds and leaves
// them idle (or never sends a request on them) is the one that loses them.
//
//   - Under soft (7/8 of the cap) nothing is ever closed: a well-behaved API server sees exactly what net/http does.
//   - From soft on, a new connection from the client holding the most (or as many, give or take one) is refused at
//     once, before its TLS handshake; one from any other client closes the longest-idle keep-alive connection of the
//     client holding the most, if it has one. Closing an idle connection is what net/http itself does at its idle
//     timeout and on shutdown; clients retry a request on a connection closed while idle.
//   - At the cap, a connection from another client closes one of the heaviest client's connections even if none is
//     idle: one that has not sent a request yet, else its oldest busy one.
//
// The client of a connection is its remote IP address: a certificate is not known before the TLS handshake, and a
// connection that does not complete it is closed within the header timeout anyway.
type connLimiter struct {
	net.Listener
	max, soft int

	mu      sync.Mutex
	total   int
	clients map[string]*connClient
}

// Where a connection is, for choosing what to close.
const (
	connFresh  = iota // accepted; no request read yet (TLS handshake or headers pending)
	connBusy          // a request is being read or answered
	connIdle          // kept alive between requests
	connClosed        // closed, or chosen to be closed
)

type connClient struct {
	key   string
	conns int
	lists [3]connList // by state: fresh, busy, idle; each oldest first
}

// trackedConn is an accepted connection the limiter accounts for.
type trackedConn struct {
	net.Conn
	l          *connLimiter
	client     *connClient
	state      int
	prev, next *trackedConn
}

func newConnLimiter(ln net.Listener, maxConns int) *connLimiter {
	return &connLimiter{Listener: ln, max: maxConns, soft: maxConns - maxConns/8, clients: map[string]*connClient{}}
}

// Accept returns the next connection that may stay open. It never blocks on the cap: a refused connection is closed
// and the next one accepted.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// admit accounts for c and closes what must go to make room for it; nil when c itself is refused.
func (l *connLimiter) admit(c net.Conn) *trackedConn {
	key := hostOf(c.RemoteAddr())
	l.mu.Lock()
	cl := l.clients[key]
	if cl == nil {
		cl = &connClient{key: key}
		l.clients[key] = cl
	}
	var victim *trackedConn
	if l.total >= l.soft {
		h := l.heaviest()
		if h == cl || h.conns <= cl.conns+1 {
			// The client holding the most gets no more: refused before the TLS handshake, so a client that keeps
			// reconnecting costs an accept and a close, not a handshake each time.
			l.forgetIfEmpty(cl)
			l.mu.Unlock()
			connectionsShed.Inc()
			reset(c)
			return nil
		}
		states := []int{connIdle}
		if l.total >= l.max {
			states = []int{connIdle, connFresh, connBusy}
		}
		for _, state := range states {
			if v := h.lists[state].head; v != nil {
				victim = l.evict(v)
				break
			}
		}
	}
	tc := &trackedConn{Conn: c, l: l, client: cl, state: connFresh}
	cl.lists[connFresh].push(tc)
	cl.conns++
	l.total++
	l.mu.Unlock()
	openConnections.Inc()
	if victim != nil {
		reset(victim.Conn) // under the TLS layer: the server's read fails at once and it closes the rest
	}
	return tc
}

// reset closes a connection the server sheds with a TCP reset: no TIME_WAIT socket is left behind for each one, however
// often a client reconnects.
func reset(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.SetLinger(0)
	}
	_ = c.Close()
}

// heaviest is the client holding the most connections. Called with mu held, only past soft.
func (l *connLimiter) heaviest() *connClient {
	var h *connClient
	for _, c := range l.clients {
		if h == nil || c.conns > h.conns {
			h = c
		}
	}
	return h
}

// evict takes tc out of the accounting; the caller closes it once mu is released. Called with mu held.
func (l *connLimiter) evict(tc *trackedConn) *trackedConn {
	l.forget(tc)
	connectionsShed.Inc()
	return tc
}

// forget removes tc from its client's lists and the counts. Called with mu held.
func (l *connLimiter) forget(tc *trackedConn) {
	if tc.state == connClosed {
		return
	}
	tc.client.lists[tc.state].remove(tc)
	tc.state = connClosed
	tc.client.conns--
	l.total--
	openConnections.Dec()
	l.forgetIfEmpty(tc.client)
}

func (l *connLimiter) forgetIfEmpty(cl *connClient) {
	if cl.conns == 0 {
		delete(l.clients, cl.key)
	}
}

// Close closes the connection and takes it out of the accounting.
func (tc *trackedConn) Close() error {
	tc.l.mu.Lock()
	tc.l.forget(tc)
	tc.l.mu.Unlock()
	return tc.Conn.Close()
}

// connState follows net/http's view of each connection (http.Server.ConnState): busy while a request is read or
// answered, idle between requests.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	to := -1
	switch state {
	case http.StateActive:
		to = connBusy
	case http.StateIdle:
		to = connIdle
	case http.StateClosed, http.StateHijacked:
		l.mu.Lock()
		l.forget(tc)
		l.mu.Unlock()
		return
	}
	if to < 0 {
		return
	}
	l.mu.Lock()
	if tc.state != connClosed && tc.state != to {
		tc.client.lists[tc.state].remove(tc)
		tc.state = to
		tc.client.lists[to].push(tc)
	}
	l.mu.Unlock()
}

// connList is a doubly linked list of connections, oldest first.
type connList struct{ head, tail *trackedConn }

func (cl *connList) push(tc *trackedConn) {
	tc.prev, tc.next = cl.tail, nil
	if cl.tail != nil {
		cl.tail.next = tc
	} else {
		cl.head = tc
	}
	cl.tail = tc
}

func (cl *connList) remove(tc *trackedConn) {
	if tc.prev != nil {
		tc.prev.next = tc.next
	} else {
		cl.head = tc.next
	}
	if tc.next != nil {
		tc.next.prev = tc.prev
	} else {
		cl.tail = tc.prev
	}
	tc.prev, tc.next = nil, nil
}
