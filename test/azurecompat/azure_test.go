package azurecompat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	azwebhook "github.com/Azure/azure-workload-identity/pkg/webhook"
	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// The two implementations under comparison, each behind one function: the Azure webhook's own pod mutator
// (pkg/webhook NewPodMutator, reading ServiceAccounts through a controller-runtime fake client), and this webhook's
// answer through its HTTP front.

const namespace = "flux-system"

// versionServer answers the discovery request NewPodMutator makes (whether native sidecars are safe: 1.32+).
func versionServer(t *testing.T) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"major": "1", "minor": "37", "gitVersion": "v1.37.2"})
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

// azureMutator builds the Azure webhook's mutator for one Azure cloud (its AZURE_ENVIRONMENT) over a fake client that
// holds serviceAccounts.
func azureMutator(t *testing.T, cloud string, serviceAccounts []*corev1.ServiceAccount) admission.Handler {
	t.Helper()
	t.Setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000ff") // the cluster's default; every SA names its own
	t.Setenv("AZURE_ENVIRONMENT", cloud)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	objects := make([]client.Object, len(serviceAccounts))
	for i, sa := range serviceAccounts {
		objects[i] = sa.DeepCopy()
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
	h, err := azwebhook.NewPodMutator(c, c, "", scheme, versionServer(t), "", "")
	if err != nil {
		t.Fatalf("the Azure webhook's NewPodMutator: %v", err)
	}
	return h
}

// answer is one implementation's answer to a pod: admitted or not, the pod as the patch leaves it, the warnings.
type answer struct {
	allowed  bool
	pod      []byte
	warnings []string
	message  string
}

func podRequest(raw []byte) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{UID: "u-1", Operation: admissionv1.Create, Namespace: namespace,
		Kind:   metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw}}
}

// askAzure runs the Azure webhook's mutator on raw and applies its patch as the API server would.
func askAzure(t *testing.T, h admission.Handler, raw []byte) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp := h.Handle(ctx, admission.Request{AdmissionRequest: podRequest(raw)})
	if !resp.Allowed {
		msg := ""
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return answer{message: msg}
	}
	out := raw
	if len(resp.Patches) > 0 {
		patch, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		out = apply(t, raw, patch)
	}
	return answer{allowed: true, pod: out, warnings: resp.Warnings}
}

// askOurs runs this webhook's pod handler on raw through its front and applies the patch.
func askOurs(t *testing.T, s *webhook.Server, raw []byte) answer {
	t.Helper()
	resp, err := s.AnswerRequest(t.Context(), routes.PathMutatePod, podRequest(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed {
		return answer{message: resp.Result.Message, warnings: resp.Warnings}
	}
	out := raw
	if len(resp.Patch) > 0 {
		out = apply(t, raw, resp.Patch)
	}
	return answer{allowed: true, pod: out, warnings: resp.Warnings}
}

func apply(t *testing.T, raw, patch []byte) []byte {
	t.Helper()
	p, err := jsonpatchapply.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	return out
}

// decodePod reads a pod the way the API server would store it.
func decodePod(t *testing.T, raw []byte) *corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal(raw, &pod); err != nil {
		t.Fatalf("decode pod: %v\n%s", err, raw)
	}
	return &pod
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(fmt.Errorf("encode: %w", err))
	}
	return b
}
