// Package integration runs the webhook behind a real kube-apiserver (envtest) with Flux's real CRDs: every object in
// these specs goes through the API server's admission chain, exactly as in a cluster.
package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

var (
	env        *harness.Env
	policyFile string
)

func TestIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	// Webhook configuration changes reach the API server's admission chain through an informer; on a loaded CI
	// machine that can take longer than Gomega's 1 s default.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	RunSpecs(t, "Integration suite (real kube-apiserver)")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)

	policyFile = filepath.Join(GinkgoT().TempDir(), "policy.yaml")
	Expect(os.WriteFile(policyFile, []byte(testPolicy), 0o600)).To(Succeed())

	var err error
	root, err := harness.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	env, err = harness.Start(ctx, harness.Options{
		PolicyFile:            policyFile,
		ExtraWebhookManifests: []string{filepath.Join(root, "config", "webhook", "deployments.yaml")},
		Log:                   log,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
}, NodeTimeout(3*60e9))

// testPolicy maps Flux's controllers in flux-system and mandates identity for Git sources there and in team-*.
const testPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: integration
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, kustomize-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux-{namespace}
mandates:
  - name: no-static-git-credentials
    namespaces: [flux-system, "team-*"]
    kinds: [GitRepository]
`
