package fluxauth

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/ext"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// notCredentials are the Secret, ConfigMap and ServiceAccount references of Flux's CRDs that hold no authentication
// credential the model judges: public keys and trust roots for signature verification, values, impersonation, and
// the kinds the model leaves to doctor (FluxInstance). Any other such reference in any of Flux's CRDs must be in the
// model, so a reference a newer Flux adds fails the build until it is decided.
var notCredentials = map[string]string{
	"GitRepository spec.verify.secretRef":                             "PGP/SSH public keys (GitRepositoryReconciler.verifySignature)",
	"OCIRepository spec.verify.secretRef":                             "cosign public keys or notation trust policy (OCIRepositoryReconciler.verifySignature)",
	"OCIRepository spec.verify.trustedRootSecretRef":                  "Sigstore trusted root (readTrustedRootFromSecret)",
	"OCIRepository spec.verify.matchOIDCIdentity":                     "keyless identity regexes, no Secret",
	"HelmRepository spec.passCredentials":                             "widens where spec.secretRef is sent, holds nothing itself",
	"GitRepository spec.include":                                      "other GitRepositories' artifacts",
	"ImageRepository spec.accessFrom":                                 "ACL for ImagePolicies",
	"HelmRepository spec.accessFrom":                                  "ACL",
	"GitRepository spec.verify.mode":                                  "verification mode",
	"OCIRepository spec.verify.provider":                              "verification provider",
	"Bucket spec.sts.provider":                                        "STS kind",
	"Bucket spec.sts.endpoint":                                        "STS address",
	"OCIRepository spec.verify.matchOIDCIdentity.issuer":              "regex",
	"OCIRepository spec.verify.matchOIDCIdentity.subject":             "regex",
	"HelmChart spec.verify.secretRef":                                 "cosign public keys or notation trust policy (HelmChartReconciler)",
	"HelmChart spec.accessFrom":                                       "ACL",
	"HelmChart spec.verify.matchOIDCIdentity":                         "keyless identity regexes, no Secret",
	"HelmChart spec.verify.matchOIDCIdentity.issuer":                  "regex",
	"HelmChart spec.verify.matchOIDCIdentity.subject":                 "regex",
	"HelmChart spec.verify.provider":                                  "verification provider",
	"HelmRelease spec.chart.spec.verify.secretRef":                    "copied into the HelmChart in the source's namespace: verification keys (buildHelmChartFromTemplate)",
	"HelmRelease spec.chart.spec.verify.matchOIDCIdentity":            "keyless identity regexes, no Secret",
	"HelmRelease spec.chart.spec.verify.matchOIDCIdentity.issuer":     "regex",
	"HelmRelease spec.chart.spec.verify.matchOIDCIdentity.subject":    "regex",
	"HelmRelease spec.chart.spec.verify.provider":                     "verification provider",
	"HelmRelease spec.valuesFrom":                                     "Helm values (chartutil.ChartValuesFromReferences), not a credential",
	"Kustomization spec.postBuild.substituteFrom":                     "substitution values, not a credential",
	"Kustomization spec.decryption.provider":                          "always sops",
	"Receiver spec.oidcProviders":                                     "generic-oidc's issuers: the sender's identity, no Secret",
	"ImageUpdateAutomation spec.git.commit.signingKey.secretRef":      "the commit signing key (resolveSigner): it signs, it does not authenticate",
	"ResourceSet spec.serviceAccountName":                             "whom the operator impersonates (no cloud identity)",
	"FluxInstance spec.cluster.tenantDefaultServiceAccount":           "becomes the controllers' --default-service-account: doctor compares it with the policy",
	"FluxInstance spec.cluster.tenantDefaultDecryptionServiceAccount": "becomes --default-decryption-service-account: doctor",
	"FluxInstance spec.cluster.tenantDefaultKubeConfigServiceAccount": "becomes --default-kubeconfig-service-account: doctor",
	"FluxInstance spec.cluster.objectLevelWorkloadIdentity":           "the controllers' feature gate: doctor",
	"FluxInstance spec.cluster.multitenantWorkloadIdentity":           "the controllers' lockdown flags: doctor",
	"FluxInstance spec.distribution.imagePullSecret":                  "pulls the controllers' images",
	"FluxInstance spec.distribution.artifactPullSecret":               "pulls the distribution artifact",
	"FluxInstance spec.sync.pullSecret":                               "the generated sync source's secretRef, judged on that source",
	"ResourceSet spec.inputsFrom":                                     "the ResourceSetInputProviders it reads: judged on them",
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
	version   string          // the served version read
	providers []string        // the enum of spec.provider
	types     []string        // the enum of spec.type
	fields    map[string]bool // the fields of the model the schema has
	rules     []string        // the CEL rules on spec
}

// modelFields are the schema paths the model has rows for.
var modelFields = []string{FieldSecretRef, FieldCertSecretRef, FieldProxySecretRef, FieldServiceAccountName,
	FieldSTSSecretRef, FieldSTSCertSecretRef, FieldProvider, FieldDecryptionSecretRef, FieldDecryptionServiceAccountName,
	FieldKubeConfigSecretRef, FieldKubeConfigConfigMapRef, FieldSourceRefNamespace}

// readCRD reads what the model needs to know of a kind's served schema, and lists every Secret, ConfigMap or
// ServiceAccount reference and credential-sounding property it finds anywhere under spec.
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
	facts := crdFacts{fields: map[string]bool{}}
	for _, v := range crd.Spec.Versions {
		if v.Served && v.Storage {
			s := v.Schema.OpenAPIV3Schema.Properties["spec"]
			spec, facts.version = &s, v.Name
		}
	}
	if spec == nil {
		t.Fatalf("%s serves no storage version", file)
	}
	for _, r := range spec.XValidations {
		facts.rules = append(facts.rules, r.Rule)
	}
	enum := func(p apiextensionsv1.JSONSchemaProps) []string {
		var out []string
		for _, e := range p.Enum {
			out = append(out, strings.Trim(string(e.Raw), `"`))
		}
		return out
	}
	facts.providers, facts.types = enum(spec.Properties["provider"]), enum(spec.Properties["type"])
	var secrets []string
	var walk func(path string, p apiextensionsv1.JSONSchemaProps)
	walk = func(path string, p apiextensionsv1.JSONSchemaProps) {
		if p.Items != nil && p.Items.Schema != nil {
			p = *p.Items.Schema
		}
		for name, child := range p.Properties {
			childPath := path + "." + name
			lower := strings.ToLower(name)
			if strings.Contains(lower, "secret") || strings.Contains(lower, "credential") ||
				strings.Contains(lower, "serviceaccount") || strings.Contains(lower, "identity") ||
				strings.Contains(lower, "access") || strings.Contains(lower, "configmap") ||
				strings.Contains(lower, "kubeconfig") || strings.Contains(lower, "oidc") ||
				(strings.HasSuffix(name, "From") && child.Items != nil) {
				secrets = append(secrets, childPath)
			}
			if slices.Contains(modelFields, childPath) {
				facts.fields[childPath] = true
			}
			if !strings.HasSuffix(lower, "secretref") && !strings.HasSuffix(lower, "configmapref") { // a reference's name says nothing more
				walk(childPath, child)
			}
		}
	}
	walk("spec", *spec)
	sort.Strings(secrets)
	return kind, facts, secrets
}

// allows says whether the CRD's own CEL rules on spec accept an object with these fields: the API server, not this
// test, decides which combinations of type, provider and reference exist. A rule that cannot be evaluated on the
// partial object (it reads a field not set here) does not decide.
func allows(t *testing.T, rules []string, self map[string]any) bool {
	t.Helper()
	env, err := cel.NewEnv(cel.Variable("self", cel.DynType), ext.Strings())
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range rules {
		ast, iss := env.Compile(rule)
		if iss.Err() != nil {
			t.Fatalf("CRD rule %q: %v", rule, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := prg.Eval(map[string]any{"self": self})
		if err == nil && out.Value() == false {
			return false
		}
	}
	return true
}

// objectWith is a partial object for allows: its type or provider and one field set.
func objectWith(variantField, value, field string) map[string]any {
	self := map[string]any{}
	if variantField != "" {
		self[variantField] = value
	}
	parts := strings.Split(strings.TrimPrefix(field, "spec."), ".")
	m := self
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	last := parts[len(parts)-1]
	if strings.HasSuffix(last, "Ref") {
		m[last] = map[string]any{"name": "x"}
	} else {
		m[last] = "x"
	}
	return self
}

// TestModelCoversEveryCredentialFieldOfFluxsCRDs holds the model to Flux's real CRDs: every type, provider and
// variant the schema accepts has a row for every credential field the kind has (where the CRD's own rules allow the
// combination), every row names a field, provider and type the schema has, and any reference or credential-sounding
// property the model does not know, in any of Flux's CRDs (a field a newer Flux added), fails the test until it is
// modelled or listed in notCredentials.
func TestModelCoversEveryCredentialFieldOfFluxsCRDs(t *testing.T) {
	dir := crdDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s: %v", dir, err)
	}
	seen := map[string]crdFacts{}
	modelled := map[string]bool{}
	for _, r := range Model {
		for p := Path(r.Field); strings.Contains(p, "."); p = p[:strings.LastIndex(p, ".")] {
			modelled[r.Kind+" "+p] = true // spec.kubeConfig is modelled with spec.kubeConfig.secretRef
		}
	}
	for _, file := range files {
		kind, facts, secretish := readCRD(t, file)
		for _, path := range secretish {
			if !modelled[kind+" "+path] && notCredentials[kind+" "+path] == "" {
				t.Errorf("%s %s looks like a credential and is neither in the model nor in notCredentials", kind, path)
			}
		}
		if !slices.Contains(Kinds, kind) {
			continue
		}
		seen[kind] = facts
		for _, o := range variantsOf(kind, facts) {
			variantField, variantValue := "provider", o.Provider
			if o.Type != "" {
				variantField, variantValue = "type", o.Type
			}
			variant, provider := VariantOf(o), o.EffectiveProvider()
			for field := range facts.fields {
				if field == FieldProvider || field == FieldSourceRefNamespace ||
					!allows(t, facts.rules, objectWith(variantField, variantValue, field)) {
					continue
				}
				if Lookup(kind, variant, provider, field) == nil {
					t.Errorf("no row for %s %s (%s %s) field %s", kind, variant, variantField, variantValue, field)
				}
			}
			cloud := provider == ProviderAWS || provider == ProviderAzure || provider == ProviderGCP
			if cloud && !(kind == helm && variant == HelmTypeDefault) && Lookup(kind, variant, provider, FieldNoServiceAccount) == nil {
				t.Errorf("no row for %s %s (%s %s) without a ServiceAccount", kind, variant, variantField, variantValue)
			}
		}
		if facts.fields[FieldDecryptionSecretRef] && Lookup(kind, AnyVariant, AnyProvider, FieldNoDecryptionServiceAccount) == nil {
			t.Errorf("no row for %s without a decryption ServiceAccount", kind)
		}
		// A Kustomization's or HelmRelease's source in another namespace lends it an artifact, not credentials (the
		// source authenticates in its own namespace); an ImageUpdateAutomation pushes with its source's credentials.
		if kind == automation && Lookup(kind, AnyVariant, AnyProvider, FieldSourceRefNamespace) == nil {
			t.Errorf("no row for %s's cross-namespace source", kind)
		}
	}
	for _, kind := range Kinds {
		if kind == SecretKind {
			continue
		}
		facts, ok := seen[kind]
		if !ok {
			t.Errorf("no CRD for %s in %s", kind, dir)
			continue
		}
		a, _ := APIOf(kind)
		if a.Versions[0] != facts.version {
			t.Errorf("%s: the CRD serves %s, APIs' newest version is %s", kind, facts.version, a.Versions[0])
		}
		variants := map[string]bool{AnyVariant: true}
		providers := map[string]bool{AnyProvider: true}
		for _, o := range variantsOf(kind, facts) {
			variants[VariantOf(o)], providers[o.EffectiveProvider()] = true, true
		}
		for _, r := range Model {
			if r.Kind != kind {
				continue
			}
			if !providers[r.Provider] {
				t.Errorf("row %s %s: provider %s is not one the CRD accepts", kind, r.Field, r.Provider)
			}
			if !variants[r.Variant] {
				t.Errorf("row %s %s: variant %s is not one the CRD accepts", kind, r.Field, r.Variant)
			}
			if f := r.Field; slices.Contains(modelFields, f) && f != FieldProvider {
				if !facts.fields[f] {
					t.Errorf("row %s %s: the CRD has no such field", kind, r.Field)
				}
			}
		}
	}
}

// variantsOf is one object per type (or provider) the CRD accepts, and per transport of a GitRepository.
func variantsOf(kind string, facts crdFacts) []Object {
	var out []Object
	switch {
	case len(facts.types) > 0 && kind != helm:
		for _, typ := range facts.types {
			out = append(out, Object{Kind: kind, Type: typ})
		}
	case len(facts.providers) > 0:
		for _, p := range facts.providers {
			switch kind {
			case git:
				out = append(out, Object{Kind: kind, Provider: p, Address: "https://h/r"},
					Object{Kind: kind, Provider: p, Address: "ssh://git@h/r"})
			case helm:
				for _, typ := range facts.types {
					out = append(out, Object{Kind: kind, Provider: p, HelmType: typ})
				}
			default:
				out = append(out, Object{Kind: kind, Provider: p})
			}
		}
	default:
		out = append(out, Object{Kind: kind})
	}
	return out
}
