package chart

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy/conditions"
)

const (
	pathSA         = "/mutate-v1-serviceaccount"
	pathPod        = "/mutate-v1-pod"
	pathSources    = "/validate-flux-sources"
	pathDeployment = "/mutate-apps-v1-deployment"

	annotationInjectCA = "cert-manager.io/inject-ca-from"
)

// variants are the documented ways to install the chart (README "Variants"); every one renders, lints and passes
// the checks that hold for all installs.
var variants = []struct {
	name, values string
	check        func(t *testing.T, o objects)
}{
	{"the default install uses cert-manager, enforces, and runs two spread, disruption-protected replicas", ``,
		func(t *testing.T, o objects) {
			d := deployment(t, o)
			if *d.Spec.Replicas != 2 {
				t.Errorf("replicas = %d, want 2", *d.Spec.Replicas)
			}
			if !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--mode=enforce") {
				t.Errorf("args %v lack --mode=enforce", d.Spec.Template.Spec.Containers[0].Args)
			}
			checkCertManagerChain(t, o)
			checkExcluded(t, o, []string{"kube-system", "kube-node-lease", releaseNS})
			if o.count("Secret") != 0 {
				t.Error("a Secret is rendered although cert-manager issues the certificate")
			}
			if o.count("ServiceMonitor") != 0 {
				t.Error("a ServiceMonitor is rendered by default; it needs the Prometheus operator's CRD")
			}
			if w := webhookPaths(o); slices.Contains(w, pathDeployment) {
				t.Errorf("the deployment webhook is registered by default: %v", w)
			}
			pdb, ok := o.get("PodDisruptionBudget", releaseName).(*policyv1.PodDisruptionBudget)
			if !ok {
				t.Fatal("no PodDisruptionBudget")
			}
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
				t.Errorf("PDB allows %v unavailable (minAvailable %v), want maxUnavailable 1", pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable)
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("PDB selector %v does not select the pods (%v)", pdb.Spec.Selector, err)
			}
		}},
	{"without cert-manager the chart generates a CA and a serving certificate and puts the CA in every webhook, the optional one included",
		"tls:\n  certManager:\n    enabled: false\nwebhooks:\n  deployments:\n    enabled: true\n",
		func(t *testing.T, o objects) {
			if n := o.count("Certificate") + o.count("Issuer"); n != 0 {
				t.Errorf("%d cert-manager objects rendered with cert-manager disabled", n)
			}
			s, ok := o.get("Secret", releaseName+"-tls").(*corev1.Secret)
			if !ok {
				t.Fatal("no generated TLS Secret")
			}
			if s.Type != corev1.SecretTypeTLS {
				t.Errorf("Secret type %q, want %q", s.Type, corev1.SecretTypeTLS)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(s.Data["ca.crt"]) {
				t.Fatal("ca.crt holds no PEM certificate")
			}
			block, _ := pem.Decode(s.Data["tls.crt"])
			if block == nil {
				t.Fatal("tls.crt holds no PEM block")
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("parse tls.crt: %v", err)
			}
			for _, host := range []string{releaseName + "." + releaseNS + ".svc", releaseName + "." + releaseNS + ".svc.cluster.local"} {
				if _, err := cert.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
					t.Errorf("serving certificate does not verify for %s against ca.crt: %v", host, err)
				}
			}
			if left := time.Until(cert.NotAfter); left < 9*365*24*time.Hour {
				t.Errorf("serving certificate expires in %s, want the documented 3650 days", left)
			}
			forEachWebhook(o, func(cfg, name string, cc admissionv1.WebhookClientConfig, _ *metav1.ObjectMeta) {
				if string(cc.CABundle) != string(s.Data["ca.crt"]) {
					t.Errorf("%s: caBundle is not the generated CA", name)
				}
			})
			forEachWebhook(o, func(cfg, _ string, _ admissionv1.WebhookClientConfig, meta *metav1.ObjectMeta) {
				if v, ok := meta.Annotations[annotationInjectCA]; ok {
					t.Errorf("%s carries %s=%s without cert-manager", cfg, annotationInjectCA, v)
				}
			})
		}},
	{"warn mode passes --mode=warn to the server", "mode: warn\n",
		func(t *testing.T, o objects) {
			if args := deployment(t, o).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--mode=warn") {
				t.Errorf("args %v lack --mode=warn", args)
			}
		}},
	{"custom selectors add excluded namespaces and labels but never re-include kube-system or the release namespace",
		`namespaceSelector:
  excludedNamespaces: [legacy-tenant]
  matchLabels:
    fluxidentity.dev/managed: "true"
  matchExpressions:
    - key: environment
      operator: In
      values: [prod, staging]
`,
		func(t *testing.T, o objects) {
			checkExcluded(t, o, []string{"kube-system", "legacy-tenant", releaseNS})
			forEachSelector(o, func(name string, sel *metav1.LabelSelector) {
				if sel.MatchLabels["fluxidentity.dev/managed"] != "true" {
					t.Errorf("%s: matchLabels %v lack the custom label", name, sel.MatchLabels)
				}
				s, err := metav1.LabelSelectorAsSelector(sel)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				ns := labels.Set{"kubernetes.io/metadata.name": "team-a", "fluxidentity.dev/managed": "true", "environment": "prod"}
				if !s.Matches(ns) {
					t.Errorf("%s: selector %s does not select a labelled prod namespace", name, s)
				}
				ns["environment"] = "dev"
				if s.Matches(ns) {
					t.Errorf("%s: selector %s selects a dev namespace", name, s)
				}
			})
		}},
	{"the deployment webhook, when enabled, mutates apps/v1 Deployments on CREATE and UPDATE and fails open",
		"webhooks:\n  deployments:\n    enabled: true\n",
		func(t *testing.T, o objects) {
			m, ok := o.get("MutatingWebhookConfiguration", releaseName+"-deployments").(*admissionv1.MutatingWebhookConfiguration)
			if !ok {
				t.Fatalf("no MutatingWebhookConfiguration %s-deployments", releaseName)
			}
			if got := m.Annotations[annotationInjectCA]; got != releaseNS+"/"+releaseName+"-serving" {
				t.Errorf("%s = %q: cert-manager would leave the deployment webhook without a CA", annotationInjectCA, got)
			}
			var found bool
			for _, w := range m.Webhooks {
				if *w.ClientConfig.Service.Path != pathDeployment {
					continue
				}
				found = true
				want := []admissionv1.RuleWithOperations{{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule: admissionv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"},
						Resources: []string{"deployments"}, Scope: ptr(admissionv1.NamespacedScope)},
				}}
				if !rulesEqual(w.Rules, want) {
					t.Errorf("rules %+v, want %+v", w.Rules, want)
				}
				if *w.FailurePolicy != admissionv1.Ignore || *w.TimeoutSeconds != 5 {
					t.Errorf("failurePolicy %s timeout %d, want Ignore and 5s", *w.FailurePolicy, *w.TimeoutSeconds)
				}
			}
			if !found {
				t.Errorf("no webhook for %s; have %v", pathDeployment, webhookPaths(o))
			}
		}},
	{"alerts and the dashboard render for the Prometheus operator and Grafana's sidecar", monitoringValues,
		func(t *testing.T, o objects) {
			if o.get("PrometheusRule", releaseName) == nil || o.get("ConfigMap", releaseName+"-dashboard") == nil {
				t.Error("no PrometheusRule or dashboard ConfigMap")
			}
		}},
	{"monitoring renders a ServiceMonitor that scrapes the metrics Service's port",
		"metrics:\n  serviceMonitor:\n    enabled: true\n    labels:\n      release: prometheus\n",
		func(t *testing.T, o objects) {
			sm, ok := o.get("ServiceMonitor", releaseName).(*unstructured.Unstructured)
			if !ok {
				t.Fatal("no ServiceMonitor")
			}
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(endpoints) != 1 {
				t.Fatalf("endpoints %v, want one", endpoints)
			}
			port, _, _ := unstructured.NestedString(endpoints[0].(map[string]any), "port")
			if port != "metrics" {
				t.Errorf("endpoint port %q, want metrics", port)
			}
			if sm.GetLabels()["release"] != "prometheus" {
				t.Errorf("labels %v lack release=prometheus", sm.GetLabels())
			}
			match, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			svc := o.get("Service", releaseName+"-metrics").(*corev1.Service)
			if !labels.SelectorFromSet(match).Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", match, svc.Labels)
			}
			if labels.SelectorFromSet(match).Matches(labels.Set(o.get("Service", releaseName).GetLabels())) {
				t.Error("ServiceMonitor also selects the webhook Service (it would scrape TLS port 443)")
			}
		}},
	{"client authentication mounts the API server's CA and names it, and the webhook port admits only the API server's CIDRs",
		"clientAuth:\n  caBundle: |\n    -----BEGIN CERTIFICATE-----\n    MIIB\n    -----END CERTIFICATE-----\n" +
			"  commonName: apiserver-webhook-client\nnetworkPolicy:\n  apiServerCIDRs: [10.0.0.0/24, \"fd00::/64\"]\n",
		func(t *testing.T, o objects) {
			c := deployment(t, o).Spec.Template.Spec.Containers[0]
			for _, want := range []string{"--client-ca-file=/client-ca/ca.crt", "--client-cn-name=apiserver-webhook-client"} {
				if !slices.Contains(c.Args, want) {
					t.Errorf("args %v lack %s", c.Args, want)
				}
			}
			cm, ok := o.get("ConfigMap", releaseName+"-client-ca").(*corev1.ConfigMap)
			if !ok || !strings.HasPrefix(cm.Data["ca.crt"], "-----BEGIN CERTIFICATE-----") {
				t.Fatalf("no client CA ConfigMap holding ca.crt: %v", cm)
			}
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return m.Name == "client-ca" && m.MountPath == "/client-ca"
			}) {
				t.Errorf("the client CA is not mounted at /client-ca: %v", c.VolumeMounts)
			}
			np := o.get("NetworkPolicy", releaseName).(*networkingv1.NetworkPolicy)
			var cidrs []string
			for _, r := range np.Spec.Ingress {
				if r.Ports[0].Port.String() != "webhook" {
					continue
				}
				for _, from := range r.From {
					cidrs = append(cidrs, from.IPBlock.CIDR)
				}
			}
			if !slices.Equal(cidrs, []string{"10.0.0.0/24", "fd00::/64"}) {
				t.Errorf("the webhook port admits %v, want exactly the API server's CIDRs", cidrs)
			}
		}},
}

func TestVariants(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			o := mustRender(t, releaseNS, v.values)
			checkEveryInstall(t, o)
			v.check(t, o)
		})
	}
}

func TestLint(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			f := valuesFile(t, v.values)
			t.Cleanup(func() { _ = os.Remove(f) })
			out, errOut, err := runHelm(t, "lint", "--strict", chartDir(t), "--namespace", releaseNS, "--values", f)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s%s", err, out, errOut)
			}
		})
	}
}

// checkEveryInstall holds whatever the values: pod security, no RBAC, paths, webhook semantics, TLS wiring.
func checkEveryInstall(t *testing.T, o objects) {
	t.Helper()
	for _, kind := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
		if n := o.count(kind); n != 0 {
			t.Errorf("%d %s objects: the server needs no API access", n, kind)
		}
	}
	d := deployment(t, o)
	pod := d.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod mounts a ServiceAccount token")
	}
	sa, ok := o.get("ServiceAccount", pod.ServiceAccountName).(*corev1.ServiceAccount)
	if !ok {
		t.Fatalf("the pod's ServiceAccount %q is not rendered", pod.ServiceAccountName)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount allows token automount")
	}
	if pod.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName %q, want system-cluster-critical", pod.PriorityClassName)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil ||
		psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want exactly one container, have %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem writable")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container privileged")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container seccomp is not RuntimeDefault")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want a CPU request and a memory limit", c.Resources)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }); i < 0 ||
		c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.ResourceFieldRef == nil ||
		c.Env[i].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("env %+v: want GOMEMLIMIT from limits.memory, so the GC tightens before the OOM killer", c.Env)
	}
	for _, want := range []string{"serve", "--policy=/etc/flux-identity-webhook/policy.yaml", "--cert-dir=/tls", "--port=9443"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("probes are not /readyz and /healthz")
	}
	checkVolumes(t, o, pod)
	if len(pod.TopologySpreadConstraints) == 0 {
		t.Error("no topologySpreadConstraints")
	}
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.LabelSelector == nil {
			t.Errorf("topology spread on %s has no labelSelector", tsc.TopologyKey)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("topology spread selector %v does not select the pods", tsc.LabelSelector)
		}
	}
	// The Service reaches the webhook port of these pods.
	svc, ok := o.get("Service", releaseName).(*corev1.Service)
	if !ok {
		t.Fatal("no webhook Service")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select the pods", svc.Spec.Selector)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "webhook" {
		t.Errorf("Service ports %+v, want 443 -> webhook", svc.Spec.Ports)
	}
	checkNetworkPolicy(t, o, d)
	checkWebhookSemantics(t, o)
}

func checkVolumes(t *testing.T, o objects, pod corev1.PodSpec) {
	t.Helper()
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm, ok := o.get("ConfigMap", v.ConfigMap.Name).(*corev1.ConfigMap)
			if !ok {
				t.Errorf("volume %s: ConfigMap %s not rendered", v.Name, v.ConfigMap.Name)
				continue
			}
			if v.Name == "client-ca" {
				if !strings.Contains(cm.Data["ca.crt"], "BEGIN CERTIFICATE") {
					t.Errorf("ConfigMap %s holds no ca.crt", cm.Name)
				}
				continue
			}
			if !strings.Contains(cm.Data["policy.yaml"], "kind: IdentityPolicy") {
				t.Errorf("ConfigMap %s holds no policy.yaml", cm.Name)
			}
		case v.Secret != nil:
			if v.Secret.SecretName != releaseName+"-tls" {
				t.Errorf("TLS volume mounts %s, want %s-tls", v.Secret.SecretName, releaseName)
			}
		default:
			t.Errorf("unexpected volume %s", v.Name)
		}
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("volume mount %s is writable", m.Name)
		}
		if m.SubPath != "" {
			t.Errorf("volume mount %s uses subPath: the kubelet never updates it, so the policy would not reload", m.Name)
		}
	}
}

func checkNetworkPolicy(t *testing.T, o objects, d *appsv1.Deployment) {
	t.Helper()
	np, ok := o.get("NetworkPolicy", releaseName).(*networkingv1.NetworkPolicy)
	if !ok {
		t.Fatal("no NetworkPolicy")
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy podSelector %v does not select the pods", np.Spec.PodSelector)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) != 0 {
		t.Errorf("egress %v (types %v): the server calls nothing, so no egress is allowed", np.Spec.Egress, np.Spec.PolicyTypes)
	}
	var ports []string
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			ports = append(ports, p.Port.String())
		}
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []string{"metrics", "webhook"}) {
		t.Errorf("ingress ports %v, want only metrics and webhook", ports)
	}
	for _, r := range np.Spec.Ingress {
		for _, from := range r.From {
			if r.Ports[0].Port.String() == "webhook" && (from.IPBlock == nil || len(from.IPBlock.Except) > 0) {
				t.Errorf("the webhook port admits %+v: only the API server's CIDRs may be named", from)
			}
		}
	}
}

// checkWebhookSemantics: fixed settings every registration must have, and the exact handler paths.
func checkWebhookSemantics(t *testing.T, o objects) {
	t.Helper()
	if _, ok := o.get("MutatingWebhookConfiguration", releaseName).(*admissionv1.MutatingWebhookConfiguration); !ok {
		t.Fatal("no MutatingWebhookConfiguration")
	}
	v, ok := o.get("ValidatingWebhookConfiguration", releaseName).(*admissionv1.ValidatingWebhookConfiguration)
	if !ok {
		t.Fatal("no ValidatingWebhookConfiguration")
	}
	var mutating []admissionv1.MutatingWebhook
	for _, obj := range o.all {
		if m, ok := obj.(*admissionv1.MutatingWebhookConfiguration); ok {
			mutating = append(mutating, m.Webhooks...)
		}
	}
	for _, w := range mutating {
		if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionv1.IfNeededReinvocationPolicy {
			t.Errorf("%s: reinvocationPolicy is not IfNeeded", w.Name)
		}
		checkCommon(t, w.Name, w.SideEffects, w.MatchPolicy, w.AdmissionReviewVersions, w.ClientConfig, w.TimeoutSeconds)
		// The pod path fails open, except for the pods of full-injection ServiceAccounts, which its condition selects.
		if *w.ClientConfig.Service.Path == pathPod && *w.FailurePolicy != admissionv1.Ignore &&
			(w.Name != routes.WebhookPodsFullInjection || len(w.MatchConditions) != 1 ||
				w.MatchConditions[0].Name != conditions.NameFullInjection) {
			t.Errorf("%s: the pod path fails closed for more than the full-injection pods; it must never block the cluster", w.Name)
		}
	}
	for _, w := range v.Webhooks {
		checkCommon(t, w.Name, w.SideEffects, w.MatchPolicy, w.AdmissionReviewVersions, w.ClientConfig, w.TimeoutSeconds)
	}
	paths := webhookPaths(o)
	for _, want := range []string{pathSA, pathPod, pathSources, pathPodMetadata} {
		if !slices.Contains(paths, want) {
			t.Errorf("no webhook for %s (have %v)", want, paths)
		}
	}
	checkPodMetadataWebhook(t, o)
}

func checkCommon(t *testing.T, name string, se *admissionv1.SideEffectClass, mp *admissionv1.MatchPolicyType,
	versions []string, cc admissionv1.WebhookClientConfig, timeout *int32,
) {
	t.Helper()
	if se == nil || *se != admissionv1.SideEffectClassNone {
		t.Errorf("%s: sideEffects is not None", name)
	}
	if mp == nil || *mp != admissionv1.Equivalent {
		t.Errorf("%s: matchPolicy is not Equivalent", name)
	}
	if !slices.Equal(versions, []string{"v1"}) {
		t.Errorf("%s: admissionReviewVersions %v, want [v1]", name, versions)
	}
	if cc.URL != nil || cc.Service == nil || cc.Service.Name != releaseName || cc.Service.Namespace != releaseNS {
		t.Errorf("%s: clientConfig %+v does not point at Service %s/%s", name, cc, releaseNS, releaseName)
	}
	if timeout == nil || *timeout < 1 || *timeout > 10 {
		t.Errorf("%s: timeoutSeconds %v, want 1..10", name, timeout)
	}
}

func checkCertManagerChain(t *testing.T, o objects) {
	t.Helper()
	selfSigned, ok := o.get("Issuer", releaseName+"-selfsigned").(*cmapi.Issuer)
	if !ok || selfSigned.Spec.SelfSigned == nil {
		t.Fatal("no self-signed root Issuer")
	}
	ca, ok := o.get("Certificate", releaseName+"-ca").(*cmapi.Certificate)
	if !ok || !ca.Spec.IsCA || ca.Spec.IssuerRef.Name != selfSigned.Name {
		t.Fatalf("no CA Certificate issued by %s", selfSigned.Name)
	}
	caIssuer, ok := o.get("Issuer", releaseName+"-ca").(*cmapi.Issuer)
	if !ok || caIssuer.Spec.CA == nil || caIssuer.Spec.CA.SecretName != ca.Spec.SecretName {
		t.Fatalf("no CA Issuer reading the CA Certificate's Secret %s", ca.Spec.SecretName)
	}
	serving, ok := o.get("Certificate", releaseName+"-serving").(*cmapi.Certificate)
	if !ok {
		t.Fatal("no serving Certificate")
	}
	if serving.Spec.IsCA || serving.Spec.IssuerRef.Name != caIssuer.Name || serving.Spec.IssuerRef.Kind != cmapi.IssuerKind {
		t.Errorf("serving Certificate issuerRef %+v, want the CA Issuer %s", serving.Spec.IssuerRef, caIssuer.Name)
	}
	if serving.Spec.SecretName != releaseName+"-tls" {
		t.Errorf("serving Certificate writes %s, the pods mount %s-tls", serving.Spec.SecretName, releaseName)
	}
	wantDNS := []string{releaseName + "." + releaseNS + ".svc", releaseName + "." + releaseNS + ".svc.cluster.local"}
	if !slices.Equal(serving.Spec.DNSNames, wantDNS) {
		t.Errorf("dnsNames %v, want %v", serving.Spec.DNSNames, wantDNS)
	}
	if !slices.Contains(serving.Spec.Usages, cmapi.UsageServerAuth) {
		t.Errorf("usages %v lack server auth", serving.Spec.Usages)
	}
	if serving.Spec.PrivateKey == nil || serving.Spec.PrivateKey.RotationPolicy != cmapi.RotationPolicyAlways {
		t.Error("serving key is not rotated on renewal")
	}
	want := releaseNS + "/" + serving.Name
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		if got := o.get(kind, releaseName).GetAnnotations()[annotationInjectCA]; got != want {
			t.Errorf("%s: %s = %q, want %q", kind, annotationInjectCA, got, want)
		}
	}
	forEachWebhook(o, func(_, name string, cc admissionv1.WebhookClientConfig, _ *metav1.ObjectMeta) {
		if len(cc.CABundle) != 0 {
			t.Errorf("%s: caBundle set although cert-manager injects it", name)
		}
	})
}

// checkExcluded: every webhook's selector excludes exactly these names, by the immutable name label.
func checkExcluded(t *testing.T, o objects, want []string) {
	t.Helper()
	forEachSelector(o, func(name string, sel *metav1.LabelSelector) {
		var got []string
		for _, e := range sel.MatchExpressions {
			if e.Key == corev1.LabelMetadataName && e.Operator == metav1.LabelSelectorOpNotIn {
				got = append(got, e.Values...)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s excludes %v, want %v", name, got, want)
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, ns := range want {
			if s.Matches(labels.Set{corev1.LabelMetadataName: ns}) {
				t.Errorf("%s selects namespace %s", name, ns)
			}
		}
	})
}

func deployment(t *testing.T, o objects) *appsv1.Deployment {
	t.Helper()
	d, ok := o.get("Deployment", releaseName).(*appsv1.Deployment)
	if !ok {
		t.Fatal("no Deployment")
	}
	return d
}

func forEachWebhook(o objects, f func(config, name string, cc admissionv1.WebhookClientConfig, meta *metav1.ObjectMeta)) {
	for _, obj := range o.all {
		switch c := obj.(type) {
		case *admissionv1.MutatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				f(c.Name, w.Name, w.ClientConfig, &c.ObjectMeta)
			}
		case *admissionv1.ValidatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				f(c.Name, w.Name, w.ClientConfig, &c.ObjectMeta)
			}
		}
	}
}

func forEachSelector(o objects, f func(name string, sel *metav1.LabelSelector)) {
	for _, obj := range o.all {
		switch c := obj.(type) {
		case *admissionv1.MutatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				f(w.Name, w.NamespaceSelector)
			}
		case *admissionv1.ValidatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				f(w.Name, w.NamespaceSelector)
			}
		}
	}
}

func webhookPaths(o objects) []string {
	var paths []string
	forEachWebhook(o, func(_, _ string, cc admissionv1.WebhookClientConfig, _ *metav1.ObjectMeta) {
		if cc.Service != nil && cc.Service.Path != nil {
			paths = append(paths, *cc.Service.Path)
		}
	})
	return paths
}

func rulesEqual(a, b []admissionv1.RuleWithOperations) bool {
	return slices.EqualFunc(a, b, func(x, y admissionv1.RuleWithOperations) bool {
		return slices.Equal(x.Operations, y.Operations) && slices.Equal(x.APIGroups, y.APIGroups) &&
			slices.Equal(x.APIVersions, y.APIVersions) && slices.Equal(x.Resources, y.Resources) &&
			(x.Scope == nil) == (y.Scope == nil) && (x.Scope == nil || *x.Scope == *y.Scope)
	})
}

func ptr[T any](v T) *T { return &v }
