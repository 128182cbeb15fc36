package fluxobjects

import (
	"strings"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// fixer writes the messages of one object's violations: each names the field and a fix that works for that object.
// A fix never steers a tenant to the controller's identity: it points at a ServiceAccount mapped in the object's own
// namespace to the cloud the object's address or type belongs to (fluxauth.TargetCloud), and only in Flux's own
// namespaces at the controller.
type fixer struct {
	p      *policy.Policy
	s      fluxauth.Object
	cloud  string // the cloud whose identity can reach the object, "" when none is known
	inFlux bool
	// controller is the ServiceAccount of the controller that reads the kind.
	controller string
	path       []string // identityPath, once computed
}

func newFixer(p *policy.Policy, s fluxauth.Object) *fixer {
	api, _ := fluxauth.APIOf(s.Kind)
	return &fixer{p: p, s: s, cloud: fluxauth.TargetCloud(s), inFlux: p.FluxNamespace(s.Namespace),
		controller: api.Controller}
}

// typed says whether the kind's type, not spec.provider, names the cloud (a notification Provider, a
// ResourceSetInputProvider): the fix sets only spec.serviceAccountName.
func (fx *fixer) typed() bool {
	return fx.s.Kind == notificationv1beta3.ProviderKind || fx.s.Kind == fluxcdv1.ResourceSetInputProviderKind
}

// account finds a ServiceAccount of the object's namespace that the policy maps to an identity of cloud (any cloud
// for ""): the object's own when it is, else the first one named literally in the policy, else "one of PATTERN" for a
// glob that maps there.
func (fx *fixer) account(cloud string) (string, policy.Match, bool) {
	ns := fx.s.Namespace
	sa := fx.s.ServiceAccountName
	if fx.s.Kind == kustomizev1.KustomizationKind { // its identity is the decryption's
		sa = fx.s.DecryptionServiceAccountName
	}
	if sa != "" {
		if m, ok := fx.p.IdentityFor(ns, sa); ok && objectLevel(m) && (cloud == "" || string(m.Cloud) == cloud) {
			return sa, m, true
		}
	}
	for _, globs := range []bool{false, true} {
		for i := range fx.p.Spec.Identities {
			id := &fx.p.Spec.Identities[i]
			for _, sa := range id.ServiceAccounts {
				if strings.ContainsAny(sa, "*?") != globs {
					continue
				}
				name, shown := sa, sa
				if globs { // a name the glob matches stands for it
					name, shown = globSample.Replace(sa), "one of "+sa
				}
				if m, ok := fx.p.IdentityFor(ns, name); ok && m.Identity == id && objectLevel(m) &&
					(cloud == "" || string(m.Cloud) == cloud) {
					return shown, m, true
				}
			}
		}
	}
	return "", policy.Match{}, false
}

// objectLevel says whether Flux objects can use the identity. EKS Pod Identity serves Flux's controllers only:
// fluxcd/pkg/auth aws Provider.NewTokenForServiceAccount reads the ServiceAccount's eks.amazonaws.com/role-arn
// (getRoleARN fails without one) for sts:AssumeRoleWithWebIdentity, and a Pod Identity ServiceAccount has none
// (policy podIdentityScope).
func objectLevel(m policy.Match) bool { return !m.Identity.AWS.PodIdentity() }

// globSample turns a ServiceAccount glob into a name it matches.
var globSample = strings.NewReplacer("*", "x", "?", "x")

// canUse says whether the object can authenticate with the cloud: Git has aws (CodeCommit) and azure (Azure DevOps)
// only, a notification Provider or ResourceSetInputProvider the cloud of its type only.
func (fx *fixer) canUse(cloud string) bool {
	switch {
	case fx.s.Kind == sourcev1.GitRepositoryKind:
		return cloud == fluxauth.ProviderAWS || cloud == fluxauth.ProviderAzure
	case fx.typed():
		return cloud != "" && cloud == fx.s.EffectiveProvider()
	}
	return cloud != ""
}

// identityPath is how the object can authenticate without a long-lived credential, longest wording first.
func (fx *fixer) identityPath() []string {
	if fx.path != nil {
		return fx.path
	}
	fx.path = fx.computeIdentityPath()
	return fx.path
}

func (fx *fixer) computeIdentityPath() []string {
	s, cloud := fx.s, fx.cloud
	if s.Kind == fluxcdv1.ResourceSetInputProviderKind && s.Type == fluxcdv1.InputProviderOCIArtifactTag {
		return fx.artifactTagPath()
	}
	if !fx.canUse(cloud) {
		const exception = "add an exception"
		if host := addressHost(s); host != "" {
			return []string{exception + " (no cloud identity for " + host + ")", exception}
		}
		return []string{exception + " (no cloud identity for it)", exception}
	}
	account, m, mapped := fx.account(cloud)
	mapHere := "map a ServiceAccount of " + s.Namespace + " to " + aCloud(cloud) + " identity"
	// Each wording comes in a long form with spec. paths and the identity's name, and a terse one without.
	set := func(fields ...[2]string) []string {
		var long, terse []string
		for _, f := range fields {
			long = append(long, "spec."+f[0]+": "+f[1])
			terse = append(terse, f[0]+": "+f[1])
		}
		return []string{strings.Join(long, ", "), strings.Join(terse, ", ")}
	}
	provider, useAccount := [2]string{"provider", cloud}, [2]string{"serviceAccountName", account}
	var out []string
	switch {
	case fx.typed() && mapped:
		fields := set(useAccount)
		out = []string{"set " + fields[0] + suffix(m), "set " + fields[0], "set " + fields[1]}
	case fx.typed():
		out = []string{mapHere + " in the policy", mapHere, "map " + aCloud(cloud) + " identity here"}
	case s.Kind == sourcev1.HelmRepositoryKind && fx.inFlux:
		// An OCI HelmRepository authenticates as source-controller, which is right in Flux's own namespace.
		fields := set(provider)
		verb := "set "
		if s.HelmType != fluxauth.HelmTypeOCI {
			verb = "use type: oci, "
		}
		out = []string{verb + fields[0] + fx.controllerSuffix(cloud), verb + fields[0], verb + fields[1]}
	case s.Kind == sourcev1.HelmRepositoryKind:
		// Elsewhere it would borrow source-controller's identity: an OCIRepository can name a ServiceAccount.
		if mapped {
			fields := set(provider, useAccount)
			use := "use an OCIRepository with "
			out = []string{use + fields[0] + suffix(m), use + fields[0], use + fields[1], "use OCIRepository, " + fields[1]}
		} else {
			out = []string{"use an OCIRepository and " + mapHere, "use an OCIRepository with a mapped ServiceAccount"}
		}
	case fx.inFlux && fx.controllerCloud() == cloud && s.ServiceAccountName == "":
		fields := set(provider)
		out = []string{"set " + fields[0] + fx.controllerSuffix(cloud), "set " + fields[0], "set " + fields[1]}
	case mapped:
		var parts [][2]string
		if s.EffectiveProvider() != cloud {
			parts = append(parts, provider)
		}
		if s.ServiceAccountName != account {
			parts = append(parts, useAccount)
		}
		if len(parts) == 0 { // nothing to change but the credential itself
			out = []string{"keep spec.serviceAccountName: " + account + suffix(m), "keep spec.serviceAccountName"}
			break
		}
		fields := set(parts...)
		out = []string{"set " + fields[0] + suffix(m), "set " + fields[0], "set " + fields[1]}
	default:
		out = []string{mapHere + " in the policy", mapHere, "map " + aCloud(cloud) + " identity here"}
	}
	if s.Kind == sourcev1.GitRepositoryKind && fluxauth.VariantOf(s) == fluxauth.VariantSSH {
		// Flux's cloud providers authenticate Git over https only.
		for i := range out {
			out[i] = "use an https URL, " + out[i]
		}
	}
	return out
}

// replacesObject says whether a fix replaces the source with another kind.
func replacesObject(fix string) bool {
	return strings.HasPrefix(fix, "use an OCIRepository") || strings.HasPrefix(fix, "use OCIRepository")
}

// controllerCloud is the cloud of the identity the policy gives the controller reading the kind, if any.
func (fx *fixer) controllerCloud() string {
	if m, ok := fx.p.IdentityFor(fx.s.Namespace, fx.controller); ok {
		return string(m.Cloud)
	}
	return ""
}

func (fx *fixer) controllerSuffix(cloud string) string {
	if m, ok := fx.p.IdentityFor(fx.s.Namespace, fx.controller); ok && string(m.Cloud) == cloud {
		return suffix(m)
	}
	return ""
}

// aCloud puts the article before a cloud's name: an aws, an azure, a gcp.
func aCloud(cloud string) string {
	if cloud == fluxauth.ProviderGCP {
		return "a " + cloud
	}
	return "an " + cloud
}

func suffix(m policy.Match) string { return " (identity " + m.Identity.Name + ")" }

// credential words the violation of a field that carries a long-lived credential: what it holds and how to do
// without it, then, where that does not fit, only which field to drop and what to set instead.
func (fx *fixer) credential(u fluxauth.Use) []string {
	path := fluxauth.Path(u.Field)
	var problem, remove, drop string
	switch u.Class {
	case fluxauth.InlineCredential:
		problem, remove, drop = path+" carries "+u.Row.Short, "drop it", "drop the token from "+path
		if u.Field == fluxauth.FieldURLUserInfo {
			remove, drop = "drop the user info", "drop the user info from "+path
		}
	case fluxauth.PullSecrets:
		problem = "provider generic: " + path + " lends only pull secrets"
	case fluxauth.AppKey:
		problem, remove, drop = path+" holds a GitHub App key", "remove it", "drop "+path
	case fluxauth.TLSMaterial:
		return fitted(path+" may hold a TLS client key", []string{"remove it or add an exception", "add an exception"})
	case fluxauth.ProxyLogin:
		return fitted(path+" holds a proxy login", []string{"remove it or add an exception", "add an exception"})
	default:
		problem, remove, drop = path+" holds "+u.Row.Short, "remove it", "drop "+path
	}
	// An exception keeps the field, and a fix that replaces the whole object has nothing to remove.
	standsAlone := func(fix string) bool { return strings.HasPrefix(fix, "add an exception") || replacesObject(fix) }
	// Each fix, from the most detailed, first with the problem, then with only the field to drop.
	fixes := fx.fixesFor(u)
	out := make([]string, 0, 2*len(fixes)+1)
	for _, f := range fixes {
		if remove == "" || standsAlone(f) {
			out = append(out, problem+": "+f)
		} else {
			out = append(out, problem+": "+remove+", "+f)
		}
		if drop == "" || standsAlone(f) {
			out = append(out, path+": "+f)
		} else {
			out = append(out, drop+", "+f)
		}
	}
	return append(out, problem)
}

// fitted combines a problem with each fix, longest first, then the problem alone as the last resort.
func fitted(problem string, fixes []string) []string {
	out := make([]string, 0, len(fixes)+1)
	for _, f := range fixes {
		out = append(out, problem+": "+f)
	}
	return append(out, problem)
}

// controllerIdentity words a cloud identity asked for without a ServiceAccount outside Flux's namespaces.
func (fx *fixer) controllerIdentity(u fluxauth.Use) []string {
	s := fx.s
	provider := s.EffectiveProvider()
	switch {
	case s.Kind == sourcev1.HelmRepositoryKind:
		fixes := fx.identityPath()
		out := fitted("provider "+provider+" on a HelmRepository borrows "+fx.controller+"'s identity", fixes)
		for _, f := range fixes {
			out = append(out[:len(out)-1], fluxauth.FieldProvider+": "+f, out[len(out)-1])
		}
		return out
	case u.Field == fluxauth.FieldNoDecryptionServiceAccount:
		return fx.decryptionBorrows()
	}
	what := "provider " + provider
	if fx.typed() {
		what = "type " + s.Type
	}
	problem := "spec.serviceAccountName unset: " + what + " borrows " + fx.controller + "'s identity"
	account, m, mapped := fx.account(fx.cloud)
	if !mapped && fx.cloud != provider {
		account, m, mapped = fx.account(provider)
	}
	if mapped {
		set := "set it to " + account
		return []string{problem + ": " + set + suffix(m), problem + ": " + set,
			"spec.serviceAccountName unset borrows the controller's identity: " + set, problem}
	}
	mapHere := "map a ServiceAccount of " + s.Namespace + " to " + aCloud(provider) + " identity"
	return []string{problem + ": " + mapHere, problem + ": map a ServiceAccount here", problem}
}

// checkAccount reports a ServiceAccount the object names that the policy does not map in the namespace, or maps to
// another cloud than the object's, or to EKS Pod Identity, which Flux objects cannot use.
func (fx *fixer) checkAccount(m *policy.Mandate, u fluxauth.Use, account string, violate violateFunc) {
	s := fx.s
	match, mapped := fx.p.IdentityFor(s.Namespace, account)
	switch {
	case !mapped:
		violate(m, u, fluxauth.FieldServiceAccountName, "unmapped\x00"+account, fx.unmapped(account, ""))
	case string(match.Cloud) != s.EffectiveProvider():
		field := fluxauth.FieldProvider
		if fx.typed() {
			field = fluxauth.FieldServiceAccountName
		}
		violate(m, u, field, "cloud\x00"+account, fx.wrongCloud(match))
	case !objectLevel(match):
		violate(m, u, fluxauth.FieldServiceAccountName, "podidentity\x00"+account, fx.podIdentity(account, ""))
	}
}

// checkLockdownAccount checks the ServiceAccount a controller's lockdown flag names (as the policy declares it) in
// place of the controller's identity: --default-service-account's must be mapped to the object's cloud;
// --default-decryption-service-account's may serve a Vault role, so its lack of a cloud identity is a warning.
func (fx *fixer) checkLockdownAccount(m *policy.Mandate, u fluxauth.Use, account string, violate violateFunc,
	warnings *[]string) {
	if u.Row.Lockdown == fluxauth.LockdownDecryption {
		if w := fx.kmsIdentity(m, account, true); w != "" {
			*warnings = append(*warnings, w)
		}
		return
	}
	s := fx.s
	match, mapped := fx.p.IdentityFor(s.Namespace, account)
	switch {
	case !mapped:
		violate(m, u, fluxauth.FieldServiceAccountName, "unmapped\x00"+account, fx.unmapped(account, u.Row.Lockdown))
	case string(match.Cloud) != s.EffectiveProvider():
		violate(m, u, fluxauth.FieldProvider, "cloud\x00"+account, fx.wrongCloud(match))
	case !objectLevel(match):
		violate(m, u, fluxauth.FieldServiceAccountName, "podidentity\x00"+account, fx.podIdentity(account, u.Row.Lockdown))
	}
}

// violateFunc records a violation of mandate m by use u at field.
type violateFunc func(m *policy.Mandate, u fluxauth.Use, field, key string, messages []string)

func (fx *fixer) unmapped(account string, lockdown fluxauth.Lockdown) []string {
	what := "spec.serviceAccountName " + account
	if lockdown != "" {
		what = string(lockdown) + " " + account
	}
	problem := what + " has no identity here"
	cloud := fx.s.EffectiveProvider()
	if other, m, ok := fx.account(cloud); ok {
		use := "use " + other
		if lockdown != "" {
			use = "set spec.serviceAccountName: " + other
		}
		return []string{problem + ": " + use + suffix(m), problem + ": " + use,
			"spec.serviceAccountName has no identity here: " + use, "map spec.serviceAccountName in the policy"}
	}
	return []string{problem + ": map it to " + aCloud(cloud) + " identity in the policy", problem + ": map it in the policy",
		"spec.serviceAccountName has no identity here: map it in the policy", "map spec.serviceAccountName in the policy"}
}

// podIdentity words a ServiceAccount whose identity is EKS Pod Identity, which Flux objects cannot use (objectLevel).
func (fx *fixer) podIdentity(account string, lockdown fluxauth.Lockdown) []string {
	what := "spec.serviceAccountName " + account
	if lockdown != "" {
		what = string(lockdown) + " " + account
	}
	problem := what + " uses EKS Pod Identity"
	const why = " (Flux objects need IRSA)"
	if other, m, ok := fx.account(fluxauth.ProviderAWS); ok {
		use := "use " + other
		if lockdown != "" {
			use = "set spec.serviceAccountName: " + other
		}
		return []string{problem + why + ": " + use + suffix(m), problem + why + ": " + use, problem + ": " + use,
			"spec.serviceAccountName uses EKS Pod Identity: " + use}
	}
	return []string{problem + why + ": map one with mechanism irsa", problem + ": map one with mechanism irsa",
		"spec.serviceAccountName uses EKS Pod Identity: map one with mechanism irsa"}
}

func (fx *fixer) wrongCloud(match policy.Match) []string {
	s, cloud := fx.s, string(match.Cloud)
	if !fx.canUse(cloud) {
		what := s.Kind
		if fx.typed() {
			what = s.Kind + " type " + s.Type
		}
		out := []string{"identity " + match.Identity.Name + " of spec.serviceAccountName is " + cloud + ", which " +
			what + " cannot use", what + " cannot use " + aCloud(cloud) + " identity"}
		if fx.typed() {
			if other, m, ok := fx.account(s.EffectiveProvider()); ok {
				set := "set spec.serviceAccountName: " + other
				out = append([]string{"identity " + match.Identity.Name + " is " + cloud + ", not " + s.EffectiveProvider() +
					": " + set + suffix(m), "identity " + match.Identity.Name + " is " + cloud + ": " + set}, out...)
			}
		}
		return out
	}
	problem := "spec.provider: " + s.EffectiveProvider() + " does not fit identity " + match.Identity.Name + " (" + cloud + ")"
	if fx.cloud != "" && fx.cloud != cloud {
		// The address belongs to the provider's cloud: the ServiceAccount is the one to change.
		if other, m, ok := fx.account(fx.cloud); ok {
			use := "set spec.serviceAccountName: " + other
			return []string{problem + ": " + use + suffix(m), problem + ": " + use,
				"spec.serviceAccountName has another cloud's identity: " + use}
		}
		return []string{problem + ": map a ServiceAccount to " + aCloud(fx.cloud) + " identity",
			"spec.serviceAccountName has another cloud's identity"}
	}
	set := "set spec.provider: " + cloud
	return []string{problem + ": " + set, "spec.provider does not fit the identity: " + set, set}
}

// addressHost is the host of the source's address, for messages; "" when it is too long to print or not a host.
func addressHost(s fluxauth.Object) string {
	host := fluxauth.RegistryHost(s.Address)
	if s.Kind == sourcev1.GitRepositoryKind || s.Kind == sourcev1.BucketKind ||
		(s.Kind == sourcev1.HelmRepositoryKind && s.HelmType != fluxauth.HelmTypeOCI) {
		a := s.Address
		if _, rest, ok := strings.Cut(a, "://"); ok {
			a = rest
		}
		if i := strings.LastIndex(a[:min(len(a), strings.IndexAny(a+"/", "/?#"))], "@"); i >= 0 {
			a = a[i+1:] // never print user info
		}
		host, _, _ = strings.Cut(a, "/")
	}
	host, _, _ = strings.Cut(host, "?")
	if len(host) > 40 || strings.ContainsAny(host, " @") {
		return ""
	}
	return host
}
