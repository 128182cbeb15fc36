// Package warnmode runs the webhook server with --mode=warn (an audit-only installation) behind a real kube-apiserver:
// every denial a policy asks for must come back as a warning with the same text.
package warnmode

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

var env *harness.Env

func TestWarnMode(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Server --mode=warn suite (real kube-apiserver)")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	policyFile := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
	Expect(os.WriteFile(policyFile, []byte(enforcingPolicy), 0o600)).To(Succeed())
	var err error
	env, err = harness.Start(ctx, harness.Options{PolicyFile: policyFile, Mode: "warn", Log: log})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
}, NodeTimeout(3*60e9))

// enforcingPolicy asks for enforcement; the server's --mode=warn must overrule it.
const enforcingPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: warn-mode
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-git-credentials
    namespaces: ["team-*"]
    mode: enforce
`
