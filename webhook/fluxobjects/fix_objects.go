package fluxobjects

import (
	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	iacv1 "github.com/fluxcd/image-automation-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// The fixes of the kinds beyond the sources: each says what the object can use instead of the credential, in words
// that name its own fields.

// fixesFor is how the object can do without the credential of use u, longest wording first.
func (fx *fixer) fixesFor(u fluxauth.Use) []string {
	switch fx.s.Kind {
	case kustomizev1.KustomizationKind, helmv2.HelmReleaseKind:
		if u.Field == fluxauth.FieldKubeConfigSecretRef {
			return []string{"use spec.kubeConfig.configMapRef naming a cloud provider and a mapped ServiceAccount",
				"use spec.kubeConfig.configMapRef with a cloud provider", "use a kubeConfig ConfigMap", "add an exception"}
		}
		return fx.decryptionPath()
	case fluxauth.SecretKind:
		return fx.decryptionPath()
	case notificationv1.ReceiverKind:
		return []string{"use type: generic-oidc, which verifies the sender's own token", "use type: generic-oidc",
			"add an exception"}
	case iacv1.ImageUpdateAutomationKind:
		return []string{"point spec.sourceRef at a GitRepository of " + fx.s.Namespace,
			"use a GitRepository of this namespace", "add an exception"}
	}
	return fx.identityPath()
}

// decryptionPath is how SOPS can decrypt without static credentials: a cloud KMS key and a ServiceAccount of the
// namespace mapped to a cloud identity, named in spec.decryption.serviceAccountName.
func (fx *fixer) decryptionPath() []string {
	if account, m, ok := fx.account(""); ok {
		set := "set spec.decryption.serviceAccountName: " + account
		return []string{set + suffix(m), set, "decrypt with a mapped ServiceAccount", "add an exception"}
	}
	mapHere := "map a ServiceAccount of " + fx.s.Namespace + " for spec.decryption.serviceAccountName"
	return []string{mapHere, "map a ServiceAccount for spec.decryption.serviceAccountName", "add an exception"}
}

// decryptionBorrows words spec.decryption without a ServiceAccount outside Flux's namespaces: kustomize-controller
// sets up its own identity for the KMS keys (Decryptor.SetAuthOptions).
func (fx *fixer) decryptionBorrows() []string {
	problem := "spec.decryption.serviceAccountName unset: KMS keys decrypt as " + fx.controller
	if account, m, ok := fx.account(""); ok {
		set := "set it to " + account
		return []string{problem + ": " + set + suffix(m), problem + ": " + set, problem}
	}
	return []string{problem + ": map a ServiceAccount of " + fx.s.Namespace + " and set it",
		problem + ": map a ServiceAccount and set it", problem}
}

// kmsIdentity warns about a decryption ServiceAccount the policy gives no cloud identity in the namespace: cloud KMS
// keys will not decrypt with it, but a Vault/OpenBao role bound to it needs none (kustomize-controller keyservice
// resolveVaultToken asks a token of the ServiceAccount itself, with the Vault address as audience), so it is not a
// violation. "" when it is mapped.
func (fx *fixer) kmsIdentity(m *policy.Mandate, account string, lockdown bool) string {
	what := "spec.decryption.serviceAccountName " + account
	if lockdown {
		what = string(fluxauth.LockdownDecryption) + " " + account
	}
	if match, mapped := fx.p.IdentityFor(fx.s.Namespace, account); mapped {
		if objectLevel(match) {
			return ""
		}
		return verdict.FitMessage(m.Name, what+" uses EKS Pod Identity: AWS KMS keys will not decrypt (Flux objects need IRSA)",
			what+" uses EKS Pod Identity: AWS KMS keys will not decrypt", "the decryption ServiceAccount uses EKS Pod Identity")
	}
	return verdict.FitMessage(m.Name, what+" has no cloud identity here: cloud KMS keys will not decrypt (a Vault role needs none)",
		what+" has no cloud identity here: only a Vault role can use it", "the decryption ServiceAccount has no cloud identity here")
}

// borrowedIdentity words a credential configuration that borrows an identity the namespace does not own.
func (fx *fixer) borrowedIdentity(u fluxauth.Use) []string {
	path := fluxauth.Path(u.Field)
	problem := path + " names " + u.Row.Short
	fixes := fx.decryptionPath()
	out := make([]string, 0, len(fixes)+1)
	for _, f := range fixes[:len(fixes)-1] { // an exception never excuses borrowing
		out = append(out, problem+": remove it, "+f)
	}
	return append(out, problem+": remove it", problem)
}

// artifactTagPath is the fix of an OCIArtifactTag input provider: a registry of a cloud has a type of its own that
// authenticates with the ServiceAccount's identity (buildOCIOptions).
func (fx *fixer) artifactTagPath() []string {
	typ := map[string]string{fluxauth.ProviderAWS: fluxcdv1.InputProviderECRArtifactTag,
		fluxauth.ProviderAzure: fluxcdv1.InputProviderACRArtifactTag, fluxauth.ProviderGCP: fluxcdv1.InputProviderGARArtifactTag}[fx.cloud]
	if typ == "" {
		if host := addressHost(fx.s); host != "" {
			return []string{"add an exception (no cloud identity for " + host + ")", "add an exception"}
		}
		return []string{"add an exception (no cloud identity for it)", "add an exception"}
	}
	use := "use type: " + typ
	if account, m, ok := fx.account(fx.cloud); ok {
		return []string{use + ", spec.serviceAccountName: " + account + suffix(m), use + ", spec.serviceAccountName: " +
			account, use}
	}
	return []string{use + " and map a ServiceAccount of " + fx.s.Namespace + " to " + aCloud(fx.cloud) + " identity",
		use + " with a mapped ServiceAccount", use}
}
