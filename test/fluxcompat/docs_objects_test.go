package fluxcompat

import (
	"net/url"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The releases whose documentation holds examples of Flux's other objects. The proxy serves each controller module
// up to these versions (helm-controller v1.6.5, notification-controller v1.9.4 and image-automation-controller
// v1.2.5 publish only their API modules), whose specs the webhook's API modules match.
var objectDocs = []corpus{
	{module: "github.com/fluxcd/kustomize-controller@v1.9.6", glob: "docs/spec/v1/*.md"},
	{module: "github.com/fluxcd/helm-controller@v1.6.4", glob: "docs/spec/v2/*.md"},
	{module: "github.com/fluxcd/notification-controller@v1.9.3", glob: "docs/spec/v1*/*.md"},
	{module: "github.com/fluxcd/image-automation-controller@v1.2.4", glob: "docs/spec/v1/*.md"},
	{module: "github.com/controlplaneio-fluxcd/flux-operator@v0.58.1", glob: "docs/api/v1/resourcesetinputprovider.md"},
}

// objectGroups are the API groups of the kinds predictObject reads, and "" for the core group's Secret.
var objectGroups = map[string]string{
	"Kustomization":            "kustomize.toolkit.fluxcd.io",
	"HelmRelease":              "helm.toolkit.fluxcd.io",
	"Provider":                 "notification.toolkit.fluxcd.io",
	"Receiver":                 "notification.toolkit.fluxcd.io",
	"ImageUpdateAutomation":    "image.toolkit.fluxcd.io",
	"ResourceSetInputProvider": "fluxcd.controlplane.io",
	"Secret":                   "",
}

// sopsEntries are the Secret entries the README's table names, by the field it gives them.
func sopsEntries(key string) string {
	switch {
	case key == "sops.aws-kms" || key == "sops.azure-kv" || key == "sops.gcp-kms" || key == "sops.vault-token":
		return "data[" + key + "]"
	case strings.HasSuffix(key, ".agekey"):
		return "data[*.agekey]"
	case strings.HasSuffix(key, ".asc"):
		return "data[*.asc]"
	}
	return ""
}

// predictObject is predict for the kinds beyond the sources: the fields of the object the README's table names, each
// judged by the table's last column alone.
func predictObject(rows []readmeRow, p *policy.Policy, obj map[string]any, namespace string) []string {
	kind, _ := obj["kind"].(string)
	spec, _ := obj["spec"].(map[string]any)
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	sub := func(m map[string]any, k string) map[string]any { s, _ := m[k].(map[string]any); return s }
	present := func(m map[string]any, k string) bool { _, ok := m[k]; return ok }
	variant := "any"
	var fields []string
	switch kind {
	case "Kustomization", "HelmRelease":
		if d := sub(spec, "decryption"); kind == "Kustomization" && d != nil {
			if present(d, "secretRef") {
				fields = append(fields, "spec.decryption.secretRef")
			}
			if present(d, "serviceAccountName") {
				fields = append(fields, "spec.decryption.serviceAccountName")
			} else {
				fields = append(fields, "no spec.decryption.serviceAccountName")
			}
		}
		if kc := sub(spec, "kubeConfig"); kc != nil {
			for _, f := range []string{"secretRef", "configMapRef"} {
				if present(kc, f) {
					fields = append(fields, "spec.kubeConfig."+f)
				}
			}
		}
	case "Provider":
		variant = "other types"
		if t := str(spec, "type"); t == "azuredevops" || t == "azureeventhub" || t == "googlepubsub" {
			variant = t
		}
		fields = append(fields, refs(spec, "secretRef", "certSecretRef", "proxySecretRef")...)
		fields = append(fields, accountField(spec, variant != "other types")...)
		address := str(spec, "address")
		if userInfo(address) {
			fields = append(fields, "spec.address user info")
		}
		if strings.Contains(strings.ToLower(address), "sharedaccesskey=") {
			fields = append(fields, "spec.address shared access key")
		}
		if userInfo(str(spec, "proxy")) {
			fields = append(fields, "spec.proxy user info")
		}
	case "Receiver":
		fields = refs(spec, "secretRef")
	case "ImageUpdateAutomation":
		if ns := str(sub(spec, "sourceRef"), "namespace"); ns != "" && ns != namespace {
			fields = append(fields, "spec.sourceRef.namespace")
		}
	case "ResourceSetInputProvider":
		variant = str(spec, "type")
		for _, family := range []string{"AzureDevOps", "AWSCodeCommit", "GitHub", "GitLab", "Gitea"} {
			if strings.HasPrefix(variant, family) {
				variant = family + "*"
			}
		}
		identity := variant == "AzureDevOps*" || variant == "AWSCodeCommit*" || strings.HasSuffix(variant, "ArtifactTag") &&
			variant != "OCIArtifactTag"
		fields = append(fields, refs(spec, "secretRef", "certSecretRef")...)
		fields = append(fields, accountField(spec, identity)...)
		if userInfo(str(spec, "url")) {
			fields = append(fields, "spec.url user info")
		}
	case "Secret":
		variant = "" // the table's Secret rows differ by variant only in what they hold, never in the verdict
		for _, entries := range []string{"data", "stringData"} {
			for key := range sub(obj, entries) {
				if f := sopsEntries(key); f != "" {
					fields = append(fields, f)
				}
			}
		}
	}
	var refused []string
	for _, f := range fields {
		row, ok := lookupObject(rows, kind, variant, f)
		if !ok {
			continue // the table says nothing of it: no credential
		}
		if refuses(row, p, namespace, str(spec, "serviceAccountName"), "") {
			refused = append(refused, f)
		}
	}
	return refused
}

// lookupObject finds the table's row of a field for a kind's variant ("" for any row of the field).
func lookupObject(rows []readmeRow, kind, variant, field string) (readmeRow, bool) {
	for _, r := range rows {
		if r.kind == kind && r.field == field && (variant == "" || r.variant == variant || r.variant == "any") {
			return r, true
		}
	}
	return readmeRow{}, false
}

// refs lists the Secret references of spec among names, as the table spells them.
func refs(spec map[string]any, names ...string) []string {
	var out []string
	for _, n := range names {
		if _, ok := spec[n]; ok {
			out = append(out, "spec."+n)
		}
	}
	return out
}

// accountField is the ServiceAccount row of an object: named, or, for a type with a workload identity, unset.
func accountField(spec map[string]any, identity bool) []string {
	if sa, _ := spec["serviceAccountName"].(string); sa != "" {
		return []string{"spec.serviceAccountName"}
	}
	if identity {
		return []string{"no spec.serviceAccountName"}
	}
	return nil
}

// userInfo says whether an address carries a user name or password.
func userInfo(address string) bool {
	u, err := url.Parse(address)
	return err == nil && u.User != nil && (u.User.Username() != "" || func() bool { _, ok := u.User.Password(); return ok }())
}
