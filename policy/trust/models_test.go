package trust

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The identity models beyond one per cloud (testdata/models.yaml): GKE direct federation, direct federation outside
// GKE, EKS Pod Identity, and Azure's bound on federated credentials.

const testCluster = "arn:aws:eks:eu-west-1:111122223333:cluster/prod"

// modelNames expand the models policy's globs: four GKE tenants and 21 Azure tenants.
func modelNames() Names {
	names := Names{Namespaces: []string{"ml-a", "ml-b", "ml-c", "ml-d", "ml-shared"},
		ServiceAccounts: []string{"flux-source", "flux-image"}}
	for c := 'a'; c <= 'u'; c++ {
		names.Namespaces = append(names.Namespaces, "team-"+string(c))
	}
	return names
}

func loadModels(t *testing.T) *policy.Policy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "models.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("testdata/models.yaml", data, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// golden compares out with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, out []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("output differs from %s (run with -update and review the diff):\n%s", path, out)
	}
}

// TestRenderModelsGolden renders the models policy in every format, the EKS Pod Identity associations as aws CLI
// commands, Terraform and ACK objects included (go test ./policy/trust -run TestRenderModelsGolden -update rewrites
// testdata/render-models.*.golden; review the diff).
func TestRenderModelsGolden(t *testing.T) {
	pairs, unresolved := Pairs(loadModels(t), modelNames())
	r, err := Render(pairs, unresolved, nil, Options{Issuer: testIssuer, EKSClusterARN: testCluster})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range RenderFormats {
		t.Run(format, func(t *testing.T) {
			var out bytes.Buffer
			if err := WriteRendered(&out, format, r); err != nil {
				t.Fatal(err)
			}
			golden(t, "render-models."+format+".golden", out.Bytes())
		})
	}
}

func TestRenderModels(t *testing.T) {
	pairs, unresolved := Pairs(loadModels(t), modelNames())
	r, err := Render(pairs, unresolved, nil, Options{Issuer: testIssuer, EKSClusterARN: testCluster})
	if err != nil {
		t.Fatal(err)
	}
	members := map[string]string{}
	for _, g := range r.GCPDirect {
		members[g.ServiceAccount] = g.Member
	}
	const gke = "iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/data-platform-prod.svc.id.goog"
	for sa, want := range map[string]string{
		"ml-a/flux-source": "principal://" + gke + "/subject/ns/ml-a/sa/flux-source",
		"ml-shared/*":      "principalSet://" + gke + "/namespace/ml-shared",
		"flux-system/notification-controller": "principal://iam.googleapis.com/projects/123456789012/locations/global/" +
			"workloadIdentityPools/flux-pool/subject/system:serviceaccount:flux-system:notification-controller",
	} {
		if members[sa] != want {
			t.Errorf("direct federation member of %s is %q, want %q", sa, members[sa], want)
		}
	}
	if _, ok := members["ml-shared/flux-source"]; ok {
		t.Error("ml-shared/flux-source is rendered on its own: the namespace's principal set covers it")
	}
	if len(r.GCP) != 0 {
		t.Errorf("direct federation rendered Google service account bindings: %+v", r.GCP)
	}
	if len(r.GCPResourceRoles) != len(GCPResourceRoles) {
		t.Errorf("%d resource kinds listed, want %d", len(r.GCPResourceRoles), len(GCPResourceRoles))
	}

	var controllers *AWSRole
	for i := range r.AWS {
		if r.AWS[i].RoleARN == "arn:aws:iam::111122223333:role/flux-controllers" {
			controllers = &r.AWS[i]
		}
	}
	if controllers == nil || len(controllers.TrustPolicy.Statement) != 2 || len(controllers.Associations) != 2 {
		t.Fatalf("one role reached through Pod Identity and IRSA: want one document with both statements and two "+
			"associations, got %+v", controllers)
	}
	pod := controllers.TrustPolicy.Statement[0]
	if pod.Principal["Service"] != "pods.eks.amazonaws.com" || !slices.Equal(pod.Action, Actions{"sts:AssumeRole", "sts:TagSession"}) ||
		pod.Condition["StringEquals"]["aws:RequestTag/eks-cluster-arn"] != testCluster ||
		pod.Condition["StringEquals"]["aws:RequestTag/kubernetes-namespace"] != "flux-system" ||
		!slices.Equal(pod.Condition["StringEquals"]["aws:RequestTag/kubernetes-service-account"].([]string),
			[]string{"kustomize-controller", "source-controller"}) {
		t.Errorf("Pod Identity statement %+v", pod)
	}

	var refused []string
	for _, x := range r.Refused {
		refused = append(refused, x.Message)
	}
	if len(refused) != 2 ||
		!strings.Contains(refused[0], "azure client ID 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10 needs 21 federated credentials "+
			"(tenants-azure: 21) and Azure holds at most 20 per identity: split the entries") ||
		!strings.Contains(refused[1], "role arn:aws:iam::444455556666:role/flux-images is in account 444455556666 and "+
			"cluster "+testCluster+" in account 111122223333") {
		t.Errorf("refused %q", refused)
	}
}

func TestRenderModelsOptions(t *testing.T) {
	pairs, _ := Pairs(loadModels(t), modelNames())
	tests := map[string]struct {
		clouds  []policy.Cloud
		opts    Options
		wantErr string
	}{
		"Pod Identity needs the cluster": {
			opts: Options{Issuer: testIssuer}, wantErr: "--eks-cluster-arn is required",
		},
		"a cluster ARN is checked": {
			opts: Options{Issuer: testIssuer, EKSClusterARN: "arn:aws:eks:eu-west-1:111122223333:prod"}, wantErr: "is not a cluster ARN",
		},
		"GCP direct federation needs neither an issuer nor a cluster": {
			clouds: []policy.Cloud{policy.CloudGCP},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Render(pairs, nil, tc.clouds, tc.opts)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	// Pod Identity pairs alone need no issuer: their roles trust the EKS service.
	var pod []Pair
	for _, p := range pairs {
		if NeedsEKSCluster(p) {
			pod = append(pod, p)
		}
	}
	if _, err := Render(pod, nil, nil, Options{EKSClusterARN: testCluster}); err != nil {
		t.Errorf("Pod Identity alone: %v", err)
	}
}

// checkModelsDocuments reads testdata/check-models/: each file's key is what trust check's KEY=FILE would give it.
func checkModelsDocuments(t *testing.T) *Documents {
	t.Helper()
	keys := map[string]string{
		"repository-ml.json":              "projects/data-platform-prod/locations/europe-west1/repositories/ml",
		"project-data-platform-prod.json": "projects/data-platform-prod",
	}
	files, err := filepath.Glob(filepath.Join("testdata", "check-models", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents: %v", err)
	}
	var docs Documents
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := docs.Add(filepath.Base(f), keys[filepath.Base(f)], data); err != nil {
			t.Fatal(err)
		}
	}
	return &docs
}

// TestCheckModelsGolden checks the documents in testdata/check-models/ against the models policy's AWS and GCP pairs:
// ok, missing, mismatched and too-broad for EKS Pod Identity and direct federation, with their details.
func TestCheckModelsGolden(t *testing.T) {
	pairs, _ := Pairs(loadModels(t), modelNames())
	pairs = slices.DeleteFunc(pairs, func(p Pair) bool { return p.Match.Cloud == policy.CloudAzure })
	findings := Check(pairs, checkModelsDocuments(t), Options{Issuer: testIssuer, EKSClusterARN: testCluster})
	var out bytes.Buffer
	if err := WriteStructured(&out, FormatJSON, findings); err != nil {
		t.Fatal(err)
	}
	golden(t, "check-models.json.golden", out.Bytes())

	want := map[string]Status{
		"flux-system/source-controller":           StatusOK,
		"flux-system/kustomize-controller":        StatusMissing,
		"flux-system/image-automation-controller": StatusTooBroad,
		"team-a/flux-source":                      StatusOK,
		"ml-a/flux-source":                        StatusOK,
		"ml-b/flux-source":                        StatusMismatched,
		"ml-c/flux-source":                        StatusTooBroad,
		"ml-d/flux-source":                        StatusMissing,
		"ml-shared/*":                             StatusOK,
		"flux-system/notification-controller":     StatusTooBroad,
	}
	if len(findings) != len(want) {
		t.Errorf("%d findings, want %d", len(findings), len(want))
	}
	for _, f := range findings {
		if got := f.Namespace + "/" + f.ServiceAccount; f.Status != want[got] {
			t.Errorf("%s: %s (%s), want %s", got, f.Status, f.Detail, want[got])
		}
	}
}

// TestRenderedModelsCheckOK feeds what render writes for the models back to check, as the clouds would export it:
// every AWS and GCP pair comes out ok once each direct principal is granted its roles on a bucket.
func TestRenderedModelsCheckOK(t *testing.T) {
	pairs, _ := Pairs(loadModels(t), modelNames())
	pairs = slices.DeleteFunc(pairs, func(p Pair) bool { return p.Match.Cloud == policy.CloudAzure })
	opts := Options{Issuer: testIssuer, EKSClusterARN: testCluster}
	r, err := Render(pairs, nil, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	var docs Documents
	add := func(key, doc string) {
		t.Helper()
		if err := docs.Add("rendered", key, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range r.AWS {
		add("", mustJSON(t, map[string]any{"Role": map[string]any{"Arn": role.RoleARN, "AssumeRolePolicyDocument": role.TrustPolicy}}))
		for i, a := range role.Associations {
			add("", mustJSON(t, map[string]any{"association": map[string]any{"associationId": fmt.Sprintf("a-%d", i),
				"clusterName": a.ClusterName, "namespace": a.Namespace, "serviceAccount": a.ServiceAccount, "roleArn": a.RoleARN}}))
		}
	}
	var bindings []any
	for _, k := range r.GCPResourceRoles {
		if k.Kind != "bucket" {
			continue
		}
		for _, role := range k.Roles {
			var members []string
			for _, g := range r.GCPDirect {
				members = append(members, g.Member)
			}
			bindings = append(bindings, map[string]any{"role": role, "members": members})
		}
	}
	add("gs://flux-artifacts", mustJSON(t, map[string]any{"bindings": bindings, "etag": "x"}))
	for _, f := range Check(pairs, &docs, opts) {
		if f.Status != StatusOK {
			t.Errorf("%s/%s: %s %s", f.Namespace, f.ServiceAccount, f.Status, f.Detail)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// podRole is aws iam get-role output for role/flux-controllers with one Pod Identity statement.
func podRole(action, conditions string) string {
	return `{"Role": {"Arn": "arn:aws:iam::111122223333:role/flux-controllers", "AssumeRolePolicyDocument": {
  "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"},
  "Action": ` + action + `, "Condition": {` + conditions + `}}]}}}`
}

const (
	bothActions = `["sts:AssumeRole", "sts:TagSession"]`
	exactTags   = `"StringEquals": {"aws:RequestTag/eks-cluster-arn": "` + testCluster + `",
  "aws:RequestTag/kubernetes-namespace": "flux-system", "aws:RequestTag/kubernetes-service-account": "source-controller"}`
	gkeMember = "principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/" +
		"data-platform-prod.svc.id.goog/subject/ns/ml-a/sa/flux-source"
)

func association(fields string) string {
	return `{"association": {"associationId": "a-1", "clusterName": "prod", "namespace": "flux-system",
  "serviceAccount": "source-controller", "roleArn": "arn:aws:iam::111122223333:role/flux-controllers"` + fields + `}}`
}

func bucketPolicy(bindings ...string) string {
	return `{"bindings": [` + strings.Join(bindings, ",") + `], "etag": "CAE=", "kind": "storage#policy",
  "resourceId": "projects/_/buckets/ml-models", "version": 3}`
}

func binding(role string, members ...string) string {
	return `{"role": "` + role + `", "members": ` + mustJSONString(members) + `}`
}

func mustJSONString(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

func TestCheckModelsDetails(t *testing.T) {
	pairs, _ := Pairs(loadModels(t), modelNames())
	okBucket := bucketPolicy(binding("roles/storage.bucketViewer", gkeMember), binding("roles/storage.objectViewer", gkeMember))
	tests := map[string]struct {
		docs       map[string]string // KEY (may be empty) -> document; several documents without a key take "#n" keys
		pair       string
		wantStatus Status
		wantDetail string
	}{
		"a Pod Identity statement with the tags and an association is ok": {
			docs: map[string]string{"": podRole(bothActions, exactTags), "#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusOK,
		},
		"the cluster narrowed by name instead of ARN is ok": {
			docs: map[string]string{"": podRole(bothActions, strings.Replace(exactTags,
				`"aws:RequestTag/eks-cluster-arn": "`+testCluster+`"`, `"aws:RequestTag/eks-cluster-name": "prod"`, 1)),
				"#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusOK,
		},
		"a statement without sts:TagSession is mismatched: EKS tags every session": {
			docs: map[string]string{"": podRole(`"sts:AssumeRole"`, exactTags), "#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "the statement lacks sts:TagSession",
		},
		"another cluster's ARN is mismatched": {
			docs: map[string]string{"": podRole(bothActions, strings.Replace(exactTags, "cluster/prod", "cluster/staging", 1)),
				"#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "aws:RequestTag/eks-cluster-arn is arn:aws:eks:eu-west-1:111122223333:cluster/staging, want " + testCluster,
		},
		"no cluster condition is too broad": {
			docs: map[string]string{"": podRole(bothActions, `"StringEquals": {"aws:RequestTag/kubernetes-namespace": "flux-system",
  "aws:RequestTag/kubernetes-service-account": "source-controller"}`), "#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "no condition on aws:RequestTag/eks-cluster-arn: an association in any cluster of the account may use the role",
		},
		"a namespace alone is too broad": {
			docs: map[string]string{"": podRole(bothActions, `"StringEquals": {"aws:RequestTag/eks-cluster-arn": "`+testCluster+`",
  "aws:RequestTag/kubernetes-namespace": "flux-system"}`), "#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "no condition on aws:RequestTag/kubernetes-service-account: every ServiceAccount of flux-system",
		},
		"a ServiceAccount wildcard is too broad": {
			docs: map[string]string{"": podRole(bothActions, `"StringEquals": {"aws:RequestTag/eks-cluster-arn": "`+testCluster+`",
  "aws:RequestTag/kubernetes-namespace": "flux-system"}, "StringLike": {"aws:RequestTag/kubernetes-service-account": "*-controller"}`),
				"#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "StringLike aws:RequestTag/kubernetes-service-account admits *-controller",
		},
		"another ServiceAccount's tag is mismatched, a sibling's is not": {
			docs: map[string]string{"": podRole(bothActions, strings.Replace(exactTags, `"source-controller"`,
				`["source-controler", "kustomize-controller"]`, 1)), "#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "aws:RequestTag/kubernetes-service-account is source-controler, want source-controller",
		},
		"a web identity statement does not make a Pod Identity pair ok": {
			docs: map[string]string{"": `{"Role": {"Arn": "arn:aws:iam::111122223333:role/flux-controllers",
  "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [` + webIdentity(provider, okSource) + `]}}}`,
				"#1": association("")},
			pair: "flux-system/source-controller", wantStatus: StatusMissing,
			wantDetail: "does not trust pods.eks.amazonaws.com for flux-system/source-controller",
		},
		"an association giving another role is mismatched": {
			docs: map[string]string{"": podRole(bothActions, exactTags),
				"#1": strings.Replace(association(""), "role/flux-controllers", "role/admin", 1)},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "association a-1 gives role arn:aws:iam::111122223333:role/admin, want arn:aws:iam::111122223333:role/flux-controllers",
		},
		"an association in another cluster is mismatched": {
			docs: map[string]string{"": podRole(bothActions, exactTags),
				"#1": strings.Replace(association(""), `"clusterName": "prod"`, `"clusterName": "staging"`, 1)},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "association a-1 is in cluster staging, want prod",
		},
		"an association without session tags never satisfies tag conditions": {
			docs: map[string]string{"": podRole(bothActions, exactTags), "#1": association(`, "disableSessionTags": true`)},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "association a-1 disables session tags",
		},
		"an association chaining to a target role gives the pods another role": {
			docs: map[string]string{"": podRole(bothActions, exactTags),
				"#1": association(`, "targetRoleArn": "arn:aws:iam::444455556666:role/other"`)},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "chains to role arn:aws:iam::444455556666:role/other (targetRoleArn)",
		},
		"both bucket roles of the exact principal are ok, and say where": {
			docs: map[string]string{"": okBucket},
			pair: "ml-a/flux-source", wantStatus: StatusOK,
			wantDetail: "roles/storage.bucketViewer + roles/storage.objectViewer on gs://ml-models",
		},
		"GKE's older member spelling of the same ServiceAccount is ok": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.bucketViewer", "serviceAccount:data-platform-prod.svc.id.goog[ml-a/flux-source]"),
				binding("roles/storage.objectViewer", "serviceAccount:data-platform-prod.svc.id.goog[ml-a/flux-source]"))},
			pair: "ml-a/flux-source", wantStatus: StatusOK,
		},
		"an encrypter-decrypter on a key ring covers SOPS decryption": {
			docs: map[string]string{"projects/p/locations/global/keyRings/flux": `{"bindings": [` +
				binding("roles/cloudkms.cryptoKeyEncrypterDecrypter", gkeMember) + `], "etag": "x"}`},
			pair: "ml-a/flux-source", wantStatus: StatusOK,
		},
		"a project number of another project is mismatched": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.objectViewer", strings.Replace(gkeMember, "123456789012", "999", 1)))},
			pair: "ml-a/flux-source", wantStatus: StatusMismatched,
			wantDetail: "member principal://iam.googleapis.com/projects/999/",
		},
		"a grant under an IAM condition is reported, not counted": {
			docs: map[string]string{"": bucketPolicy(`{"role": "roles/storage.objectViewer", "members": ["` + gkeMember + `"],
  "condition": {"title": "only-prefix", "expression": "resource.name.startsWith('x')"}}`)},
			pair: "ml-a/flux-source", wantStatus: StatusMismatched,
			wantDetail: "only under condition",
		},
		"a storage admin is more than Flux needs": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.admin", gkeMember))},
			pair: "ml-a/flux-source", wantStatus: StatusTooBroad,
			wantDetail: "is granted roles/storage.admin on gs://ml-models: more than Flux needs there",
		},
		"a public bucket the ServiceAccount reads is too broad": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.bucketViewer", gkeMember),
				binding("roles/storage.objectViewer", gkeMember, "allUsers"))},
			pair: "ml-a/flux-source", wantStatus: StatusTooBroad,
			wantDetail: "allUsers is granted roles/storage.objectViewer on gs://ml-models",
		},
		"a public bucket another ServiceAccount reads is not this one's concern": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.objectViewer", "allUsers"))},
			pair: "ml-a/flux-source", wantStatus: StatusMissing,
		},
		"a pool-wide principal set is too broad": {
			docs: map[string]string{"": bucketPolicy(binding("roles/storage.objectViewer",
				"principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/data-platform-prod.svc.id.goog/*"))},
			pair: "ml-a/flux-source", wantStatus: StatusTooBroad,
		},
		"without any resource policy direct federation is missing and says what to export": {
			docs: map[string]string{}, pair: "ml-a/flux-source", wantStatus: StatusMissing,
			wantDetail: "gcloud storage buckets get-iam-policy gs://BUCKET --format=json as gs://BUCKET=FILE",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := findingOf(t, pairs, tc.docs, Options{Issuer: testIssuer, EKSClusterARN: testCluster}, tc.pair)
			if got.Status != tc.wantStatus || !strings.Contains(got.Detail, tc.wantDetail) {
				t.Errorf("got %s %q, want %s containing %q", got.Status, got.Detail, tc.wantStatus, tc.wantDetail)
			}
		})
	}
}
