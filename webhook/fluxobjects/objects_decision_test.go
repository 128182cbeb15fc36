package fluxobjects_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// objectsPolicy maps a ServiceAccount per cloud in every team namespace and mandates identity for every kind there;
// team-strict also covers SOPS private keys and Receiver tokens; sandbox lets objects use the controllers' identity.
const objectsPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: objects
identities:
  - name: tenant-aws
    namespaces: ["team-*"]
    serviceAccounts: [flux-aws]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant-{namespace}
  - name: tenant-azure
    namespaces: ["team-*"]
    serviceAccounts: [flux-azure]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: tenant-gcp
    namespaces: ["team-*"]
    serviceAccounts: [flux-gcp]
    gcp:
      serviceAccount: flux-tenant@tenants-prod.iam.gserviceaccount.com
mandates:
  - name: no-static
    namespaces: ["team-*"]
  - name: strict
    namespaces: [team-strict]
    cover: [sopsPrivateKeys, receiverTokens]
  - name: lax
    namespaces: [sandbox]
    allowControllerIdentity: true
`

func loadObjectsPolicy(t testing.TB, extra string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("objects.yaml", []byte(objectsPolicy+extra), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	return p
}

func TestEvaluateObjectsBeyondSources(t *testing.T) {
	p := loadObjectsPolicy(t, "")
	tests := map[string]struct {
		obj      fluxauth.Object
		messages []string // every violation's message, in order
		warnings []string
	}{
		"a Kustomization decrypting with a mapped ServiceAccount is compliant": {
			obj: fluxauth.Object{Kind: "Kustomization", Namespace: "team-a", Name: "apps", Decryption: true,
				DecryptionServiceAccountName: "flux-aws"},
		},
		"decryption without a ServiceAccount borrows kustomize-controller's identity for KMS keys": {
			obj: fluxauth.Object{Kind: "Kustomization", Namespace: "team-a", Name: "apps", Decryption: true,
				DecryptionSecretRef: "sops-age"},
			messages: []string{"[no-static] spec.decryption.serviceAccountName unset: KMS keys decrypt as " +
				"kustomize-controller: set it to flux-aws"},
		},
		"age keys alone are allowed unless the mandate covers sopsPrivateKeys": {
			obj: fluxauth.Object{Kind: "Kustomization", Namespace: "team-strict", Name: "apps", Decryption: true,
				DecryptionSecretRef: "sops-age", DecryptionServiceAccountName: "flux-gcp"},
			messages: []string{"[strict] drop spec.decryption.secretRef, set spec.decryption.serviceAccountName: " +
				"flux-gcp (identity tenant-gcp)"},
		},
		"a decryption ServiceAccount without a cloud identity is a warning: a Vault role needs none": {
			obj: fluxauth.Object{Kind: "Kustomization", Namespace: "team-a", Name: "apps", Decryption: true,
				DecryptionServiceAccountName: "vault-reader"},
			warnings: []string{"[no-static] spec.decryption.serviceAccountName vault-reader has no cloud identity here: " +
				"only a Vault role can use it"},
		},
		"a kubeconfig Secret is a static credential": {
			obj: fluxauth.Object{Kind: "HelmRelease", Namespace: "team-a", Name: "remote", KubeConfigSecretRef: "prod-kubeconfig"},
			messages: []string{"[no-static] drop spec.kubeConfig.secretRef, use spec.kubeConfig.configMapRef with a " +
				"cloud provider"},
		},
		"a kubeconfig ConfigMap is the identity path": {
			obj: fluxauth.Object{Kind: "Kustomization", Namespace: "team-a", Name: "remote", KubeConfigConfigMapRef: "eks"},
		},
		"an Azure DevOps notification token wins over the identity": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "team-a", Name: "ado", Type: "azuredevops", SecretRef: "pat"},
			messages: []string{"[no-static] drop spec.secretRef, set spec.serviceAccountName: flux-azure " +
				"(identity tenant-azure)"},
		},
		"a Pub/Sub Provider without a ServiceAccount borrows notification-controller's identity": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "team-a", Name: "pubsub", Type: "googlepubsub", Address: "tenants-prod"},
			messages: []string{"[no-static] spec.serviceAccountName unset borrows the controller's identity: set it to " +
				"flux-gcp"},
		},
		"... unless the mandate allows controller identity": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "sandbox", Name: "pubsub", Type: "googlepubsub"},
		},
		"an Event Hubs Provider with another cloud's ServiceAccount": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "team-a", Name: "hub", Type: "azureeventhub", ServiceAccountName: "flux-aws"},
			messages: []string{"[no-static] identity tenant-aws is aws, not azure: set spec.serviceAccountName: flux-azure " +
				"(identity tenant-azure)"},
		},
		"an Event Hubs connection string in spec.address": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "team-a", Name: "hub", Type: "azureeventhub",
				Address: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0"},
			messages: []string{"[no-static] drop the token from spec.address, set spec.serviceAccountName: flux-azure " +
				"(identity tenant-azure)"},
		},
		"a Slack webhook has no identity alternative and is admitted": {
			obj: fluxauth.Object{Kind: "Provider", Namespace: "team-a", Name: "slack", Type: "slack", SecretRef: "slack-url"},
		},
		"a Receiver's token is refused only where the mandate covers receiverTokens": {
			obj: fluxauth.Object{Kind: "Receiver", Namespace: "team-strict", Name: "gh", Type: "github", SecretRef: "token"},
			messages: []string{"[strict] spec.secretRef holds a shared token: remove it, use type: generic-oidc, which " +
				"verifies the sender's own token"},
		},
		"a Receiver's token elsewhere is admitted": {
			obj: fluxauth.Object{Kind: "Receiver", Namespace: "team-a", Name: "gh", Type: "github", SecretRef: "token"},
		},
		"an ImageUpdateAutomation pushing through flux-system's GitRepository borrows its credentials": {
			obj: fluxauth.Object{Kind: "ImageUpdateAutomation", Namespace: "team-a", Name: "bump", SourceRefNamespace: "flux-system"},
			messages: []string{"[no-static] drop spec.sourceRef.namespace, point spec.sourceRef at a GitRepository of " +
				"team-a"},
		},
		"an ECR input provider without a ServiceAccount borrows the operator's identity": {
			obj: fluxauth.Object{Kind: "ResourceSetInputProvider", Namespace: "team-a", Name: "tags", Type: "ECRArtifactTag",
				Address: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/app"},
			messages: []string{"[no-static] spec.serviceAccountName unset: type ECRArtifactTag borrows flux-operator's " +
				"identity: set it to flux-aws"},
		},
		"an OCIArtifactTag pull secret for a cloud registry points at the cloud's own type": {
			obj: fluxauth.Object{Kind: "ResourceSetInputProvider", Namespace: "team-a", Name: "tags", Type: "OCIArtifactTag",
				Address: "oci://tenants.azurecr.io/app", SecretRef: "regcred"},
			messages: []string{"[no-static] drop spec.secretRef, use type: ACRArtifactTag, spec.serviceAccountName: " +
				"flux-azure (identity tenant-azure)"},
		},
		"a GitHub input provider's token has no identity alternative": {
			obj: fluxauth.Object{Kind: "ResourceSetInputProvider", Namespace: "team-a", Name: "prs", Type: "GitHubPullRequest",
				Address: "https://github.com/org/app", SecretRef: "token"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := fluxobjects.Evaluate(p, tc.obj, admissiontest.Now)
			var messages []string
			for _, v := range d.Violations {
				messages = append(messages, v.Message)
				if len(v.Message) > verdict.MaxMessageLength {
					t.Errorf("message over %d bytes: %q", verdict.MaxMessageLength, v.Message)
				}
			}
			if !slices.Equal(messages, tc.messages) {
				t.Errorf("messages =\n  %q\nwant\n  %q", messages, tc.messages)
			}
			if !slices.Equal(d.Warnings, tc.warnings) {
				t.Errorf("warnings =\n  %q\nwant\n  %q", d.Warnings, tc.warnings)
			}
			v := d.Verdict()
			want := webhook.DecisionAllowed
			if len(tc.messages) > 0 {
				want = webhook.DecisionDenied
			} else if len(tc.warnings) > 0 {
				want = webhook.DecisionWarned
			}
			if got := webhook.Outcome(&v, policy.ModeEnforce); got != want {
				t.Errorf("answered %s, want %s", got, want)
			}
		})
	}
}

func TestEvaluateSOPSDecryptionSecrets(t *testing.T) {
	p := loadObjectsPolicy(t, `exceptions:
  - namespace: team-b
    kind: Secret
    name: legacy-sops
    reason: KMS migration, ticket PLAT-9
    expires: "2026-12-31"
`)
	tests := map[string]struct {
		namespace, name string
		data            map[string]string
		messages        []string
		excepted        bool
	}{
		"static AWS keys are refused and the fix names a mapped ServiceAccount": {
			namespace: "team-a", name: "sops", data: map[string]string{"sops.aws-kms": "aws_access_key_id: AKIA\naws_secret_access_key: x\n"},
			messages: []string{"[no-static] drop data[sops.aws-kms], set spec.decryption.serviceAccountName: flux-aws " +
				"(identity tenant-aws)"},
		},
		"the node's managed identity is borrowed, and an exception does not excuse it": {
			namespace: "team-b", name: "legacy-sops", data: map[string]string{"sops.azure-kv": "clientId: 1\n"},
			messages: []string{"[no-static] data[sops.azure-kv] names the node's managed identity: remove it, decrypt " +
				"with a mapped ServiceAccount"},
		},
		"an exception excuses a stored key": {
			namespace: "team-b", name: "legacy-sops", data: map[string]string{"sops.vault-token": "hvs.x"},
			excepted: true,
		},
		"age keys pass unless the mandate covers sopsPrivateKeys": {
			namespace: "team-a", name: "sops", data: map[string]string{"identity.agekey": "AGE-SECRET-KEY-1"},
		},
		"... and are refused where it does": {
			namespace: "team-strict", name: "sops", data: map[string]string{"identity.agekey": "AGE-SECRET-KEY-1"},
			messages: []string{"[strict] drop data[*.agekey], set spec.decryption.serviceAccountName: flux-aws " +
				"(identity tenant-aws)"},
		},
		"outside the mandates nothing is judged": {
			namespace: "apps", name: "sops", data: map[string]string{"sops.aws-kms": "aws_access_key_id: x\n"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := map[string][]byte{}
			for k, v := range tc.data {
				data[k] = []byte(v)
			}
			d := fluxobjects.EvaluateSecret(p, tc.namespace, tc.name, data, admissiontest.Now)
			var messages []string
			for _, v := range d.Violations {
				messages = append(messages, v.Message)
				for _, value := range tc.data {
					if strings.Contains(v.Message, strings.TrimSpace(value)) {
						t.Errorf("the message shows the Secret's value: %q", v.Message)
					}
				}
			}
			if !slices.Equal(messages, tc.messages) {
				t.Errorf("messages =\n  %q\nwant\n  %q", messages, tc.messages)
			}
			if (d.Exception != nil) != tc.excepted {
				t.Errorf("excepted = %v, want %v", d.Exception != nil, tc.excepted)
			}
		})
	}
}

// The kubeconfig ConfigMap admission cannot read, as audit and doctor decide it.
func TestEvaluateKubeConfigMaps(t *testing.T) {
	p := loadObjectsPolicy(t, "")
	obj := fluxauth.Object{Kind: "Kustomization", Namespace: "team-a", Name: "remote", KubeConfigConfigMapRef: "eks"}
	tests := map[string]struct {
		cm       fluxobjects.KubeConfigMap
		messages []string
	}{
		"a mapped ServiceAccount of the ConfigMap's cloud": {
			cm: fluxobjects.KubeConfigMap{Found: true, Provider: "aws", ServiceAccountName: "flux-aws"},
		},
		"no serviceAccountName borrows the controller's identity": {
			cm: fluxobjects.KubeConfigMap{Found: true, Provider: "aws"},
			messages: []string{"[no-static] ConfigMap eks names no serviceAccountName: kustomize-controller's identity " +
				"reaches the cluster"},
		},
		"a ServiceAccount of another cloud": {
			cm:       fluxobjects.KubeConfigMap{Found: true, Provider: "gcp", ServiceAccountName: "flux-azure"},
			messages: []string{"[no-static] ConfigMap eks: its serviceAccountName flux-azure is azure, its provider gcp"},
		},
		"an unmapped ServiceAccount": {
			cm: fluxobjects.KubeConfigMap{Found: true, Provider: "azure", ServiceAccountName: "deployer"},
			messages: []string{"[no-static] ConfigMap eks: its serviceAccountName deployer has no identity here: map it " +
				"to an azure identity"},
		},
		"a generic provider sends the ServiceAccount's own token": {
			cm: fluxobjects.KubeConfigMap{Found: true, Provider: "generic", ServiceAccountName: "deployer"},
		},
		"a missing ConfigMap borrows nothing (the controller fails)": {cm: fluxobjects.KubeConfigMap{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := fluxobjects.EvaluateKubeConfig(p, obj, tc.cm, admissiontest.Now)
			var messages []string
			for _, v := range d.Violations {
				messages = append(messages, v.Message)
			}
			if !slices.Equal(messages, tc.messages) {
				t.Errorf("messages =\n  %q\nwant\n  %q", messages, tc.messages)
			}
		})
	}
	lockdown := loadObjectsPolicy(t, "flux:\n  defaultKubeConfigServiceAccount: flux-azure\n")
	d := fluxobjects.EvaluateKubeConfig(lockdown, obj, fluxobjects.KubeConfigMap{Found: true, Provider: "aws"}, admissiontest.Now)
	if len(d.Violations) != 1 || !strings.Contains(d.Violations[0].Message, "--default-kubeconfig-service-account flux-azure") {
		t.Errorf("with the lockdown declared, its ServiceAccount is checked instead: %+v", d.Violations)
	}
}

// A Secret can carry as many decryption keys as its body holds: each is a violation of its own (an update adding one
// brings something new), and comparing an update with the Secret before it stays linear.
func TestManyDecryptionKeysInOneSecret(t *testing.T) {
	p := loadObjectsPolicy(t, "")
	data := map[string][]byte{}
	for i := range 3000 {
		data[fmt.Sprintf("k%d.agekey", i)] = []byte("AGE-SECRET-KEY-1")
	}
	before := fluxobjects.EvaluateSecret(p, "team-strict", "sops", data, admissiontest.Now)
	if len(before.Violations) != 3000 {
		t.Fatalf("%d violations, want one per key", len(before.Violations))
	}
	if !before.BringsNothingNew(before) {
		t.Error("the same keys bring something new")
	}
	data["another.agekey"] = []byte("AGE-SECRET-KEY-1")
	after := fluxobjects.EvaluateSecret(p, "team-strict", "sops", data, admissiontest.Now)
	if after.BringsNothingNew(before) {
		t.Error("a key added to 3,000 brings nothing new")
	}
}
