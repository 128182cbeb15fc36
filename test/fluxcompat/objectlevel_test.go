package fluxcompat

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/auth/aws"
	"github.com/fluxcd/pkg/auth/azure"
	"github.com/fluxcd/pkg/auth/gcp"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// Object-level workload identity: Flux's controllers resolve a source's spec.serviceAccountName themselves with
// github.com/fluxcd/pkg/auth (v0.54.3, as source-controller v1.9.6): they read the cloud annotations of that
// ServiceAccount, ask the API server for a token of it (TokenRequest) with the cloud's audience, and exchange it at
// the cloud. Here the ServiceAccounts are created through a real API server, so this webhook annotates them, and the
// exchanges go to local TLS stand-ins of the clouds' token endpoints under their real host names.

const objectLevelPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: object-level}
identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    azure:
      clientID: 00000000-0000-0000-0000-0000000000c1
      tenantID: 00000000-0000-0000-0000-0000000000aa
      cloud: AzureUSGovernmentCloud
    injection: full
  - name: tenant-aws
    namespaces: [tenant-a]
    serviceAccounts: [flux-aws]
    aws: {roleARN: "arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}"}
  - name: tenant-azure
    namespaces: [tenant-a]
    serviceAccounts: [flux-azure]
    azure:
      clientID: 00000000-0000-0000-0000-0000000000a2
      tenantID: 00000000-0000-0000-0000-0000000000bb
      cloud: AzureUSGovernmentCloud
  - name: tenant-gcp
    namespaces: [tenant-a]
    serviceAccounts: [flux-gcp]
    gcp:
      serviceAccount: flux-tenant-a@my-project.iam.gserviceaccount.com
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov
`

// startControlPlane starts a real API server with this webhook registered as config/webhook/manifests.yaml says.
func startControlPlane(t *testing.T, policyYAML string) *harness.Env {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Setenv("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "k8s"))
	}
	crds := os.Getenv("FLUX_CRDS_DIR")
	if crds == "" {
		crds = filepath.Join(root, "bin", "crds")
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := harness.Start(t.Context(), harness.Options{PolicyFile: file, CRDDirs: []string{crds}, Log: logr.Discard(),
		WebhookManifests: filepath.Join(root, "config", "webhook", "manifests.yaml")})
	if err != nil {
		t.Fatalf("start the control plane (make envtest-bins flux-crds builds what it needs): %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	return env
}

func createServiceAccount(t *testing.T, c client.Client, namespace, name string) *corev1.ServiceAccount {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := c.Create(t.Context(), sa); err != nil {
		t.Fatalf("create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	return sa
}

func TestFluxObjectLevelIdentityReadsWhatTheWebhookWrites(t *testing.T) {
	env := startControlPlane(t, objectLevelPolicy)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, ns := range []string{"flux-system", "tenant-a"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"flux-aws", "flux-azure", "flux-gcp"} {
		if sa := createServiceAccount(t, env.Client, "tenant-a", name); sa.Annotations[keys.AnnotationIdentity] == "" {
			t.Fatalf("the API server stored %s without the webhook's annotations: %v", name, sa.Annotations)
		}
	}

	// source-controller runs with the controllers' identity, fully injected: its AZURE_AUTHORITY_HOST is what
	// azidentity, inside Flux's azure provider, sends the tenants' exchanges to as well.
	createServiceAccount(t, env.Client, "flux-system", "source-controller")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "source-controller-", Namespace: "flux-system"},
		Spec: corev1.PodSpec{ServiceAccountName: "source-controller",
			Containers: []corev1.Container{{Name: "manager", Image: "ghcr.io/fluxcd/source-controller:v1.9.6"}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	authority := ""
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == keys.EnvAzureAuthorityHost {
			authority = e.Value
		}
	}
	if authority != "https://login.microsoftonline.us/" {
		t.Fatalf("source-controller's pod was stored with AZURE_AUTHORITY_HOST %q, want US Government's login endpoint", authority)
	}
	t.Setenv(keys.EnvAzureAuthorityHost, authority)

	endpoints := newCloudEndpoints(t, []string{"sts.eu-west-1.amazonaws.com", "login.microsoftonline.com",
		"login.microsoftonline.us", "sts.googleapis.com", "iamcredentials.googleapis.com"}, cloudTokenEndpoints)
	// Flux's providers build their HTTP clients from http.DefaultTransport (auth.Options.GetHTTPClient).
	defaultTransport := http.DefaultTransport
	http.DefaultTransport = endpoints.transport()
	t.Cleanup(func() { http.DefaultTransport = defaultTransport })
	auth.EnableObjectLevelWorkloadIdentity()
	t.Cleanup(auth.DisableObjectLevelWorkloadIdentity)

	token := func(p auth.Provider, sa string, opts ...auth.Option) auth.Token {
		t.Helper()
		tok, err := auth.GetAccessToken(ctx, p, append([]auth.Option{auth.WithClient(env.Client),
			auth.WithServiceAccountNamespace("tenant-a"), auth.WithServiceAccountName(sa)}, opts...)...)
		if err != nil {
			t.Fatalf("%s: Flux's GetAccessToken for tenant-a/%s: %v (requests %v)", p.GetName(), sa, err, endpoints.all())
		}
		return tok
	}
	subject := func(sa string) string { return "system:serviceaccount:tenant-a:" + sa }
	checkJWT := func(cloud, jwt, audience, sa string) {
		t.Helper()
		aud, sub := jwtClaims(t, jwt)
		if !slices.Equal(aud, []string{audience}) || sub != subject(sa) {
			t.Errorf("%s: Flux exchanged a token for %v as %s, want %s as %s", cloud, aud, sub, audience, subject(sa))
		}
	}

	t.Run("aws", func(t *testing.T) {
		creds := token(aws.Provider{}, "flux-aws", auth.WithSTSRegion("eu-west-1")).(*aws.Credentials)
		if creds.AccessKeyId == nil || *creds.AccessKeyId != "AKIDFROMLOCALSTS" {
			t.Errorf("credentials %+v", creds)
		}
		calls := endpoints.recorded("sts.eu-west-1.amazonaws.com", http.MethodPost, "/")
		if len(calls) != 1 {
			t.Fatalf("%d calls to the regional STS; requests %v", len(calls), endpoints.all())
		}
		if got := calls[0].Form.Get("RoleArn"); got != "arn:aws:iam::111122223333:role/tenant-a.flux-aws" {
			t.Errorf("RoleArn %q, want the policy's role for tenant-a/flux-aws", got)
		}
		checkJWT("aws", calls[0].Form.Get("WebIdentityToken"), keys.AWSDefaultAudience, "flux-aws")
	})
	t.Run("azure", func(t *testing.T) {
		token(azure.Provider{}, "flux-azure", auth.WithScopes("https://management.usgovcloudapi.net/.default"))
		calls := endpoints.recorded("login.microsoftonline.us", http.MethodPost,
			"/00000000-0000-0000-0000-0000000000bb/oauth2/v2.0/token")
		if len(calls) != 1 {
			t.Fatalf("%d exchanges with the policy's tenant at US Government's login endpoint; requests %v",
				len(calls), endpoints.all())
		}
		if got := calls[0].Form.Get("client_id"); got != "00000000-0000-0000-0000-0000000000a2" {
			t.Errorf("client_id %q, want the policy's", got)
		}
		checkJWT("azure", calls[0].Form.Get("client_assertion"), keys.AzureAudience, "flux-azure")
		if public := endpoints.recorded("login.microsoftonline.com", http.MethodPost, "/"); len(public) > 0 {
			t.Errorf("a token request went to the public cloud: %+v", public)
		}
	})
	t.Run("gcp", func(t *testing.T) {
		const gsa = "flux-tenant-a@my-project.iam.gserviceaccount.com"
		token(gcp.Provider{}, "flux-gcp")
		calls := endpoints.recorded("sts.googleapis.com", http.MethodPost, "/v1/token")
		if len(calls) != 1 {
			t.Fatalf("%d exchanges at Google's STS; requests %v", len(calls), endpoints.all())
		}
		audience := "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/flux-pool/providers/flux-prov"
		if got := calls[0].Form.Get("audience"); got != audience {
			t.Errorf("STS audience %q, want %q", got, audience)
		}
		checkJWT("gcp", calls[0].Form.Get("subject_token"), audience, "flux-gcp")
		if imp := endpoints.recorded("iamcredentials.googleapis.com", http.MethodPost,
			fmt.Sprintf("/v1/projects/-/serviceAccounts/%s:generateAccessToken", gsa)); len(imp) != 1 {
			t.Errorf("no impersonation of the policy's %s; requests %v", gsa, endpoints.all())
		}
	})
}

// cloudTokenEndpoints answers as AWS STS, Microsoft Entra (instance and tenant discovery, then the token endpoint) and
// Google's STS and IAM Credentials API answer a successful exchange.
func cloudTokenEndpoints(w http.ResponseWriter, r *recordedRequest) {
	host := strings.Split(r.Host, ":")[0]
	switch {
	case strings.HasPrefix(host, "sts.") && strings.HasSuffix(host, ".amazonaws.com"):
		if r.Form.Get("Action") != "AssumeRoleWithWebIdentity" {
			http.Error(w, "unexpected action", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials><AccessKeyId>AKIDFROMLOCALSTS</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>session</SessionToken><Expiration>%s</Expiration></Credentials>
    <AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), r.Form.Get("RoleArn"))
	case strings.HasPrefix(host, "login."):
		base := "https://" + host
		switch {
		case strings.HasSuffix(r.Path, "/discovery/instance"):
			writeJSON(w, map[string]any{"tenant_discovery_endpoint": base + "/common/v2.0/.well-known/openid-configuration",
				"api-version": "1.1", "metadata": []map[string]any{{"preferred_network": host, "preferred_cache": host,
					"aliases": []string{host}}}})
		case strings.HasSuffix(r.Path, "/.well-known/openid-configuration"):
			tenant := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")[0]
			writeJSON(w, map[string]string{"token_endpoint": base + "/" + tenant + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
				"issuer":                 base + "/" + tenant + "/v2.0"})
		case strings.HasSuffix(r.Path, "/oauth2/v2.0/token") && r.Form.Get("grant_type") == "client_credentials":
			writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": "entra-access-token"})
		default:
			http.Error(w, "unexpected "+r.Path, http.StatusNotFound)
		}
	case host == "sts.googleapis.com" && r.Path == "/v1/token":
		writeJSON(w, map[string]any{"access_token": "federated-token", "token_type": "Bearer", "expires_in": 3600,
			"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
	case host == "iamcredentials.googleapis.com" && strings.HasSuffix(r.Path, ":generateAccessToken"):
		writeJSON(w, map[string]any{"accessToken": "google-access-token",
			"expireTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	default:
		http.Error(w, "unexpected "+r.Method+" "+host+r.Path, http.StatusNotFound)
	}
}
