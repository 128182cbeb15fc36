package fluxobjects_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// sourcePolicy maps Flux's controllers (AWS), tenants (Azure) and a data team (GCP), and mandates identity for Git in
// flux-system and team-*, for registries and buckets in team-* and data, for everything in team-b, and in audit-only
// mode in quiet.
const sourcePolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: unit
identities:
  - name: flux-controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, image-reflector-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
  - name: data
    namespaces: [data]
    serviceAccounts: [flux-data]
    gcp:
      serviceAccount: flux-data@data-prod.iam.gserviceaccount.com
mandates:
  - name: no-static-git-credentials
    namespaces: [flux-system, "team-*", data]
    mode: enforce
    kinds: [GitRepository]
    allowProviders: [github]
  - name: no-static-registry-credentials
    namespaces: ["team-*", data]
    mode: warn
    kinds: [OCIRepository, HelmRepository, Bucket, ImageRepository]
  - name: team-b-everything
    namespaces: [team-b]
    mode: enforce
  - name: quiet-audit
    namespaces: [quiet]
    mode: off
exceptions:
  - namespace: team-a
    kind: GitRepository
    name: legacy-*
    reason: ADO migration, ticket PLAT-123
    expires: "2027-01-31"
  - namespace: team-a
    kind: OCIRepository
    name: old-registry
    reason: expired on purpose
    expires: "2026-01-01"
`

// admissiontest.Now is the clock of these tests: the first exception is active, the second expired.

func loadSourcePolicy(t testing.TB) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("source-policy.yaml", []byte(sourcePolicy), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse policy: %v", err)
	}
	return p
}

// Addresses of the test objects: the cloud an address belongs to decides which identity a fix points at.
const (
	adoURL       = "https://dev.azure.com/org/project/_git/app"
	codeCommit   = "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/fleet"
	githubURL    = "https://github.com/org/app"
	acrURL       = "oci://tenants.azurecr.io/manifests/app"
	ecrURL       = "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/manifests/app"
	garURL       = "oci://europe-docker.pkg.dev/data-prod/charts"
	s3Endpoint   = "s3.eu-west-1.amazonaws.com"
	blobEndpoint = "https://tenants.blob.core.windows.net"
)

func TestEvaluate(t *testing.T) {
	p := loadSourcePolicy(t)
	type want struct {
		mandates   []string
		fields     []string // "mandate field" per violation, in order
		messages   []string // exact messages, when given
		excepted   bool
		enforceAns string // the decision answered with the server in enforce mode
	}
	tests := map[string]struct {
		obj  fluxauth.Object
		want want
	}{
		"a GitRepository without credentials in a mandated namespace is compliant": {
			obj:  fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", Address: adoURL},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"a GitRepository in a namespace no mandate names is not mandated, even with a secretRef": {
			obj:  fluxauth.Object{Kind: "GitRepository", Namespace: "elsewhere", Name: "app", SecretRef: "git-auth"},
			want: want{enforceAns: webhook.DecisionAllowed},
		},
		"a kind the mandates of the namespace do not list is not mandated": {
			obj:  fluxauth.Object{Kind: "OCIRepository", Namespace: "flux-system", Name: "app", SecretRef: "regcred"},
			want: want{enforceAns: webhook.DecisionAllowed},
		},
		"spec.secretRef on a tenant's Azure DevOps repository points at the tenant's Azure ServiceAccount": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", SecretRef: "git-auth",
				Address: adoURL},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"[no-static-git-credentials] drop spec.secretRef, set spec.provider: azure, " +
					"spec.serviceAccountName: flux-source"},
				enforceAns: webhook.DecisionDenied,
			},
		},
		"spec.secretRef in flux-system points at the controllers' identity, not an object-level one": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "flux-system", Name: "fleet", SecretRef: "git-auth",
				Address: codeCommit},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"[no-static-git-credentials] drop spec.secretRef, set spec.provider: aws " +
					"(identity flux-controllers)"},
				enforceAns: webhook.DecisionDenied,
			},
		},
		"a GitHub App key is tolerated where the mandate allows github": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", SecretRef: "github-app",
				Provider: "github", Address: githubURL},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"a GitHub App key allowed by one mandate is no excuse under another that does not allow it": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-b", Name: "app", SecretRef: "github-app",
				Provider: "github", Address: githubURL},
			want: want{
				mandates:   []string{"no-static-git-credentials", "team-b-everything"},
				fields:     []string{"team-b-everything spec.secretRef"},
				enforceAns: webhook.DecisionDenied,
				messages: []string{"[team-b-everything] spec.secretRef holds a GitHub App key: add an exception " +
					"(no cloud identity for github.com)"},
			},
		},
		"an unexpired exception whose glob matches the name excuses spec.secretRef": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "legacy-monorepo", SecretRef: "ado-pat",
				Address: adoURL},
			want: want{mandates: []string{"no-static-git-credentials"}, excepted: true, enforceAns: webhook.DecisionExcepted},
		},
		"an exception for another kind excuses nothing": {
			obj: fluxauth.Object{Kind: "ImageRepository", Namespace: "team-a", Name: "legacy-monorepo",
				SecretRef: "regcred", Address: "tenants.azurecr.io/app"},
			want: want{
				mandates:   []string{"no-static-registry-credentials"},
				fields:     []string{"no-static-registry-credentials spec.secretRef"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"an expired exception excuses nothing": {
			obj: fluxauth.Object{Kind: "OCIRepository", Namespace: "team-a", Name: "old-registry", SecretRef: "regcred",
				Address: acrURL},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"[no-static-registry-credentials] drop spec.secretRef, set spec.provider: azure, " +
					"spec.serviceAccountName: flux-source"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"an exception excuses a credential but not a ServiceAccount the policy does not map": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "legacy-x",
				Address: "https://org:ado-pat@dev.azure.com/org/project/_git/x", Provider: "azure",
				ServiceAccountName: "deployer"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.serviceAccountName"},
				messages: []string{"[no-static-git-credentials] spec.serviceAccountName deployer has no identity " +
					"here: use flux-source (identity tenants)"},
				excepted:   true,
				enforceAns: webhook.DecisionDenied,
			},
		},
		"with a cloud provider a Git secretRef only adds TLS keys, which the mandate does not cover": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", SecretRef: "ado-ca",
				Provider: "azure", ServiceAccountName: "flux-source", Address: adoURL},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"provider azure with the tenant's mapped ServiceAccount is compliant": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", Provider: "azure",
				ServiceAccountName: "flux-source", Address: adoURL},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"provider aws without a ServiceAccount in Flux's own namespace (CodeCommit through the controller) is compliant": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "flux-system", Name: "codecommit", Provider: "aws",
				Address: codeCommit},
			want: want{mandates: []string{"no-static-git-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"spec.provider contradicting the cloud of the ServiceAccount's identity is denied": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "team-a", Name: "app", Provider: "aws",
				ServiceAccountName: "flux-source", Address: adoURL},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.provider"},
				messages: []string{"[no-static-git-credentials] spec.provider: aws does not fit identity tenants " +
					"(azure): set spec.provider: azure"},
				enforceAns: webhook.DecisionDenied,
			},
		},
		"a generic OCIRepository naming a ServiceAccount only reads its pull secrets": {
			obj: fluxauth.Object{Kind: "OCIRepository", Namespace: "team-a", Name: "app", ServiceAccountName: "flux-source",
				Address: acrURL},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.serviceAccountName"},
				messages: []string{"[no-static-registry-credentials] spec.serviceAccountName: set spec.provider: azure " +
					"(identity tenants)"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"a GitRepository cannot use the namespace's gcp identity: the fix is an exception": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "data", Name: "app", SecretRef: "git-auth",
				Address: "https://gitlab.com/data/app"},
			want: want{
				mandates: []string{"no-static-git-credentials"},
				fields:   []string{"no-static-git-credentials spec.secretRef"},
				messages: []string{"[no-static-git-credentials] spec.secretRef: add an exception " +
					"(no cloud identity for gitlab.com)"},
				enforceAns: webhook.DecisionDenied,
			},
		},
		"a gcp identity serves an Artifact Registry OCIRepository through its ServiceAccount": {
			obj: fluxauth.Object{Kind: "OCIRepository", Namespace: "data", Name: "charts", SecretRef: "regcred",
				Address: garURL},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"[no-static-registry-credentials] drop spec.secretRef, set spec.provider: gcp, " +
					"spec.serviceAccountName: flux-data"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"an https HelmRepository ignores spec.provider: a tenant is sent to an OCIRepository with its ServiceAccount": {
			obj: fluxauth.Object{Kind: "HelmRepository", Namespace: "team-a", Name: "charts", SecretRef: "helm-creds",
				Provider: "azure", HelmType: "default", Address: "https://tenants.azurecr.io/helm/v1/repo"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.secretRef"},
				messages: []string{"[no-static-registry-credentials] spec.secretRef: use OCIRepository, provider: azure, " +
					"serviceAccountName: flux-source"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"an OCI HelmRepository of a tenant borrows source-controller's identity even without a secret": {
			obj: fluxauth.Object{Kind: "HelmRepository", Namespace: "team-a", Name: "charts", Provider: "azure",
				HelmType: "oci", Address: "oci://tenants.azurecr.io/charts"},
			want: want{
				mandates: []string{"no-static-registry-credentials"},
				fields:   []string{"no-static-registry-credentials spec.provider"},
				messages: []string{"[no-static-registry-credentials] spec.provider: use OCIRepository, provider: azure, " +
					"serviceAccountName: flux-source"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"a Bucket with static S3 keys is a violation": {
			obj: fluxauth.Object{Kind: "Bucket", Namespace: "team-a", Name: "artifacts", SecretRef: "s3-keys",
				Address: "minio.storage:9000"},
			want: want{
				mandates:   []string{"no-static-registry-credentials"},
				fields:     []string{"no-static-registry-credentials spec.secretRef"},
				enforceAns: webhook.DecisionWarned,
			},
		},
		"an ImageRepository with a cloud provider never reads spec.secretRef": {
			obj: fluxauth.Object{Kind: "ImageRepository", Namespace: "team-a", Name: "app", SecretRef: "regcred",
				Provider: "azure", ServiceAccountName: "flux-source", Address: "tenants.azurecr.io/app"},
			want: want{mandates: []string{"no-static-registry-credentials"}, enforceAns: webhook.DecisionAllowed},
		},
		"every covering mandate reports spec.secretRef; the ServiceAccount is reported once, under the strictest": {
			obj: fluxauth.Object{Kind: "OCIRepository", Namespace: "team-b", Name: "app", SecretRef: "regcred",
				Provider: "azure", ServiceAccountName: "deployer", Address: acrURL},
			want: want{
				mandates: []string{"no-static-registry-credentials", "team-b-everything"},
				fields: []string{"no-static-registry-credentials spec.secretRef", "team-b-everything spec.secretRef",
					"team-b-everything spec.serviceAccountName"},
				enforceAns: webhook.DecisionDenied,
			},
		},
		"an off mandate still finds the violation, and the answer ignores it": {
			obj: fluxauth.Object{Kind: "Bucket", Namespace: "quiet", Name: "b", SecretRef: "minio", Address: s3Endpoint},
			want: want{
				mandates: []string{"quiet-audit"},
				fields:   []string{"quiet-audit spec.secretRef"},
				messages: []string{"[quiet-audit] drop spec.secretRef, map a ServiceAccount of quiet to an aws identity " +
					"in the policy"},
				enforceAns: webhook.DecisionUnenforced,
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := fluxobjects.Evaluate(p, tc.obj, admissiontest.Now)
			if !slices.Equal(d.Mandates, tc.want.mandates) {
				t.Errorf("mandates = %q, want %q", d.Mandates, tc.want.mandates)
			}
			var fields, messages []string
			for _, v := range d.Violations {
				fields = append(fields, v.Mandate+" "+v.Field)
				messages = append(messages, v.Message)
				checkMessage(t, v, tc.obj)
			}
			if !slices.Equal(fields, tc.want.fields) {
				t.Errorf("violations = %q, want %q", fields, tc.want.fields)
			}
			if tc.want.messages != nil && !slices.Equal(messages, tc.want.messages) {
				t.Errorf("messages =\n  %q\nwant\n  %q", messages, tc.want.messages)
			}
			if (d.Exception != nil) != tc.want.excepted {
				t.Errorf("exception = %v, want excepted %v", d.Exception, tc.want.excepted)
			}
			v := d.Verdict()
			if got := webhook.Outcome(&v, policy.ModeEnforce); got != tc.want.enforceAns {
				t.Errorf("decision = %s, want %s", got, tc.want.enforceAns)
			}
		})
	}
}

// checkMessage holds every violation message to its shape: within verdict.MaxMessageLength, the mandate first, no secret's
// name and no credential from the object's address.
func checkMessage(t *testing.T, v fluxobjects.Violation, obj fluxauth.Object) {
	t.Helper()
	if len(v.Message) > verdict.MaxMessageLength {
		t.Errorf("message over %d bytes: %q", verdict.MaxMessageLength, v.Message)
	}
	if !strings.HasPrefix(v.Message, "["+v.Mandate+"] ") {
		t.Errorf("message does not name its mandate first: %q", v.Message)
	}
	for _, secret := range []string{obj.SecretRef, obj.CertSecretRef, obj.ProxySecretRef, obj.STSSecretRef} {
		if secret != "" && strings.Contains(v.Message, secret) {
			t.Errorf("message prints a secret's name: %q", v.Message)
		}
	}
	if strings.Contains(v.Message, "@") || strings.Contains(v.Message, "sig=") {
		t.Errorf("message may print a credential from the address: %q", v.Message)
	}
}

// TestSourceMessagesFitWithLongestNames drives every message shape with names at the policy's 63-character limit and a
// 253-character ServiceAccount name: no message may pass verdict.MaxMessageLength, and each still names its mandate.
func TestSourceMessagesFitWithLongestNames(t *testing.T) {
	long := func(c string) string { return strings.Repeat(c, 63) }
	mandate, identity := long("m"), long("i")
	doc := fmt.Sprintf(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: long
identities:
  - name: %[2]s
    namespaces: ["%[3]s"]
    serviceAccounts: ["%[4]s"]
    gcp:
      serviceAccount: flux-gcp@p-project.iam.gserviceaccount.com
  - name: %[2]s-2
    namespaces: ["%[5]s"]
    serviceAccounts: ["%[4]s"]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: %[1]s
    namespaces: ["%[3]s", "%[5]s", nothing]
    cover: [tlsClientKeys, proxyCredentials]
`, mandate, identity[:61], long("n"), long("s"), long("a"))
	p, err := policy.Parse("long.yaml", []byte(doc), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	count := 0
	for _, ns := range []string{long("n"), long("a"), "nothing"} {
		for _, kind := range policy.Kinds {
			for _, provider := range []string{"", "generic", "aws", "azure", "gcp", "github"} {
				for _, sa := range []string{"", long("s"), strings.Repeat("x", 253)} {
					for _, helmType := range []string{"default", "oci"} {
						for _, address := range []string{adoURL, acrURL, "https://" + strings.Repeat("h", 200) + ".example.com/x"} {
							obj := fluxauth.Object{Kind: kind, Namespace: ns, Name: "o", SecretRef: "s", Provider: provider,
								ServiceAccountName: sa, HelmType: helmType, Address: address, CertSecretRef: "c",
								ProxySecretRef: "p"}
							for _, v := range fluxobjects.Evaluate(p, obj, admissiontest.Now).Violations {
								count++
								if len(v.Message) > verdict.MaxMessageLength || !strings.HasPrefix(v.Message, "["+mandate+"] ") {
									t.Errorf("%+v: message %d bytes: %q", obj, len(v.Message), v.Message)
								}
							}
						}
					}
				}
			}
		}
	}
	if count == 0 {
		t.Fatal("no violations were produced: the test checks nothing")
	}
}

func TestSourceMessagesWithoutAUsableIdentity(t *testing.T) {
	p, err := policy.Parse("gcp-only.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: gcp-only
identities:
  - name: data
    namespaces: [data]
    serviceAccounts: [flux-data]
    gcp:
      serviceAccount: flux-data@data-prod.iam.gserviceaccount.com
mandates:
  - name: no-secrets
    namespaces: [data, other]
`), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	tests := map[string]struct {
		obj  fluxauth.Object
		want []string
	}{
		"a GitRepository on Azure DevOps in a namespace with only a gcp identity is told to map an azure one": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "data", Name: "app", SecretRef: "s", Address: adoURL},
			want: []string{"[no-secrets] drop spec.secretRef, map a ServiceAccount of data to an azure identity " +
				"in the policy"},
		},
		"a GitRepository naming a gcp ServiceAccount is told Git cannot use it": {
			obj: fluxauth.Object{Kind: "GitRepository", Namespace: "data", Name: "app", Provider: "azure",
				ServiceAccountName: "flux-data", Address: adoURL},
			want: []string{"[no-secrets] identity data of spec.serviceAccountName is gcp, which GitRepository cannot use"},
		},
		"a Bucket whose endpoint names no cloud cannot be fixed by an identity": {
			obj: fluxauth.Object{Kind: "Bucket", Namespace: "other", Name: "b", SecretRef: "s", Address: "minio.local:9000"},
			want: []string{"[no-secrets] spec.secretRef holds static S3 keys: add an exception (no cloud " +
				"identity for minio.local:9000)"},
		},
		"an unmapped ServiceAccount with nothing to suggest is to be mapped": {
			obj: fluxauth.Object{Kind: "OCIRepository", Namespace: "other", Name: "o", Provider: "aws",
				ServiceAccountName: "ci", Address: ecrURL},
			want: []string{"[no-secrets] spec.serviceAccountName ci has no identity here: map it to an aws " +
				"identity in the policy"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, v := range fluxobjects.Evaluate(p, tc.obj, admissiontest.Now).Violations {
				got = append(got, v.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages =\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

func TestControllerIdentityUnderFluxsLockdown(t *testing.T) {
	const doc = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
flux:
  namespaces: [flux-system, flux-tenants]
  defaultServiceAccount: %s
identities:
  - name: tenant-aws
    namespaces: ["team-*"]
    serviceAccounts: [flux-default]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
mandates:
  - name: tenants
    namespaces: ["team-*", flux-tenants]
  - name: relaxed
    namespaces: [relaxed]
    allowControllerIdentity: true
`
	tests := map[string]struct {
		lockdown string
		obj      fluxauth.Object
		want     []string
	}{
		"without the lockdown, a provider without a ServiceAccount borrows the controller's identity": {
			lockdown: `""`,
			obj:      fluxauth.Object{Kind: "OCIRepository", Namespace: "team-a", Provider: "aws", Address: ecrURL},
			want: []string{"[tenants] spec.serviceAccountName unset: provider aws borrows source-controller's identity: " +
				"set it to flux-default"},
		},
		"with the lockdown, Flux uses the default ServiceAccount of the namespace: mapped, it is compliant": {
			lockdown: "flux-default",
			obj:      fluxauth.Object{Kind: "OCIRepository", Namespace: "team-a", Provider: "aws", Address: ecrURL},
		},
		"with the lockdown, an unmapped default ServiceAccount is the violation": {
			lockdown: "builder",
			obj:      fluxauth.Object{Kind: "Bucket", Namespace: "team-a", Provider: "aws", Address: s3Endpoint},
			want: []string{"[tenants] --default-service-account builder has no identity here: " +
				"set spec.serviceAccountName: flux-default"},
		},
		"with the lockdown, a default ServiceAccount of another cloud is the violation": {
			lockdown: "flux-default",
			obj:      fluxauth.Object{Kind: "ImageRepository", Namespace: "team-a", Provider: "azure", Address: "tenants.azurecr.io/app"},
			want:     []string{"[tenants] spec.provider: azure does not fit identity tenant-aws (aws): map a ServiceAccount to an azure identity"},
		},
		"the lockdown does not reach an oci HelmRepository: it always borrows source-controller's identity": {
			lockdown: "flux-default",
			obj: fluxauth.Object{Kind: "HelmRepository", HelmType: "oci", Namespace: "team-a", Provider: "aws",
				Address: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/charts"},
			want: []string{"[tenants] spec.provider: use an OCIRepository with spec.provider: aws, " +
				"spec.serviceAccountName: flux-default"},
		},
		"a second Flux namespace is Flux's own too": {
			lockdown: `""`,
			obj:      fluxauth.Object{Kind: "OCIRepository", Namespace: "flux-tenants", Provider: "aws", Address: ecrURL},
		},
		"a mandate that allows controller identity lets it be": {
			lockdown: `""`,
			obj:      fluxauth.Object{Kind: "OCIRepository", Namespace: "relaxed", Provider: "aws", Address: ecrURL},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := policy.Parse("lockdown.yaml", []byte(fmt.Sprintf(doc, tc.lockdown)), admissiontest.Now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range fluxobjects.Evaluate(p, tc.obj, admissiontest.Now).Violations {
				got = append(got, v.Message)
				checkMessage(t, v, tc.obj)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages =\n  %q\nwant\n  %q", got, tc.want)
			}
		})
	}
}

// EKS Pod Identity serves Flux's controllers only (policy podIdentityScope): a Flux object that names a Pod Identity
// ServiceAccount of a Flux namespace would fail in fluxcd/pkg/auth aws NewTokenForServiceAccount for want of a
// role-arn, so it is refused and pointed at an IRSA ServiceAccount; as a decryption ServiceAccount it is a warning.
func TestPodIdentityServiceAccountsServeNoFluxObject(t *testing.T) {
	const doc = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller, kustomize-controller]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux-controllers", mechanism: podIdentity}
%s
mandates:
  - name: strict
    namespaces: [flux-system]
    allowControllerIdentity: true
`
	const irsa = `  - name: ci
    namespaces: [flux-system]
    serviceAccounts: [flux-ci]
    aws: {roleARN: "arn:aws:iam::111122223333:role/flux-ci"}`
	oci := fluxauth.Object{Kind: "OCIRepository", Namespace: "flux-system", Name: "app", Provider: "aws",
		ServiceAccountName: "source-controller", Address: ecrURL}
	sops := fluxauth.Object{Kind: "Kustomization", Namespace: "flux-system", Name: "apps", Decryption: true,
		DecryptionServiceAccountName: "kustomize-controller"}
	tests := map[string]struct {
		irsa         string
		obj          fluxauth.Object
		want, warned []string
	}{
		"a source naming a Pod Identity ServiceAccount is told to map one with IRSA": {
			obj: oci,
			want: []string{"[strict] spec.serviceAccountName source-controller uses EKS Pod Identity: map one with " +
				"mechanism irsa"},
		},
		"a source naming a Pod Identity ServiceAccount is pointed at the IRSA one beside it": {
			irsa: irsa, obj: oci,
			want: []string{"[strict] spec.serviceAccountName source-controller uses EKS Pod Identity (Flux objects need " +
				"IRSA): use flux-ci"},
		},
		"the IRSA ServiceAccount is compliant": {
			irsa: irsa, obj: func() fluxauth.Object { o := oci; o.ServiceAccountName = "flux-ci"; return o }(),
		},
		"a decryption ServiceAccount with Pod Identity decrypts no AWS KMS key: a warning": {
			obj: sops,
			warned: []string{"[strict] spec.decryption.serviceAccountName kustomize-controller uses EKS Pod Identity: AWS " +
				"KMS keys will not decrypt"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := policy.Parse("podidentity.yaml", []byte(fmt.Sprintf(doc, tc.irsa)), admissiontest.Now)
			if err != nil {
				t.Fatal(err)
			}
			d := fluxobjects.Evaluate(p, tc.obj, admissiontest.Now)
			var got []string
			for _, v := range d.Violations {
				got = append(got, v.Message)
				checkMessage(t, v, tc.obj)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("messages =\n  %q\nwant\n  %q", got, tc.want)
			}
			if !slices.Equal(d.Warnings, tc.warned) {
				t.Errorf("warnings =\n  %q\nwant\n  %q", d.Warnings, tc.warned)
			}
		})
	}
}

func TestFixesPointAtAGlobWhenNoServiceAccountIsNamedLiterally(t *testing.T) {
	p, err := policy.Parse("glob.yaml", []byte(`apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: ["flux-*"]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenants/{namespace}.{serviceAccount}"}
mandates:
  - name: m
    namespaces: ["team-*"]
`), admissiontest.Now)
	if err != nil {
		t.Fatal(err)
	}
	d := fluxobjects.Evaluate(p, fluxauth.Object{Kind: "OCIRepository", Namespace: "team-a", Name: "app", SecretRef: "s",
		Address: ecrURL}, admissiontest.Now)
	want := "[m] drop spec.secretRef, set spec.provider: aws, spec.serviceAccountName: one of flux-* (identity tenants)"
	if len(d.Violations) != 1 || d.Violations[0].Message != want {
		t.Errorf("violations = %+v, want one with %q", d.Violations, want)
	}
}
