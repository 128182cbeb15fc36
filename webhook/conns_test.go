package webhook

import (
	"net"
	"net/http"
	"testing"
)

// fakeConn is a connection from ip that records whether it was closed.
type fakeConn struct {
	net.Conn
	ip     net.IP
	closed bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: c.ip, Port: 40000} }
func (c *fakeConn) Close() error         { c.closed = true; return nil }

var (
	apiServer = net.IPv4(10, 0, 0, 1)
	pod       = net.IPv4(10, 244, 1, 7)
)

// connsOf admits one connection per ip in order, each put in the state given, and returns them (nil where refused).
func connsOf(l *connLimiter, ips []net.IP, state http.ConnState) []*trackedConn {
	out := make([]*trackedConn, len(ips))
	for i, ip := range ips {
		if tc := l.admit(&fakeConn{ip: ip}); tc != nil {
			if state != http.StateNew {
				l.connState(tc, state)
			}
			out[i] = tc
		}
	}
	return out
}

func repeat(ip net.IP, n int) []net.IP {
	out := make([]net.IP, n)
	for i := range out {
		out[i] = ip
	}
	return out
}

func closed(tc *trackedConn) bool { return tc.Conn.(*fakeConn).closed }

func TestConnLimiter(t *testing.T) {
	t.Run("under 7/8 of the cap nothing is closed or refused, idle or not", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		for _, tc := range connsOf(l, repeat(pod, 13), http.StateIdle) {
			if tc == nil || closed(tc) {
				t.Fatal("a connection was refused or closed under the soft cap")
			}
		}
	})
	t.Run("past 7/8, the client holding the most gets no more connections", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		connsOf(l, repeat(pod, 14), http.StateIdle)
		if tc := l.admit(&fakeConn{ip: pod}); tc != nil {
			t.Fatal("the heaviest client's 15th connection was admitted past 7/8 of the cap")
		}
		if l.total != 14 {
			t.Errorf("%d connections accounted, want 14", l.total)
		}
	})
	t.Run("past 7/8, another client's connection closes the heaviest client's longest-idle one", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		attacker := connsOf(l, repeat(pod, 14), http.StateIdle)
		api := l.admit(&fakeConn{ip: apiServer})
		switch {
		case api == nil:
			t.Fatal("the API server's connection was refused")
		case !closed(attacker[0]) || closed(attacker[1]):
			t.Fatal("want exactly the pod's longest-idle connection closed")
		case l.total != 14:
			t.Errorf("%d connections accounted, want 14", l.total)
		}
	})
	t.Run("an idle connection used again is the last to go", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		attacker := connsOf(l, repeat(pod, 14), http.StateIdle)
		l.connState(attacker[0], http.StateActive)
		l.connState(attacker[0], http.StateIdle)
		l.admit(&fakeConn{ip: apiServer})
		if closed(attacker[0]) || !closed(attacker[1]) {
			t.Fatal("want the connection idle longest closed, not the one just used")
		}
	})
	t.Run("at the cap, another client's connection closes a busy one of the heaviest client when none is idle",
		func(t *testing.T) {
			l := newConnLimiter(nil, 16)
			attacker := connsOf(l, repeat(pod, 13), http.StateActive)
			connsOf(l, repeat(apiServer, 3), http.StateIdle)
			if l.total != 16 {
				t.Fatalf("%d connections, want the cap", l.total)
			}
			if tc := l.admit(&fakeConn{ip: apiServer}); tc == nil || !closed(attacker[0]) {
				t.Fatal("want the API server's connection admitted and the pod's oldest busy one closed")
			}
		})
	t.Run("a connection that is not the heaviest client's is never closed to make room", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		api := connsOf(l, repeat(apiServer, 3), http.StateIdle)
		connsOf(l, repeat(pod, 20), http.StateIdle)
		for _, tc := range api {
			if closed(tc) {
				t.Fatal("the API server's idle connection was closed for the pod's")
			}
		}
	})
	t.Run("a closed connection leaves the accounting", func(t *testing.T) {
		l := newConnLimiter(nil, 16)
		tcs := connsOf(l, repeat(pod, 2), http.StateIdle)
		_ = tcs[0].Close()
		l.connState(tcs[1], http.StateClosed)
		_ = tcs[1].Close()
		if l.total != 0 || len(l.clients) != 0 {
			t.Errorf("%d connections and %d clients left", l.total, len(l.clients))
		}
	})
}
