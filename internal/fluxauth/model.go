package fluxauth

import (
	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
)

// Class is what Flux makes of a field: the credential it authenticates with, or the identity.
type Class string

// The classes, from what a mandate always refuses to what it checks against the policy.
const (
	// Ignored: Flux reads nothing from the field for this kind and provider (or rejects it before using it).
	Ignored Class = "ignored"
	// StoredSecret: a long-lived credential read from a Secret (basic auth, token, SSH key, static keys, a pull
	// secret, an LDAP login).
	StoredSecret Class = "stored secret"
	// AppKey: a GitHub App's private key. Long-lived too, but the one secret-based scheme a mandate can accept on
	// purpose (allowProviders: [github]).
	AppKey Class = "GitHub App key"
	// TLSMaterial: a TLS client certificate and key, or only a CA bundle; the webhook cannot read the Secret to tell.
	TLSMaterial Class = "TLS material"
	// ProxyLogin: a proxy's address and login, not the source's own credential.
	ProxyLogin Class = "proxy login"
	// InlineCredential: a credential written in the object itself (user info or a token in a URL).
	InlineCredential Class = "inline credential"
	// PullSecrets: the named ServiceAccount's imagePullSecrets and nothing else.
	PullSecrets Class = "pull secrets"
	// ObjectIdentity: the workload identity of the named ServiceAccount of the object's namespace.
	ObjectIdentity Class = "object identity"
	// ControllerIdentity: the controller's own cloud identity, unless Flux runs with the lockdown flag the row names.
	ControllerIdentity Class = "controller identity"
	// SOPSKeys: the age or PGP private keys SOPS decrypts with. Long-lived, but what SOPS is built around: a mandate
	// refuses them only when it covers sopsPrivateKeys.
	SOPSKeys Class = "SOPS private keys"
	// ReceiverToken: the shared token a Receiver authenticates its sender with; a mandate refuses it only when it
	// covers receiverTokens (a generic-oidc Receiver verifies the sender's own identity instead).
	ReceiverToken Class = "receiver token"
	// BorrowedCredentials: credentials another namespace holds (an ImageUpdateAutomation pushing with a GitRepository
	// of another namespace, whose Secrets are read there).
	BorrowedCredentials Class = "another namespace's credentials"
	// BorrowedIdentity: a credential configuration without a secret of its own that makes the controller authenticate
	// as an identity it can reach but the object's namespace does not own (the node's managed identity, an
	// external_account reading a token from the controller's file system). Never excused.
	BorrowedIdentity Class = "borrowed identity"
	// KMSIdentity: the identity spec.decryption.serviceAccountName gives SOPS: the ServiceAccount's cloud identity for
	// the KMS keys the files name, or a Vault/OpenBao role bound to the ServiceAccount itself (which needs no cloud
	// annotation).
	KMSIdentity Class = "KMS identity"
	// ConfigMapIdentity: a kubeconfig ConfigMap naming the cloud cluster and, in its own serviceAccountName key, the
	// identity; admission cannot read the ConfigMap, doctor and audit do.
	ConfigMapIdentity Class = "kubeconfig identity"
	// NoAlternative: a credential for a service Flux offers no workload identity for (a Slack webhook, a GitHub token
	// for commit statuses). Never refused; audit lists them, so a platform sees what remains.
	NoAlternative Class = "no identity alternative"
)

// Lockdown names the controller flag that, where it is set, replaces the controller's own identity with a
// ServiceAccount of the object's namespace (Flux's multi-tenancy lockdown). The policy's flux section tells the
// webhook which of them the controllers run with.
type Lockdown string

// The lockdown flags.
const (
	// LockdownServiceAccount is --default-service-account of source-controller, image-reflector-controller,
	// image-automation-controller and notification-controller (pkg/auth SetDefaultServiceAccount); policy
	// flux.defaultServiceAccount.
	LockdownServiceAccount Lockdown = "--default-service-account"
	// LockdownDecryption is kustomize-controller's --default-decryption-service-account
	// (pkg/auth SetDefaultDecryptionServiceAccount); policy flux.defaultDecryptionServiceAccount.
	LockdownDecryption Lockdown = "--default-decryption-service-account"
	// LockdownKubeConfig is kustomize-controller's and helm-controller's --default-kubeconfig-service-account
	// (pkg/auth SetDefaultKubeConfigServiceAccount), used for a kubeconfig ConfigMap without serviceAccountName;
	// policy flux.defaultKubeConfigServiceAccount.
	LockdownKubeConfig Lockdown = "--default-kubeconfig-service-account"
)

// The values of spec.provider. Git has generic, aws, azure and github; the others generic, aws, azure and gcp.
const (
	ProviderGeneric = sourcev1.GenericOCIProvider
	ProviderAWS     = sourcev1.AmazonOCIProvider
	ProviderAzure   = sourcev1.AzureOCIProvider
	ProviderGCP     = sourcev1.GoogleOCIProvider
	ProviderGitHub  = sourcev1.GitProviderGitHub
)

// Fields a row is about. Most are JSON paths; the others name a part of one, or the absence of one.
const (
	FieldSecretRef          = "spec.secretRef"
	FieldCertSecretRef      = "spec.certSecretRef"
	FieldProxySecretRef     = "spec.proxySecretRef"
	FieldSTSSecretRef       = "spec.sts.secretRef"
	FieldSTSCertSecretRef   = "spec.sts.certSecretRef"
	FieldServiceAccountName = "spec.serviceAccountName"
	FieldProvider           = "spec.provider"
	// FieldNoServiceAccount is a cloud provider selected without spec.serviceAccountName (or on a kind that has none).
	FieldNoServiceAccount = "no spec.serviceAccountName"
	// FieldURLUserInfo is the user info of spec.url (user name and password).
	FieldURLUserInfo = "spec.url user info"
	// FieldURLQuery is a query parameter of spec.url that carries a token (CredentialQueryParam).
	FieldURLQuery = "spec.url query"
	// FieldEndpointQuery is a query parameter of a Bucket's spec.endpoint that carries a token.
	FieldEndpointQuery = "spec.endpoint query"
	// FieldEndpointUserInfo is the user info of a Bucket's spec.endpoint.
	FieldEndpointUserInfo = "spec.endpoint user info"
	// FieldAddressUserInfo is the user info of a notification Provider's spec.address; FieldAddressSAS the
	// SharedAccessKey of an Azure Event Hubs connection string written there; FieldProxyUserInfo the user info of its
	// deprecated spec.proxy.
	FieldAddressUserInfo = "spec.address user info"
	FieldAddressSAS      = "spec.address shared access key"
	FieldProxyUserInfo   = "spec.proxy user info"

	// Kustomization and HelmRelease.
	FieldDecryptionSecretRef          = "spec.decryption.secretRef"
	FieldDecryptionServiceAccountName = "spec.decryption.serviceAccountName"
	// FieldNoDecryptionServiceAccount is spec.decryption without a serviceAccountName.
	FieldNoDecryptionServiceAccount = "no spec.decryption.serviceAccountName"
	FieldKubeConfigSecretRef        = "spec.kubeConfig.secretRef"
	FieldKubeConfigConfigMapRef     = "spec.kubeConfig.configMapRef"
	// FieldSourceRefNamespace is an ImageUpdateAutomation's spec.sourceRef.namespace naming another namespace.
	FieldSourceRefNamespace = "spec.sourceRef.namespace"

	// The entries of a SOPS decryption Secret kustomize-controller's Decryptor.ImportKeys reads.
	FieldSOPSAWSKMS     = "data[sops.aws-kms]"
	FieldSOPSAzureKV    = "data[sops.azure-kv]"
	FieldSOPSGCPKMS     = "data[sops.gcp-kms]"
	FieldSOPSVaultToken = "data[sops.vault-token]"
	FieldSOPSAgeKey     = "data[*.agekey]"
	FieldSOPSPGPKey     = "data[*.asc]"
)

// Path is the JSON path a field lives at, for messages.
func Path(field string) string {
	switch field {
	case FieldNoServiceAccount:
		return FieldServiceAccountName
	case FieldNoDecryptionServiceAccount:
		return FieldDecryptionServiceAccountName
	case FieldURLUserInfo, FieldURLQuery:
		return "spec.url"
	case FieldEndpointQuery, FieldEndpointUserInfo:
		return "spec.endpoint"
	case FieldAddressUserInfo, FieldAddressSAS:
		return "spec.address"
	case FieldProxyUserInfo:
		return "spec.proxy"
	}
	return field
}

// Variants of a kind whose fields mean different things. A GitRepository's secretRef is an SSH key over ssh and
// basic auth or a token over http(s); a HelmRepository of type oci is a registry, of type default an index over https.
const (
	VariantHTTP = "http" // GitRepository over http or https
	VariantSSH  = "ssh"  // GitRepository over ssh
	// VariantNoIdentity is a notification Provider of a type Flux offers no workload identity for (every type but
	// azuredevops, azureeventhub and googlepubsub, which are variants of their own).
	VariantNoIdentity = "other types"
	// AnyProvider and AnyVariant make a row hold for every value.
	AnyProvider = "*"
	AnyVariant  = "*"
)

// Row is one fact: what Flux does with Field of Kind (in Variant) when spec.provider is Provider.
type Row struct {
	Kind, Variant, Provider, Field string
	Class                          Class
	// Lockdown (ControllerIdentity only) names the flag that replaces the controller's identity with a ServiceAccount
	// of the object's namespace; "" when none does.
	Lockdown Lockdown
	// PullSecretsWin (ObjectIdentity only): Flux also reads the ServiceAccount's imagePullSecrets, and when it has
	// any they are used instead of the identity.
	PullSecretsWin bool
	// WinsOverIdentity (a Secret): when it is set Flux never asks the provider, so no identity, the controller's
	// included, is used.
	WinsOverIdentity bool
	// Reads says in a few words what Flux does; Short is the shortest form, for admission messages.
	Reads, Short string
}

// Model is the credential model: one row per kind, variant, provider and field, each naming the Flux function it
// mirrors (source-controller v1.9.6 unless said otherwise; "pkg/x" is github.com/fluxcd/pkg/x at the version the
// controller's go.mod pins). Where a row says AnyProvider, Flux's code does not look at the provider for that
// field. Every kind, variant and provider the CRDs accept has a row for every field that kind has
// (TestModelIsComplete).
var Model = []Row{
	// ---- GitRepository over http(s): GitRepositoryReconciler.getAuthOpts builds pkg/git NewAuthOptions from the
	// Secret and the URL, then, for a cloud or github provider, replaces Username, Password and BearerToken with the
	// provider's credentials; pkg/git/gogit transportAuth sends user name and password as basic auth.
	{Kind: git, Variant: VariantHTTP, Provider: ProviderGeneric, Field: FieldSecretRef, Class: StoredSecret, // NewAuthOptions: username/password, bearerToken, tls.crt/tls.key
		Reads: "basic auth, bearer token or TLS client key from the Secret", Short: "basic auth or a token"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderGeneric, Field: FieldURLUserInfo, Class: InlineCredential, // NewAuthOptions falls back to u.User; transportAuth sends a user name alone too
		Reads: "basic auth from the URL's user info, a user name alone too", Short: "basic auth credentials"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderGitHub, Field: FieldSecretRef, Class: AppKey, // getAuthOpts case GitProviderGitHub: githubapp.GetCredentials from AuthMethodsFromSecret
		Reads: "GitHub App private key from the Secret, exchanged for installation tokens", Short: "a GitHub App key"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderGitHub, Field: FieldURLUserInfo, Class: Ignored, // getAuthOpts: opts.Username/Password = the app's
		Reads: "replaced by the GitHub App's token", Short: "a password"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAWS, Field: FieldSecretRef, Class: TLSMaterial, // getAuthOpts: username, password and bearerToken are replaced by the provider's; tls.crt/tls.key/ca.crt stay
		Reads: "only tls.crt, tls.key and ca.crt: the provider replaces user, password and token", Short: "TLS keys"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAzure, Field: FieldSecretRef, Class: TLSMaterial, // same as aws
		Reads: "only tls.crt, tls.key and ca.crt: the provider replaces user, password and token", Short: "TLS keys"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAWS, Field: FieldURLUserInfo, Class: Ignored, // getAuthOpts: replaced by CodeCommit's SigV4 credentials
		Reads: "replaced by the provider's credentials", Short: "a password"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAzure, Field: FieldURLUserInfo, Class: Ignored, // getAuthOpts: replaced by the Entra token
		Reads: "replaced by the provider's credentials", Short: "a password"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAWS, Field: FieldServiceAccountName, Class: ObjectIdentity, // getAuthOpts: auth.WithServiceAccountName → pkg/auth/utils GetGitCredentials
		Reads: "workload identity of the ServiceAccount (CodeCommit)"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAzure, Field: FieldServiceAccountName, Class: ObjectIdentity, // same
		Reads: "workload identity of the ServiceAccount (Azure DevOps)"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // pkg/auth GetAccessToken: NewControllerToken unless getDefaultServiceAccount
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "source-controller's own identity, or --default-service-account's"},

	// ---- GitRepository over ssh: NewAuthOptions takes identity and known_hosts from the Secret and validates that
	// they are there; gogit transportAuth authenticates with the key alone, whatever the provider produced.
	{Kind: git, Variant: VariantSSH, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, // NewAuthOptions: opts.Identity = data["identity"]
		Reads: "SSH private key from the Secret, whatever the provider", Short: "an SSH key"},
	{Kind: git, Variant: VariantSSH, Provider: AnyProvider, Field: FieldURLUserInfo, Class: Ignored, // NewAuthOptions: the user name is the SSH user; the password comes from the Secret
		Reads: "the SSH user name; a password there is never used", Short: "a password"},
	{Kind: git, Variant: VariantSSH, Provider: AnyProvider, Field: FieldServiceAccountName, Class: Ignored, // transportAuth: an SSH transport takes no provider credentials
		Reads: "never used: an SSH transport authenticates with the key"},
	{Kind: git, Variant: VariantSSH, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: Ignored, // same
		Reads: "never used: an SSH transport authenticates with the key"},

	// ---- GitRepository, any transport.
	{Kind: git, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // reconcileSource: secrets.ProxyURLFromSecretRef
		Reads: "proxy address and login", Short: "a proxy login"},

	// ---- OCIRepository: reconcileSource builds keychain() from spec.secretRef and the ServiceAccount's
	// imagePullSecrets, and asks the provider (soci.OIDCAuth) only when that keychain is anonymous.
	{Kind: oci, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // keychain → k8schain.NewFromPullSecrets; reconcileSource: provider only for soci.Anonymous
		Reads: "pull secret; with a cloud provider it wins, the provider is never asked", Short: "a pull secret"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderGeneric, Field: FieldServiceAccountName, Class: PullSecrets, // keychain: secrets.PullSecretsFromServiceAccountRef
		Reads: "the ServiceAccount's imagePullSecrets, nothing else", Short: "the ServiceAccount's pull secrets"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldServiceAccountName, Class: ObjectIdentity, PullSecretsWin: true, // keychain, then reconcileSource: auth.WithServiceAccountName
		Reads: "workload identity of the ServiceAccount, unless it has imagePullSecrets: those win"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldServiceAccountName, Class: ObjectIdentity, PullSecretsWin: true, // same
		Reads: "workload identity of the ServiceAccount, unless it has imagePullSecrets: those win"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldServiceAccountName, Class: ObjectIdentity, PullSecretsWin: true, // same
		Reads: "workload identity of the ServiceAccount, unless it has imagePullSecrets: those win"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // reconcileSource: auth.WithServiceAccountNamespace only → pkg/auth GetAccessToken
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: oci, Variant: AnyVariant, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // transport → getTLSConfig → secrets.TLSConfigFromSecretRef
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: oci, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // reconcileSource: secrets.ProxyURLFromSecretRef
		Reads: "proxy address and login", Short: "a proxy login"},
	{Kind: oci, Variant: AnyVariant, Provider: AnyProvider, Field: FieldURLUserInfo, Class: Ignored, // parseRepository: name.NewRepository refuses user info
		Reads: "refused: the URL does not parse", Short: "a password"},

	// ---- HelmRepository of type default (an index over http(s)): helm/getter GetClientOpts reads the provider only
	// for oci (configureOCIRegistryWithSecrets); there is no workload identity for an https Helm repository.
	{Kind: helm, Variant: HelmTypeDefault, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, // configureAuthentication: AuthMethodsFromSecret → helmgetter.WithBasicAuth
		Reads: "basic auth (and TLS keys) from the Secret; spec.provider is ignored over https", Short: "basic auth"},
	{Kind: helm, Variant: HelmTypeDefault, Provider: AnyProvider, Field: FieldProvider, Class: Ignored, // GetClientOpts: only configureOCIRegistryWithSecrets reads it
		Reads: "ignored: no workload identity for an https Helm repository"},
	{Kind: helm, Variant: HelmTypeDefault, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // configureAuthentication: secrets.TLSConfigFromSecret
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: helm, Variant: HelmTypeDefault, Provider: AnyProvider, Field: FieldURLUserInfo, Class: InlineCredential, // repository.NormalizeURL keeps it; net/http sends URL.User as basic auth
		Reads: "basic auth from the URL's user info, sent for the index and charts", Short: "basic auth credentials"},
	{Kind: helm, Variant: HelmTypeDefault, Provider: AnyProvider, Field: FieldURLQuery, Class: InlineCredential, // helm repo ResolveReferenceURL copies the query onto every chart URL
		Reads: "a token in the query, copied onto every chart URL", Short: "a token in its query"},

	// ---- HelmRepository of type oci: configureOCIRegistryWithSecrets asks the provider only without secretRef, and
	// calls soci.OIDCAuth with no namespace or ServiceAccount (HelmRepository has no serviceAccountName).
	{Kind: helm, Variant: HelmTypeOCI, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // configureOCIRegistryWithSecrets → registry.KeychainFromSecret; it turns the provider off
		Reads: "registry login or pull secret; it turns the provider off", Short: "a registry login"},
	{Kind: helm, Variant: HelmTypeOCI, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // configureAuthentication: secrets.TLSConfigFromSecret
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: helm, Variant: HelmTypeOCI, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, // soci.OIDCAuth(ctx, url, provider) with no auth.Option
		Reads: "always source-controller's own identity: --default-service-account does not apply"},
	{Kind: helm, Variant: HelmTypeOCI, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "always source-controller's own identity: --default-service-account does not apply"},
	{Kind: helm, Variant: HelmTypeOCI, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "always source-controller's own identity: --default-service-account does not apply"},
	{Kind: helm, Variant: HelmTypeOCI, Provider: AnyProvider, Field: FieldURLUserInfo, Class: Ignored, // oras ValidateRegistry refuses user info
		Reads: "refused: the reference does not parse", Short: "a password"},

	// ---- Bucket: BucketReconciler.setupCredentials fetches every Secret, createBucketProvider hands spec.secretRef to
	// the client before workload identity (aws: minio.WithSecret else WithAuth; azure: blob NewClient returns on any
	// Secret with data; gcp: gcp.WithSecret else WithAuth).
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGeneric, Field: FieldSecretRef, Class: StoredSecret, // minio NewClient: credentials.NewStaticV4 from accesskey/secretkey; it beats spec.sts
		Reads: "static S3 access keys (accesskey, secretkey)", Short: "static S3 keys"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // createBucketProvider: minio.WithSecret before WithAuth
		Reads: "static IAM access keys; they win over workload identity", Short: "static IAM keys"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // azure NewClient → tokenCredentialFromSecret, sharedCredentialFromSecret, sasTokenFromSecret
		Reads: "service principal secret or certificate, account key or SAS; a clientId alone picks the controller's managed identity",
		Short: "Azure keys or a SAS"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // gcp NewClient → staticCredentialsOption: serviceaccount key JSON
		Reads: "Google service account key (serviceaccount)", Short: "a service account key"},
	// The CRD's rules allow spec.sts.secretRef and spec.sts.certSecretRef with the generic provider only (sts
	// provider ldap); for the others they never reach the webhook.
	{Kind: bucket, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSTSSecretRef, Class: StoredSecret, // minio newGenericCreds: credentials.LDAPIdentity(username, password)
		Reads: "LDAP user name and password, exchanged for S3 keys", Short: "an LDAP login"},
	{Kind: bucket, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSTSCertSecretRef, Class: TLSMaterial, // createBucketProvider: minio.WithSTSTLSConfig
		Reads: "TLS client certificate and key, or only a CA, for the STS endpoint", Short: "TLS keys"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGeneric, Field: FieldCertSecretRef, Class: TLSMaterial, // createBucketProvider: minio.WithTLSConfig
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldCertSecretRef, Class: TLSMaterial, // same; applied for aws too
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldCertSecretRef, Class: Ignored, // setupCredentials fetches it; the azure client never gets it
		Reads: "fetched, never used"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldCertSecretRef, Class: Ignored, // same for gcp
		Reads: "fetched, never used"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldEndpointQuery, Class: InlineCredential, // azure sasTokenFromSecret merges the endpoint's query into the SAS URL
		Reads: "a SAS token in the endpoint's query", Short: "a SAS token"},
	{Kind: bucket, Variant: AnyVariant, Provider: AnyProvider, Field: FieldEndpointUserInfo, Class: Ignored, // minio makeTargetURL rebuilds every URL from the endpoint's scheme and host; the azure and gcp clients authenticate with their own credentials
		Reads: "never used to authenticate: the S3 client builds its URLs from the host", Short: "a password"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldServiceAccountName, Class: ObjectIdentity, // minio newAWSCreds → pkg/auth aws
		Reads: "workload identity of the ServiceAccount (needs spec.region)"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldServiceAccountName, Class: ObjectIdentity, // azure chainCredentialWithSecret → pkg/auth azure
		Reads: "workload identity of the ServiceAccount"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldServiceAccountName, Class: ObjectIdentity, // gcp NewClient → pkg/auth gcp token source
		Reads: "workload identity of the ServiceAccount"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // pkg/auth GetAccessToken
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: bucket, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // setupCredentials: secrets.ProxyURLFromSecretRef
		Reads: "proxy address and login", Short: "a proxy login"},

	// ---- ImageRepository (image-reflector-controller v1.1.0): registry.AuthOptionsGetter.GetOptions asks the
	// provider first and reads spec.secretRef and the ServiceAccount's imagePullSecrets only when it did not.
	{Kind: image, Variant: AnyVariant, Provider: ProviderGeneric, Field: FieldSecretRef, Class: StoredSecret, // GetOptions: kauth.NewFromPullSecrets
		Reads: "pull secret", Short: "a pull secret"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldSecretRef, Class: Ignored, // GetOptions: pull secrets only if authenticator == nil
		Reads: "not read: the provider wins"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldSecretRef, Class: Ignored, // same
		Reads: "not read: the provider wins"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldSecretRef, Class: Ignored, // same
		Reads: "not read: the provider wins"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderGeneric, Field: FieldServiceAccountName, Class: PullSecrets, // GetOptions: secrets.PullSecretsFromServiceAccountRef
		Reads: "the ServiceAccount's imagePullSecrets, nothing else", Short: "the ServiceAccount's pull secrets"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldServiceAccountName, Class: ObjectIdentity, // GetOptions: auth.WithServiceAccountName
		Reads: "workload identity of the ServiceAccount"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldServiceAccountName, Class: ObjectIdentity, // same
		Reads: "workload identity of the ServiceAccount"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldServiceAccountName, Class: ObjectIdentity, // same
		Reads: "workload identity of the ServiceAccount"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // pkg/auth GetAccessToken
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // GetOptions: secrets.TLSConfigFromSecretRef, every provider
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: image, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // GetOptions: secrets.ProxyURLFromSecretRef
		Reads: "proxy address and login", Short: "a proxy login"},

	// ---- Kustomization (kustomize-controller v1.9.6). SOPS: KustomizationReconciler.build calls
	// Decryptor.ImportKeys (static material from spec.decryption.secretRef, read in the Kustomization's namespace),
	// then Decryptor.SetAuthOptions, which fills only the clouds ImportKeys left unset: the Secret's static entries win
	// over any identity. What the Secret holds is judged on the Secret itself (kind Secret below).
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldDecryptionSecretRef, Class: SOPSKeys, // ImportKeys: *.agekey, *.asc, sops.* entries
		Reads: "age or PGP private keys, and static KMS or Vault credentials that win over any identity (judged on the Secret)",
		Short: "SOPS private keys"},
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldDecryptionServiceAccountName, Class: KMSIdentity, // SetAuthOptions: auth.WithServiceAccountName; keyservice resolveVaultToken: a token for it with the Vault address as audience
		Reads: "workload identity of the ServiceAccount for the KMS keys the files name, or its Vault/OpenBao role"},
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldNoDecryptionServiceAccount, Class: ControllerIdentity, Lockdown: LockdownDecryption, // SetAuthOptions: auth.GetDefaultDecryptionServiceAccount, else the controller's credentials
		Reads: "kustomize-controller's own identity for KMS keys, or --default-decryption-service-account's"},
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldKubeConfigSecretRef, Class: StoredSecret, // pkg/runtime client Impersonator.getRESTConfigFromSecret: tokens, client keys, basic auth
		Reads: "a static kubeconfig: its token, client key or password", Short: "a static kubeconfig"},
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldKubeConfigConfigMapRef, Class: ConfigMapIdentity, // pkg/auth utils GetRESTConfig: the ConfigMap's provider and serviceAccountName
		Reads: "the cloud identity of the ConfigMap's serviceAccountName, else --default-kubeconfig-service-account's, else the controller's"},
	{Kind: kustomize, Variant: AnyVariant, Provider: AnyProvider, Field: FieldServiceAccountName, Class: Ignored, // Impersonator.setImpersonationConfig
		Reads: "whom the controller impersonates: no cloud identity"},

	// ---- HelmRelease (helm-controller v1.6.x): HelmReleaseReconciler.buildRESTClientGetter reads spec.kubeConfig as
	// kustomize-controller does (kube.ConfigFromSecret, authutils.GetRESTConfig).
	{Kind: release, Variant: AnyVariant, Provider: AnyProvider, Field: FieldKubeConfigSecretRef, Class: StoredSecret, // kube.ConfigFromSecret
		Reads: "a static kubeconfig: its token, client key or password", Short: "a static kubeconfig"},
	{Kind: release, Variant: AnyVariant, Provider: AnyProvider, Field: FieldKubeConfigConfigMapRef, Class: ConfigMapIdentity, // authutils.GetRESTConfig
		Reads: "the cloud identity of the ConfigMap's serviceAccountName, else --default-kubeconfig-service-account's, else the controller's"},
	{Kind: release, Variant: AnyVariant, Provider: AnyProvider, Field: FieldServiceAccountName, Class: Ignored, // kube.SetImpersonationConfig
		Reads: "whom the controller impersonates: no cloud identity"},

	// ---- notification Provider (notification-controller v1.9.x, internal/server event_handlers.go createNotifier and
	// internal/notifier). Only azuredevops, azureeventhub and googlepubsub read spec.serviceAccountName
	// (newManagedIdentityToken, buildGCPClientOptions); with none, notification-controller's --default-service-account
	// or its own identity is used.
	{Kind: provider, Variant: notificationv1beta3.AzureDevOpsProvider, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // NewAzureDevOps: a token from the Secret silently wins over the identity
		Reads: "a personal access token; it wins over the identity", Short: "a personal access token"},
	{Kind: provider, Variant: notificationv1beta3.AzureEventHubProvider, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // NewAzureEventHub: a JWT token, or a SAS connection string as the Secret's address
		Reads: "a JWT token or a SAS connection string", Short: "a token or a SAS"},
	{Kind: provider, Variant: notificationv1beta3.GooglePubSubProvider, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // buildGCPClientOptions: "JSON credentials take priority over workload identity"
		Reads: "a Google service account key; it wins over the identity", Short: "a service account key"},
	{Kind: provider, Variant: VariantNoIdentity, Provider: AnyProvider, Field: FieldSecretRef, Class: NoAlternative, // extractAuthFromSecret: token, username/password, address, headers
		Reads: "a token, login or webhook address: Flux offers no identity for this type", Short: "a token"},
	{Kind: provider, Variant: notificationv1beta3.AzureDevOpsProvider, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // newManagedIdentityToken(ScopeDevOps) with auth.WithServiceAccountName
		Reads: "workload identity of the ServiceAccount (Azure DevOps)"},
	{Kind: provider, Variant: notificationv1beta3.AzureEventHubProvider, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // newManagedIdentityToken(ScopeEventHubs)
		Reads: "workload identity of the ServiceAccount (Event Hubs)"},
	{Kind: provider, Variant: notificationv1beta3.GooglePubSubProvider, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // buildGCPClientOptions: gcp.NewTokenSource
		Reads: "workload identity of the ServiceAccount (Pub/Sub)"},
	{Kind: provider, Variant: VariantNoIdentity, Provider: AnyProvider, Field: FieldServiceAccountName, Class: Ignored, // getNotificationParams: ignored with the gate on, an error with it off
		Reads: "ignored: this type has no workload identity"},
	{Kind: provider, Variant: notificationv1beta3.AzureDevOpsProvider, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // newManagedIdentityToken: auth.WithServiceAccountNamespace only → pkg/auth GetAccessToken
		Reads: "notification-controller's own identity, or --default-service-account's"},
	{Kind: provider, Variant: notificationv1beta3.AzureEventHubProvider, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // same
		Reads: "notification-controller's own identity, or --default-service-account's"},
	{Kind: provider, Variant: notificationv1beta3.GooglePubSubProvider, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: LockdownServiceAccount, // buildGCPClientOptions: same
		Reads: "notification-controller's own identity, or --default-service-account's"},
	{Kind: provider, Variant: notificationv1beta3.AzureEventHubProvider, Provider: AnyProvider, Field: FieldAddressSAS, Class: InlineCredential, WinsOverIdentity: true, // NewAzureEventHub: a URL holding SharedAccessKey is a connection string
		Reads: "a SAS connection string: its shared access key", Short: "a shared access key"},
	{Kind: provider, Variant: AnyVariant, Provider: AnyProvider, Field: FieldAddressUserInfo, Class: InlineCredential, // the notifiers post to spec.address as written; net/http sends URL.User as basic auth
		Reads: "basic auth from the address's user info", Short: "basic auth credentials"},
	{Kind: provider, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxyUserInfo, Class: ProxyLogin, // createNotifier: notifier.WithProxyURL(spec.proxy)
		Reads: "the proxy's login, in the deprecated spec.proxy", Short: "a proxy login"},
	{Kind: provider, Variant: AnyVariant, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // createNotifier: getTLSConfigForProvider (ca.crt, tls.crt, tls.key)
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: provider, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // createNotifier: secrets.ProxyURLFromSecret
		Reads: "proxy address and login", Short: "a proxy login"},

	// ---- Receiver (notification-controller v1.9.x): ReceiverServer.validate checks every request against the token
	// of spec.secretRef; type generic-oidc (from v1.9.0) verifies the sender's OIDC token instead and has no Secret.
	{Kind: receiver, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSecretRef, Class: ReceiverToken, // receiver_controller: required field 'token'; receiver_handlers validate
		Reads: "the shared token that authenticates senders", Short: "a shared token"},

	// ---- ImageUpdateAutomation (image-automation-controller v1.2.x): source.NewSourceManager reads the GitRepository
	// of spec.sourceRef; getAuthOpts reads its secretRef and proxySecretRef in the GitRepository's namespace (and its
	// serviceAccountName in the automation's).
	{Kind: automation, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSourceRefNamespace, Class: BorrowedCredentials, // getAuthOpts: Secrets of repo.GetNamespace()
		Reads: "pushes with the credentials of a GitRepository of another namespace", Short: "another namespace's Git credentials"},

	// ---- ResourceSetInputProvider (Flux Operator v0.58.1, resourcesetinputprovider_controller.go): the type decides
	// what spec.secretRef holds and whether spec.serviceAccountName is an identity (getAuthOptions: always the
	// object's namespace, so without a ServiceAccount the operator's --default-workload-identity-service-account or
	// its own identity).
	{Kind: inputs, Variant: VariantAzureDevOps, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, WinsOverIdentity: true, // getAzureDevOpsToken: case len(authData) > 0 wins silently
		Reads: "a personal access token; it wins over the identity", Short: "a personal access token"},
	{Kind: inputs, Variant: VariantAzureDevOps, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // getAzureDevOpsToken: authutils.GetGitCredentials(azure)
		Reads: "workload identity of the ServiceAccount (Azure DevOps)"},
	{Kind: inputs, Variant: VariantAWSCodeCommit, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // getGitCredentials(aws), getAWSCodeCommitCredentialsProvider
		Reads: "workload identity of the ServiceAccount (CodeCommit)"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderACRArtifactTag, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // buildOCIOptions: authutils.GetArtifactRegistryCredentials(azure)
		Reads: "workload identity of the ServiceAccount (ACR)"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderECRArtifactTag, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // same (aws)
		Reads: "workload identity of the ServiceAccount (ECR)"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderGARArtifactTag, Provider: AnyProvider, Field: FieldServiceAccountName, Class: ObjectIdentity, // same (gcp)
		Reads: "workload identity of the ServiceAccount (Artifact Registry)"},
	{Kind: inputs, Variant: VariantAzureDevOps, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, // getAuthOptions: WithServiceAccountNamespace only
		Reads: "the operator's own identity, or its --default-workload-identity-service-account's"},
	{Kind: inputs, Variant: VariantAWSCodeCommit, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "the operator's own identity, or its --default-workload-identity-service-account's"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderACRArtifactTag, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "the operator's own identity, or its --default-workload-identity-service-account's"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderECRArtifactTag, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "the operator's own identity, or its --default-workload-identity-service-account's"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderGARArtifactTag, Provider: AnyProvider, Field: FieldNoServiceAccount, Class: ControllerIdentity, // same
		Reads: "the operator's own identity, or its --default-workload-identity-service-account's"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderOCIArtifactTag, Provider: AnyProvider, Field: FieldSecretRef, Class: StoredSecret, // buildOCIOptions: the Secret's dockerconfigjson
		Reads: "a pull secret", Short: "a pull secret"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderOCIArtifactTag, Provider: AnyProvider, Field: FieldServiceAccountName, Class: PullSecrets, // buildOCIOptions: secrets.PullSecretsFromServiceAccountRef
		Reads: "the ServiceAccount's imagePullSecrets, nothing else", Short: "the ServiceAccount's pull secrets"},
	{Kind: inputs, Variant: VariantGitHub, Provider: AnyProvider, Field: FieldSecretRef, Class: NoAlternative, // getGitHubToken: a token (password) or a GitHub App key
		Reads: "a token or a GitHub App key: no workload identity for GitHub", Short: "a token"},
	{Kind: inputs, Variant: VariantGitLab, Provider: AnyProvider, Field: FieldSecretRef, Class: NoAlternative, // getGitLabToken
		Reads: "a token: no workload identity for GitLab", Short: "a token"},
	{Kind: inputs, Variant: VariantGitea, Provider: AnyProvider, Field: FieldSecretRef, Class: NoAlternative, // getGiteaToken
		Reads: "a token: no workload identity for Gitea", Short: "a token"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderExternalService, Provider: AnyProvider, Field: FieldSecretRef, Class: NoAlternative, // callExternalServiceProvider: bearer token or basic auth
		Reads: "a bearer token or login for the service", Short: "a token"},
	{Kind: inputs, Variant: fluxcdv1.InputProviderExternalArtifact, Provider: AnyProvider, Field: FieldServiceAccountName, Class: Ignored, // callExternalArtifactProvider: runtimeClient.WithServiceAccount (impersonation)
		Reads: "whom the operator impersonates to list ExternalArtifacts: no cloud identity"},
	{Kind: inputs, Variant: AnyVariant, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // callExternalProvider: secrets.TLSConfigFromSecretRef
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: inputs, Variant: AnyVariant, Provider: AnyProvider, Field: FieldURLUserInfo, Class: InlineCredential, // the providers request spec.url as written
		Reads: "basic auth from the URL's user info", Short: "basic auth credentials"},

	// ---- SOPS decryption Secret (kustomize-controller v1.9.6 Decryptor.ImportKeys; variants are what the value
	// parses as, sops.go). Static entries win over every identity (SetAuthOptions fills only what is left).
	{Kind: SecretKind, Variant: SOPSAWSStaticKeys, Provider: AnyProvider, Field: FieldSOPSAWSKMS, Class: StoredSecret, WinsOverIdentity: true, // awskms.LoadStaticCredentialsFromYAML
		Reads: "static AWS keys for every AWS KMS key; they win over the Kustomization's identity", Short: "static AWS keys"},
	{Kind: SecretKind, Variant: SOPSAzureClientSecret, Provider: AnyProvider, Field: FieldSOPSAzureKV, Class: StoredSecret, WinsOverIdentity: true, // azkv.TokenCredentialFromAADConfig: NewClientSecretCredential
		Reads: "a service principal's client secret", Short: "a client secret"},
	{Kind: SecretKind, Variant: SOPSAzureClientCertificate, Provider: AnyProvider, Field: FieldSOPSAzureKV, Class: StoredSecret, WinsOverIdentity: true, // same: NewClientCertificateCredential
		Reads: "a service principal's client certificate and key", Short: "a client certificate"},
	{Kind: SecretKind, Variant: SOPSAzureManagedIdentity, Provider: AnyProvider, Field: FieldSOPSAzureKV, Class: BorrowedIdentity, WinsOverIdentity: true, // same: a clientId alone → NewManagedIdentityCredential (IMDS)
		Reads: "a clientId alone: the node's managed identity, not the Kustomization's", Short: "the node's managed identity"},
	{Kind: SecretKind, Variant: SOPSGCPKey, Provider: AnyProvider, Field: FieldSOPSGCPKMS, Class: StoredSecret, WinsOverIdentity: true, // ImportKeys: google.CredentialsFromJSON
		Reads: "a Google key or refresh token (service_account, authorized_user, ...)", Short: "a Google key"},
	{Kind: SecretKind, Variant: SOPSGCPExternalAccount, Provider: AnyProvider, Field: FieldSOPSGCPKMS, Class: BorrowedIdentity, WinsOverIdentity: true, // same: external_account reads a token the controller can reach
		Reads: "a keyless external_account: a token from the controller's file system or network", Short: "a keyless external_account"},
	{Kind: SecretKind, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSOPSVaultToken, Class: StoredSecret, WinsOverIdentity: true, // ImportKeys: vaultToken; keyservice resolveVaultToken prefers it
		Reads: "a static Vault/OpenBao token; it wins over Kubernetes auth", Short: "a Vault token"},
	{Kind: SecretKind, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSOPSAgeKey, Class: SOPSKeys, // ImportKeys: age.ParsedIdentities.Import
		Reads: "an age private key", Short: "an age private key"},
	{Kind: SecretKind, Variant: AnyVariant, Provider: AnyProvider, Field: FieldSOPSPGPKey, Class: SOPSKeys, // ImportKeys: gnuPGHome.Import
		Reads: "a PGP private key", Short: "a PGP private key"},
}
