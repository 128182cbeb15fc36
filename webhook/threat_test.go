package webhook_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

// threatPolicy gives two tenants of each cloud their own identity, a glob entry whose role is scoped to the namespace,
// a mandate over the tenants' namespaces, and two exceptions: one that expired yesterday, one that expires tomorrow.
const threatPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: threats
identities:
  - name: tenant-a
    namespaces: [team-a]
    serviceAccounts: [flux-source]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant-a"}
  - name: tenant-b
    namespaces: [team-b]
    serviceAccounts: [flux-source]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant-b"}
  - name: azure-a
    namespaces: [azure-a]
    serviceAccounts: [flux-source]
    azure: {clientID: 00000000-0000-0000-0000-00000000000a, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: azure-b
    namespaces: [azure-b]
    serviceAccounts: [flux-source]
    azure: {clientID: 00000000-0000-0000-0000-00000000000b, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: gcp-a
    namespaces: [gcp-a]
    serviceAccounts: [flux-source]
    gcp: {serviceAccount: tenant-a@my-project.iam.gserviceaccount.com}
  - name: gcp-b
    namespaces: [gcp-b]
    serviceAccounts: [flux-source]
    gcp: {serviceAccount: tenant-b@my-project.iam.gserviceaccount.com}
  - name: self-service
    namespaces: ["tenant-*"]
    serviceAccounts: ["flux-*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant-{namespace}"}
mandates:
  - name: no-static-git-credentials
    namespaces: [team-a, team-b, "tenant-*"]
exceptions:
  - {namespace: team-a, kind: GitRepository, name: legacy-expired, reason: PLAT-1, expires: "%s"}
  - {namespace: team-a, kind: GitRepository, name: legacy-active, reason: PLAT-2, expires: "%s"}
`

const (
	roleA = "arn:aws:iam::111122223333:role/tenant-a"
	roleB = "arn:aws:iam::111122223333:role/tenant-b"
	gsaA  = "tenant-a@my-project.iam.gserviceaccount.com"
	gsaB  = "tenant-b@my-project.iam.gserviceaccount.com"
	azA   = "00000000-0000-0000-0000-00000000000a"
	azB   = "00000000-0000-0000-0000-00000000000b"
)

var (
	saKind  = metav1.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}
	podKind = metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gitV1   = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	gitBeta = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1beta2", Kind: "GitRepository"}
)

func threatServiceAccount(name string, annotations, labels map[string]string) string {
	return mustJSON(map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"name": name, "annotations": annotations, "labels": labels}})
}

func threatGitRepository(name string, spec map[string]any) string {
	spec["url"], spec["interval"] = "https://example.invalid/repo.git", "1m"
	return mustJSON(map[string]any{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
		"metadata": map[string]any{"name": name}, "spec": spec})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static test data always encodes
	}
	return string(b)
}

func secretRef() map[string]any { return map[string]any{"name": "git-credentials"} }

// TestThreats: each case is a named attack by a tenant who controls one namespace, and the outcome the webhook must
// give. Requests go through the HTTP front the server uses, with the policy parsed at today's date.
func TestThreats(t *testing.T) {
	now := time.Now()
	doc := fmt.Sprintf(threatPolicy, now.AddDate(0, 0, -1).Format(time.DateOnly),
		now.AddDate(0, 0, 1).Format(time.DateOnly))
	p, err := policy.Parse("threats.yaml", []byte(doc), now)
	if err != nil {
		t.Fatalf("parse the threat policy: %v", err)
	}
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})

	type attack struct {
		path      string
		kind      metav1.GroupVersionKind
		op        admissionv1.Operation
		namespace string
		object    string
		old       string
		dryRun    bool
	}
	type outcome struct {
		denied string            // the denial names this; empty: admitted
		warned bool              // admitted with a warning
		result map[string]string // annotation or label values after the patch ("labels/<key>" for labels)
		absent []string          // annotation keys that must not be there after the patch
	}
	tests := map[string]struct {
		attack attack
		want   outcome
	}{
		"tenant B puts tenant A's role ARN on its own mapped ServiceAccount: replaced by its own": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "team-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationAWSRoleARN: roleB, keys.AnnotationIdentity: "tenant-b"}},
		},
		"tenant B puts tenant A's role ARN on an unmapped ServiceAccount: denied": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "team-b",
				object: threatServiceAccount("deployer", map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil)},
			want: outcome{denied: keys.AnnotationAWSRoleARN + " is reserved"},
		},
		"tenant B swaps in tenant A's role ARN through an UPDATE of its mapped ServiceAccount: replaced": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Update, namespace: "team-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationAWSRoleARN: roleA,
					keys.AnnotationIdentity: "tenant-a"}, nil),
				old: threatServiceAccount("flux-source", map[string]string{keys.AnnotationAWSRoleARN: roleB,
					keys.AnnotationIdentity: "tenant-b"}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationAWSRoleARN: roleB, keys.AnnotationIdentity: "tenant-b"}},
		},
		"tenant B puts tenant A's Azure client ID on its own mapped ServiceAccount: replaced by its own": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "azure-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationAzureClientID: azA}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationAzureClientID: azB, "labels/" + keys.LabelAzureUse: "true"}},
		},
		"tenant B puts tenant A's Azure client ID on an unmapped ServiceAccount: denied": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "azure-b",
				object: threatServiceAccount("app", map[string]string{keys.AnnotationAzureClientID: azA}, nil)},
			want: outcome{denied: keys.AnnotationAzureClientID + " is reserved"},
		},
		"tenant B puts tenant A's GSA on its own mapped ServiceAccount: replaced by its own": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "gcp-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationGCPServiceAccount: gsaA}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationGCPServiceAccount: gsaB}},
		},
		"tenant B puts tenant A's GSA on an unmapped ServiceAccount: denied": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "gcp-b",
				object: threatServiceAccount("app", map[string]string{keys.AnnotationGCPServiceAccount: gsaA}, nil)},
			want: outcome{denied: keys.AnnotationGCPServiceAccount + " is reserved"},
		},
		"an AWS tenant adds another cloud's identity next to its own: denied as not granted": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "team-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationGCPServiceAccount: gsaA}, nil)},
			want: outcome{denied: "is not granted by this identity"},
		},
		"a ServiceAccount named to match the glob gets its own namespace's templated role, never another's": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create,
				namespace: "tenant-x", object: threatServiceAccount("flux-anything",
					map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationIdentity: "self-service",
				keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/tenant-tenant-x"}},
		},
		"a ServiceAccount named like the glob in a namespace with only exact entries gets nothing and may not claim": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "team-a",
				object: threatServiceAccount("flux-anything", map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil)},
			want: outcome{denied: keys.AnnotationAWSRoleARN + " is reserved"},
		},
		"a namespace outside the policy is left alone: the cloud's trust policy, not the webhook, refuses it": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create,
				namespace: "team-a-evil", object: threatServiceAccount("flux-source",
					map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil)},
			want: outcome{result: map[string]string{keys.AnnotationAWSRoleARN: roleA}, absent: []string{keys.AnnotationIdentity}},
		},
		"setting azure.workload.identity/use to false on a mapped ServiceAccount does not dodge: set back to true": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "azure-a",
				object: threatServiceAccount("flux-source", nil, map[string]string{keys.LabelAzureUse: "false"})},
			want: outcome{result: map[string]string{"labels/" + keys.LabelAzureUse: "true", keys.AnnotationAzureClientID: azA}},
		},
		"setting azure.workload.identity/use to false on a pod does not dodge the Azure webhook: set back to true": {
			attack: attack{path: routes.PathMutatePod, kind: podKind, op: admissionv1.Create, namespace: "azure-a",
				object: mustJSON(map[string]any{"metadata": map[string]any{"name": "p",
					"labels": map[string]string{keys.LabelAzureUse: "false"}},
					"spec": map[string]any{"serviceAccountName": "flux-source",
						"containers": []any{map[string]any{"name": "c", "image": "busybox"}}}})},
			want: outcome{result: map[string]string{"labels/" + keys.LabelAzureUse: "true", keys.AnnotationIdentity: "azure-a"}},
		},
		"adding spec.secretRef to a compliant GitRepository through an UPDATE: denied": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Update, namespace: "team-a",
				object: threatGitRepository("app", map[string]any{"secretRef": secretRef()}),
				old:    threatGitRepository("app", map[string]any{})},
			want: outcome{denied: "no-static-git-credentials"},
		},
		"an UPDATE that leaves an existing secretRef as it was is warned, not denied (the object is not locked)": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Update, namespace: "team-a",
				object: threatGitRepository("app", map[string]any{"secretRef": secretRef(), "ref": map[string]any{
					"branch": "next"}}),
				old: threatGitRepository("app", map[string]any{"secretRef": secretRef()})},
			want: outcome{warned: true},
		},
		"a GitRepository sent as v1beta2 with a secretRef: denied like v1": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitBeta, op: admissionv1.Create, namespace: "team-a",
				object: strings.Replace(threatGitRepository("app", map[string]any{"secretRef": secretRef()}),
					"source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2", 1)},
			want: outcome{denied: "no-static-git-credentials"},
		},
		"a dry-run GitRepository with a secretRef: denied as if real": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Create, namespace: "team-a",
				object: threatGitRepository("app", map[string]any{"secretRef": secretRef()}), dryRun: true},
			want: outcome{denied: "no-static-git-credentials"},
		},
		"a dry-run ServiceAccount claiming another tenant's role: answered exactly as if real": {
			attack: attack{path: routes.PathMutateServiceAccount, kind: saKind, op: admissionv1.Create, namespace: "team-b",
				object: threatServiceAccount("flux-source", map[string]string{keys.AnnotationAWSRoleARN: roleA}, nil),
				dryRun: true},
			want: outcome{result: map[string]string{keys.AnnotationAWSRoleARN: roleB}},
		},
		"provider: github with a secretRef (a GitHub App key is still a static credential): denied": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Create, namespace: "team-b",
				object: threatGitRepository("app", map[string]any{"provider": "github", "secretRef": secretRef()})},
			want: outcome{denied: "no-static-git-credentials"},
		},
		"a secretRef covered by an exception that expired yesterday: denied": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Create, namespace: "team-a",
				object: threatGitRepository("legacy-expired", map[string]any{"secretRef": secretRef()})},
			want: outcome{denied: "no-static-git-credentials"},
		},
		"the same secretRef under an exception that expires tomorrow: admitted (the clock decides, not the name)": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Create, namespace: "team-a",
				object: threatGitRepository("legacy-active", map[string]any{"secretRef": secretRef()})},
			want: outcome{},
		},
		"an exception for one tenant's object does not cover the same name in another tenant's namespace": {
			attack: attack{path: routes.PathValidateFluxSources, kind: gitV1, op: admissionv1.Create, namespace: "team-b",
				object: threatGitRepository("legacy-active", map[string]any{"secretRef": secretRef()})},
			want: outcome{denied: "no-static-git-credentials"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := tc.attack
			req := admissionv1.AdmissionRequest{
				UID: "threat", Kind: a.kind, Namespace: a.namespace, Operation: a.op, DryRun: &a.dryRun,
				Object: runtime.RawExtension{Raw: []byte(a.object)},
			}
			if a.old != "" {
				req.OldObject = runtime.RawExtension{Raw: []byte(a.old)}
			}
			var meta struct {
				Metadata struct{ Name string } `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(a.object), &meta); err != nil {
				t.Fatal(err)
			}
			req.Name = meta.Metadata.Name
			_, resp := webhooktest.Ask(t, front, a.path, req)

			if tc.want.denied != "" {
				if resp.Allowed {
					t.Fatalf("admitted (patch %s, warnings %v): want denied naming %q", resp.Patch,
						resp.Warnings, tc.want.denied)
				}
				if !strings.Contains(resp.Result.Message, tc.want.denied) {
					t.Fatalf("denied with %q: want it to name %q", resp.Result.Message, tc.want.denied)
				}
				return
			}
			if !resp.Allowed {
				t.Fatalf("denied: %v", resp.Result)
			}
			if tc.want.warned != (len(resp.Warnings) > 0) {
				t.Errorf("warnings %v, want warned %v", resp.Warnings, tc.want.warned)
			}
			var after struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
					Labels      map[string]string `json:"labels"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(admissiontest.ApplyPatchBytes(t, []byte(a.object), resp.Patch), &after); err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want.result {
				got, found := after.Metadata.Annotations[k]
				if label, ok := strings.CutPrefix(k, "labels/"); ok {
					got, found = after.Metadata.Labels[label]
				}
				if !found || got != want {
					t.Errorf("%s = %q after the answer, want %q", k, got, want)
				}
			}
			for _, k := range tc.want.absent {
				if v, found := after.Metadata.Annotations[k]; found {
					t.Errorf("%s = %q after the answer, want it absent", k, v)
				}
			}
		})
	}
}
