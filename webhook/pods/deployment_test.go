package pods

import (
	"fmt"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestPodTemplateLabelsOnlyForAzureInjectedByTheAzureWebhook(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: azure
    namespaces: [a]
    serviceAccounts: [sa]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: azure-full
    namespaces: [b]
    serviceAccounts: [sa]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
    injection: full
  - name: aws
    namespaces: [c]
    serviceAccounts: [sa]
    aws: {roleARN: "arn:aws:iam::111122223333:role/x"}
`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]string{"a": "map[azure.workload.identity/use:true]", "b": "map[]", "c": "map[]"} {
		m, _ := p.IdentityFor(ns, "sa")
		if got := fmt.Sprint(PodTemplateLabels(m)); got != want {
			t.Errorf("%s: %s, want %s", m.Identity.Name, got, want)
		}
	}
}
