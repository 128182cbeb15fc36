package pods_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

// podMetadataRequest builds what the API server sends for a change of a pod's annotations.
func podMetadataRequest(t *testing.T, op admissionv1.Operation, kind, subResource string, old, new map[string]string) admissionv1.AdmissionRequest {
	t.Helper()
	raw := func(a map[string]string) []byte {
		b, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": kind,
			"metadata": map[string]any{"name": "p", "namespace": "apps", "annotations": a}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req := admissionv1.AdmissionRequest{UID: "u-1", Operation: op, Namespace: "apps",
		Name: "p", Kind: metav1.GroupVersionKind{Version: "v1", Kind: kind}, SubResource: subResource}
	req.Object.Raw = raw(new)
	if op == admissionv1.Update {
		req.OldObject.Raw = raw(old)
	}
	return req
}

func TestPodMetadataValidatorAnswers(t *testing.T) {
	owned := map[string]string{keys.AnnotationIdentity: "automation", keys.AnnotationGCPCredentialConfig: `{"type":"external_account"}`}
	rewritten := map[string]string{keys.AnnotationIdentity: "automation", keys.AnnotationGCPCredentialConfig: pods.AttackerGCPConfig}
	cases := []struct {
		name        string
		mode        policy.Mode
		op          admissionv1.Operation
		kind, sub   string
		old, new    map[string]string
		allowed     bool
		warnings    int
		code        int32
		decisionKey string
	}{
		{"a pod update rewriting an owned annotation is denied", policy.ModeEnforce, admissionv1.Update, "Pod", "",
			owned, rewritten, false, 0, http.StatusForbidden, webhook.DecisionDenied},
		{"a pods/status update rewriting an owned annotation is denied", policy.ModeEnforce, admissionv1.Update, "Pod",
			"status", owned, rewritten, false, 0, http.StatusForbidden, webhook.DecisionDenied},
		{"a binding setting an owned annotation is denied", policy.ModeEnforce, admissionv1.Create, "Binding", "binding",
			nil, rewritten, false, 0, http.StatusForbidden, webhook.DecisionDenied},
		{"a legacy bindings request setting an owned annotation is denied", policy.ModeEnforce, admissionv1.Create,
			"Binding", "", nil, rewritten, false, 0, http.StatusForbidden, webhook.DecisionDenied},
		{"an audit-only server (--mode=warn) admits the change with a warning", policy.ModeWarn, admissionv1.Update, "Pod",
			"", owned, rewritten, true, 1, http.StatusOK, webhook.DecisionWarned},
		{"an update keeping the owned annotations is admitted", policy.ModeEnforce, admissionv1.Update, "Pod", "",
			owned, owned, true, 0, http.StatusOK, webhook.DecisionAllowed},
		{"an ephemeralcontainers update is not evaluated (its strategy keeps the old metadata)", policy.ModeEnforce,
			admissionv1.Update, "Pod", "ephemeralcontainers", owned, rewritten, true, 0, http.StatusOK, webhook.DecisionAllowed},
		{"a pod creation is not evaluated here (the mutating path owns it)", policy.ModeEnforce, admissionv1.Create, "Pod",
			"", nil, rewritten, true, 0, http.StatusOK, webhook.DecisionAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: &policy.Policy{}}, Mode: c.mode})
			before := webhooktest.Decisions(t, routes.PathValidatePod, c.decisionKey)
			_, resp := webhooktest.Ask(t, front, routes.PathValidatePod, podMetadataRequest(t, c.op, c.kind, c.sub, c.old, c.new))
			code := int32(http.StatusOK)
			if resp.Result != nil {
				code = resp.Result.Code
			}
			if resp.Allowed != c.allowed || len(resp.Warnings) != c.warnings || code != c.code {
				t.Fatalf("allowed %v warnings %q code %d (%v), want %v, %d warnings, code %d",
					resp.Allowed, resp.Warnings, code, resp.Result, c.allowed, c.warnings, c.code)
			}
			if resp.Patch != nil {
				t.Errorf("a validating answer carries a patch: %s", resp.Patch)
			}
			if got := webhooktest.Decisions(t, routes.PathValidatePod, c.decisionKey) - before; got != 1 {
				t.Errorf("%s decisions counted %v times, want once", c.decisionKey, got)
			}
			body, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), "attacker") {
				t.Errorf("the answer shows the annotation's value: %s", body)
			}
			if !c.allowed && !strings.Contains(resp.Result.Message, keys.AnnotationGCPCredentialConfig) {
				t.Errorf("the denial does not name the key: %s", resp.Result.Message)
			}
		})
	}
}

func TestPodMetadataValidatorRefusesRequestsWithoutObjects(t *testing.T) {
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: &policy.Policy{}}, Mode: policy.ModeEnforce})
	req := podMetadataRequest(t, admissionv1.Update, "Pod", "", nil, map[string]string{keys.AnnotationIdentity: "x"})
	req.OldObject.Raw = nil
	if code, resp := webhooktest.Ask(t, front, routes.PathValidatePod, req); resp.Allowed || code != http.StatusOK || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("an update without its old object: allowed %v status %d, want a 400 result", resp.Allowed, code)
	}
	req = podMetadataRequest(t, admissionv1.Update, "Pod", "", nil, nil)
	req.Object.Raw = []byte(`{"metadata":{"annotations":["not","a","map"]}}`)
	if code, resp := webhooktest.Ask(t, front, routes.PathValidatePod, req); resp.Allowed || code != http.StatusOK || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("metadata of the wrong shape: allowed %v status %d, want a 400 result", resp.Allowed, code)
	}
}
