package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/testpki"
)

// clientIdentity is a CA and a client certificate it signed, PEM-encoded.
type clientIdentity struct {
	caPEM, certPEM, keyPEM []byte
	cert                   tls.Certificate
}

// newClientIdentity makes a CA and a client certificate for cn.
func newClientIdentity(cn string) (*clientIdentity, error) {
	ca, err := testpki.NewCA("e2e client CA")
	if err != nil {
		return nil, err
	}
	id := &clientIdentity{caPEM: ca.PEM()}
	if id.certPEM, id.keyPEM, err = ca.Issue(cn, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	id.cert, err = tls.X509KeyPair(id.certPEM, id.keyPEM)
	return id, err
}

// writeAdmissionConfiguration writes kube-apiserver's --admission-control-config-file: both webhook admission plugins
// read a kubeconfig whose user for the release's Service (<fullname>.<namespace>.svc, port 443) presents the client
// certificate (k8s.io/apiserver pkg/util/webhook defaultAuthenticationInfoResolver.clientConfig matches that name).
func writeAdmissionConfiguration(dir string, id *clientIdentity) (string, error) {
	kubeconfig := filepath.Join(dir, "webhook-clients.kubeconfig")
	b64 := base64.StdEncoding.EncodeToString
	if err := os.WriteFile(kubeconfig, fmt.Appendf(nil, `apiVersion: v1
kind: Config
users:
  - name: %s.%s.svc
    user:
      client-certificate-data: %s
      client-key-data: %s
`, fullname, releaseNS, b64(id.certPEM), b64(id.keyPEM)), 0o600); err != nil {
		return "", err
	}
	var plugins strings.Builder
	for _, plugin := range []string{"ValidatingAdmissionWebhook", "MutatingAdmissionWebhook"} {
		fmt.Fprintf(&plugins, `  - name: %s
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: %s
`, plugin, kubeconfig)
	}
	config := filepath.Join(dir, "admission.yaml")
	return config, os.WriteFile(config, []byte("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"+
		"plugins:\n"+plugins.String()), 0o600)
}

// postDirect posts a ServiceAccount review to the webhook's pod address, as a pod of the cluster could, presenting
// cert when it is not nil, and returns the HTTP status or the error.
func postDirect(caBundle []byte, cert *tls.Certificate) (int, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		return 0, fmt.Errorf("caBundle holds no certificate")
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: fullname + "." + releaseNS + ".svc", MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := client.Post("https://"+webhookIP+":9443/mutate-v1-serviceaccount", "application/json",
		strings.NewReader(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"direct",`+
			`"namespace":"team-a","operation":"CREATE","object":{"metadata":{"name":"flux-direct"}}}}`))
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
