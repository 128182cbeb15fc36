package trust

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

const (
	key      = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	provider = "arn:aws:iam::111122223333:oidc-provider/" + key
	fluxRole = "arn:aws:iam::111122223333:role/flux/flux-system"
	clientID = "6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10"
	dataGSA  = "flux-team-data@data-platform-prod.iam.gserviceaccount.com"
	notifGSA = "flux-notifications@platform-prod.iam.gserviceaccount.com"
	poolPath = "projects/123456789012/locations/global/workloadIdentityPools/flux-pool"
)

// getRole wraps a trust policy the way `aws iam get-role` prints it.
func getRole(arn, statements string) string {
	return `{"Role": {"Path": "/flux/", "RoleName": "x", "Arn": "` + arn + `", "CreateDate": "2026-01-01T00:00:00Z",
  "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [` + statements + `]}}}`
}

func webIdentity(principal, conditions string) string {
	return `{"Effect": "Allow", "Principal": {"Federated": "` + principal + `"},
  "Action": "sts:AssumeRoleWithWebIdentity", "Condition": {` + conditions + `}}`
}

// fic is one entry of `az identity federated-credential list`.
func fic(name, issuer, subject, audience string) string {
	return `{"audiences": ["` + audience + `"], "id": "/subscriptions/0/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/flux/federatedIdentityCredentials/` + name + `",
  "issuer": "` + issuer + `", "name": "` + name + `", "resourceGroup": "rg", "subject": "` + subject + `",
  "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"}`
}

// iamPolicy is `gcloud iam service-accounts get-iam-policy --format=json` output.
func iamPolicy(role string, members ...string) string {
	m, _ := json.Marshal(members)
	return `{"bindings": [{"members": ` + string(m) + `, "role": "` + role + `"}], "etag": "BwX=", "version": 1}`
}

const okSource = `"StringEquals": {"` + key + `:sub": "system:serviceaccount:flux-system:source-controller", "` + key + `:aud": "sts.amazonaws.com"}`

func TestCheck(t *testing.T) {
	p := loadTestPolicy(t)
	pairs, _ := Pairs(p, testNames)
	tests := map[string]struct {
		docs       map[string]string // KEY (may be empty) -> document
		pair       string
		wantStatus Status
		wantDetail string
	}{
		"an exact AWS statement is ok": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, okSource))},
			pair: "flux-system/source-controller", wantStatus: StatusOK,
		},
		"a subject in a list of subjects is ok, and the other subjects are not near misses": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, `"StringEquals": {"`+key+`:sub": [
				"system:serviceaccount:flux-system:source-controller", "system:serviceaccount:flux-system:kustomize-controller"],
				"`+key+`:aud": "sts.amazonaws.com"}`))},
			pair: "flux-system/kustomize-controller", wantStatus: StatusOK,
		},
		"the URL-encoded document of the IAM API is read too": {
			docs: map[string]string{"": `{"Role": {"Arn": "` + fluxRole + `", "AssumeRolePolicyDocument": "` +
				url.QueryEscape(`{"Version":"2012-10-17","Statement":`+webIdentity(provider, okSource)+`}`) + `"}}`},
			pair: "flux-system/source-controller", wantStatus: StatusOK,
		},
		"a role without the pair's subject is missing": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, okSource))},
			pair: "flux-system/kustomize-controller", wantStatus: StatusMissing,
			wantDetail: "has no statement trusting system:serviceaccount:flux-system:kustomize-controller",
		},
		"a role with no exported document is missing and says which document to add": {
			docs: map[string]string{}, pair: "flux-system/source-controller", wantStatus: StatusMissing,
			wantDetail: "no exported document for role " + fluxRole,
		},
		"a subject in the wrong namespace is mismatched with the exact difference": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, strings.Replace(okSource, ":flux-system:", ":flux-staging:", 1)))},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: key + ":sub is system:serviceaccount:flux-staging:source-controller, want system:serviceaccount:flux-system:source-controller",
		},
		"a subject in another case is mismatched and says so": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, strings.Replace(okSource, "source-controller", "Source-Controller", 1)))},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched, wantDetail: "(case differs)",
		},
		"a wrong audience is mismatched": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, strings.Replace(okSource, `:aud": "sts.amazonaws.com"`, `:aud": "sts.amazonaws.com/"`, 1)))},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: key + ":aud is sts.amazonaws.com/, want sts.amazonaws.com",
		},
		"a provider with a trailing slash is mismatched": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider+"/", okSource))},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "trusted provider is " + provider + "/, want " + provider,
		},
		"condition keys with the scheme never hold and are mismatched": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, strings.ReplaceAll(okSource, `"`+key, `"https://`+key)))},
			pair: "flux-system/source-controller", wantStatus: StatusMismatched,
			wantDetail: "condition key https://" + key + ":aud, want " + key + ":aud",
		},
		"StringLike with a wildcard subject is too broad": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, `"StringLike": {"`+key+`:sub": "system:serviceaccount:*"}, "StringEquals": {"`+key+`:aud": "sts.amazonaws.com"}`))},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "StringLike " + key + ":sub admits system:serviceaccount:*",
		},
		"a wildcard statement beside an exact one is still too broad": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, okSource)+","+
				webIdentity(provider, `"StringLike": {"`+key+`:sub": "system:serviceaccount:flux-system:*", "`+key+`:aud": "sts.amazonaws.com"}`))},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
		},
		"StringLike without a wildcard is exact": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, strings.Replace(okSource, "StringEquals", "StringLike", 1)))},
			pair: "flux-system/source-controller", wantStatus: StatusOK,
		},
		"no audience condition is too broad": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, `"StringEquals": {"`+key+`:sub": "system:serviceaccount:flux-system:source-controller"}`))},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "no condition on " + key + ":aud",
		},
		"no condition at all is too broad": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, ""))},
			pair: "flux-system/source-controller", wantStatus: StatusTooBroad,
			wantDetail: "no condition on " + key + ":sub",
		},
		"an audience other than the default comes from the policy": {
			docs: map[string]string{"": getRole(fluxRole, webIdentity(provider, `"StringEquals": {"`+key+`:sub": "system:serviceaccount:flux-system:helm-controller", "`+key+`:aud": "sts.amazonaws.com"}`))},
			pair: "flux-system/helm-controller", wantStatus: StatusMismatched,
			wantDetail: ":aud is sts.amazonaws.com, want sts.eu-west-1.amazonaws.com",
		},
		"an exact Azure credential is ok": {
			docs: map[string]string{clientID: "[" + fic("fic", testIssuer, "system:serviceaccount:team-azure:flux-source", keys.AzureAudience) + "]"},
			pair: "team-azure/flux-source", wantStatus: StatusOK,
		},
		"an Azure issuer with a trailing slash is mismatched and says why": {
			docs: map[string]string{clientID: "[" + fic("fic", testIssuer+"/", "system:serviceaccount:team-azure:flux-source", keys.AzureAudience) + "]"},
			pair: "team-azure/flux-source", wantStatus: StatusMismatched,
			wantDetail: "credential fic has issuer " + testIssuer + "/, want " + testIssuer + " (a trailing slash differs",
		},
		"an Azure credential with another audience is mismatched": {
			docs: map[string]string{clientID: "[" + fic("fic", testIssuer, "system:serviceaccount:team-azure:flux-source", "api://AzureADTokenExchange-Modified") + "]"},
			pair: "team-azure/flux-source", wantStatus: StatusMismatched,
			wantDetail: "credential fic has audiences [api://AzureADTokenExchange-Modified], want [api://AzureADTokenExchange]",
		},
		"an Azure credential for another namespace is mismatched": {
			docs: map[string]string{clientID: "[" + fic("fic", testIssuer, "system:serviceaccount:team-azur:flux-source", keys.AzureAudience) + "]"},
			pair: "team-azure/flux-source", wantStatus: StatusMismatched,
			wantDetail: "credential fic has subject system:serviceaccount:team-azur:flux-source, want system:serviceaccount:team-azure:flux-source",
		},
		"an Azure credential for a sibling pair is not a near miss": {
			docs: map[string]string{clientID: "[" + fic("fic", testIssuer, "system:serviceaccount:team-azure:flux-image", keys.AzureAudience) + "]"},
			pair: "team-azure/flux-source", wantStatus: StatusMissing,
		},
		"a flexible Azure credential matching by expression is too broad": {
			docs: map[string]string{clientID: `[{"name": "any", "issuer": "` + testIssuer + `", "subject": "", "audiences": ["` + keys.AzureAudience + `"],
				"claimsMatchingExpression": {"value": "claims['sub'] matches 'system:serviceaccount:team-azure:*'", "languageVersion": 1}}]`},
			pair: "team-azure/flux-source", wantStatus: StatusTooBroad, wantDetail: "matches subjects by expression",
		},
		"a GKE binding is ok": {
			docs: map[string]string{dataGSA: iamPolicy(GCPWorkloadIdentityRole, "serviceAccount:data-platform-prod.svc.id.goog[team-data/flux-source]")},
			pair: "team-data/flux-source", wantStatus: StatusOK,
		},
		"GKE's principal form of the same ServiceAccount is ok": {
			docs: map[string]string{dataGSA: iamPolicy(GCPWorkloadIdentityRole,
				"principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/data-platform-prod.svc.id.goog/subject/ns/team-data/sa/flux-source")},
			pair: "team-data/flux-source", wantStatus: StatusOK,
		},
		"a GKE member of another project's pool is mismatched": {
			docs: map[string]string{dataGSA: iamPolicy(GCPWorkloadIdentityRole, "serviceAccount:data-platform-dev.svc.id.goog[team-data/flux-source]")},
			pair: "team-data/flux-source", wantStatus: StatusMismatched,
			wantDetail: "member serviceAccount:data-platform-dev.svc.id.goog[team-data/flux-source], want serviceAccount:data-platform-prod.svc.id.goog[team-data/flux-source]",
		},
		"the right member with the wrong role is mismatched": {
			docs: map[string]string{dataGSA: iamPolicy("roles/iam.serviceAccountTokenCreator", "serviceAccount:data-platform-prod.svc.id.goog[team-data/flux-source]")},
			pair: "team-data/flux-source", wantStatus: StatusMismatched,
			wantDetail: "is granted roles/iam.serviceAccountTokenCreator, want roles/iam.workloadIdentityUser",
		},
		"a namespace-wide principal set is too broad": {
			docs: map[string]string{dataGSA: iamPolicy(GCPWorkloadIdentityRole,
				"principalSet://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/data-platform-prod.svc.id.goog/namespace/team-data")},
			pair: "team-data/flux-source", wantStatus: StatusTooBroad, wantDetail: "to a set of identities of pool data-platform-prod.svc.id.goog",
		},
		"a principal set for another namespace does not cover the pair": {
			docs: map[string]string{dataGSA: iamPolicy(GCPWorkloadIdentityRole,
				"principalSet://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/data-platform-prod.svc.id.goog/namespace/team-other")},
			pair: "team-data/flux-source", wantStatus: StatusMissing,
		},
		"a pool-wide principal set through a provider is too broad": {
			docs: map[string]string{notifGSA: iamPolicy(GCPWorkloadIdentityRole, "principalSet://iam.googleapis.com/"+poolPath+"/*")},
			pair: "flux-system/notification-controller", wantStatus: StatusTooBroad,
		},
		"a provider principal for the subject is ok": {
			docs: map[string]string{notifGSA: iamPolicy(GCPWorkloadIdentityRole,
				"principal://iam.googleapis.com/"+poolPath+"/subject/system:serviceaccount:flux-system:notification-controller")},
			pair: "flux-system/notification-controller", wantStatus: StatusOK,
		},
		"allAuthenticatedUsers is too broad": {
			docs: map[string]string{notifGSA: iamPolicy(GCPWorkloadIdentityRole, "allAuthenticatedUsers")},
			pair: "flux-system/notification-controller", wantStatus: StatusTooBroad,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := findingOf(t, pairs, tc.docs, Options{Issuer: testIssuer}, tc.pair)
			if got.Status != tc.wantStatus || !strings.Contains(got.Detail, tc.wantDetail) {
				t.Errorf("got %s %q, want %s containing %q", got.Status, got.Detail, tc.wantStatus, tc.wantDetail)
			}
		})
	}
}

// findingOf checks docs (KEY -> document; keys starting with '#' stand for documents given without a key) and returns
// the finding of pair NS/SA.
func findingOf(t *testing.T, pairs []Pair, docs map[string]string, o Options, pair string) Finding {
	t.Helper()
	var d Documents
	for k, doc := range docs {
		if strings.HasPrefix(k, "#") {
			k = ""
		}
		if err := d.Add("doc.json", k, []byte(doc)); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range Check(pairs, &d, o) {
		if f.Namespace+"/"+f.ServiceAccount == pair {
			return f
		}
	}
	t.Fatalf("no finding for %s", pair)
	return Finding{}
}

// TestRenderedSideChecksOK feeds what render produces back to check, as each cloud's CLI would print it: every pair
// must come out ok. It ties the two commands together.
func TestRenderedSideChecksOK(t *testing.T) {
	p := loadTestPolicy(t)
	pairs, unresolved := Pairs(p, testNames)
	r, err := Render(pairs, unresolved, nil, Options{Issuer: testIssuer})
	if err != nil {
		t.Fatal(err)
	}
	var docs Documents
	add := func(k string, v any) {
		t.Helper()
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := docs.Add("rendered", k, data); err != nil {
			t.Fatal(err)
		}
	}
	for _, role := range r.AWS {
		add("", map[string]any{"Role": map[string]any{"Arn": role.RoleARN, "AssumeRolePolicyDocument": role.TrustPolicy}})
	}
	for _, a := range r.Azure {
		add(a.ClientID, a.Credentials)
	}
	for _, g := range r.GCP {
		add(g.ServiceAccount, map[string]any{"bindings": []any{map[string]any{"role": g.Role, "members": g.Members}}})
	}
	findings := Check(pairs, &docs, Options{Issuer: testIssuer})
	if len(findings) != len(pairs) {
		t.Fatalf("%d findings for %d pairs", len(findings), len(pairs))
	}
	for _, f := range findings {
		if f.Status != StatusOK {
			t.Errorf("%s/%s: %s %s", f.Namespace, f.ServiceAccount, f.Status, f.Detail)
		}
	}
}

func TestDocumentsAdd(t *testing.T) {
	tests := map[string]struct {
		key, doc string
		wantErr  string
		check    func(t *testing.T, d *Documents)
	}{
		"an IAM policy needs the Google service account as its key": {
			doc: iamPolicy(GCPWorkloadIdentityRole), wantErr: "pass it as EMAIL=doc.json",
		},
		"a federated credential list needs the client ID as its key": {
			doc: "[]", wantErr: "pass it as CLIENT_ID=doc.json",
		},
		"a role document given another role's ARN is refused": {
			key: "arn:aws:iam::111122223333:role/other", doc: getRole(fluxRole, ""), wantErr: "is role " + fluxRole,
		},
		"an unknown document is refused and says what is accepted": {
			doc: `{"kind": "Pod"}`, wantErr: "not an exported trust document",
		},
		"broken JSON is refused": {
			doc: `{"Role": `, wantErr: "not a JSON object or list",
		},
		"a single federated credential (az ... show) is accepted": {
			key: clientID, doc: fic("fic", testIssuer, "s", keys.AzureAudience),
		},
		"aws iam list-roles output is accepted": {
			doc: `{"Roles": [{"Arn": "` + fluxRole + `", "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}]}`,
		},
		"a bucket's IAM policy names its bucket": {
			doc: bucketPolicy(), check: func(t *testing.T, d *Documents) {
				if d.GCPResources["gs://ml-models"] == nil {
					t.Errorf("resources %v", d.GCPResources)
				}
			},
		},
		"a repository's IAM policy is keyed by its resource name": {
			key: "projects/p/locations/europe-west1/repositories/charts", doc: `{"etag": "ACAB"}`,
			check: func(t *testing.T, d *Documents) {
				if d.GCPResources["projects/p/locations/europe-west1/repositories/charts"] == nil {
					t.Errorf("resources %v", d.GCPResources)
				}
			},
		},
		"an IAM policy keyed by something else is refused with the accepted keys": {
			key: "charts", doc: `{"etag": "ACAB"}`, wantErr: "RESOURCE=doc.json (gs://BUCKET, projects/P/locations/L/repositories/R",
		},
		"an association is read from describe-pod-identity-association": {
			doc: association(""), check: func(t *testing.T, d *Documents) {
				if len(d.PodIdentity) != 1 || d.PodIdentity[0].AssociationID != "a-1" {
					t.Errorf("associations %+v", d.PodIdentity)
				}
			},
		},
		"list-pod-identity-associations is refused: it prints no roles": {
			doc:     `{"associations": [{"clusterName": "prod", "namespace": "flux-system", "serviceAccount": "x"}]}`,
			wantErr: "does not print roles: export each association with aws eks describe-pod-identity-association",
		},
		"an association without its names is refused": {
			doc: `{"association": {"roleArn": "arn:aws:iam::111122223333:role/x"}}`, wantErr: "without clusterName",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var docs Documents
			err := docs.Add("doc.json", tc.key, []byte(tc.doc))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, &docs)
			}
		})
	}
}

// FuzzDocumentsAdd: any bytes either load or fail with an error; nothing panics.
func FuzzDocumentsAdd(f *testing.F) {
	f.Add("", getRole(fluxRole, webIdentity(provider, okSource)))
	f.Add(clientID, "["+fic("fic", testIssuer, "s", keys.AzureAudience)+"]")
	f.Add(dataGSA, iamPolicy(GCPWorkloadIdentityRole, "allUsers"))
	f.Add("", `{"Role": {"Arn": "x", "AssumeRolePolicyDocument": "%7B"}}`)
	f.Add("", association(""))
	f.Add("", bucketPolicy(binding("roles/storage.objectViewer", gkeMember)))
	p, err := loadPolicyForFuzz()
	if err != nil {
		f.Fatal(err)
	}
	pairs, _ := Pairs(p, testNames)
	f.Fuzz(func(t *testing.T, key, doc string) {
		var docs Documents
		if docs.Add("fuzz", key, []byte(doc)) == nil {
			_ = Check(pairs, &docs, Options{Issuer: testIssuer})
		}
	})
}
