package pods_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

// podCreate is a pod CREATE request in namespace, as the API server sends it.
func podCreate(namespace, pod string) admissionv1.AdmissionRequest {
	return admissionv1.AdmissionRequest{UID: "u-1", Operation: admissionv1.Create, Namespace: namespace,
		Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: []byte(pod)}}
}

// tokenLifetime is the expirationSeconds of the token volume a patched pod gained, or 0.
func tokenLifetime(t *testing.T, pod string, patch []byte) int64 {
	t.Helper()
	var out struct {
		Spec struct {
			Volumes []struct {
				Projected *struct {
					Sources []struct {
						ServiceAccountToken *struct {
							ExpirationSeconds int64 `json:"expirationSeconds"`
						} `json:"serviceAccountToken"`
					} `json:"sources"`
				} `json:"projected"`
			} `json:"volumes"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(admissiontest.ApplyPatchBytes(t, []byte(pod), patch), &out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out.Spec.Volumes {
		if v.Projected != nil && v.Projected.Sources[0].ServiceAccountToken != nil {
			return v.Projected.Sources[0].ServiceAccountToken.ExpirationSeconds
		}
	}
	return 0
}

// TestPodTokenLifetimeAnswers: a pod lifetime annotation the cloud's webhook would deny (Azure: not 3600..86400, or not
// a number) or the API server would refuse (over 2^32 s) is a violation of the identity, answered in its mode: denied
// under enforce, admitted with a warning and the identity's lifetime under warn or the server's --mode=warn.
func TestPodTokenLifetimeAnswers(t *testing.T) {
	p := pods.ParseInjectionPolicy(t)
	pod := func(sa, key, value string) string {
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","annotations":{"` + key + `":"` + value +
			`"}},"spec":{"serviceAccountName":"` + sa + `","containers":[{"name":"c","image":"i"}]}}`
	}
	tests := map[string]struct {
		namespace, pod string
		server         policy.Mode
		wantAllowed    bool
		wantLifetime   int64
		wantMessage    string
	}{
		"an Azure lifetime under an hour denies the pod of an enforcing identity, as the Azure webhook does": {
			namespace: "azure", pod: pod("plain", keys.AnnotationAzureTokenExpiration, "3599"),
			server: policy.ModeEnforce, wantMessage: `[azure-plain] azure.workload.identity/service-account-token-expiration "3599" is not 3600..86400`,
		},
		"an Azure lifetime that is not a number denies the pod of an enforcing identity": {
			namespace: "azure", pod: pod("plain", keys.AnnotationAzureTokenExpiration, "1h"),
			server: policy.ModeEnforce, wantMessage: `"1h" is not 3600..86400 s`,
		},
		"an Azure lifetime over a day is only a warning for a warn-mode identity, which keeps its own lifetime": {
			namespace: "azure", pod: pod("options", keys.AnnotationAzureTokenExpiration, "86401"),
			server: policy.ModeEnforce, wantAllowed: true, wantLifetime: 7200, wantMessage: `"86401" is not 3600..86400`,
		},
		"the server's warn mode admits an invalid Azure lifetime with the identity's lifetime": {
			namespace: "azure", pod: pod("plain", keys.AnnotationAzureTokenExpiration, "0"),
			server: policy.ModeWarn, wantAllowed: true, wantLifetime: 3600, wantMessage: `"0" is not 3600..86400`,
		},
		"an AWS lifetime over 2^32 s, which the API server refuses, denies the pod of an enforcing identity": {
			namespace: "aws", pod: pod("plain", keys.AnnotationAWSTokenExpiration, "4294967297"),
			server: policy.ModeEnforce, wantMessage: "eks.amazonaws.com/token-expiration 4294967297 is over 2^32 s",
		},
		"an AWS lifetime of exactly 2^32 s is used": {
			namespace: "aws", pod: pod("plain", keys.AnnotationAWSTokenExpiration, "4294967296"),
			server: policy.ModeEnforce, wantAllowed: true, wantLifetime: 1 << 32,
		},
		"a valid Azure lifetime on the pod wins over the identity's": {
			namespace: "azure", pod: pod("options", keys.AnnotationAzureTokenExpiration, "+3600"),
			server: policy.ModeEnforce, wantAllowed: true, wantLifetime: 3600,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, resp := webhooktest.Ask(t, webhooktest.NewFront(p, tc.server), routes.PathMutatePod, podCreate(tc.namespace, tc.pod))
			if code != http.StatusOK || resp.Allowed != tc.wantAllowed {
				t.Fatalf("status %d, allowed %v, want %v: %+v", code, resp.Allowed, tc.wantAllowed, resp.Result)
			}
			var messages []string
			if resp.Result != nil {
				messages = append(messages, resp.Result.Message)
			}
			messages = append(messages, resp.Warnings...)
			if got := strings.Join(messages, "; "); !strings.Contains(got, tc.wantMessage) ||
				(tc.wantMessage == "" && got != "") {
				t.Errorf("messages %q, want one containing %q", got, tc.wantMessage)
			}
			if !tc.wantAllowed {
				if resp.Result.Code != http.StatusForbidden || len(resp.Patch) != 0 {
					t.Errorf("a denial with code %d and a %d-byte patch", resp.Result.Code, len(resp.Patch))
				}
				return
			}
			if got := tokenLifetime(t, tc.pod, resp.Patch); got != tc.wantLifetime {
				t.Errorf("token lifetime %d, want %d", got, tc.wantLifetime)
			}
		})
	}
}

// TestContainerWarningsAreBounded: a pod whose every container mounts something where the token goes gets one warning
// per container for the first few, then a count, so a pod with many containers cannot flood the response.
func TestContainerWarningsAreBounded(t *testing.T) {
	p := pods.ParseInjectionPolicy(t)
	var containers []string
	for i := range 12 {
		containers = append(containers, `{"name":"c`+string(rune('a'+i))+
			`","volumeMounts":[{"name":"cfg","mountPath":"/var/run/secrets/azure/wi"}]}`)
	}
	pod := `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"plain","volumes":[{"name":"cfg","configMap":{}}],` +
		`"containers":[` + strings.Join(containers, ",") + `]}}`
	_, resp := webhooktest.Ask(t, webhooktest.NewFront(p, policy.ModeEnforce), routes.PathMutatePod, podCreate("azure", pod))
	if !resp.Allowed || len(resp.Warnings) != pods.MaxContainerWarnings+1 {
		t.Fatalf("allowed %v, %d warnings: %q", resp.Allowed, len(resp.Warnings), resp.Warnings)
	}
	if last := resp.Warnings[pods.MaxContainerWarnings]; !strings.Contains(last, "7 more containers left untouched") {
		t.Errorf("last warning %q", last)
	}
	var ops []map[string]any
	_ = json.Unmarshal(resp.Patch, &ops)
	if len(ops) != 1 { // the identity annotation only
		t.Errorf("patch %s: every container should be left untouched", resp.Patch)
	}
}

// TestSovereignCloudsGetTheirEndpoints: an Azure identity's cloud decides AZURE_AUTHORITY_HOST (the Azure webhook's
// getAzureAuthorityHost for its AZURE_ENVIRONMENT), and an AWS role in another partition is injected as it is.
func TestSovereignCloudsGetTheirEndpoints(t *testing.T) {
	p := pods.ParseInjectionPolicy(t)
	tests := map[string]struct {
		namespace, serviceAccount string
		want                      map[string]string
	}{
		"an Azure US Government identity signs in at login.microsoftonline.us": {"azure", "options",
			map[string]string{keys.EnvAzureAuthorityHost: "https://login.microsoftonline.us/",
				keys.EnvAzureClientID: "00000000-0000-0000-0000-000000000002"}},
		"an Azure identity without a cloud signs in at the public cloud": {"azure", "plain",
			map[string]string{keys.EnvAzureAuthorityHost: "https://login.microsoftonline.com/"}},
		"an AWS China role and region are injected as they are": {"aws", "options",
			map[string]string{keys.EnvAWSRoleARN: "arn:aws-cn:iam::111122223333:role/options",
				keys.EnvAWSRegion: "cn-north-1", keys.EnvAWSDefaultRegion: "cn-north-1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := `{"metadata":{"name":"p"},"spec":{"serviceAccountName":"` + tc.serviceAccount +
				`","containers":[{"name":"c"}]}}`
			_, resp := webhooktest.Ask(t, webhooktest.NewFront(p, policy.ModeEnforce), routes.PathMutatePod, podCreate(tc.namespace, pod))
			var out struct {
				Spec struct {
					Containers []struct {
						Env []struct{ Name, Value string } `json:"env"`
					} `json:"containers"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(admissiontest.ApplyPatchBytes(t, []byte(pod), resp.Patch), &out); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range out.Spec.Containers[0].Env {
				got[e.Name] = e.Value
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
