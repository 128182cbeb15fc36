package chart

import (
	"strings"
	"testing"
)

// values.schema.json turns a wrong value into an install-time error that names it, instead of a broken install.
func TestSchemaRejectsBadValues(t *testing.T) {
	cases := []struct {
		name, values, wantInError string
	}{
		{"an unknown mode is rejected", "mode: audit\n", "mode"},
		{"zero replicas are rejected", "replicas: 0\n", "replicas"},
		{"a misspelt top-level key is rejected", "replicaCount: 3\n", "replicaCount"},
		{"a failure policy other than Fail or Ignore is rejected",
			"webhooks:\n  pods:\n    failurePolicy: Retry\n", "failurePolicy"},
		{"a timeout above the API server's 30s maximum is rejected",
			"webhooks:\n  sources:\n    timeoutSeconds: 31\n", "timeoutSeconds"},
		{"an empty policy is rejected", "policy: \"\"\n", "policy"},
		{"a policy that is not an IdentityPolicy is rejected", "policy: |\n  kind: ConfigMap\n", "policy"},
		{"TLS 1.1 is rejected", "tlsMinVersion: \"1.1\"\n", "tlsMinVersion"},
		{"an excluded namespace that is not a DNS label is rejected",
			"namespaceSelector:\n  excludedNamespaces: [Bad_Namespace]\n", "excludedNamespaces"},
		{"a selector operator Kubernetes does not know is rejected",
			"namespaceSelector:\n  matchExpressions:\n    - key: a\n      operator: Like\n", "operator"},
		{"a malformed duration is rejected", "shutdownDelay: 5 seconds\n", "shutdownDelay"},
		{"an unknown key under tls is rejected", "tls:\n  certManager:\n    enabled: true\n    issuer: x\n", "issuer"},
		{"a non-boolean switch is rejected", "networkPolicy:\n  enabled: \"yes\"\n", "enabled"},
		{"an image digest that is not sha256 is rejected", "image:\n  digest: latest\n", "digest"},
		{"an API server address that is no CIDR is rejected",
			"networkPolicy:\n  apiServerCIDRs: [kube-apiserver.example.com]\n", "apiServerCIDRs"},
		{"a client CA that holds no certificate is rejected", "clientAuth:\n  caBundle: not-a-pem\n", "caBundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, releaseNS, c.values)
			if err == nil {
				t.Fatalf("values were accepted:\n%s", c.values)
			}
			if !strings.Contains(err.Error(), "schema") || !strings.Contains(err.Error(), c.wantInError) {
				t.Errorf("error does not come from the schema naming %q: %v", c.wantInError, err)
			}
		})
	}
}

// The controls in the chart's own templates that the schema cannot express.
func TestTemplateRejectsInconsistentValues(t *testing.T) {
	_, err := render(t, releaseNS, "metrics:\n  service:\n    enabled: false\n  serviceMonitor:\n    enabled: true\n")
	if err == nil || !strings.Contains(err.Error(), "metrics.serviceMonitor.enabled needs metrics.service.enabled") {
		t.Errorf("a ServiceMonitor without the metrics Service was not refused: %v", err)
	}
	// The webhooks' conditions come from the policy: one the chart cannot read must not install unscoped webhooks.
	_, err = render(t, releaseNS, "policy: \"kind: IdentityPolicy\\nidentities: [\"\n")
	if err == nil || !strings.Contains(err.Error(), "policy is not valid YAML") {
		t.Errorf("a policy that is not YAML was not refused: %v", err)
	}
}
