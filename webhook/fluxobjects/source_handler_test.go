package fluxobjects_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	sourcev1beta2 "github.com/fluxcd/source-controller/api/v1beta2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

func askSource(t *testing.T, mode policy.Mode, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	_, resp := webhooktest.Ask(t, webhooktest.NewFront(loadSourcePolicy(t), mode), routes.PathValidateFluxSources, req)
	return resp
}

func rawObject(t *testing.T, obj runtime.Object) runtime.RawExtension {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

func sourceRequest(t *testing.T, op admissionv1.Operation, kind metav1.GroupVersionKind, obj, old runtime.Object) admissionv1.AdmissionRequest {
	t.Helper()
	req := admissionv1.AdmissionRequest{UID: "1", Operation: op, Kind: kind, Namespace: "team-a", Name: "app"}
	if obj != nil {
		req.Object = rawObject(t, obj)
	}
	if old != nil {
		req.OldObject = rawObject(t, old)
	}
	return req
}

var (
	gitKind    = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"}
	gitKindB2  = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1beta2", Kind: "GitRepository"}
	helmKind   = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmRepository"}
	imageKind  = metav1.GroupVersionKind{Group: "image.toolkit.fluxcd.io", Version: "v1", Kind: "ImageRepository"}
	ociKind    = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "OCIRepository"}
	bucketKind = metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "Bucket"}
)

func gitRepo(secret, provider, sa string) *sourcev1.GitRepository {
	r := &sourcev1.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: "source.toolkit.fluxcd.io/v1", Kind: "GitRepository"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"},
		Spec: sourcev1.GitRepositorySpec{URL: "https://dev.azure.com/org/p/_git/app", Provider: provider,
			ServiceAccountName: sa},
	}
	if secret != "" {
		r.Spec.SecretRef = &meta.LocalObjectReference{Name: secret}
	}
	return r
}

func TestSourceValidatorAnswers(t *testing.T) {
	const gitDenial = "[no-static-git-credentials] drop spec.secretRef, set spec.provider: azure, " +
		"spec.serviceAccountName: flux-source"
	deleting := gitRepo("git-auth", "", "")
	deleting.DeletionTimestamp = &metav1.Time{Time: admissiontest.Now}
	deleting.Finalizers = []string{"finalizers.fluxcd.io"}
	b2 := &sourcev1beta2.GitRepository{
		TypeMeta:   metav1.TypeMeta{APIVersion: "source.toolkit.fluxcd.io/v1beta2", Kind: "GitRepository"},
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"},
		Spec: sourcev1beta2.GitRepositorySpec{URL: "https://dev.azure.com/org/p/_git/app",
			SecretRef: &meta.LocalObjectReference{Name: "git-auth"}},
	}
	// Every credential-shaped field that is not a credential, on the kinds that have them.
	notCredentials := &sourcev1.OCIRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"},
		Spec: sourcev1.OCIRepositorySpec{URL: "oci://example.azurecr.io/app", Provider: "azure",
			ServiceAccountName: "flux-source",
			Verify:             &sourcev1.OCIRepositoryVerification{Provider: "cosign", SecretRef: &meta.LocalObjectReference{Name: "keys"}},
			CertSecretRef:      &meta.LocalObjectReference{Name: "ca"},
			ProxySecretRef:     &meta.LocalObjectReference{Name: "proxy"}},
	}
	gitNotCredentials := gitRepo("", "azure", "flux-source")
	gitNotCredentials.Spec.Verification = &sourcev1.GitRepositoryVerification{Mode: "HEAD",
		SecretRef: meta.LocalObjectReference{Name: "pgp"}}
	gitNotCredentials.Spec.ProxySecretRef = &meta.LocalObjectReference{Name: "proxy"}
	bucketCA := &sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "team-a"},
		Spec: sourcev1.BucketSpec{BucketName: "b", Endpoint: "s3.amazonaws.com", Provider: "azure",
			ServiceAccountName: "flux-source", CertSecretRef: &meta.LocalObjectReference{Name: "ca"}}}

	tests := map[string]struct {
		mode         policy.Mode
		req          admissionv1.AdmissionRequest
		wantAllowed  bool
		wantMessage  string
		wantWarnings []string
		wantDecision string
	}{
		"a violating GitRepository is denied in enforce with the exact message": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Create, gitKind, gitRepo("git-auth", "", ""), nil),
			wantMessage: gitDenial, wantDecision: webhook.DecisionDenied,
		},
		"the server-wide warn mode admits it with the same text as a warning": {
			mode: policy.ModeWarn, req: sourceRequest(t, admissionv1.Create, gitKind, gitRepo("git-auth", "", ""), nil),
			wantAllowed: true, wantWarnings: []string{gitDenial}, wantDecision: webhook.DecisionWarned,
		},
		"a v1beta2 GitRepository body is decoded and denied the same way": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Create, gitKindB2, b2, nil),
			wantMessage: gitDenial, wantDecision: webhook.DecisionDenied,
		},
		"an update that leaves the credentials of a violating object unchanged is reported, not denied": {
			mode:        policy.ModeEnforce,
			req:         sourceRequest(t, admissionv1.Update, gitKind, gitRepo("git-auth", "", ""), gitRepo("git-auth", "", "")),
			wantAllowed: true, wantWarnings: []string{gitDenial}, wantDecision: webhook.DecisionWarned,
		},
		"an update that adds spec.secretRef is denied": {
			mode:        policy.ModeEnforce,
			req:         sourceRequest(t, admissionv1.Update, gitKind, gitRepo("git-auth", "", ""), gitRepo("", "azure", "flux-source")),
			wantMessage: gitDenial, wantDecision: webhook.DecisionDenied,
		},
		"an update that points spec.secretRef at another secret is denied": {
			mode:        policy.ModeEnforce,
			req:         sourceRequest(t, admissionv1.Update, gitKind, gitRepo("git-auth-2", "", ""), gitRepo("git-auth", "", "")),
			wantMessage: gitDenial, wantDecision: webhook.DecisionDenied,
		},
		"removing the finalizer of a violating object being deleted is never blocked": {
			mode:        policy.ModeEnforce,
			req:         sourceRequest(t, admissionv1.Update, gitKind, deleting, gitRepo("git-auth", "", "")),
			wantAllowed: true, wantDecision: webhook.DecisionSkipped,
		},
		"a status update is never blocked": {
			mode: policy.ModeEnforce,
			req: func() admissionv1.AdmissionRequest {
				r := sourceRequest(t, admissionv1.Update, gitKind, gitRepo("git-auth", "", ""), gitRepo("", "", ""))
				r.SubResource = "status"
				return r
			}(),
			wantAllowed: true, wantDecision: webhook.DecisionSkipped,
		},
		"a deletion is never blocked": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Delete, gitKind, nil, gitRepo("git-auth", "", "")),
			wantAllowed: true, wantDecision: webhook.DecisionSkipped,
		},
		"verify, proxy and CA secrets on a GitRepository are not credentials": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Create, gitKind, gitNotCredentials, nil),
			wantAllowed: true, wantDecision: webhook.DecisionAllowed,
		},
		"verify, proxy and CA secrets on an OCIRepository are not credentials": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Create, ociKind, notCredentials, nil),
			wantAllowed: true, wantDecision: webhook.DecisionAllowed,
		},
		"a CA secret on a Bucket is not a credential": {
			mode: policy.ModeEnforce, req: sourceRequest(t, admissionv1.Create, bucketKind, bucketCA, nil),
			wantAllowed: true, wantDecision: webhook.DecisionAllowed,
		},
		"an https HelmRepository with spec.secretRef under a warn mandate is admitted with a warning": {
			mode: policy.ModeEnforce,
			req: sourceRequest(t, admissionv1.Create, helmKind, &sourcev1.HelmRepository{
				ObjectMeta: metav1.ObjectMeta{Name: "charts", Namespace: "team-a"},
				Spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example.com",
					SecretRef: &meta.LocalObjectReference{Name: "helm-creds"}},
			}, nil),
			wantAllowed: true, wantDecision: webhook.DecisionWarned,
			wantWarnings: []string{"[no-static-registry-credentials] spec.secretRef: add an exception " +
				"(no cloud identity for charts.example.com)"},
		},
		"an ImageRepository decodes with the image-reflector types and is warned about": {
			mode: policy.ModeEnforce,
			req: sourceRequest(t, admissionv1.Create, imageKind, &imagev1.ImageRepository{
				ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "team-a"},
				Spec: imagev1.ImageRepositorySpec{Image: "tenants.azurecr.io/org/app",
					SecretRef: &meta.LocalObjectReference{Name: "regcred"}},
			}, nil),
			wantAllowed: true, wantDecision: webhook.DecisionWarned,
			wantWarnings: []string{"[no-static-registry-credentials] drop spec.secretRef, set spec.provider: azure, " +
				"spec.serviceAccountName: flux-source"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := askSource(t, tc.mode, tc.req)
			if resp.Allowed != tc.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tc.wantAllowed, resp.Result)
			}
			if !tc.wantAllowed {
				if resp.Result == nil || resp.Result.Message != tc.wantMessage || resp.Result.Code != http.StatusForbidden {
					t.Errorf("denial = %+v, want 403 %q", resp.Result, tc.wantMessage)
				}
			}
			if strings.Join(resp.Warnings, "|") != strings.Join(tc.wantWarnings, "|") {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tc.wantWarnings)
			}
			if got := resp.AuditAnnotations[keys.AuditDecision]; got != tc.wantDecision {
				t.Errorf("decision annotation = %q, want %q", got, tc.wantDecision)
			}
			for k := range resp.AuditAnnotations {
				if strings.Contains(k, "/") {
					t.Errorf("audit annotation key %q has a '/': the API server would refuse it once prefixed", k)
				}
			}
		})
	}
}

func TestSourceValidatorRefusesWhatItCannotRead(t *testing.T) {
	for name, req := range map[string]admissionv1.AdmissionRequest{
		"a kind that is not a Flux source": sourceRequest(t, admissionv1.Create,
			metav1.GroupVersionKind{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmChart"}, gitRepo("", "", ""), nil),
		"a body that is not JSON": {UID: "1", Operation: admissionv1.Create, Kind: gitKind,
			Object: runtime.RawExtension{Raw: []byte(`"not a GitRepository"`)}},
		"no object at all": {UID: "1", Operation: admissionv1.Create, Kind: gitKind},
	} {
		t.Run(name, func(t *testing.T) {
			code, resp := webhooktest.Ask(t, webhooktest.NewFront(loadSourcePolicy(t), policy.ModeEnforce), routes.PathValidateFluxSources, req)
			// The review is well formed, so the answer is 200; its object is not a source the webhook can read.
			if code != http.StatusOK || resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest {
				t.Errorf("status %d, result %+v, want 200 with a 400 result", code, resp.Result)
			}
		})
	}
}

func TestSourceValidatorCountsViolationsByAnsweredMode(t *testing.T) {
	count := func(mode string) float64 {
		return webhooktest.Violations(t, mode, "GitRepository", "team-a", verdict.RuleMandate, "no-static-git-credentials")
	}
	beforeEnforce, beforeWarn := count("enforce"), count("warn")
	req := sourceRequest(t, admissionv1.Create, gitKind, gitRepo("git-auth", "", ""), nil)
	askSource(t, policy.ModeEnforce, req)
	askSource(t, policy.ModeWarn, req)
	if got := count("enforce") - beforeEnforce; got != 1 {
		t.Errorf("enforce violations grew by %v, want 1", got)
	}
	if got := count("warn") - beforeWarn; got != 1 {
		t.Errorf("warn violations grew by %v (the server-wide warn mode), want 1", got)
	}
	resp := askSource(t, policy.ModeEnforce, req)
	if got := resp.AuditAnnotations[keys.AuditMandate]; got != "no-static-git-credentials" {
		t.Errorf("mandate annotation = %q", got)
	}
	if got := resp.AuditAnnotations[keys.AuditRules]; got != "mandate:no-static-git-credentials" {
		t.Errorf("rules annotation = %q", got)
	}
}

// FuzzSourceValidator feeds arbitrary bodies to the handler for every kind: it must never panic, must answer a body it
// cannot read with an error, and every message it returns must stay within verdict.MaxMessageLength.
func FuzzSourceValidator(f *testing.F) {
	f.Add(0, []byte(`{"metadata":{"name":"app","namespace":"team-a"},"spec":{"secretRef":{"name":"s"}}}`))
	f.Add(1, []byte(`{"spec":{"provider":"azure","serviceAccountName":"flux-source","secretRef":{"name":"s"}}}`))
	f.Add(2, []byte(`{"spec":{"type":"oci","secretRef":{"name":"s"},"provider":"gcp"}}`))
	f.Add(3, []byte(`{"spec":{"serviceAccountName":"`+strings.Repeat("x", 300)+`"}}`))
	f.Add(4, []byte(`{"metadata":{"deletionTimestamp":"2026-01-01T00:00:00Z"},"spec":{"secretRef":{"name":"s"}}}`))
	f.Add(0, []byte(`[]`))
	kinds := []metav1.GroupVersionKind{gitKind, ociKind, helmKind, bucketKind, imageKind}
	front := webhooktest.NewFront(loadSourcePolicy(f), policy.ModeEnforce)
	f.Fuzz(func(t *testing.T, k int, body []byte) {
		if k < 0 {
			k = -k
		}
		if !json.Valid(body) {
			body, _ = json.Marshal(string(body)) // the review must carry JSON; a string is a wrong-shaped object
		}
		req := admissionv1.AdmissionRequest{UID: "1", Operation: admissionv1.Create,
			Kind: kinds[k%len(kinds)], Namespace: "team-a", Name: "app", Object: runtime.RawExtension{Raw: body}}
		_, resp := webhooktest.Ask(t, front, routes.PathValidateFluxSources, req)
		if !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden {
			for _, m := range strings.Split(resp.Result.Message, "; ") {
				if len(m) > verdict.MaxMessageLength {
					t.Errorf("denial message over the limit: %q", m)
				}
			}
		}
		for _, w := range resp.Warnings {
			if len(w) > verdict.MaxMessageLength {
				t.Errorf("warning over the limit: %q", w)
			}
		}
		if body[0] == '"' && resp.Allowed {
			t.Errorf("an unreadable body was admitted")
		}
	})
}
