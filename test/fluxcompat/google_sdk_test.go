package fluxcompat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	jsonpatchapply "github.com/evanphx/json-patch/v5"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

const gcpPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: gcp-sdk}
identities:
  - name: gcp
    namespaces: [flux-system]
    serviceAccounts: [image-automation-controller]
    gcp:
      serviceAccount: flux-{serviceAccount}@my-project.iam.gserviceaccount.com
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov
    injection: full
`

// injectedPod runs a pod through the webhook's pod handler and returns it as the API server stores it.
func injectedPod(t *testing.T, policyYAML, namespace, serviceAccount string) *corev1.Pod {
	t.Helper()
	p, err := policy.Parse("policy", []byte(policyYAML), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: serviceAccount + "-"},
		Spec: corev1.PodSpec{ServiceAccountName: serviceAccount,
			Containers: []corev1.Container{{Name: "manager", Image: "controller"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})
	resp, err := front.AnswerRequest(t.Context(), routes.PathMutatePod, admissionv1.AdmissionRequest{
		UID: "1", Namespace: namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Allowed || len(resp.Patch) == 0 {
		t.Fatalf("pod not patched: %+v", resp.Result)
	}
	patch, err := jsonpatchapply.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

// kubeletFiles writes the files the kubelet would project into the volume mounted over file in c, into a directory
// that stands for the mount, and returns file's path there and the mount path it replaces. Tokens hold token; downward
// API files the pod's field they name (the pod's annotations, as the API server stored them).
func kubeletFiles(t *testing.T, pod *corev1.Pod, c corev1.Container, file, token string) (local, mountPath string) {
	t.Helper()
	var mount *corev1.VolumeMount
	for i := range c.VolumeMounts {
		if m := c.VolumeMounts[i]; strings.HasPrefix(file, m.MountPath+"/") &&
			(mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if mount == nil {
		t.Fatalf("no volume is mounted over %s", file)
	}
	dir := t.TempDir()
	for _, v := range pod.Spec.Volumes {
		if v.Name != mount.Name || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				write(t, filepath.Join(dir, s.ServiceAccountToken.Path), token)
			}
			if s.DownwardAPI != nil {
				for _, item := range s.DownwardAPI.Items {
					key, ok := strings.CutPrefix(item.FieldRef.FieldPath, "metadata.annotations['")
					if !ok {
						t.Fatalf("unexpected downward API field %s", item.FieldRef.FieldPath)
					}
					write(t, filepath.Join(dir, item.Path), pod.Annotations[strings.TrimSuffix(key, "']")])
				}
			}
		}
	}
	return filepath.Join(dir, strings.TrimPrefix(file, mount.MountPath)), mount.MountPath
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// useInjectedConfiguration points this process's GOOGLE_APPLICATION_CREDENTIALS at the credential configuration the
// pod's first container reads, with the files the kubelet would project (the token holding token); the one value
// changed is where the volume is mounted.
func useInjectedConfiguration(t *testing.T, pod *corev1.Pod, token string) {
	t.Helper()
	c := pod.Spec.Containers[0]
	var credentials string
	for _, e := range c.Env {
		if e.Name == keys.EnvGoogleApplicationCredentials {
			credentials = e.Value
		}
	}
	if credentials == "" {
		t.Fatalf("no %s in %+v", keys.EnvGoogleApplicationCredentials, c.Env)
	}
	local, mountPath := kubeletFiles(t, pod, c, credentials, token)
	config, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(config), `"file":"`+mountPath+"/") {
		t.Fatalf("the configuration's token file is not on the mounted volume: %s", config)
	}
	write(t, local, strings.ReplaceAll(string(config), `"file":"`+mountPath+"/", `"file":"`+filepath.Dir(local)+"/"))
	t.Setenv(keys.EnvGoogleApplicationCredentials, local)
	t.Setenv("HOME", t.TempDir()) // no gcloud configuration of this machine's user
}

// defaultGoogleToken is the token Google's library gets from this process's default credentials, through the stand-ins.
func defaultGoogleToken(t *testing.T, endpoints *cloudEndpoints) *oauth2.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: endpoints.transport()})
	creds, err := google.FindDefaultCredentials(ctx, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		t.Fatalf("load the injected configuration: %v", err)
	}
	tok, err := creds.TokenSource.Token()
	if err != nil {
		t.Fatalf("token: %v (requests %v)", err, endpoints.all())
	}
	return tok
}

// TestGoogleLibraryUsesInjectedCredentialConfiguration: the external_account configuration full injection delivers is
// what golang.org/x/oauth2/google loads from GOOGLE_APPLICATION_CREDENTIALS (FindDefaultCredentials): it reads the
// projected token from the file the token projection produces, exchanges it at Google's STS for the workload identity
// provider's audience, and impersonates the Google service account the policy names. Both endpoints are local TLS
// stand-ins under their real host names; the one value the test changes is where the kubelet mounted the volume.
func TestGoogleLibraryUsesInjectedCredentialConfiguration(t *testing.T) {
	const (
		provider = "projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov"
		gsa      = "flux-image-automation-controller@my-project.iam.gserviceaccount.com"
		token    = "projected-token-for-gcp"
	)
	endpoints := newCloudEndpoints(t, []string{"sts.googleapis.com", "iamcredentials.googleapis.com"},
		func(w http.ResponseWriter, r *recordedRequest) {
			switch {
			case r.Host == "sts.googleapis.com" && r.Path == "/v1/token":
				writeJSON(w, map[string]any{"access_token": "federated-token", "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
					"token_type": "Bearer", "expires_in": 3600})
			case r.Host == "iamcredentials.googleapis.com" && strings.HasSuffix(r.Path, ":generateAccessToken"):
				writeJSON(w, map[string]any{"accessToken": "access-token-for-" + gsa,
					"expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
			default:
				http.Error(w, "unexpected "+r.Method+" "+r.Host+r.Path, http.StatusNotFound)
			}
		})

	useInjectedConfiguration(t, injectedPod(t, gcpPolicy, "flux-system", "image-automation-controller"), token)

	tok := defaultGoogleToken(t, endpoints)
	if tok.AccessToken != "access-token-for-"+gsa {
		t.Errorf("access token %q: not the impersonated Google service account's", tok.AccessToken)
	}
	exchanges := endpoints.recorded("sts.googleapis.com", http.MethodPost, "/v1/token")
	if len(exchanges) != 1 {
		t.Fatalf("%d token exchanges at Google's STS; requests %v", len(exchanges), endpoints.all())
	}
	form := exchanges[0].Form
	for k, want := range map[string]string{
		"subject_token":      token,
		"audience":           "//iam.googleapis.com/" + provider,
		"subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
		"grant_type":         "urn:ietf:params:oauth:grant-type:token-exchange",
	} {
		if got := form.Get(k); got != want {
			t.Errorf("STS %s = %q, want %q", k, got, want)
		}
	}
	impersonations := endpoints.recorded("iamcredentials.googleapis.com", http.MethodPost,
		fmt.Sprintf("/v1/projects/-/serviceAccounts/%s:generateAccessToken", gsa))
	if len(impersonations) != 1 || impersonations[0].Authorization != "Bearer federated-token" {
		t.Errorf("impersonation of %s with the federated token: %+v (requests %v)", gsa, impersonations, endpoints.all())
	}
}
