package sdkcompat

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// EKS Pod Identity: the EKS webhook gives a pod whose ServiceAccount has an association the Pod Identity Agent's
// endpoint and a token file (keys.EnvAWSContainerCredentialsFullURI, keys.EnvAWSContainerAuthorizationTokenFile); the
// AWS SDK for Go v2 default chain, which Flux's controllers use (fluxcd/pkg/auth aws Provider.NewControllerToken calls
// config.LoadDefaultConfig), fetches credentials there. It takes IRSA's web identity first, which is why the webhook
// keeps eks.amazonaws.com/role-arn off a Pod Identity ServiceAccount.

const podIdentityPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: pod-identity}
identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-controllers
      mechanism: podIdentity
`

// answer runs one admission request through the server's front with the Pod Identity policy.
func answer(t *testing.T, path string, object any) *admissionv1.AdmissionResponse {
	t.Helper()
	p, err := policy.Parse("pod-identity", []byte(podIdentityPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.ModeEnforce})
	resp, err := front.AnswerRequest(t.Context(), path, admissionv1.AdmissionRequest{UID: "1", Namespace: "flux-system",
		Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// agentStandIn answers as the EKS Pod Identity Agent does (aws/eks-pod-identity-agent pkg/handlers
// eks_credential_handler.go: GET /v1/credentials, the token raw in Authorization, credentials as JSON).
type agentStandIn struct {
	mu       sync.Mutex
	requests []string
}

func (a *agentStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests = append(a.requests, r.Method+" "+r.URL.Path+" auth="+r.Header.Get("Authorization"))
	a.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/v1/credentials" || r.Header.Get("Authorization") != "pod-identity-token" {
		http.Error(w, `{"code":"AccessDeniedException","message":"unexpected request"}`, http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"AccessKeyId": "AKIDPODIDENTITY", "SecretAccessKey": "secret",
		"Token": "session", "AccountId": "111122223333",
		"Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
}

func (a *agentStandIn) calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.requests...)
}

// podIdentityEnv sets the environment the EKS webhook injects for an association, with the agent at agentURL and the
// token file holding token (no trailing newline: the SDK refuses one, resolveAuthToken).
func podIdentityEnv(t *testing.T, agentURL, token string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), filepath.Base(keys.AWSPodIdentityTokenFile))
	if err := os.WriteFile(file, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(keys.EnvAWSContainerCredentialsFullURI, agentURL+"/v1/credentials")
	t.Setenv(keys.EnvAWSContainerAuthorizationTokenFile, file)
}

// isolateAWS leaves this machine's own AWS configuration out of the SDK's chain.
func isolateAWS(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	for k, v := range map[string]string{
		"HOME": home, "AWS_CONFIG_FILE": filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "creds"),
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "eu-west-1", "AWS_CA_BUNDLE": "",
		keys.EnvAWSWebIdentityTokenFile: "", keys.EnvAWSRoleARN: "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{keys.EnvAWSWebIdentityTokenFile, keys.EnvAWSRoleARN, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		if err := os.Unsetenv(k); err != nil { // set-but-empty is not unset for every variable the SDK reads
			t.Fatal(err)
		}
	}
}

// retrieved is what the SDK's credentials say about where they came from.
type retrieved struct{ Source, AccessKeyID, AccountID string }

// retrieve loads the SDK's default configuration from this process's environment, as a Flux controller does, and
// retrieves its credentials.
func retrieve(t *testing.T) (retrieved, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	return retrieved{creds.Source, creds.AccessKeyID, creds.AccountID}, err
}

func TestAWSSDKUsesPodIdentityAgent(t *testing.T) {
	// What the webhook writes for a Pod Identity ServiceAccount and its pods: nothing IRSA would pick up.
	sa := answer(t, routes.PathMutateServiceAccount, corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1",
		Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: "source-controller"}})
	pod := answer(t, routes.PathMutatePod, corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "source-controller-"}, Spec: corev1.PodSpec{
			ServiceAccountName: "source-controller", Containers: []corev1.Container{{Name: "manager", Image: "controller"}}}})
	for what, resp := range map[string]*admissionv1.AdmissionResponse{"ServiceAccount": sa, "pod": pod} {
		if !resp.Allowed {
			t.Fatalf("%s refused: %+v", what, resp.Result)
		}
		if !strings.Contains(string(resp.Patch), `"controllers"`) {
			t.Errorf("the %s patch does not name the identity: %s", what, resp.Patch)
		}
		// A key is written as a path (~1 for '/') or inside a whole map added at once.
		for _, k := range []string{"role-arn", keys.EnvAWSWebIdentityTokenFile, keys.EnvAWSRoleARN} {
			if strings.Contains(string(resp.Patch), k) {
				t.Errorf("the %s patch writes %s: %s", what, k, resp.Patch)
			}
		}
	}

	agent := &agentStandIn{}
	srv := httptest.NewServer(agent) // plain HTTP on loopback, as the SDK allows for a full URI (isAllowedHost)
	defer srv.Close()
	isolateAWS(t)
	podIdentityEnv(t, srv.URL, "pod-identity-token")

	creds, err := retrieve(t)
	if err != nil {
		t.Fatalf("retrieve credentials: %v (agent requests %v)", err, agent.calls())
	}
	if creds.Source != endpointcreds.ProviderName || creds.AccessKeyID != "AKIDPODIDENTITY" || creds.AccountID != "111122223333" {
		t.Errorf("credentials from %q with key %q, account %q: want the agent's", creds.Source, creds.AccessKeyID, creds.AccountID)
	}
	if calls := agent.calls(); len(calls) != 1 || calls[0] != "GET /v1/credentials auth=pod-identity-token" {
		t.Errorf("agent requests %v, want one GET with the token file's content as Authorization", calls)
	}
}

// TestIRSAWinsOverPodIdentity shows why the webhook refuses eks.amazonaws.com/role-arn on a Pod Identity ServiceAccount:
// with IRSA's variables beside Pod Identity's, the SDK assumes the IRSA role at STS and never asks the agent.
func TestIRSAWinsOverPodIdentity(t *testing.T) {
	resp := answer(t, routes.PathMutateServiceAccount, corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1",
		Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: "source-controller",
		Annotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/flux-controllers"}}})
	if resp.Allowed || !strings.Contains(resp.Result.Message, "would win over EKS Pod Identity") {
		t.Fatalf("a role-arn on a Pod Identity ServiceAccount was not refused: %+v", resp.Result)
	}

	var rec recorder
	sts := webIdentitySTS(&rec, "AKIDIRSA")
	defer sts.Close()
	agent := &agentStandIn{}
	srv := httptest.NewServer(agent)
	defer srv.Close()

	isolateAWS(t)
	podIdentityEnv(t, srv.URL, "pod-identity-token")
	webIdentity := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(webIdentity, []byte("irsa-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(keys.EnvAWSRoleARN, "arn:aws:iam::111122223333:role/irsa")
	t.Setenv(keys.EnvAWSWebIdentityTokenFile, webIdentity)
	t.Setenv("AWS_ENDPOINT_URL_STS", sts.URL)
	t.Setenv("AWS_CA_BUNDLE", caBundle(t, sts))

	creds, err := retrieve(t)
	if err != nil {
		t.Fatalf("retrieve credentials: %v (STS %v, agent %v)", err, rec.paths, agent.calls())
	}
	if creds.Source != stscreds.WebIdentityProviderName || creds.AccessKeyID != "AKIDIRSA" {
		t.Errorf("credentials from %q with key %q: want IRSA's web identity", creds.Source, creds.AccessKeyID)
	}
	if calls := agent.calls(); len(calls) != 0 {
		t.Errorf("the agent was asked %v: IRSA should have shadowed it", calls)
	}
	if len(rec.forms) != 1 || rec.forms[0].Get("RoleArn") != "arn:aws:iam::111122223333:role/irsa" {
		t.Errorf("STS exchanges %v", rec.forms)
	}
}
