package webhook

import (
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// What is scarce in the server (connections, body memory, handler slots) is shared per client, so that whatever one
// caller does, the others keep being answered. A client is the subject of the certificate it presented, when the
// server asks for one (--client-ca-file: only a verified certificate gets this far), else its IP address. The API
// server's replicas are then one client each, and any pod another.

// clientOf names the client of a request.
func clientOf(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hostOf is the IP address of a connection's peer.
func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return string(t.IP.To16())
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// What fair serving refused, for the operator: connections closed or refused to make room, and requests answered 503
// because their client was over its share of body memory or handler slots.
var (
	connectionsShed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fluxidentity_admission_connections_shed_total",
		Help: "Connections closed or refused at the connection cap, always those of the client holding the most.",
	})
	openConnections = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fluxidentity_admission_connections",
		Help: "Open connections to the webhook port.",
	})
	requestsShed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fluxidentity_admission_requests_shed_total",
		Help: "Requests answered 503 or cut off, by what ran out for their client: body (memory for request " +
			"bodies), slot (handler slots) or rate (a body arriving slower than the minimum rate).",
	}, []string{"reason"})
)

func init() {
	metrics.Registry.MustRegister(connectionsShed, openConnections, requestsShed)
}
