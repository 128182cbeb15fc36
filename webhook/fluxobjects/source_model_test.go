package fluxobjects_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/webhooktest"
)

// modelPolicy maps one ServiceAccount per cloud in the tenant namespace and mandates identity there twice: strict
// covers TLS and proxy secrets and excuses nothing; lenient accepts GitHub Apps and controller identity.
const modelPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
identities:
  - name: tenant-aws
    namespaces: [strict, lenient]
    serviceAccounts: [aws-sa]
    aws: {roleARN: "arn:aws:iam::111122223333:role/tenant"}
  - name: tenant-azure
    namespaces: [strict, lenient]
    serviceAccounts: [azure-sa]
    azure: {clientID: 00000000-0000-0000-0000-000000000001, tenantID: 00000000-0000-0000-0000-0000000000aa}
  - name: tenant-gcp
    namespaces: [strict, lenient]
    serviceAccounts: [gcp-sa]
    gcp: {serviceAccount: tenant@project-1.iam.gserviceaccount.com}
mandates:
  - name: strict
    namespaces: [strict]
    cover: [tlsClientKeys, proxyCredentials, sopsPrivateKeys, receiverTokens]
  - name: lenient
    namespaces: [lenient]
    allowProviders: [github]
    allowControllerIdentity: true
`

// providersOf are the spec.provider values each kind's CRD accepts; a kind without the field has none.
var providersOf = map[string][]string{
	"GitRepository":   {"generic", "aws", "azure", "github"},
	"OCIRepository":   {"generic", "aws", "azure", "gcp"},
	"HelmRepository":  {"generic", "aws", "azure", "gcp"},
	"Bucket":          {"generic", "aws", "azure", "gcp"},
	"ImageRepository": {"generic", "aws", "azure", "gcp"},
}

// typeOf is a type that stands for a variant of a kind whose type decides (a variant that is a family, or every
// type): the one each case is sent with.
var typeOf = map[string]string{
	fluxauth.VariantNoIdentity: "slack", fluxauth.VariantAzureDevOps: "AzureDevOpsBranch",
	fluxauth.VariantAWSCodeCommit: "AWSCodeCommitBranch", fluxauth.VariantGitHub: "GitHubBranch",
	fluxauth.VariantGitLab: "GitLabBranch", fluxauth.VariantGitea: "GiteaBranch",
}

// modelCase is an object that exercises one row of the credential model.
type modelCase struct {
	row              *fluxauth.Row
	kind, variant    string
	provider         string
	object           map[string]any
	hasAccountField  bool
	violationAtField string // where a violation of this row is reported
}

// modelCases builds, for every row of fluxauth.Model and every provider and variant it stands for, an object whose
// only interesting field is the row's: cloud providers come with a mapped ServiceAccount of their cloud, so that no
// other row applies.
func modelCases(t *testing.T) []modelCase {
	t.Helper()
	var cases []modelCase
	for i := range fluxauth.Model {
		row := &fluxauth.Model[i]
		providers := []string{row.Provider}
		if row.Provider == fluxauth.AnyProvider {
			providers = providersOf[row.Kind]
		}
		if providers == nil {
			providers = []string{""} // the kind has no spec.provider
		}
		variants := []string{row.Variant}
		if row.Variant == fluxauth.AnyVariant {
			variants = []string{""}
		}
		for _, provider := range providers {
			for _, variant := range variants {
				cases = append(cases, modelObject(t, row, variant, provider))
			}
		}
	}
	return cases
}

func modelObject(t *testing.T, row *fluxauth.Row, variant, provider string) modelCase {
	t.Helper()
	c := modelCase{row: row, kind: row.Kind, variant: variant, provider: provider, violationAtField: fluxauth.Path(row.Field)}
	spec := map[string]any{"provider": provider}
	group := "source.toolkit.fluxcd.io"
	var address string
	switch row.Kind {
	case "GitRepository":
		c.hasAccountField = true
		address = map[string]string{"aws": codeCommit, "azure": adoURL}[provider]
		if address == "" {
			address = githubURL
		}
		if variant == fluxauth.VariantSSH {
			address = "ssh://git@ssh.dev.azure.com/v3/org/project/app"
		}
		spec["url"] = address
	case "OCIRepository":
		c.hasAccountField = true
		address = map[string]string{"aws": ecrURL, "azure": acrURL, "gcp": garURL}[provider]
		if address == "" {
			address = "oci://registry.example.com/app"
		}
		spec["url"] = address
	case "HelmRepository":
		spec["type"] = variant
		address = "https://charts.example.com/stable"
		if variant == fluxauth.HelmTypeOCI {
			address = "oci://registry.example.com/charts"
		}
		spec["url"] = address
		if row.Class == fluxauth.ControllerIdentity {
			c.violationAtField = fluxauth.FieldProvider // a HelmRepository has no serviceAccountName
		}
	case "Bucket":
		c.hasAccountField = true
		address = map[string]string{"aws": s3Endpoint, "azure": blobEndpoint}[provider]
		if address == "" {
			address = "minio.example.com:9000"
		}
		spec["bucketName"], spec["endpoint"] = "artifacts", address
	case "ImageRepository":
		c.hasAccountField = true
		group = "image.toolkit.fluxcd.io"
		address = map[string]string{"aws": "111122223333.dkr.ecr.eu-west-1.amazonaws.com/app",
			"azure": "tenants.azurecr.io/app", "gcp": "europe-docker.pkg.dev/p/app"}[provider]
		if address == "" {
			address = "registry.example.com/app"
		}
		spec["image"] = address
	default:
		return objectModelObject(t, c)
	}
	account := map[string]string{"aws": "aws-sa", "azure": "azure-sa", "gcp": "gcp-sa"}[provider]
	if account != "" && c.hasAccountField && row.Field != fluxauth.FieldNoServiceAccount {
		spec["serviceAccountName"] = account
	}
	ref := map[string]any{"name": "s"}
	switch row.Field {
	case fluxauth.FieldSecretRef, fluxauth.FieldCertSecretRef, fluxauth.FieldProxySecretRef:
		spec[strings.TrimPrefix(row.Field, "spec.")] = ref
	case fluxauth.FieldSTSSecretRef:
		spec["sts"] = map[string]any{"provider": "ldap", "endpoint": "https://sts.example.com", "secretRef": ref}
	case fluxauth.FieldSTSCertSecretRef:
		spec["sts"] = map[string]any{"provider": "ldap", "endpoint": "https://sts.example.com", "certSecretRef": ref}
	case fluxauth.FieldServiceAccountName:
		if account == "" {
			account = "some-sa" // the generic provider: only the ServiceAccount's pull secrets
		}
		spec["serviceAccountName"] = account
	case fluxauth.FieldURLUserInfo:
		scheme, rest, _ := strings.Cut(address, "://")
		userinfo := "x-access-token" // a user name alone: Flux's generic Git and https Helm send it as basic auth
		spec["url"] = scheme + "://" + userinfo + "@" + rest
	case fluxauth.FieldURLQuery:
		spec["url"] = address + "?token=abc"
	case fluxauth.FieldEndpointQuery:
		spec["endpoint"] = address + "/?sv=2022-11-02&sig=abc"
	case fluxauth.FieldEndpointUserInfo:
		if scheme, rest, ok := strings.Cut(address, "://"); ok {
			spec["endpoint"] = scheme + "://admin@" + rest
		} else {
			spec["endpoint"] = "admin@" + address
		}
	case fluxauth.FieldNoServiceAccount, fluxauth.FieldProvider:
		// the provider alone is the point
	default:
		t.Fatalf("no way to set %s", row.Field)
	}
	c.object = map[string]any{
		"apiVersion": group + "/v1", "kind": row.Kind,
		"metadata": map[string]any{"name": "obj"}, "spec": spec,
	}
	return c
}

// TestEveryModelRowOnTheDecisionPath sends, for every row of the credential model, an object exercising it through the
// validating handler (decoding included) under a strict mandate and a lenient one, and checks that a violation is
// reported at the row's field exactly when its class says the mandate refuses it.
func TestEveryModelRowOnTheDecisionPath(t *testing.T) {
	p, err := policy.Parse("model.yaml", []byte(modelPolicy), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	front := webhooktest.NewFront(p, policy.ModeEnforce)
	refusedBy := map[string]map[fluxauth.Class]bool{
		"strict": {fluxauth.StoredSecret: true, fluxauth.InlineCredential: true, fluxauth.PullSecrets: true,
			fluxauth.AppKey: true, fluxauth.TLSMaterial: true, fluxauth.ProxyLogin: true, fluxauth.ControllerIdentity: true,
			fluxauth.SOPSKeys: true, fluxauth.ReceiverToken: true, fluxauth.BorrowedCredentials: true,
			fluxauth.BorrowedIdentity: true},
		"lenient": {fluxauth.StoredSecret: true, fluxauth.InlineCredential: true, fluxauth.PullSecrets: true,
			fluxauth.BorrowedCredentials: true, fluxauth.BorrowedIdentity: true},
	}
	cases := modelCases(t)
	checked := map[fluxauth.Class]int{}
	for _, c := range cases {
		for _, ns := range []string{"strict", "lenient"} {
			name := fmt.Sprintf("%s/%s/%s/%s/%s", ns, c.kind, c.variant, c.provider, c.row.Field)
			t.Run(name, func(t *testing.T) {
				raw, err := json.Marshal(c.object)
				if err != nil {
					t.Fatal(err)
				}
				group, version, found := strings.Cut(c.object["apiVersion"].(string), "/")
				if !found {
					group, version = "", group
				}
				target, ok := routes.ForKind(c.kind)
				if !ok {
					t.Fatalf("no route sends %s", c.kind)
				}
				_, resp := webhooktest.Ask(t, front, target.Path, admissionv1.AdmissionRequest{
					UID: "1", Operation: admissionv1.Create, Namespace: ns, Name: "obj",
					Kind:   metav1.GroupVersionKind{Group: group, Version: version, Kind: c.kind},
					Object: runtime.RawExtension{Raw: raw},
				})
				var d fluxobjects.Decision
				if c.kind == fluxauth.SecretKind {
					data := map[string][]byte{}
					for k, v := range c.object["stringData"].(map[string]any) {
						data[k] = []byte(v.(string))
					}
					d = fluxobjects.EvaluateSecret(p, ns, "obj", data, admissiontest.Now)
				} else {
					src, err := fluxauth.Decode(schema.GroupVersionKind{Group: group, Version: version, Kind: c.kind}, raw)
					if err != nil {
						t.Fatal(err)
					}
					src.Namespace = ns
					d = fluxobjects.Evaluate(p, src, admissiontest.Now)
				}
				var fields []string
				for _, v := range d.Violations {
					fields = append(fields, v.Field)
				}
				want := refusedBy[ns][c.row.Class]
				if got := slices.Contains(fields, c.violationAtField); got != want {
					t.Errorf("row %+v: violation at %s = %v, want %v; violations at %q", *c.row, c.violationAtField,
						got, want, fields)
				}
				// The answer follows: denied exactly when something is refused. Every case maps the ServiceAccount
				// its cloud needs, so nothing but the row itself (and an OCI HelmRepository's controller identity
				// under the strict mandate) can be refused.
				if resp.Allowed == (len(fields) > 0) {
					t.Errorf("allowed = %v with violations at %q", resp.Allowed, fields)
				}
				for _, f := range fields {
					helmController := c.kind == "HelmRepository" && ns == "strict" && f == fluxauth.FieldProvider
					if f != c.violationAtField && !helmController {
						t.Errorf("an unrelated violation at %s", f)
					}
				}
			})
			checked[c.row.Class]++
		}
	}
	for _, class := range []fluxauth.Class{fluxauth.Ignored, fluxauth.StoredSecret, fluxauth.AppKey,
		fluxauth.TLSMaterial, fluxauth.ProxyLogin, fluxauth.InlineCredential, fluxauth.PullSecrets,
		fluxauth.ObjectIdentity, fluxauth.ControllerIdentity, fluxauth.SOPSKeys, fluxauth.ReceiverToken,
		fluxauth.BorrowedCredentials, fluxauth.BorrowedIdentity, fluxauth.KMSIdentity, fluxauth.ConfigMapIdentity,
		fluxauth.NoAlternative} {
		if checked[class] == 0 {
			t.Errorf("no row of class %q was exercised", class)
		}
	}
	t.Logf("%d model rows, %d objects, %d requests", len(fluxauth.Model), len(cases), 2*len(cases))
}

// objectModelObject is modelObject for the kinds beyond the sources: the row's field set, and the ServiceAccount of
// the object's cloud where the kind names one, so that no other row applies.
func objectModelObject(t *testing.T, c modelCase) modelCase {
	t.Helper()
	row := c.row
	ref := map[string]any{"name": "s"}
	spec := map[string]any{}
	api, _ := fluxauth.APIOf(row.Kind)
	apiVersion := api.Group + "/" + api.Versions[0]
	typ := c.variant
	if t, ok := typeOf[typ]; ok {
		typ = t
	}
	if typ == "" {
		typ = map[string]string{"Provider": "generic", "Receiver": "github", "ResourceSetInputProvider": "GitHubBranch"}[row.Kind]
	}
	cloud := fluxauth.TypeProvider(row.Kind, typ)
	account := map[string]string{"aws": "aws-sa", "azure": "azure-sa", "gcp": "gcp-sa"}[cloud]
	switch row.Kind {
	case "Kustomization", "HelmRelease":
		switch row.Field {
		case fluxauth.FieldDecryptionSecretRef:
			spec["decryption"] = map[string]any{"provider": "sops", "secretRef": ref, "serviceAccountName": "aws-sa"}
		case fluxauth.FieldDecryptionServiceAccountName:
			spec["decryption"] = map[string]any{"provider": "sops", "serviceAccountName": "aws-sa"}
		case fluxauth.FieldNoDecryptionServiceAccount:
			spec["decryption"] = map[string]any{"provider": "sops"}
		case fluxauth.FieldKubeConfigSecretRef:
			spec["kubeConfig"] = map[string]any{"secretRef": ref}
		case fluxauth.FieldKubeConfigConfigMapRef:
			spec["kubeConfig"] = map[string]any{"configMapRef": ref}
		case fluxauth.FieldServiceAccountName:
			spec["serviceAccountName"] = "deployer"
		default:
			t.Fatalf("no way to set %s on %s", row.Field, row.Kind)
		}
	case "Provider", "Receiver", "ResourceSetInputProvider":
		spec["type"] = typ
		if account != "" && row.Field != fluxauth.FieldNoServiceAccount {
			spec["serviceAccountName"] = account
		}
		address := "https://hooks.example.com/flux"
		switch row.Field {
		case fluxauth.FieldSecretRef, fluxauth.FieldCertSecretRef, fluxauth.FieldProxySecretRef:
			spec[strings.TrimPrefix(row.Field, "spec.")] = ref
		case fluxauth.FieldServiceAccountName:
			if account == "" {
				account = "some-sa"
			}
			spec["serviceAccountName"] = account
		case fluxauth.FieldAddressSAS:
			address = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2VjcmV0"
			delete(spec, "serviceAccountName") // Flux refuses a SAS beside a ServiceAccount
		case fluxauth.FieldAddressUserInfo, fluxauth.FieldURLUserInfo:
			address = "https://user:password@hooks.example.com/flux"
		case fluxauth.FieldProxyUserInfo:
			spec["proxy"] = "http://user@proxy.example.com:8080" // a login without a password: the row's own class
		case fluxauth.FieldNoServiceAccount:
		default:
			t.Fatalf("no way to set %s on %s", row.Field, row.Kind)
		}
		switch row.Kind {
		case "ResourceSetInputProvider":
			spec["url"] = address
		case "Provider":
			spec["address"] = address
		}
	case "ImageUpdateAutomation":
		spec["sourceRef"] = map[string]any{"kind": "GitRepository", "name": "fleet", "namespace": "flux-system"}
	case fluxauth.SecretKind:
		value := map[string]string{
			fluxauth.SOPSAWSStaticKeys: "aws_access_key_id: AKIA\naws_secret_access_key: x\n", fluxauth.SOPSAzureClientSecret: "tenantId: t\nclientId: c\nclientSecret: s\n",
			fluxauth.SOPSAzureClientCertificate: "tenantId: t\nclientId: c\nclientCertificate: pem\n", fluxauth.SOPSAzureManagedIdentity: "clientId: c\n",
			fluxauth.SOPSGCPKey: `{"type":"service_account"}`, fluxauth.SOPSGCPExternalAccount: `{"type":"external_account"}`,
		}[c.variant]
		key := map[string]string{fluxauth.FieldSOPSAWSKMS: "sops.aws-kms", fluxauth.FieldSOPSAzureKV: "sops.azure-kv",
			fluxauth.FieldSOPSGCPKMS: "sops.gcp-kms", fluxauth.FieldSOPSVaultToken: "sops.vault-token",
			fluxauth.FieldSOPSAgeKey: "identity.agekey", fluxauth.FieldSOPSPGPKey: "key.asc"}[row.Field]
		if value == "" {
			value = "opaque"
		}
		c.object = map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "obj"},
			"stringData": map[string]any{key: value}}
		return c
	default:
		t.Fatalf("no object for kind %s", row.Kind)
	}
	c.object = map[string]any{"apiVersion": apiVersion, "kind": row.Kind, "metadata": map[string]any{"name": "obj"},
		"spec": spec}
	return c
}

// TestAPasswordInAnyAddressIsNamedInTheMessage: a password in the user info of any address (every row of a user-info
// field, whatever Flux makes of the user name) is refused, and the message says what the field carries: no row that
// can produce a violation lacks its short form ("spec.url carries : ..." was the hole).
func TestAPasswordInAnyAddressIsNamedInTheMessage(t *testing.T) {
	p, err := policy.Parse("model.yaml", []byte(modelPolicy), admissiontest.Now)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	checked := 0
	for _, c := range modelCases(t) {
		if c.row.Field != fluxauth.FieldURLUserInfo && c.row.Field != fluxauth.FieldEndpointUserInfo {
			continue
		}
		field := "url"
		if c.row.Field == fluxauth.FieldEndpointUserInfo {
			field = "endpoint"
		}
		spec := c.object["spec"].(map[string]any)
		address := spec[field].(string)
		if i := strings.LastIndex(address, "@"); i >= 0 {
			user := address[:i]
			if j := strings.Index(user, "://"); j >= 0 {
				user = user[j+3:]
			}
			spec[field] = strings.Replace(address, user+"@", user+":hunter2@", 1)
		}
		raw, err := json.Marshal(c.object)
		if err != nil {
			t.Fatal(err)
		}
		gv := strings.Split(c.object["apiVersion"].(string), "/")
		src, err := fluxauth.Decode(schema.GroupVersionKind{Group: gv[0], Version: gv[1], Kind: c.kind}, raw)
		if err != nil {
			t.Fatal(err)
		}
		src.Namespace = "lenient"
		var messages []string
		for _, v := range fluxobjects.Evaluate(p, src, admissiontest.Now).Violations {
			if v.Field == c.violationAtField {
				messages = append(messages, v.Message)
			}
		}
		hole := regexp.MustCompile(`(carries|holds)( :|:|$)`)
		if len(messages) != 1 || hole.MatchString(messages[0]) || strings.Contains(messages[0], "hunter2") {
			t.Errorf("%s %s %s: messages %q: want one violation whose message says what %s carries, without the "+
				"password", c.kind, c.variant, c.provider, messages, c.violationAtField)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d user-info rows checked", checked)
	}
}
