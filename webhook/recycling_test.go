package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

// TestRecycledBuffersNeverMixRequests: bodies, patches and answers live in recycled buffers. Requests of every kind
// and size, answered concurrently through one server, must get byte for byte the answer each gets alone from a fresh
// server: a buffer handed to a second request while the first still reads it, or an answer written from a stale
// buffer, shows here (and to the race detector).
func TestRecycledBuffersNeverMixRequests(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
	type call struct {
		path string
		body []byte
		want string
	}
	var calls []call
	for i := range 12 {
		pod := corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "flux-system"},
			Spec:       corev1.PodSpec{ServiceAccountName: "source-controller"},
		}
		for c := range 1 + i%4 { // bodies and patches of different lengths
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d-%s", c,
				strings.Repeat("x", i*40)), Image: "busybox"})
		}
		if i%3 == 1 {
			pod.Spec.ServiceAccountName = "default" // unmapped
		}
		raw, err := json.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call{path: routes.PathMutatePod, body: webhooktest.ReviewOf(t, admissionv1.AdmissionRequest{
			UID: types.UID(fmt.Sprintf("uid-%d", i)), Namespace: "flux-system", Operation: admissionv1.Create,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: k8sruntime.RawExtension{Raw: raw}})})
		sa, err := json.Marshal(corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: "source-controller", Namespace: "flux-system",
				Annotations: map[string]string{"note": strings.Repeat("y", i*30)}}})
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call{path: routes.PathMutateServiceAccount, body: webhooktest.ReviewOf(t, admissionv1.AdmissionRequest{
			UID: types.UID(fmt.Sprintf("sa-%d", i)), Namespace: "flux-system", Operation: admissionv1.Create,
			Kind: metav1.GroupVersionKind{Version: "v1", Kind: "ServiceAccount"}, Object: k8sruntime.RawExtension{Raw: sa}})})
	}
	post := func(s *webhook.Server, c call) string {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, c.path, bytes.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.Handler(c.path).ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s: status %d", c.path, rec.Code)
		}
		return rec.Body.String()
	}
	patched := 0
	for i := range calls {
		calls[i].want = post(webhooktest.NewFront(p, policy.ModeEnforce), calls[i])
		if strings.Contains(calls[i].want, `"patch":`) {
			patched++
		}
	}
	if patched < len(calls)/2 {
		t.Fatalf("only %d of %d answers carry a patch: the test would not exercise recycled patch buffers", patched,
			len(calls))
	}
	shared := webhooktest.NewFront(p, policy.ModeEnforce)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for n := range 300 {
				c := calls[(w*7+n)%len(calls)]
				if got := post(shared, c); got != c.want {
					t.Errorf("%s answered\n%s\nwant\n%s", c.path, got, c.want)
					return
				}
			}
		})
	}
	wg.Wait()
}
