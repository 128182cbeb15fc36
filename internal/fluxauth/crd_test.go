package fluxauth

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// notCredentials are the Secret references of Flux sources that hold no authentication credential: public keys and
// trust roots for signature verification. Any other Secret reference in a CRD must be in the model.
var notCredentials = map[string]string{
	"GitRepository spec.verify.secretRef":                 "PGP/SSH public keys (GitRepositoryReconciler.verifySignature)",
	"OCIRepository spec.verify.secretRef":                 "cosign public keys or notation trust policy (OCIRepositoryReconciler.verifySignature)",
	"OCIRepository spec.verify.trustedRootSecretRef":      "Sigstore trusted root (readTrustedRootFromSecret)",
	"OCIRepository spec.verify.matchOIDCIdentity":         "keyless identity regexes, no Secret",
	"HelmRepository spec.passCredentials":                 "widens where spec.secretRef is sent, holds nothing itself",
	"GitRepository spec.include":                          "other GitRepositories' artifacts",
	"ImageRepository spec.accessFrom":                     "ACL for ImagePolicies",
	"HelmRepository spec.accessFrom":                      "ACL",
	"GitRepository spec.verify.mode":                      "verification mode",
	"OCIRepository spec.verify.provider":                  "verification provider",
	"Bucket spec.sts.provider":                            "STS kind",
	"Bucket spec.sts.endpoint":                            "STS address",
	"OCIRepository spec.verify.matchOIDCIdentity.issuer":  "regex",
	"OCIRepository spec.verify.matchOIDCIdentity.subject": "regex",
}

// crdDir is where the build put Flux's real CRDs (make flux-crds); the Makefile exports FLUX_CRDS_DIR.
func crdDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLUX_CRDS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "crds")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Flux's CRDs are not at %s (run make flux-crds): %v", dir, err)
	}
	return dir
}

type crdFacts struct {
	providers []string        // the enum of spec.provider
	variants  []string        // the model's variants of the kind
	fields    map[string]bool // the credential-relevant fields the schema has
}

// readCRD reads what the model needs to know of a kind's served v1 schema, and lists every Secret reference and
// credential-sounding property it finds anywhere under spec.
func readCRD(t *testing.T, file string) (string, crdFacts, []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	kind := crd.Spec.Names.Kind
	var spec *apiextensionsv1.JSONSchemaProps
	for _, v := range crd.Spec.Versions {
		if v.Name == "v1" {
			s := v.Schema.OpenAPIV3Schema.Properties["spec"]
			spec = &s
		}
	}
	if spec == nil {
		t.Fatalf("%s serves no v1", file)
	}
	facts := crdFacts{fields: map[string]bool{}, variants: []string{AnyVariant}}
	for _, e := range spec.Properties["provider"].Enum {
		facts.providers = append(facts.providers, strings.Trim(string(e.Raw), `"`))
	}
	if len(facts.providers) == 0 {
		facts.providers = []string{ProviderGeneric}
	}
	switch kind {
	case git:
		facts.variants = []string{VariantHTTP, VariantSSH}
	case helm:
		facts.variants = nil
		for _, e := range spec.Properties["type"].Enum {
			facts.variants = append(facts.variants, strings.Trim(string(e.Raw), `"`))
		}
	}
	var secrets []string
	var walk func(path string, p apiextensionsv1.JSONSchemaProps)
	walk = func(path string, p apiextensionsv1.JSONSchemaProps) {
		for name, child := range p.Properties {
			childPath := path + "." + name
			lower := strings.ToLower(name)
			if strings.Contains(lower, "secret") || strings.Contains(lower, "credential") ||
				strings.Contains(lower, "serviceaccount") || strings.Contains(lower, "identity") ||
				strings.Contains(lower, "access") {
				secrets = append(secrets, childPath)
			}
			switch childPath {
			case "spec.secretRef", "spec.certSecretRef", "spec.proxySecretRef", "spec.serviceAccountName",
				"spec.sts.secretRef", "spec.sts.certSecretRef", "spec.provider":
				facts.fields[childPath] = true
			}
			if !strings.HasSuffix(lower, "secretref") { // a reference's own name field says nothing more
				walk(childPath, child)
			}
		}
	}
	walk("spec", *spec)
	sort.Strings(secrets)
	return kind, facts, secrets
}

// TestModelCoversEveryCredentialFieldOfFluxsCRDs holds the model to Flux's real CRDs: every provider and variant
// the schema accepts has a row for every credential field the kind has, every row names a field and provider the
// schema has, and any Secret reference or credential-sounding property the model does not know (a field a newer Flux
// added) fails the test until it is modelled or listed in notCredentials.
func TestModelCoversEveryCredentialFieldOfFluxsCRDs(t *testing.T) {
	dir := crdDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	seen := map[string]crdFacts{}
	modelled := map[string]bool{}
	for _, r := range Model {
		modelled[r.Kind+" "+Path(r.Field)] = true
	}
	for _, file := range files {
		kind, facts, secretish := readCRD(t, file)
		if !slices.Contains(Kinds, kind) {
			continue
		}
		seen[kind] = facts
		for _, path := range secretish {
			if !modelled[kind+" "+path] && notCredentials[kind+" "+path] == "" {
				t.Errorf("%s %s looks like a credential and is neither in the model nor in notCredentials", kind, path)
			}
		}
		for _, variant := range facts.variants {
			for _, provider := range facts.providers {
				cloud := provider == ProviderAWS || provider == ProviderAzure || provider == ProviderGCP
				for field := range facts.fields {
					if field == FieldProvider {
						continue
					}
					if field == FieldServiceAccountName && !cloud && kind == git {
						continue // the CRD's own rule refuses serviceAccountName without aws or azure
					}
					if field == FieldServiceAccountName && provider == ProviderGeneric && kind == bucket {
						continue // refused by the CRD's rule too
					}
					if Lookup(kind, variant, provider, field) == nil {
						t.Errorf("no row for %s %s provider %s field %s", kind, variant, provider, field)
					}
				}
				if cloud && !(kind == helm && variant == HelmTypeDefault) && Lookup(kind, variant, provider, FieldNoServiceAccount) == nil {
					t.Errorf("no row for %s %s provider %s without a ServiceAccount", kind, variant, provider)
				}
			}
		}
	}
	for _, kind := range Kinds {
		facts, ok := seen[kind]
		if !ok {
			t.Errorf("no CRD for %s in %s", kind, dir)
			continue
		}
		for _, r := range Model {
			if r.Kind != kind {
				continue
			}
			if r.Provider != AnyProvider && !slices.Contains(facts.providers, r.Provider) {
				t.Errorf("row %s %s: provider %s is not in the CRD's enum %v", kind, r.Field, r.Provider, facts.providers)
			}
			if r.Variant != AnyVariant && !slices.Contains(facts.variants, r.Variant) {
				t.Errorf("row %s %s: variant %s is not one of %v", kind, r.Field, r.Variant, facts.variants)
			}
			if secretFields[r.Field] || r.Field == FieldServiceAccountName {
				if !facts.fields[r.Field] {
					t.Errorf("row %s %s: the CRD has no such field", kind, r.Field)
				}
			}
		}
	}
}
