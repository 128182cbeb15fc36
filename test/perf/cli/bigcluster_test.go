// Package cli measures the cluster-reading commands (doctor, audit) on a large cluster: envtest's kube-apiserver with
// Flux's CRDs, seeded with 1,000 mapped namespaces (plus 100 unmapped), a ServiceAccount, Deployment, ReplicaSet and
// pod in each, and 10,000 GitRepositories (some failing to authenticate, as source-controller reports it), Flux's six
// controllers in flux-system, locked down, with their RBAC; then 10,000 more GitRepositories, to show that time grows
// with the cluster and peak memory does not. The commands run as the real binary in a child process, so wall time and
// peak RSS are the command's own (a `policy lint` run gives the binary's baseline); List and GET requests are counted
// by the API server.
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s FLUX_CRDS_DIR=$PWD/bin/crds go test -run '^$' -bench BigCluster -benchtime 1x ./test/perf/cli/
//
// FIW_BIN runs another build of the binary (e.g. an older commit) against the same seed; a build older than the
// status and posture checks finds fewer problems than were seeded, and says so.
package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// The cluster's shape, and what the commands must find in it.
const (
	mappedNamespaces   = 1000
	unmappedNamespaces = 100
	reposPerNamespace  = 10 // 10,000 GitRepositories, then 20,000
	// Every wrongRoleEvery-th mapped ServiceAccount carries another role; every stalePodEvery-th namespace runs a pod
	// of its Deployment without the injected identity; every staticRepoEvery-th GitRepository keeps a Secret.
	wrongRoleEvery  = 20
	stalePodEvery   = 10
	staticRepoEvery = 7
	// Every failingRepoEvery-th GitRepository (from the first on) names its namespace's ServiceAccount and says it
	// could not authenticate.
	failingRepoEvery = 100
	seedWorkers      = 32
	targetSeconds    = 10
)

const bigPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: big
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant.{namespace}
mandates:
  - name: no-static-git-credentials
    namespaces: ["team-*"]
    kinds: [GitRepository]
`

func roleARN(ns string) string { return "arn:aws:iam::111122223333:role/tenant." + ns }

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(sourcev1.AddToScheme(s))
	return s
}()

// BenchmarkBigCluster seeds the cluster once, then runs doctor and audit against it, each b.N times.
func BenchmarkBigCluster(b *testing.B) {
	root, err := harness.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Setenv("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "k8s"))
	}
	crds := os.Getenv("FLUX_CRDS_DIR")
	if crds == "" {
		crds = filepath.Join(root, "bin", "crds")
	}
	bin := os.Getenv("FIW_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "flux-identity-webhook")
		build := exec.CommandContext(b.Context(), "go", "build", "-trimpath", "-o", bin, "./cmd/flux-identity-webhook")
		build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
	}

	te := &envtest.Environment{CRDDirectoryPaths: []string{crds}, ErrorIfCRDPathMissing: true, Scheme: scheme}
	cfg, err := te.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = te.Stop() })
	dir := b.TempDir()
	kubeconfig, policyFile := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(kubeconfig, te.KubeConfig, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(policyFile, []byte(bigPolicy), 0o600); err != nil {
		b.Fatal(err)
	}

	c, err := seedClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	baseline := runCommand(b, cfg, bin, []string{"policy", "lint", policyFile})
	if baseline.exit != 0 {
		b.Fatalf("policy lint: exit %d\n%s", baseline.exit, baseline.stderr)
	}
	fmt.Fprintf(os.Stderr, "baseline (policy lint, no cluster): peak RSS %.1f MiB, Go heap peak %d MB\n",
		float64(baseline.maxRSSKiB)/1024, baseline.peakHeapMB)

	// The commands at 10,000 GitRepositories (the target), then again after 10,000 more: time grows with the cluster,
	// peak RSS must not.
	seeded := 0
	for round, repos := range []int{mappedNamespaces * reposPerNamespace, 2 * mappedNamespaces * reposPerNamespace} {
		start := time.Now()
		created, err := seed(b.Context(), c, round == 0, seeded, repos)
		if err != nil {
			b.Fatal(err)
		}
		seeded = repos
		seedTime := time.Since(start)
		fmt.Fprintf(os.Stderr, "seeded %d objects in %s (%.0f/s, %d workers): %d GitRepositories\n", created,
			seedTime.Round(time.Millisecond), float64(created)/seedTime.Seconds(), seedWorkers, repos)
		wantAudit := countStatic(repos)
		wantDoctor := mappedNamespaces/wrongRoleEvery + mappedNamespaces/stalePodEvery + wantAudit + countFailing(repos)
		for _, tc := range []struct {
			command string
			want    int // violations (audit) or findings (doctor)
		}{{"doctor", wantDoctor}, {"audit", wantAudit}} {
			name := fmt.Sprintf("%s-%dk-repos", tc.command, repos/1000)
			args := []string{tc.command, "--policy", policyFile, "--kubeconfig", kubeconfig, "-o", "json"}
			if tc.command == "doctor" { // the old doctor's default timeout of 1m cannot read this cluster; audit had none
				args = append(args, "--timeout", "10m")
			}
			b.Run(name, func(b *testing.B) {
				b.ReportMetric(seedTime.Seconds(), "seed-s")
				for b.Loop() {
					r := runCommand(b, cfg, bin, args)
					if r.exit != 1 || r.found != tc.want {
						b.Fatalf("exit %d with %d findings, want exit 1 with %d\nstderr: %s", r.exit, r.found, tc.want,
							r.stderr)
					}
					if r.lists["gitrepositories"] < float64(repos/500) {
						b.Errorf("%d GitRepositories read in %.0f Lists: not paged", repos, r.lists["gitrepositories"])
					}
					b.ReportMetric(r.wall.Seconds(), "wall-s")
					b.ReportMetric(float64(r.maxRSSKiB)/1024, "peak-rss-MiB")
					b.ReportMetric(float64(r.peakHeapMB), "peak-heap-MB")
					b.ReportMetric(float64(r.totalLists()), "lists")
					b.ReportMetric(float64(r.gets), "gets")
					fmt.Fprintf(os.Stderr, "%s: %s, exit %d, %d findings, peak RSS %.1f MiB, Go heap peak %d MB, "+
						"live after GC at most %d MB, %d LIST (%s), %d GET\n", name, r.wall.Round(time.Millisecond), r.exit,
						r.found, float64(r.maxRSSKiB)/1024, r.peakHeapMB, r.liveHeapMB, r.totalLists(), r.listSummary(),
						int(r.gets))
					if round == 0 && r.wall > targetSeconds*time.Second {
						b.Errorf("%s took %s, target %ds", name, r.wall, targetSeconds)
					}
				}
			})
		}
	}
}

// countFailing is the number of the first repos GitRepositories that fail to authenticate.
func countFailing(repos int) int {
	n := 0
	for i := range repos {
		if failing(i) {
			n++
		}
	}
	return n
}

// failing GitRepositories keep no Secret: with provider aws a Secret would hold TLS keys only, no violation.
func failing(i int) bool { return i%failingRepoEvery == 1 && i%staticRepoEvery != 0 }

// countStatic is the number of the first repos GitRepositories that keep a Secret.
func countStatic(repos int) int {
	n := 0
	for i := range repos {
		if i%staticRepoEvery == 0 {
			n++
		}
	}
	return n
}

type result struct {
	exit      int
	wall      time.Duration
	maxRSSKiB int64
	// peakHeapMB is the largest Go heap a GC started at; liveHeapMB the largest heap a GC left live (gctrace).
	peakHeapMB, liveHeapMB int
	found                  int
	lists                  map[string]float64 // LIST requests by resource, as the API server counted them
	gets                   float64
	stderr                 string
}

func (r result) totalLists() int {
	n := 0.0
	for _, v := range r.lists {
		n += v
	}
	return int(n)
}

func (r result) listSummary() string {
	var parts []string
	for _, res := range []string{"namespaces", "serviceaccounts", "pods", "deployments", "replicasets",
		"gitrepositories", "ocirepositories", "helmrepositories", "buckets", "imagerepositories", "kustomizations",
		"helmreleases", "providers", "receivers", "imageupdateautomations", "resourcesetinputproviders", "fluxinstances",
		"clusterroles", "clusterrolebindings"} {
		if v := r.lists[res]; v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", res, int(v)))
		}
	}
	return strings.Join(parts, ", ")
}

// runCommand runs the binary and reads how many LIST and GET requests the API server served meanwhile.
func runCommand(b *testing.B, cfg *rest.Config, bin string, args []string) result {
	before := requestCounts(b, cfg)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(b.Context(), bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1") // the Go heap at every GC, on stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Peak RSS is the child's VmHWM, read until it exits. (Its rusage ru_maxrss will not do: Go starts children with
	// vfork, and Linux carries the parent's high-water mark across the exec, so it would report this test's own.)
	exited := make(chan struct{})
	polled := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if kib, err := statusKiB(cmd.Process.Pid, "VmHWM:"); err == nil {
				peak = max(peak, kib)
			}
			select {
			case <-exited:
				polled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	err := cmd.Wait()
	close(exited)
	r := result{wall: time.Since(start), stderr: stderr.String(), maxRSSKiB: <-polled}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.exit = exit.ExitCode()
	case err != nil:
		b.Fatal(err)
	}
	r.peakHeapMB, r.liveHeapMB = gcHeaps(r.stderr)
	after := requestCounts(b, cfg)
	r.lists = map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 && k.verb == "LIST" {
			r.lists[k.resource] += d
		} else if d > 0 && k.verb == "GET" {
			r.gets += d
		}
	}
	if args[0] != "doctor" && args[0] != "audit" {
		return r
	}
	var report struct {
		Findings []struct {
			Violations []json.RawMessage `json:"violations"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		b.Fatalf("%s: output is not JSON: %v\nstderr: %s", args[0], err, stderr.String())
	}
	for _, f := range report.Findings {
		r.found += max(1, len(f.Violations)) // audit: violations; doctor: one finding each
	}
	return r
}

// statusKiB reads a kB field of /proc/PID/status (VmHWM: peak RSS).
func statusKiB(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// gcHeaps reads gctrace lines ("gc 3 @0.1s 2%: … 4->5->2 MB, 8 MB goal, …") for the largest heap at a GC's start
// and the largest heap left live after one.
func gcHeaps(stderr string) (peak, live int) {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		for _, field := range strings.Split(line, ",") {
			var start, end, after int
			if n, _ := fmt.Sscanf(strings.TrimSpace(field[strings.LastIndex(field, ":")+1:]), "%d->%d->%d MB",
				&start, &end, &after); n == 3 {
				peak, live = max(peak, start, end), max(live, after)
			}
		}
	}
	return peak, live
}

type requestKey struct{ verb, resource string }

// requestCounts reads apiserver_request_total from the API server's /metrics.
func requestCounts(b *testing.B, cfg *rest.Config) map[requestKey]float64 {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	out := map[requestKey]float64{}
	if f, ok := families["apiserver_request_total"]; ok {
		for _, m := range f.GetMetric() {
			var k requestKey
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "verb":
					k.verb = l.GetValue()
				case "resource":
					k.resource = l.GetValue()
				}
			}
			out[k] += m.GetCounter().GetValue()
		}
	}
	return out
}

func seedClient(cfg *rest.Config) (client.Client, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1 // the seed is a load generator: no client-side limit
	return client.New(cfg, client.Options{Scheme: scheme})
}

// seed creates, with seedWorkers concurrent writers, the namespaces and their workloads when workloads is set, then
// the GitRepositories numbered from to to, and returns how many objects it created. GitRepository i lives in mapped
// namespace i mod mappedNamespaces.
func seed(ctx context.Context, c client.Client, workloads bool, from, to int) (int64, error) {
	var created atomic.Int64
	create := func(obj client.Object) error {
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
		}
		created.Add(1)
		return nil
	}
	// run runs each job once on seedWorkers goroutines and returns the first error.
	run := func(jobs int, job func(i int) error) error {
		var next atomic.Int64
		var mu sync.Mutex
		var first error
		var wg sync.WaitGroup
		for range seedWorkers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < jobs; i = int(next.Add(1) - 1) {
					if err := job(i); err != nil {
						mu.Lock()
						first = cmp.Or(first, err)
						mu.Unlock()
						next.Store(int64(jobs)) // stop the others
						return
					}
				}
			})
		}
		wg.Wait()
		return first
	}

	namespaces := mappedNamespaces + unmappedNamespaces
	if workloads {
		// Namespaces and ServiceAccounts first: pods need their ServiceAccount to exist.
		err := run(namespaces, func(i int) error {
			ns, sa := nsName(i), &corev1.ServiceAccount{}
			sa.Namespace = ns
			if i < mappedNamespaces {
				role := roleARN(ns)
				if i%wrongRoleEvery == 0 {
					role = roleARN("old")
				}
				sa.Name = "flux-source"
				sa.Annotations = map[string]string{keys.AnnotationIdentity: "tenants", keys.AnnotationAWSRoleARN: role}
			} else {
				sa.Name = "app"
			}
			if err := create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
			return create(sa)
		})
		if err != nil {
			return created.Load(), err
		}
	} else {
		namespaces = 0
	}
	err := run(namespaces+to-from, func(i int) error {
		if i < namespaces {
			return workload(i, create)
		}
		i += from - namespaces
		repo := &sourcev1.GitRepository{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("repo-%d", i/mappedNamespaces),
				Namespace: nsName(i % mappedNamespaces)},
			Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/example/app",
				Interval: metav1.Duration{Duration: time.Minute}},
		}
		if i%staticRepoEvery == 0 {
			repo.Spec.SecretRef = &meta.LocalObjectReference{Name: "git-credentials"}
		}
		if !failing(i) {
			return create(repo)
		}
		repo.Spec.Provider, repo.Spec.ServiceAccountName = sourcev1.GitProviderAWS, "flux-source"
		if err := create(repo); err != nil {
			return err
		}
		repo.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse,
			Reason: sourcev1.AuthenticationFailedReason, LastTransitionTime: metav1.Now(),
			Message: "failed to configure authentication options: failed to create provider access token for service " +
				"account '" + repo.Namespace + "/flux-source': AccessDenied"}}
		return c.Status().Update(ctx, repo)
	})
	if err == nil && workloads {
		err = seedFlux(ctx, create)
	}
	return created.Load(), err
}

// seedFlux creates Flux's six controllers in flux-system, locked down for a tenant mandate (the gate, no
// cross-namespace references) and bound to a ClusterRole that grants the token permission, as Flux installs them.
func seedFlux(ctx context.Context, create func(client.Object) error) error {
	if err := create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}); err != nil {
		return err
	}
	var subjects []rbacv1.Subject
	for _, name := range []string{"source-controller", "kustomize-controller", "helm-controller",
		"notification-controller", "image-reflector-controller", "image-automation-controller"} {
		args := []string{"--watch-all-namespaces", "--feature-gates=ObjectLevelWorkloadIdentity=true"}
		if name != "source-controller" {
			args = append(args, "--no-cross-namespace-refs=true")
		}
		labels := map[string]string{"app": name}
		if err := create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "flux-system"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{Name: "manager",
						Image: "ghcr.io/fluxcd/" + name, Args: args}}}}}}); err != nil {
			return err
		}
		subjects = append(subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: name, Namespace: "flux-system"})
	}
	if err := create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}}}}); err != nil {
		return err
	}
	return create(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "crd-controller"},
		Subjects: subjects})
}

func nsName(i int) string {
	if i < mappedNamespaces {
		return fmt.Sprintf("team-%04d", i)
	}
	return fmt.Sprintf("other-%03d", i-mappedNamespaces)
}

// workload creates one namespace's Deployment, its ReplicaSet and one running pod, as kube-controller-manager would
// (envtest runs no controllers). Every stalePodEvery-th mapped namespace's pod lacks the injected identity.
func workload(i int, create func(client.Object) error) error {
	ns, sa := nsName(i), "flux-source"
	if i >= mappedNamespaces {
		sa = "app"
	}
	labels := map[string]string{"app": "podinfo"}
	spec := corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "manager", Image: "podinfo"}}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
	if err := create(d); err != nil {
		return err
	}
	controller := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-5d8f7", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
			Controller: &controller}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
	if err := create(rs); err != nil {
		return err
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-5d8f7-x", Namespace: ns, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
			Controller: &controller}}},
		Spec: *spec.DeepCopy()}
	if i < mappedNamespaces && i%stalePodEvery != 0 {
		pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: keys.EnvAWSRoleARN, Value: roleARN(ns)},
			{Name: keys.EnvAWSWebIdentityTokenFile, Value: keys.AWSTokenMountPath + "/" + keys.AWSTokenPath}}
	}
	return create(pod)
}
