// Package policy holds the IdentityPolicy file format (version v1alpha1): its types, strict position-aware decoding,
// validation, compiled matching and hot reload. It is pure: no Kubernetes client and no HTTP. Everything else asks it
// one question: what applies to namespace N, ServiceAccount S, kind K?
package policy

import (
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

// APIVersion and Kind identify the policy file format.
const (
	APIVersion = "fluxidentity.dev/v1alpha1"
	Kind       = "IdentityPolicy"
)

// File is the policy file as written by people. Field names and YAML keys are the contract in
// shared/design/policy-v1alpha1.md; decoding rejects unknown keys.
type File struct {
	APIVersion string      `yaml:"apiVersion"`
	Kind       string      `yaml:"kind"`
	Metadata   Metadata    `yaml:"metadata"`
	Flux       Flux        `yaml:"flux"`
	Identities []Identity  `yaml:"identities"`
	Mandates   []Mandate   `yaml:"mandates"`
	Exceptions []Exception `yaml:"exceptions"`
}

// Metadata names the policy in logs and metrics.
type Metadata struct {
	Name string `yaml:"name"`
}

// Flux says where Flux's controllers run and how they are locked down. The mandates need it: a source that selects
// a cloud provider without spec.serviceAccountName authenticates as the controller itself, which is Flux's design in
// its own namespace and identity borrowing anywhere else.
type Flux struct {
	// Namespaces are where Flux's controllers run (default [flux-system]); exact names.
	Namespaces []string `yaml:"namespaces"`
	// DefaultServiceAccount is the --default-service-account flag of the controllers that authenticate to clouds
	// (source-controller, image-reflector-controller, image-automation-controller, notification-controller; Flux's
	// multi-tenancy lockdown): an object without spec.serviceAccountName then authenticates as this ServiceAccount of
	// its own namespace, never as the controller. (kustomize-controller's and helm-controller's flag of that name only
	// sets whom they impersonate.)
	DefaultServiceAccount string `yaml:"defaultServiceAccount"`
	// DefaultDecryptionServiceAccount is kustomize-controller's --default-decryption-service-account: a Kustomization
	// whose spec.decryption names no serviceAccountName decrypts with this ServiceAccount's cloud identity.
	DefaultDecryptionServiceAccount string `yaml:"defaultDecryptionServiceAccount"`
	// DefaultKubeConfigServiceAccount is kustomize-controller's and helm-controller's
	// --default-kubeconfig-service-account: a kubeconfig ConfigMap without serviceAccountName uses this ServiceAccount.
	DefaultKubeConfigServiceAccount string `yaml:"defaultKubeConfigServiceAccount"`
}

// DefaultFluxNamespace is where Flux installs its controllers unless told otherwise.
const DefaultFluxNamespace = "flux-system"

// Identity maps namespace/ServiceAccount patterns to exactly one cloud identity.
type Identity struct {
	Name            string    `yaml:"name"`
	Namespaces      []string  `yaml:"namespaces"`
	ServiceAccounts []string  `yaml:"serviceAccounts"`
	AWS             *AWS      `yaml:"aws"`
	Azure           *Azure    `yaml:"azure"`
	GCP             *GCP      `yaml:"gcp"`
	Injection       Injection `yaml:"injection"`
	Mode            Mode      `yaml:"mode"`
}

// AWS is an IAM role, reached through IRSA (the annotations read by the EKS pod identity webhook and by Flux) or
// through EKS Pod Identity (an association in the EKS API; nothing on the ServiceAccount names the role).
type AWS struct {
	// RoleARN may contain {namespace} and {serviceAccount}, expanded per ServiceAccount.
	RoleARN                string `yaml:"roleARN"`
	Audience               string `yaml:"audience"`
	STSRegionalEndpoints   *bool  `yaml:"stsRegionalEndpoints"`
	Region                 string `yaml:"region"`
	TokenExpirationSeconds *int64 `yaml:"tokenExpirationSeconds"`
	// Mechanism is how pods reach the role: AWSMechanismIRSA (default) or AWSMechanismPodIdentity.
	Mechanism AWSMechanism `yaml:"mechanism"`
}

// AWSMechanism says how a ServiceAccount's pods reach an IAM role.
type AWSMechanism string

const (
	// AWSMechanismIRSA is IAM roles for service accounts: the role-arn annotation, a web identity token and
	// sts:AssumeRoleWithWebIdentity. Flux's object-level identity works only this way.
	AWSMechanismIRSA AWSMechanism = "irsa"
	// AWSMechanismPodIdentity is EKS Pod Identity: an association in the EKS API, the Pod Identity Agent's endpoint in
	// the pods' environment, and a role trusting pods.eks.amazonaws.com. Controller level only (see validate_identity.go).
	AWSMechanismPodIdentity AWSMechanism = "podIdentity"
)

// PodIdentity says whether the identity reaches its role through EKS Pod Identity.
func (a *AWS) PodIdentity() bool { return a != nil && a.Mechanism == AWSMechanismPodIdentity }

// Azure is an Azure Workload Identity (a user-assigned managed identity or app registration).
type Azure struct {
	ClientID               string `yaml:"clientID"`
	TenantID               string `yaml:"tenantID"`
	TokenExpirationSeconds *int64 `yaml:"tokenExpirationSeconds"`
	// Cloud is the Azure cloud the identity lives in, named as the Azure webhook's AZURE_ENVIRONMENT names it
	// (keys.AzureClouds); full injection sets AZURE_AUTHORITY_HOST to its login endpoint. Default AzurePublicCloud.
	Cloud string `yaml:"cloud"`
}

// GCP is a Google Cloud identity of a Kubernetes ServiceAccount: a Google service account it impersonates
// (ServiceAccount set), or, without one, direct Workload Identity Federation: IAM roles granted to the ServiceAccount's
// own principal. On GKE the principal lives in the pool WorkloadPool of project ProjectNumber; outside GKE in the pool
// of WorkloadIdentityProvider.
type GCP struct {
	// ServiceAccount may contain {namespace} and {serviceAccount}, expanded per ServiceAccount. Empty for direct
	// federation.
	ServiceAccount           string `yaml:"serviceAccount"`
	WorkloadIdentityProvider string `yaml:"workloadIdentityProvider"`
	// WorkloadPool is GKE's workload identity pool, PROJECT_ID.svc.id.goog.
	WorkloadPool string `yaml:"workloadPool"`
	// ProjectNumber is the number of the pool's project, which principal:// members name.
	ProjectNumber string `yaml:"projectNumber"`
}

// Direct says whether the identity is direct federation: no Google service account is impersonated.
func (g *GCP) Direct() bool { return g != nil && g.ServiceAccount == "" }

// Mandate says where long-lived credentials are not allowed on the Flux objects of its kinds.
type Mandate struct {
	Name       string   `yaml:"name"`
	Namespaces []string `yaml:"namespaces"`
	Mode       Mode     `yaml:"mode"`
	Kinds      []string `yaml:"kinds"`
	// AllowProviders lists the secret-based schemes the platform accepts on purpose; only ProviderGitHub (a GitHub
	// App's private key in spec.secretRef) can be one. A cloud provider never excuses a secret: Flux reads static keys
	// from it.
	AllowProviders []string `yaml:"allowProviders"`
	// Cover opts in to treating secrets that may hold no credential at all as credentials (CoverTLSClientKeys,
	// CoverProxyCredentials): the webhook cannot read a Secret's contents to tell.
	Cover []string `yaml:"cover"`
	// AllowControllerIdentity lets sources in the mandate's namespaces select a cloud provider without
	// spec.serviceAccountName, that is authenticate as the Flux controller itself. Never needed in Flux's own
	// namespaces.
	AllowControllerIdentity bool `yaml:"allowControllerIdentity"`
}

// Values of Mandate.Cover.
const (
	// CoverTLSClientKeys covers spec.certSecretRef, spec.sts.certSecretRef and any other secret Flux reads only TLS
	// material from: it may hold a client certificate and key (a long-lived credential) or only a CA bundle.
	CoverTLSClientKeys = "tlsClientKeys"
	// CoverProxyCredentials covers spec.proxySecretRef: the proxy's address and login, not the source's own.
	CoverProxyCredentials = "proxyCredentials"
	// CoverSOPSPrivateKeys covers the age and PGP private keys SOPS decrypts with (a Kustomization's
	// spec.decryption.secretRef, and the *.agekey and *.asc entries of a decryption Secret): long-lived keys, but the
	// ones SOPS is built around, so a platform opts in to refusing them.
	CoverSOPSPrivateKeys = "sopsPrivateKeys"
	// CoverReceiverTokens covers a Receiver's spec.secretRef: the shared token that authenticates a sender, where a
	// generic-oidc Receiver would verify the sender's own identity instead.
	CoverReceiverTokens = "receiverTokens"
)

// CoverValues are the known values of Mandate.Cover.
var CoverValues = []string{CoverTLSClientKeys, CoverProxyCredentials, CoverSOPSPrivateKeys, CoverReceiverTokens}

// Covers says whether the mandate opted in to treating what is of the given Cover value as a credential.
func (m *Mandate) Covers(what string) bool {
	for _, c := range m.Cover {
		if c == what {
			return true
		}
	}
	return false
}

// Exception is a time-boxed, reviewed hole in a mandate.
type Exception struct {
	Namespace string `yaml:"namespace"`
	Kind      string `yaml:"kind"`
	// Name may be a glob.
	Name    string `yaml:"name"`
	Reason  string `yaml:"reason"`
	Expires string `yaml:"expires"`
}

// Mode says how a violation is answered.
type Mode string

// The modes, from strictest to most lenient.
const (
	ModeEnforce Mode = "enforce"
	ModeWarn    Mode = "warn"
	ModeOff     Mode = "off"
)

// strictness orders modes so that the strictest can be chosen: enforce > warn > off.
func (m Mode) strictness() int {
	switch m {
	case ModeEnforce:
		return 2
	case ModeWarn:
		return 1
	default:
		return 0
	}
}

// Stricter returns the stricter of two modes.
func Stricter(a, b Mode) Mode {
	if b.strictness() > a.strictness() {
		return b
	}
	return a
}

// Injection says how much the mutating webhook writes into pods.
type Injection string

const (
	// InjectionAnnotate writes ServiceAccount annotations and pod labels; the cloud's own webhook or metadata server
	// does the rest.
	InjectionAnnotate Injection = "annotate"
	// InjectionFull also injects env vars and the projected token volume into pods (no cloud webhook in the cluster).
	InjectionFull Injection = "full"
)

// Cloud names the cloud of an identity.
type Cloud string

// The clouds an identity can target.
const (
	CloudAWS   Cloud = "aws"
	CloudAzure Cloud = "azure"
	CloudGCP   Cloud = "gcp"
)

// Kinds are the kinds a mandate can cover, as Flux spells them: every kind of the credential model (Flux's sources,
// Kustomization, HelmRelease, notification Provider and Receiver, ImageUpdateAutomation, Flux Operator's
// ResourceSetInputProvider) and Secret, which means SOPS decryption Secrets only. A mandate without kinds covers all of
// them.
var Kinds = fluxauth.Kinds

// ProviderGitHub is GitRepository's spec.provider for GitHub App authentication: the only secret-based scheme a
// mandate's allowProviders can accept.
const ProviderGitHub = sourcev1.GitProviderGitHub
