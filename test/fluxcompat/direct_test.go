package fluxcompat

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/auth/aws"
	"github.com/fluxcd/pkg/auth/gcp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// Direct Workload Identity Federation and EKS Pod Identity, held to the code that reads what the webhook writes:
// Flux's gcp provider without a Google service account (fluxcd/pkg/auth v0.54.3 gcp Provider.NewTokenForServiceAccount
// leaves ServiceAccountImpersonationURL empty when iam.gke.io/gcp-service-account is absent, so the STS token is the
// access token), Google's x/oauth2 loading full injection's configuration without an impersonation URL, and Flux's
// aws provider at controller level (NewControllerToken: config.LoadDefaultConfig) reaching the Pod Identity Agent.

const directPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: direct}
identities:
  - name: gke-direct
    namespaces: [tenant-g]
    serviceAccounts: [flux-gke]
    gcp:
      workloadPool: my-project.svc.id.goog
      projectNumber: "123456789012"
  - name: wif-direct
    namespaces: [tenant-g]
    serviceAccounts: [flux-wif]
    gcp:
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov
  - name: wif-direct-full
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    gcp:
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov
    injection: full
`

const wifAudience = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov"

// gkeMetadataServer stands in for GKE's metadata server, the three values Flux's gcp provider reads on GKE (fluxcd/pkg
// auth gcp gkeMetadataLoader.load; the same paths as Flux's own gke_metadata_test.go). The metadata client dials
// GCE_METADATA_HOST over plain HTTP with its own transport.
type gkeMetadataServer struct {
	mu       sync.Mutex
	requests []string
}

func (g *gkeMetadataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.URL.Path)
	g.mu.Unlock()
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
		return
	}
	value, ok := map[string]string{
		"/computeMetadata/v1/project/project-id":                   "my-project",
		"/computeMetadata/v1/instance/attributes/cluster-location": "europe-west1",
		"/computeMetadata/v1/instance/attributes/cluster-name":     "c1",
	}[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Metadata-Flavor", "Google")
	_, _ = w.Write([]byte(value))
}

func TestFluxObjectLevelDirectFederation(t *testing.T) {
	env := startControlPlane(t, directPolicy)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-g"}}); err != nil {
		t.Fatal(err)
	}
	gke := createServiceAccount(t, env.Client, "tenant-g", "flux-gke")
	wif := createServiceAccount(t, env.Client, "tenant-g", "flux-wif")
	if _, has := gke.Annotations[keys.AnnotationGCPServiceAccount]; has || gke.Annotations[keys.AnnotationIdentity] != "gke-direct" ||
		gke.Annotations[keys.AnnotationGCPWorkloadIdentityProvider] != "" {
		t.Fatalf("GKE direct federation ServiceAccount stored with %v: want only the identity name", gke.Annotations)
	}
	if _, has := wif.Annotations[keys.AnnotationGCPServiceAccount]; has ||
		wif.Annotations[keys.AnnotationGCPWorkloadIdentityProvider] != strings.TrimPrefix(wifAudience, keys.GCPAudiencePrefix) {
		t.Fatalf("direct federation ServiceAccount outside GKE stored with %v: want the provider alone", wif.Annotations)
	}
	// The webhook owns the Google service account key: adding one would turn direct federation into impersonation.
	spoof := gke.DeepCopy()
	spoof.Annotations[keys.AnnotationGCPServiceAccount] = "admin@my-project.iam.gserviceaccount.com"
	if err := env.Client.Update(ctx, spoof); err == nil || !strings.Contains(err.Error(), "turns direct federation into impersonation") {
		t.Fatalf("adding a Google service account to a direct federation ServiceAccount: %v, want a denial", err)
	}

	metadataServer := &gkeMetadataServer{}
	md := httptest.NewServer(metadataServer)
	defer md.Close()
	// Flux's gcp package loads GKE's metadata once per process: this is the only test of this binary on that path.
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))

	endpoints := newCloudEndpoints(t, []string{"sts.googleapis.com", "iamcredentials.googleapis.com"}, cloudTokenEndpoints)
	defaultTransport := http.DefaultTransport
	http.DefaultTransport = endpoints.transport()
	t.Cleanup(func() { http.DefaultTransport = defaultTransport })
	auth.EnableObjectLevelWorkloadIdentity()
	t.Cleanup(auth.DisableObjectLevelWorkloadIdentity)

	exchange := func(t *testing.T, sa string) (*gcp.Token, recordedRequest) {
		t.Helper()
		before := len(endpoints.recorded("sts.googleapis.com", http.MethodPost, "/v1/token"))
		tok, err := auth.GetAccessToken(ctx, gcp.Provider{}, auth.WithClient(env.Client),
			auth.WithServiceAccountNamespace("tenant-g"), auth.WithServiceAccountName(sa))
		if err != nil {
			t.Fatalf("Flux's GetAccessToken for tenant-g/%s: %v (requests %v)", sa, err, endpoints.all())
		}
		calls := endpoints.recorded("sts.googleapis.com", http.MethodPost, "/v1/token")
		if len(calls) != before+1 {
			t.Fatalf("%d exchanges at Google's STS, want 1; requests %v", len(calls)-before, endpoints.all())
		}
		if imp := endpoints.recorded("iamcredentials.googleapis.com", http.MethodPost, "/"); len(imp) > 0 {
			t.Errorf("direct federation impersonated a Google service account: %v", endpoints.all())
		}
		gt, ok := tok.(*gcp.Token)
		if !ok || gt.AccessToken != "federated-token" {
			t.Errorf("token %#v: want the STS token itself, no impersonation", tok)
		}
		return gt, calls[len(calls)-1]
	}

	t.Run("outside GKE, through the provider annotation", func(t *testing.T) {
		_, call := exchange(t, "flux-wif")
		if got := call.Form.Get("audience"); got != wifAudience {
			t.Errorf("STS audience %q, want %q", got, wifAudience)
		}
		aud, sub := jwtClaims(t, call.Form.Get("subject_token"))
		if !slices.Equal(aud, []string{wifAudience}) || sub != "system:serviceaccount:tenant-g:flux-wif" {
			t.Errorf("exchanged a token for %v as %s", aud, sub)
		}
	})
	t.Run("on GKE, with nothing but the identity name", func(t *testing.T) {
		_, call := exchange(t, "flux-gke")
		const audience = "identitynamespace:my-project.svc.id.goog:" +
			"https://container.googleapis.com/v1/projects/my-project/locations/europe-west1/clusters/c1"
		if got := call.Form.Get("audience"); got != audience {
			t.Errorf("STS audience %q, want %q", got, audience)
		}
		// The token's audience is the pool Flux derives from the metadata server: the policy's workloadPool must be it.
		aud, sub := jwtClaims(t, call.Form.Get("subject_token"))
		if !slices.Equal(aud, []string{"my-project.svc.id.goog"}) || sub != "system:serviceaccount:tenant-g:flux-gke" {
			t.Errorf("exchanged a token for %v as %s, want the policy's pool my-project.svc.id.goog", aud, sub)
		}
		metadataServer.mu.Lock()
		defer metadataServer.mu.Unlock()
		if len(metadataServer.requests) < 3 {
			t.Errorf("metadata requests %v: Flux did not take the GKE path", metadataServer.requests)
		}
	})
}

// TestGoogleLibraryUsesDirectCredentialConfiguration: full injection's external_account configuration for direct
// federation has no service_account_impersonation_url, and golang.org/x/oauth2/google then returns the STS token as
// the access token (google/externalaccount Config.tokenSource), with no call to the IAM Credentials API.
func TestGoogleLibraryUsesDirectCredentialConfiguration(t *testing.T) {
	endpoints := newCloudEndpoints(t, []string{"sts.googleapis.com", "iamcredentials.googleapis.com"}, cloudTokenEndpoints)
	pod := injectedPod(t, directPolicy, "flux-system", "source-controller")
	if strings.Contains(pod.Annotations[keys.AnnotationGCPCredentialConfig], "service_account_impersonation_url") {
		t.Fatalf("direct federation's configuration impersonates: %s", pod.Annotations[keys.AnnotationGCPCredentialConfig])
	}
	useInjectedConfiguration(t, pod, "projected-token-for-gcp")

	tok := defaultGoogleToken(t, endpoints)
	if tok.AccessToken != "federated-token" {
		t.Errorf("access token %q: want the STS token itself", tok.AccessToken)
	}
	exchanges := endpoints.recorded("sts.googleapis.com", http.MethodPost, "/v1/token")
	if len(exchanges) != 1 || exchanges[0].Form.Get("audience") != wifAudience ||
		exchanges[0].Form.Get("subject_token") != "projected-token-for-gcp" {
		t.Fatalf("exchanges at Google's STS %+v; requests %v", exchanges, endpoints.all())
	}
	if imp := endpoints.recorded("iamcredentials.googleapis.com", http.MethodPost, "/"); len(imp) > 0 {
		t.Errorf("the library impersonated: %v", endpoints.all())
	}
}

// TestFluxControllerLevelPodIdentity: Flux's controllers reach EKS Pod Identity through their own credential chain
// (fluxcd/pkg/auth aws Provider.NewControllerToken, config.LoadDefaultConfig with AWS_REGION), from the environment
// EKS's webhook injects for an association; the agent is a plain-HTTP stand-in on loopback, which the SDK allows.
func TestFluxControllerLevelPodIdentity(t *testing.T) {
	var (
		mu       sync.Mutex
		requests []string
	)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path != "/v1/credentials" || r.Header.Get("Authorization") != "pod-identity-token" {
			http.Error(w, `{"code":"AccessDeniedException","message":"unexpected"}`, http.StatusForbidden)
			return
		}
		writeJSON(w, map[string]string{"AccessKeyId": "AKIDPODIDENTITY", "SecretAccessKey": "secret", "Token": "session",
			"AccountId": "111122223333", "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	}))
	defer agent.Close()
	home := t.TempDir()
	tokenFile := filepath.Join(home, "eks-pod-identity-token")
	write(t, tokenFile, "pod-identity-token") // no trailing newline: the SDK refuses one
	for k, v := range map[string]string{
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "creds"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "eu-west-1",
		// With AWS_CA_BUNDLE set, Flux's NewControllerToken fails before any request: it passes its own *http.Client
		// (config.WithHTTPClient), which the SDK cannot add a CA bundle to (config resolveCustomCABundle).
		"AWS_CA_BUNDLE":                            "",
		keys.EnvAWSContainerCredentialsFullURI:     agent.URL + "/v1/credentials",
		keys.EnvAWSContainerAuthorizationTokenFile: tokenFile,
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		keys.EnvAWSWebIdentityTokenFile, keys.EnvAWSRoleARN, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := auth.GetAccessToken(ctx, aws.Provider{}) // no ServiceAccount: the controller's own credentials
	if err != nil {
		t.Fatalf("Flux's controller-level token: %v (agent requests %v)", err, requests)
	}
	creds, ok := tok.(*aws.Credentials)
	if !ok || creds.AccessKeyId == nil || *creds.AccessKeyId != "AKIDPODIDENTITY" {
		t.Errorf("credentials %#v: want the agent's", tok)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 1 || requests[0] != "GET /v1/credentials auth=pod-identity-token" {
		t.Errorf("agent requests %v", requests)
	}
}
