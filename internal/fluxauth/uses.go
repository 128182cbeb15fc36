package fluxauth

import (
	"strings"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
)

// unmodelled answers for a field no row covers (a provider or type newer than this table): a Secret is taken for a
// stored credential, so that a gap in the table can only make the webhook stricter.
var unmodelled = Row{Class: StoredSecret, Reads: "not in the credential model: taken for a stored credential",
	Short: "an unknown kind of credential"}

// secretFields are the fields that name a Secret.
var secretFields = map[string]bool{FieldSecretRef: true, FieldCertSecretRef: true, FieldProxySecretRef: true,
	FieldSTSSecretRef: true, FieldSTSCertSecretRef: true, FieldDecryptionSecretRef: true, FieldKubeConfigSecretRef: true}

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

// Use is one way an object authenticates, or one credential it carries.
type Use struct {
	Field string
	// Class is what Flux makes of it; it can be stricter than the row's (a password in a URL is a credential in the
	// object even where Flux does not send it).
	Class Class
	Row   *Row
	// Ref identifies what is used (a Secret's or ServiceAccount's name, the URL's user info, a digest of a Secret's
	// value), so that two versions of an object can be compared. Never print it.
	Ref string
}

// Uses lists how Flux authenticates the object, in a fixed field order: every field it sets that the model knows,
// ignored ones included (explain shows them), plus the controller's identity where a cloud identity is asked for
// without a ServiceAccount.
func Uses(o Object) []Use {
	u := uses{o: o, variant: VariantOf(o), provider: o.EffectiveProvider()}
	switch o.Kind {
	case kustomize, release:
		if o.Decryption {
			u.addSet(FieldDecryptionSecretRef, o.DecryptionSecretRef)
			if o.DecryptionServiceAccountName != "" {
				u.add(FieldDecryptionServiceAccountName, o.DecryptionServiceAccountName)
			} else {
				u.add(FieldNoDecryptionServiceAccount, "")
			}
		}
		u.addSet(FieldKubeConfigSecretRef, o.KubeConfigSecretRef)
		u.addSet(FieldKubeConfigConfigMapRef, o.KubeConfigConfigMapRef)
		u.addSet(FieldServiceAccountName, o.ServiceAccountName)
	case receiver:
		u.addSet(FieldSecretRef, o.SecretRef)
	case automation:
		if ns := o.SourceRefNamespace; ns != "" && ns != o.Namespace {
			u.add(FieldSourceRefNamespace, ns)
		}
	default:
		u.identity()
	}
	return u.list
}

// uses collects the uses of one object.
type uses struct {
	o                 Object
	variant, provider string
	list              []Use
}

// add appends the use of field, by its row; a Secret field without a row is taken for a stored credential, any other
// field without one is not used (no identity path for this provider, a provider an oci Helm reads).
func (u *uses) add(field, ref string) {
	r := Lookup(u.o.Kind, u.variant, u.provider, field)
	if r == nil {
		if !secretFields[field] {
			return
		}
		r = &unmodelled
	}
	u.list = append(u.list, Use{Field: field, Class: r.Class, Row: r, Ref: ref})
}

// addSet adds field when the object sets it.
func (u *uses) addSet(field, ref string) {
	if ref != "" {
		u.add(field, ref)
	}
}

// identity collects the uses of the kinds that choose between a Secret and a cloud identity: the sources, the
// notification Provider and the ResourceSetInputProvider.
func (u *uses) identity() {
	o := u.o
	for _, f := range []struct{ field, ref string }{
		{FieldSecretRef, o.SecretRef}, {FieldCertSecretRef, o.CertSecretRef}, {FieldProxySecretRef, o.ProxySecretRef},
		{FieldSTSSecretRef, o.STSSecretRef}, {FieldSTSCertSecretRef, o.STSCertSecretRef},
	} {
		u.addSet(f.field, f.ref)
	}
	inline := addressCredentials(o)
	wins := false
	for _, use := range u.list {
		wins = wins || use.Row.WinsOverIdentity
	}
	for _, c := range inline {
		if r := Lookup(o.Kind, u.variant, u.provider, c.field); r != nil && r.WinsOverIdentity {
			wins = true
		}
	}
	switch {
	case o.ServiceAccountName != "":
		u.add(FieldServiceAccountName, o.ServiceAccountName)
	case u.provider != ProviderGeneric && !wins:
		u.add(FieldNoServiceAccount, "")
	}
	if o.Kind == helm && o.Provider != "" && u.provider != ProviderGeneric {
		u.add(FieldProvider, u.provider) // only rows that say it is ignored exist: explain tells the user
	}
	for _, c := range inline {
		n := len(u.list)
		u.add(c.field, c.ref)
		if c.password && len(u.list) > n { // a password written in the object is a credential whatever Flux makes of it
			u.list[n].Class = InlineCredential
		}
	}
}

// Variants of the ResourceSetInputProvider types that read their credentials alike (Flux Operator v0.58.1
// callExternalProvider); the other types are variants of their own.
const (
	VariantAzureDevOps   = "AzureDevOps*"
	VariantAWSCodeCommit = "AWSCodeCommit*"
	VariantGitHub        = "GitHub*"
	VariantGitLab        = "GitLab*"
	VariantGitea         = "Gitea*"
)

// VariantOf tells which variant of its kind an object is: the transport of a GitRepository's URL, a HelmRepository's
// type, a notification Provider's type where it has an identity (VariantNoIdentity for the others), a
// ResourceSetInputProvider's type family, AnyVariant for the other kinds.
func VariantOf(o Object) string {
	switch o.Kind {
	case git:
		if scheme(o.Address) == "ssh" {
			return VariantSSH
		}
		return VariantHTTP
	case helm:
		if o.HelmType == HelmTypeOCI {
			return HelmTypeOCI
		}
		return HelmTypeDefault
	case provider:
		if TypeProvider(o.Kind, o.Type) != ProviderGeneric {
			return o.Type
		}
		return VariantNoIdentity
	case inputs:
		for _, family := range []string{VariantAzureDevOps, VariantAWSCodeCommit, VariantGitHub, VariantGitLab,
			VariantGitea} {
			if strings.HasPrefix(o.Type, strings.TrimSuffix(family, "*")) {
				return family
			}
		}
		return o.Type
	}
	return AnyVariant
}

// TypeProvider is the cloud whose workload identity a notification Provider or a ResourceSetInputProvider of this type
// authenticates with (notification-controller newManagedIdentityToken, buildGCPClientOptions; Flux Operator
// getAzureDevOpsToken, getGitCredentials, buildOCIOptions), generic for a type with none.
func TypeProvider(kind, typ string) string {
	switch kind {
	case provider:
		switch typ {
		case notificationv1beta3.AzureDevOpsProvider, notificationv1beta3.AzureEventHubProvider:
			return ProviderAzure
		case notificationv1beta3.GooglePubSubProvider:
			return ProviderGCP
		}
	case inputs:
		switch {
		case strings.HasPrefix(typ, "AzureDevOps"), typ == fluxcdv1.InputProviderACRArtifactTag:
			return ProviderAzure
		case strings.HasPrefix(typ, "AWSCodeCommit"), typ == fluxcdv1.InputProviderECRArtifactTag:
			return ProviderAWS
		case typ == fluxcdv1.InputProviderGARArtifactTag:
			return ProviderGCP
		}
	}
	return ProviderGeneric
}

// ReadsPullSecrets says whether Flux may read the imagePullSecrets of a ServiceAccount an object of this kind names:
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
