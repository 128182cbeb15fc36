// Package oldcrd runs the webhook behind a real kube-apiserver whose Flux CRDs serve only an old API version, as on a
// cluster that has not upgraded Flux: requests through v1beta1 and v1beta2 must reach the webhook and be answered as
// their v1 equivalent would be. It has its own control plane because its CRDs replace the real ones of the same name.
package oldcrd

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

var env *harness.Env

func TestOldCRDVersions(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	RunSpecs(t, "Flux CRDs serving only old versions (real kube-apiserver)")
}

// oldPolicy mandates identity for every Flux source kind in legacy-* namespaces.
const oldPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: old-versions
mandates:
  - name: no-static-credentials
    namespaces: ["legacy-*"]
    mode: enforce
`

// oldSource is a Flux kind whose CRD is replaced by one serving only an old version, with a spec that carries no
// credential.
type oldSource struct {
	kind string
	gvr  schema.GroupVersionResource
	spec map[string]any
}

// crdFile is the file of Flux's CRD for the kind in $FLUX_CRDS_DIR.
func (s oldSource) crdFile() string { return s.gvr.Group + "_" + s.gvr.Resource + ".yaml" }

const (
	sourceGroup = "source.toolkit.fluxcd.io"
	imageGroup  = "image.toolkit.fluxcd.io"
)

// oldSources: every old version the webhook's rules name is the only one served for at least one kind (OCIRepository
// never had a v1beta1).
var oldSources = []oldSource{
	{"GitRepository", schema.GroupVersionResource{Group: sourceGroup, Version: "v1beta2", Resource: "gitrepositories"},
		map[string]any{"url": "https://github.com/org/app", "interval": "1m"}},
	{"ImageRepository", schema.GroupVersionResource{Group: imageGroup, Version: "v1beta2", Resource: "imagerepositories"},
		map[string]any{"image": "ghcr.io/org/app", "interval": "1m"}},
	{"OCIRepository", schema.GroupVersionResource{Group: sourceGroup, Version: "v1beta2", Resource: "ocirepositories"},
		map[string]any{"url": "oci://ghcr.io/org/manifests", "interval": "1m"}},
	{"HelmRepository", schema.GroupVersionResource{Group: sourceGroup, Version: "v1beta1", Resource: "helmrepositories"},
		map[string]any{"url": "https://charts.example.com", "interval": "1m"}},
	{"Bucket", schema.GroupVersionResource{Group: sourceGroup, Version: "v1beta1", Resource: "buckets"},
		map[string]any{"bucketName": "flux", "endpoint": "minio.example.com", "interval": "1m"}},
}

var _ = BeforeSuite(func(ctx SpecContext) {
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	ctrl.SetLogger(log)
	policyFile := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
	Expect(os.WriteFile(policyFile, []byte(oldPolicy), 0o600)).To(Succeed())

	// The harness starts with Flux's real (v1) CRDs: it proves the sources webhook is wired with a v1 GitRepository.
	var err error
	env, err = harness.Start(ctx, harness.Options{PolicyFile: policyFile, Log: log})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })

	crdDir := os.Getenv("FLUX_CRDS_DIR")
	if crdDir == "" {
		root, err := harness.RepoRoot()
		Expect(err).NotTo(HaveOccurred())
		crdDir = filepath.Join(root, "bin", "crds")
	}
	for _, s := range oldSources {
		replaceCRD(ctx, oldOnlyCRD(filepath.Join(crdDir, s.crdFile()), s.gvr.Version))
	}
}, NodeTimeout(3*60e9))

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// oldOnlyCRD turns Flux's CRD into one that serves only version: its v1 entry, renamed. The credential fields keep
// their JSON paths in every version Flux has served, so the v1 schema accepts the objects an old version did.
func oldOnlyCRD(file, version string) *unstructured.Unstructured {
	GinkgoHelper()
	data, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	crd := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal(data, &crd.Object)).To(Succeed())
	versions, _, err := unstructured.NestedSlice(crd.Object, "spec", "versions")
	Expect(err).NotTo(HaveOccurred())
	var entry map[string]any
	for _, v := range versions {
		if m := v.(map[string]any); m["name"] == "v1" {
			entry = m
		}
	}
	Expect(entry).NotTo(BeNil(), "%s has no v1 version", file)
	entry["name"], entry["served"], entry["storage"] = version, true, true
	delete(entry, "deprecated")
	delete(entry, "deprecationWarning")
	Expect(unstructured.SetNestedSlice(crd.Object, []any{entry}, "spec", "versions")).To(Succeed())
	crd.SetGroupVersionKind(crdGVK)
	return crd
}

// replaceCRD deletes the installed CRD of the same name and creates crd in its place, established.
func replaceCRD(ctx context.Context, crd *unstructured.Unstructured) {
	GinkgoHelper()
	current := &unstructured.Unstructured{}
	current.SetGroupVersionKind(crdGVK)
	current.SetName(crd.GetName())
	Expect(env.Client.Delete(ctx, current)).To(Succeed())
	Eventually(func(ctx context.Context) bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(crd), current.DeepCopy()))
	}).WithContext(ctx).Should(BeTrue(), "%s is deleted", crd.GetName())
	Expect(env.Client.Create(ctx, crd)).To(Succeed())
	Eventually(func(ctx context.Context) bool {
		got := current.DeepCopy()
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), got); err != nil {
			return false
		}
		conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conditions {
			if m := c.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}).WithContext(ctx).Should(BeTrue(), "%s is established", crd.GetName())
}
