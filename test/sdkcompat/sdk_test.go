// Package sdkcompat proves that what full injection writes into a pod is what the real cloud SDKs read: the AWS SDK
// for Go v2 default credential chain and azidentity's workload identity credential, each pointed at a local TLS
// endpoint that records the token exchange (no internet); and that the AWS SDK reaches EKS Pod Identity's agent, after
// IRSA (podidentity_test.go).
package sdkcompat

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azpolicy "github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

const sdkPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: sdk}
identities:
  - name: aws
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{serviceAccount}
      region: eu-west-1
      stsRegionalEndpoints: true
    injection: full
  - name: azure
    namespaces: [flux-system]
    serviceAccounts: [image-reflector-controller]
    azure:
      clientID: 00000000-0000-0000-0000-000000000002
      tenantID: 00000000-0000-0000-0000-0000000000aa
    injection: full
`

// injectedContainer runs a pod through the server's pod handler and returns its first container after the patch,
// plus the pod's volumes.
func injectedContainer(t *testing.T, serviceAccount string) (corev1.Container, []corev1.Volume) {
	t.Helper()
	p, err := policy.Parse("sdk", []byte(sdkPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: serviceAccount + "-"},
		Spec: corev1.PodSpec{ServiceAccountName: serviceAccount,
			Containers: []corev1.Container{{Name: "manager", Image: "controller"}}},
	}
	raw, _ := json.Marshal(pod)
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})
	resp, err := front.AnswerRequest(t.Context(), routes.PathMutatePod, admissionv1.AdmissionRequest{
		UID: "1", Namespace: "flux-system", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	})
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
	var injected corev1.Pod
	if err := json.Unmarshal(out, &injected); err != nil {
		t.Fatal(err)
	}
	return injected.Spec.Containers[0], injected.Spec.Volumes
}

// applyPodEnv sets the container's environment for this test process, with the token file moved from its mount path
// to a temporary file holding token.
func applyPodEnv(t *testing.T, c corev1.Container, tokenVar, token string) string {
	t.Helper()
	var tokenFile string
	for _, e := range c.Env {
		v := e.Value
		if e.Name == tokenVar {
			tokenFile = filepath.Join(t.TempDir(), filepath.Base(v))
			if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
				t.Fatal(err)
			}
			v = tokenFile
		}
		t.Setenv(e.Name, v)
	}
	if tokenFile == "" {
		t.Fatalf("the container has no %s", tokenVar)
	}
	return tokenFile
}

// caBundle writes the test server's certificate as a PEM bundle.
func caBundle(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type recorder struct {
	mu    sync.Mutex
	forms []url.Values
	paths []string
}

func (r *recorder) record(req *http.Request) url.Values {
	_ = req.ParseForm()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forms = append(r.forms, req.PostForm)
	r.paths = append(r.paths, req.Method+" "+req.URL.Path)
	return req.PostForm
}

// webIdentitySTS is a local TLS STS that answers AssumeRoleWithWebIdentity with accessKeyID, recording each request.
func webIdentitySTS(rec *recorder, accessKeyID string) *httptest.Server {
	return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		form := rec.record(req)
		if form.Get("Action") != "AssumeRoleWithWebIdentity" {
			http.Error(w, "unexpected action "+form.Get("Action"), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		_, _ = fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>
      <SessionToken>session</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/flux/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, accessKeyID)
	}))
}

func TestAWSSDKUsesInjectedWebIdentity(t *testing.T) {
	var rec recorder
	sts := webIdentitySTS(&rec, "AKIDFROMLOCALSTS")
	defer sts.Close()

	c, volumes := injectedContainer(t, "source-controller")
	if len(volumes) != 1 || volumes[0].Projected.Sources[0].ServiceAccountToken.Audience != "sts.amazonaws.com" {
		t.Fatalf("token volume: %+v", volumes)
	}
	// Nothing else on this machine may supply credentials.
	home := t.TempDir()
	for k, v := range map[string]string{
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "creds"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_STS": sts.URL, "AWS_CA_BUNDLE": caBundle(t, sts),
	} {
		t.Setenv(k, v)
	}
	applyPodEnv(t, c, keys.EnvAWSWebIdentityTokenFile, "projected-token-for-aws")

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("region %q, want eu-west-1 from AWS_REGION", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatalf("retrieve credentials: %v (requests: %v)", err, rec.paths)
	}
	if creds.Source != stscreds.WebIdentityProviderName || creds.AccessKeyID != "AKIDFROMLOCALSTS" {
		t.Errorf("credentials from %q with key %q: want web identity from the local STS", creds.Source, creds.AccessKeyID)
	}
	if len(rec.forms) != 1 {
		t.Fatalf("%d token exchanges, want 1", len(rec.forms))
	}
	if got := rec.forms[0].Get("RoleArn"); got != "arn:aws:iam::111122223333:role/flux-source-controller" {
		t.Errorf("RoleArn %q", got)
	}
	if got := rec.forms[0].Get("WebIdentityToken"); got != "projected-token-for-aws" {
		t.Errorf("WebIdentityToken %q: the SDK did not read the injected token file", got)
	}
}

func TestAzureIdentityUsesInjectedWorkloadIdentity(t *testing.T) {
	const tenant = "00000000-0000-0000-0000-0000000000aa"
	var rec recorder
	var base string
	entra := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		form := rec.record(req)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
			_ = json.NewEncoder(w).Encode(map[string]string{
				"token_endpoint":         base + "/" + tenant + "/oauth2/v2.0/token",
				"authorization_endpoint": base + "/" + tenant + "/oauth2/v2.0/authorize",
				"issuer":                 base + "/" + tenant + "/v2.0",
			})
		case req.URL.Path == "/"+tenant+"/oauth2/v2.0/token" && form.Get("grant_type") == "client_credentials":
			_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600,
				"access_token": "access-token-from-local-entra"})
		default:
			http.Error(w, "unexpected "+req.URL.Path, http.StatusNotFound)
		}
	}))
	defer entra.Close()
	base = entra.URL

	c, volumes := injectedContainer(t, "image-reflector-controller")
	if len(volumes) != 1 || volumes[0].Projected.Sources[0].ServiceAccountToken.Audience != "api://AzureADTokenExchange" {
		t.Fatalf("token volume: %+v", volumes)
	}
	tokenFile := applyPodEnv(t, c, keys.EnvAzureFederatedTokenFile, "projected-token-for-azure")
	if got := os.Getenv(keys.EnvAzureAuthorityHost); got != keys.AzureDefaultAuthorityHost {
		t.Errorf("injected authority %q, want %q", got, keys.AzureDefaultAuthorityHost)
	}
	t.Setenv(keys.EnvAzureAuthorityHost, entra.URL+"/") // the only value the test changes: where Entra is

	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Transport: entra.Client()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, azpolicy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatalf("get token: %v (requests: %v)", err, rec.paths)
	}
	if tok.Token != "access-token-from-local-entra" {
		t.Errorf("token %q", tok.Token)
	}
	var exchange url.Values
	for i, p := range rec.paths {
		if p == "POST /"+tenant+"/oauth2/v2.0/token" {
			exchange = rec.forms[i]
		}
	}
	if exchange == nil {
		t.Fatalf("no token exchange against the injected tenant; requests: %v", rec.paths)
	}
	if got := exchange.Get("client_id"); got != "00000000-0000-0000-0000-000000000002" {
		t.Errorf("client_id %q", got)
	}
	if got := exchange.Get("client_assertion"); got != "projected-token-for-azure" {
		t.Errorf("client_assertion %q: azidentity did not read %s", got, tokenFile)
	}
	if got := exchange.Get("client_assertion_type"); got != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		t.Errorf("client_assertion_type %q", got)
	}
}
