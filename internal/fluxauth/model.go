package fluxauth

import (
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
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
	// ControllerIdentity: the controller's own cloud identity, unless Flux runs with --default-service-account and
	// the row says that flag applies.
	ControllerIdentity Class = "controller identity"
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
)

// Path is the JSON path a field lives at, for messages.
func Path(field string) string {
	switch field {
	case FieldNoServiceAccount:
		return FieldServiceAccountName
	case FieldURLUserInfo, FieldURLQuery:
		return "spec.url"
	case FieldEndpointQuery, FieldEndpointUserInfo:
		return "spec.endpoint"
	}
	return field
}

// Variants of a kind whose fields mean different things. A GitRepository's secretRef is an SSH key over ssh and
// basic auth or a token over http(s); a HelmRepository of type oci is a registry, of type default an index over https.
const (
	VariantHTTP = "http" // GitRepository over http or https
	VariantSSH  = "ssh"  // GitRepository over ssh
	// AnyProvider and AnyVariant make a row hold for every value.
	AnyProvider = "*"
	AnyVariant  = "*"
)

// Row is one fact: what Flux does with Field of Kind (in Variant) when spec.provider is Provider.
type Row struct {
	Kind, Variant, Provider, Field string
	Class                          Class
	// Lockdown (ControllerIdentity only): Flux's --default-service-account replaces the controller's identity with
	// that ServiceAccount of the object's namespace.
	Lockdown bool
	// PullSecretsWin (ObjectIdentity only): Flux also reads the ServiceAccount's imagePullSecrets, and when it has
	// any they are used instead of the identity.
	PullSecretsWin bool
	// WinsOverIdentity (a Secret): when it is set Flux never asks the provider, so no identity, the controller's
	// included, is used.
	WinsOverIdentity bool
	// Reads says in a few words what Flux does; Short is the shortest form, for admission messages.
	Reads, Short string
}

// Short names of the kinds, to keep the table readable.
const (
	git    = sourcev1.GitRepositoryKind
	oci    = sourcev1.OCIRepositoryKind
	helm   = sourcev1.HelmRepositoryKind
	bucket = sourcev1.BucketKind
	image  = imagev1.ImageRepositoryKind
)

// Model is the credential model: one row per kind, variant, provider and field, each naming the Flux function it
// mirrors (source-controller v1.9.6 unless said otherwise; "pkg/x" is github.com/fluxcd/pkg/x at the version
// source-controller's go.mod pins). Where a row says AnyProvider, Flux's code does not look at the provider for that
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
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // pkg/auth GetAccessToken: NewControllerToken unless getDefaultServiceAccount
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: git, Variant: VariantHTTP, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
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
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // reconcileSource: auth.WithServiceAccountNamespace only → pkg/auth GetAccessToken
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: oci, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
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
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // pkg/auth GetAccessToken
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
		Reads: "source-controller's own identity, or --default-service-account's"},
	{Kind: bucket, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
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
	{Kind: image, Variant: AnyVariant, Provider: ProviderAWS, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // pkg/auth GetAccessToken
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderAzure, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: ProviderGCP, Field: FieldNoServiceAccount, Class: ControllerIdentity, Lockdown: true, // same
		Reads: "image-reflector-controller's own identity, or --default-service-account's"},
	{Kind: image, Variant: AnyVariant, Provider: AnyProvider, Field: FieldCertSecretRef, Class: TLSMaterial, // GetOptions: secrets.TLSConfigFromSecretRef, every provider
		Reads: "TLS client certificate and key, or only a CA", Short: "TLS keys"},
	{Kind: image, Variant: AnyVariant, Provider: AnyProvider, Field: FieldProxySecretRef, Class: ProxyLogin, // GetOptions: secrets.ProxyURLFromSecretRef
		Reads: "proxy address and login", Short: "a proxy login"},
}

// unmodelled answers for a field no row covers (a provider value newer than this table): a Secret is taken for a
// stored credential, so that a gap in the table can only make the webhook stricter.
var unmodelled = Row{Class: StoredSecret, Reads: "not in the credential model: taken for a stored credential",
	Short: "an unknown kind of credential"}

// secretFields are the fields that name a Secret.
var secretFields = map[string]bool{FieldSecretRef: true, FieldCertSecretRef: true, FieldProxySecretRef: true,
	FieldSTSSecretRef: true, FieldSTSCertSecretRef: true}

type rowKey struct{ kind, variant, provider, field string }

var rows = func() map[rowKey]*Row {
	m := make(map[rowKey]*Row, len(Model))
	for i := range Model {
		r := &Model[i]
		m[rowKey{r.Kind, r.Variant, r.Provider, r.Field}] = r
	}
	return m
}()

// Lookup finds the row for a field, the most specific first: exact variant and provider, then any provider, then any
// variant. It returns nil when no row covers the field.
func Lookup(kind, variant, provider, field string) *Row {
	for _, k := range []rowKey{
		{kind, variant, provider, field}, {kind, variant, AnyProvider, field},
		{kind, AnyVariant, provider, field}, {kind, AnyVariant, AnyProvider, field},
	} {
		if r := rows[k]; r != nil {
			return r
		}
	}
	return nil
}

// Use is one way a source authenticates, or one credential it carries.
type Use struct {
	Field string
	// Class is what Flux makes of it; it can be stricter than the row's (a password in a URL is a credential in the
	// object even where Flux does not send it).
	Class Class
	Row   *Row
	// Ref identifies what is used (a Secret's or ServiceAccount's name, the URL's user info), so that two versions of
	// an object can be compared. Never print it.
	Ref string
}

// Uses lists how Flux authenticates the source, in a fixed field order: every field it sets that the model knows,
// ignored ones included (explain shows them), plus the controller's identity when a cloud provider is selected
// without a ServiceAccount.
func Uses(s Source) []Use {
	variant, provider := VariantOf(s), s.EffectiveProvider()
	var uses []Use
	add := func(field, ref string) {
		r := Lookup(s.Kind, variant, provider, field)
		if r == nil {
			if !secretFields[field] {
				return // no identity path for this provider (generic Git, github), a provider an oci Helm reads
			}
			r = &unmodelled
		}
		uses = append(uses, Use{Field: field, Class: r.Class, Row: r, Ref: ref})
	}
	for _, f := range []struct{ field, ref string }{
		{FieldSecretRef, s.SecretRef}, {FieldCertSecretRef, s.CertSecretRef}, {FieldProxySecretRef, s.ProxySecretRef},
		{FieldSTSSecretRef, s.STSSecretRef}, {FieldSTSCertSecretRef, s.STSCertSecretRef},
	} {
		if f.ref != "" {
			add(f.field, f.ref)
		}
	}
	secretWins := false
	for _, u := range uses {
		secretWins = secretWins || u.Row.WinsOverIdentity
	}
	switch {
	case s.ServiceAccountName != "":
		add(FieldServiceAccountName, s.ServiceAccountName)
	case provider != ProviderGeneric && !secretWins:
		add(FieldNoServiceAccount, "")
	}
	if s.Kind == helm && s.Provider != "" && provider != ProviderGeneric {
		add(FieldProvider, provider) // only rows that say it is ignored exist: explain tells the user
	}
	for _, c := range addressCredentials(s) {
		add(c.field, c.ref)
		if c.password { // a password written in the object is a credential whatever Flux makes of it
			uses[len(uses)-1].Class = InlineCredential
		}
	}
	return uses
}

// VariantOf tells which variant of its kind a source is: the transport of a GitRepository's URL, a HelmRepository's
// type, AnyVariant for the other kinds.
func VariantOf(s Source) string {
	switch s.Kind {
	case git:
		if scheme(s.Address) == "ssh" {
			return VariantSSH
		}
		return VariantHTTP
	case helm:
		if s.HelmType == HelmTypeOCI {
			return HelmTypeOCI
		}
		return HelmTypeDefault
	}
	return AnyVariant
}

// ReadsPullSecrets says whether Flux may read the imagePullSecrets of a ServiceAccount a source of this kind names:
// for such kinds a ServiceAccount with pull secrets is a long-lived credential waiting to be used.
func ReadsPullSecrets(kind string) bool {
	for i := range Model {
		r := &Model[i]
		if r.Kind == kind && (r.Class == PullSecrets || r.PullSecretsWin) {
			return true
		}
	}
	return false
}
