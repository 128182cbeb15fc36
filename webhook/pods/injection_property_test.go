package pods

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/test/podgen"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
)

// The full-injection properties, over pods from the shared generator (test/podgen): the token invariant holds on every
// patched pod (CheckTokenInvariant, on the JSON the API server would store), every container the webhook neither
// injects nor leaves to the author's own identity is named in a warning, the patch changes only what the webhook owns,
// and reinvocation asks for nothing more.

// injectionPolicy gives each cloud an identity in enforce mode with the defaults and one in warn mode with every
// option, so invalid lifetime annotations are both denied and, where only warned about, injected anyway.
const injectionPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata: {name: injection-properties}
identities:
  - name: aws-plain
    namespaces: [aws]
    serviceAccounts: [plain]
    aws: {roleARN: "arn:aws:iam::111122223333:role/plain"}
    injection: full
  - name: aws-options
    namespaces: [aws]
    serviceAccounts: [options]
    aws:
      roleARN: arn:aws-cn:iam::111122223333:role/options
      audience: sts.example.com
      stsRegionalEndpoints: true
      region: cn-north-1
      tokenExpirationSeconds: 3600
    injection: full
    mode: warn
  - name: azure-plain
    namespaces: [azure]
    serviceAccounts: [plain]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
    injection: full
  - name: azure-options
    namespaces: [azure]
    serviceAccounts: [options]
    azure:
      clientID: 00000000-0000-0000-0000-000000000002
      tenantID: 00000000-0000-0000-0000-0000000000aa
      tokenExpirationSeconds: 7200
      cloud: AzureUSGovernmentCloud
    injection: full
    mode: warn
  - name: gcp
    namespaces: [gcp]
    serviceAccounts: [plain, options]
    gcp:
      serviceAccount: flux-{serviceAccount}@my-project.iam.gserviceaccount.com
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/pool/providers/prov
    injection: full
  - name: gcp-direct
    namespaces: [gcp]
    serviceAccounts: [direct]
    gcp:
      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/pool/providers/prov
    injection: full
`

func ParseInjectionPolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("injection", []byte(injectionPolicy), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// expectedToken is the token a pod of identity m must read, derived here from the documented rules (docs/contracts.md,
// README "Pod annotations full injection honours") and not from the code under test; valid is false when the pod's
// lifetime annotation is one the cloud's webhook denies or the API server refuses.
func expectedToken(m policy.Match, annotations map[string]string) (want TokenWant, valid bool) {
	switch m.Cloud {
	case policy.CloudAWS:
		want = TokenWant{Cloud: m.Cloud, Audience: m.Identity.AWS.Audience, ExpirationSeconds: 86400}
		if t := m.Identity.AWS.TokenExpirationSeconds; t != nil {
			want.ExpirationSeconds = *t
		}
		v, ok := annotations[keys.AnnotationAWSTokenExpiration]
		if !ok {
			return want, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil: // the EKS webhook ignores it
		case n > 1<<32:
			return want, false
		case n < 600:
			want.ExpirationSeconds = 600
		default:
			want.ExpirationSeconds = n
		}
		return want, true
	case policy.CloudAzure:
		want = TokenWant{Cloud: m.Cloud, Audience: "api://AzureADTokenExchange", ExpirationSeconds: 3600}
		if t := m.Identity.Azure.TokenExpirationSeconds; t != nil {
			want.ExpirationSeconds = *t
		}
		v := annotations[keys.AnnotationAzureTokenExpiration]
		if v == "" {
			return want, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 3600 || n > 86400 {
			return want, false
		}
		want.ExpirationSeconds = n
		return want, true
	}
	return TokenWant{Cloud: m.Cloud, Audience: "//iam.googleapis.com/" + m.Identity.GCP.WorkloadIdentityProvider,
		ExpirationSeconds: 3600, GCPServiceAccount: m.GCPServiceAccount}, true
}

// injectionCounts says which paths the generated pods took, so a generator that drifts into no-ops fails the test.
type injectionCounts struct {
	pods, denied, patched, injectedContainers, leftUntouched, ownFileMounted, renamedVolume, reusedVolume int
	contractChecked                                                                                       int
}

// checkInjectedPod runs one generated pod through evaluatePod and checks every property on the pod the patch leaves:
// the token invariant (tokenInvariant, the function CheckTokenInvariant applies to JSON), every container accounted
// for, only owned paths changed, reinvocation a no-op, and for AWS the EKS contract.
func checkInjectedPod(t *testing.T, p *policy.Policy, ns string, pod *corev1.Pod, n *injectionCounts) {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\npod: %s", fmt.Sprintf(format, args...), raw)
	}
	n.pods++
	m, _ := p.IdentityFor(ns, pod.Spec.ServiceAccountName)
	want, valid := expectedToken(m, pod.Annotations)
	var before View
	if err := json.Unmarshal(raw, &before); err != nil {
		t.Fatal(err)
	}
	v, err := evaluatePod(p, ns, &before)
	if err != nil {
		fail("evaluatePod: %v", err)
	}
	admissiontest.AssertOnlyAddAndReplace(t, v.Patch)
	hand, err := patch.Append(nil, v.Patch)
	if std, _ := json.Marshal(v.Patch); err != nil || string(hand) != string(std) {
		fail("hand-encoded patch %s (%v) is not encoding/json's %s", hand, err, std)
	}
	enforced := false
	for _, vi := range v.Violations {
		enforced = enforced || vi.Mode == policy.ModeEnforce
	}
	if valid == (len(v.Violations) > 0) {
		fail("lifetime annotation valid=%v, but violations %v", valid, v.Violations)
	}
	if enforced {
		n.denied++
		return
	}
	out := admissiontest.ApplyPatch(t, raw, v.Patch)
	var after View
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	if err := after.Spec.decodeLists(); err != nil {
		t.Fatal(err)
	}
	if problems := tokenInvariant(&before, &after, want); len(problems) > 0 {
		fail("token invariant broken: %v\nwarnings: %q\npatch: %v", problems, v.Warnings, v.Patch)
	}
	checkEveryContainerAccountedFor(t, fail, &before, &after, want, v.Warnings, n)
	if want.Cloud == policy.CloudAWS {
		checkEKSContract(fail, m, &before, &after, n)
	}
	var inObj, outObj any
	_ = json.Unmarshal(raw, &inObj)
	_ = json.Unmarshal(out, &outObj)
	if err := admissiontest.OnlyOwnedChanges(inObj, outObj, ""); err != nil {
		fail("%v", err)
	}
	again, err := evaluatePod(p, ns, &after)
	if err != nil || len(again.Patch) != 0 {
		fail("reinvocation patched again: %v %v", again.Patch, err)
	}
	if len(v.Patch) > 1 {
		n.patched++
	}
}

// checkEveryContainerAccountedFor: each container not skipped ends up reading the identity's token at the webhook's
// path, or keeps the identity its author gave it (a token file of its own elsewhere, or, for AWS, its own role), or is
// named in a warning and left exactly as it was.
func checkEveryContainerAccountedFor(t *testing.T, fail func(string, ...any), before, after *View, want TokenWant,
	warnings []string, n *injectionCounts) {
	t.Helper()
	files := filesOf[want.Cloud]
	skip := SkippedContainers(want.Cloud, patch.MetaOf(before.Metadata).Annotations)
	warned := func(name string) bool {
		for _, w := range warnings {
			if strings.Contains(w, " "+name+" left untouched") {
				return true
			}
		}
		return false
	}
	annotations := patch.MetaOf(after.Metadata).Annotations
	mounted := false
	for _, l := range [][2][]containerView{{before.Spec.InitContainers, after.Spec.InitContainers},
		{before.Spec.Containers, after.Spec.Containers}} {
		for i := range l[1] {
			b, a := &l[0][i], &l[1][i]
			changed := len(a.Env) != len(b.Env) || len(a.VolumeMounts) != len(b.VolumeMounts)
			if changed {
				n.injectedContainers++
				if len(a.VolumeMounts) > len(b.VolumeMounts) {
					mounted = true
					if b.hasEnv(files.env) {
						n.ownFileMounted++
					}
				}
			}
			if skip[a.Name] {
				continue
			}
			if warned(a.Name) {
				n.leftUntouched++
				if changed {
					fail("container %s is named in a warning but was changed", a.Name)
				}
				continue
			}
			value, literal, ok := a.envValue(files.env)
			switch {
			case ok && literal && value == files.file:
				if why := want.reach(a, indexVolumes(after.Spec.Volumes), annotations, value); why != "" {
					fail("container %s reads %s, not the token (%s), and no warning says so", a.Name, value, why)
				}
			case ok: // its own token file elsewhere, or one only the kubelet resolves
			case want.Cloud == policy.CloudAWS && a.hasEnv(keys.EnvAWSRoleARN): // its own role
			default:
				fail("container %s ends without %s and no warning names it (warnings %q)", a.Name, files.env, warnings)
			}
		}
	}
	first := map[policy.Cloud]string{policy.CloudAWS: keys.AWSTokenVolume, policy.CloudGCP: keys.GCPVolume,
		policy.CloudAzure: podgen.AzureVolumeName(azureName(before))}[want.Cloud]
	for _, v := range after.Spec.Volumes[len(before.Spec.Volumes):] {
		if v.Name != first {
			n.renamedVolume++
		}
	}
	if mounted && len(after.Spec.Volumes) == len(before.Spec.Volumes) {
		n.reusedVolume++
	}
}

// azureName is the pod name the Azure webhook hashes into its volume name.
func azureName(pod *View) string {
	if m := patch.MetaOf(pod.Metadata); m.Name != "" {
		return m.Name
	}
	return patch.MetaOf(pod.Metadata).GenerateName + " (prefix)"
}

const injectionPropertyPods = 10000

func TestFullInjectionProperties(t *testing.T) {
	p := ParseInjectionPolicy(t)
	for i, cloud := range []policy.Cloud{policy.CloudAWS, policy.CloudAzure, policy.CloudGCP} {
		t.Run(string(cloud), func(t *testing.T) {
			t.Parallel()
			g := podgen.New(uint64(100+i), cloud)
			if cloud == policy.CloudGCP {
				m, _ := p.IdentityFor("gcp", "plain")
				want, _ := expectedToken(m, nil)
				g.SetAudience(want.Audience) // so that some pods already hold exactly the token, from an earlier pass
			}
			var n injectionCounts
			for range injectionPropertyPods {
				sas := []string{"plain", "options"}
				if cloud == policy.CloudGCP {
					sas = append(sas, "direct") // direct federation: the same token, no impersonation
				}
				sa := sas[g.Rand().IntN(len(sas))]
				checkInjectedPod(t, p, string(cloud), g.Pod(sa), &n)
			}
			t.Logf("%s: %+v", cloud, n)
			// The generator must reach every path: plain injection, containers left untouched with a warning, a token
			// mounted for a container that named the webhook's file itself, a volume renamed around a taken name, a
			// volume reused because it already holds exactly the token, and (AWS, Azure) denied lifetimes.
			if n.pods != injectionPropertyPods || n.patched < n.pods/2 || n.leftUntouched < 100 ||
				n.ownFileMounted < 100 || n.reusedVolume < 20 || n.renamedVolume < 20 ||
				(cloud != policy.CloudGCP && n.denied < 50) || (cloud == policy.CloudAWS && n.contractChecked < 5000) {
				t.Errorf("generator too narrow for %s: %+v", cloud, n)
			}
		})
	}
}

// checkEKSContract holds AWS full injection to the EKS webhook's documented contract (docs/contracts.md), the AWS
// webhook's module not being available to run beside it: in every container changed, the author's variables are kept;
// AWS_ROLE_ARN (the identity's role) and AWS_WEB_IDENTITY_TOKEN_FILE (the webhook's file) come together unless the
// container set either; both region variables come only when neither is set; the regional STS setting only when
// unset; mounts are read-only at the token's mount path.
func checkEKSContract(fail func(string, ...any), m policy.Match, before, after *View, n *injectionCounts) {
	a := m.Identity.AWS
	for _, l := range [][2][]containerView{{before.Spec.InitContainers, after.Spec.InitContainers},
		{before.Spec.Containers, after.Spec.Containers}} {
		for i := range l[0] {
			b, c := &l[0][i], &l[1][i]
			if len(c.Env) == len(b.Env) && len(c.VolumeMounts) == len(b.VolumeMounts) {
				continue
			}
			n.contractChecked++
			if (len(b.Env) > 0 && !reflect.DeepEqual(c.Env[:len(b.Env)], b.Env)) ||
				(len(b.VolumeMounts) > 0 && !reflect.DeepEqual(c.VolumeMounts[:len(b.VolumeMounts)], b.VolumeMounts)) {
				fail("container %s: the author's env or mounts changed", b.Name)
			}
			added := map[string]string{}
			for _, e := range c.Env[len(b.Env):] {
				added[e.Name] = e.Value
			}
			own := b.hasEnv(keys.EnvAWSRoleARN) || b.hasEnv(keys.EnvAWSWebIdentityTokenFile)
			_, role := added[keys.EnvAWSRoleARN]
			_, file := added[keys.EnvAWSWebIdentityTokenFile]
			switch {
			case own && (role || file):
				fail("container %s set its own role or token file, yet got %v", b.Name, added)
			case !own && (added[keys.EnvAWSRoleARN] != m.RoleARN ||
				added[keys.EnvAWSWebIdentityTokenFile] != "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"):
				fail("container %s: role and token file %v", b.Name, added)
			}
			ownRegion := b.hasEnv(keys.EnvAWSRegion) || b.hasEnv(keys.EnvAWSDefaultRegion)
			_, r1 := added[keys.EnvAWSRegion]
			_, r2 := added[keys.EnvAWSDefaultRegion]
			if wantRegion := a.Region != "" && !ownRegion; r1 != wantRegion || r2 != wantRegion ||
				(wantRegion && (added[keys.EnvAWSRegion] != a.Region || added[keys.EnvAWSDefaultRegion] != a.Region)) {
				fail("container %s: region variables %v (own region %v)", b.Name, added, ownRegion)
			}
			_, sts := added[keys.EnvAWSSTSRegionalEndpoints]
			if wantSTS := a.STSRegionalEndpoints != nil && *a.STSRegionalEndpoints &&
				!b.hasEnv(keys.EnvAWSSTSRegionalEndpoints); sts != wantSTS ||
				(sts && added[keys.EnvAWSSTSRegionalEndpoints] != "regional") {
				fail("container %s: regional STS %v", b.Name, added)
			}
			for _, mnt := range c.VolumeMounts[len(b.VolumeMounts):] {
				if mnt.MountPath != "/var/run/secrets/eks.amazonaws.com/serviceaccount" || !mnt.ReadOnly {
					fail("container %s: mount %+v", b.Name, mnt)
				}
			}
		}
	}
}

// TestTokenInvariantCatchesBrokenPatches feeds the invariant patched pods that break it, each in one way, so it is
// known to fail where it must.
func TestTokenInvariantCatchesBrokenPatches(t *testing.T) {
	want := TokenWant{Cloud: policy.CloudAzure, Audience: keys.AzureAudience, ExpirationSeconds: 3600}
	const before = `{"metadata":{"name":"p","annotations":{"azure.workload.identity/skip-containers":"s"}},
		"spec":{"containers":[{"name":"c"},{"name":"s"}],"volumes":[{"name":"cfg","configMap":{"name":"x"}}]}}`
	file := `{"name":"AZURE_FEDERATED_TOKEN_FILE","value":"/var/run/secrets/azure/wi/token/azure-identity-token"}`
	token := func(audience string, seconds int) string {
		return fmt.Sprintf(`{"name":"t","projected":{"sources":[{"serviceAccountToken":{"audience":%q,`+
			`"expirationSeconds":%d,"path":"token/azure-identity-token"}}]}}`, audience, seconds)
	}
	after := func(c0, c1, extraVolume string) string {
		vols := `{"name":"cfg","configMap":{"name":"x"}}`
		if extraVolume != "" {
			vols += "," + extraVolume
		}
		return `{"metadata":{"name":"p","annotations":{"azure.workload.identity/skip-containers":"s"}},"spec":{` +
			`"containers":[` + c0 + `,` + c1 + `],"volumes":[` + vols + `]}}`
	}
	mount := func(vol, at string) string { return fmt.Sprintf(`{"name":%q,"mountPath":%q}`, vol, at) }
	c := func(env string, mounts ...string) string {
		return `{"name":"c","env":[` + env + `],"volumeMounts":[` + strings.Join(mounts, ",") + `]}`
	}
	tests := map[string]struct {
		after, want string
	}{
		"a token file adopted from a configMap volume by name": {
			after(c(file, mount("cfg", "/var/run/secrets/azure/wi")), `{"name":"s"}`, ""),
			"is on volume cfg (configMap), not a projected token"},
		"a token file with nothing mounted over it": {
			after(c(file), `{"name":"s"}`, ""), "no volume is mounted over its token file"},
		"a token for another audience": {
			after(c(file, mount("t", "/var/run/secrets/azure/wi")), `{"name":"s"}`, token("vault", 3600)),
			`its token is for audience "vault"`},
		"a token with another lifetime": {
			after(c(file, mount("t", "/var/run/secrets/azure/wi")), `{"name":"s"}`, token(keys.AzureAudience, 7200)),
			"its token lives 7200 s, not 3600 s"},
		"a token shadowed by a deeper mount": {
			after(c(file, mount("t", "/var/run/secrets/azure/wi"), mount("cfg", "/var/run/secrets/azure/wi/token")),
				`{"name":"s"}`, token(keys.AzureAudience, 3600)), "its token file is on volume cfg (configMap)"},
		"a mount of a volume the pod does not have": {
			after(c(file, mount("t", "/var/run/secrets/azure/wi")), `{"name":"s"}`, ""),
			"volume t, which the pod does not have"},
		"a skipped container that was changed": {
			after(`{"name":"c"}`, `{"name":"s","env":[{"name":"AZURE_CLIENT_ID","value":"x"}]}`, ""),
			"skip-containers annotation names it"},
		"a volume of the pod that was changed": {
			strings.Replace(after(`{"name":"c"}`, `{"name":"s"}`, ""), `"configMap":{"name":"x"}`, `"emptyDir":{}`, 1),
			"the patch changed volume cfg"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			problems, err := CheckTokenInvariant([]byte(before), []byte(tc.after), want)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range problems {
				found = found || strings.Contains(p.String(), tc.want)
			}
			if !found {
				t.Fatalf("problems %v, want one saying %q", problems, tc.want)
			}
		})
	}
	ok := after(c(file, mount("t", "/var/run/secrets/azure/wi")), `{"name":"s"}`, token(keys.AzureAudience, 3600))
	if problems, err := CheckTokenInvariant([]byte(before), []byte(ok), want); err != nil || len(problems) != 0 {
		t.Fatalf("a correct injection: problems %v, err %v", problems, err)
	}
}
