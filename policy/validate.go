package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	sourcev1 "github.com/fluxcd/source-controller/api/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// Formats checked at load time. Placeholders ({namespace}, {serviceAccount}) are replaced by a sample name before a
// templated value is checked, so a template is valid exactly when its expansions can be.
var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// Namespaces are DNS labels; ServiceAccount names are DNS subdomains. Patterns add the two wildcards.
	namespacePattern      = regexp.MustCompile(`^[-a-z0-9*?]{1,63}$`)
	serviceAccountPattern = regexp.MustCompile(`^[-a-z0-9.*?]{1,253}$`)
	// arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME; IAM role names and paths allow [\w+=,.@-].
	roleARN     = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[a-z]|aws-eusc):iam::[0-9]{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	awsRegion   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	uuid        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	gcpEmail    = regexp.MustCompile(`^[a-z][-a-z0-9]{4,28}[a-z0-9]@[a-z][-a-z0-9.:]{4,61}[a-z0-9]\.iam\.gserviceaccount\.com$`)
	gcpProvider = regexp.MustCompile(`^projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`)
	audience    = regexp.MustCompile(`^\S{1,256}$`)
	isoDate     = "2006-01-02"

	allowed = map[*regexp.Regexp]string{
		namespacePattern:      "a-z, 0-9, '-', '*', '?'; at most 63",
		serviceAccountPattern: "a-z, 0-9, '-', '.', '*', '?'; at most 253",
	}
)

// expiryWarningWindow is how early the lint warns about an exception that expires. Token lifetime bounds are the
// clouds' (keys.AWSMinTokenSeconds, keys.AzureMinTokenSeconds..keys.AzureMaxTokenSeconds, keys.MaxTokenSeconds).
const expiryWarningWindow = 14 * 24 * time.Hour

// validate checks every field of f and fills in defaults. Findings about the file are errors; the second list holds
// warnings that do not stop the policy from loading (exceptions that expired or expire soon).
func validate(f *File, now time.Time) (errs, warns findings) {
	if f.APIVersion != APIVersion {
		errs.add("apiVersion", "must be %q, got %q", APIVersion, f.APIVersion)
	}
	if f.Kind != Kind {
		errs.add("kind", "must be %q, got %q", Kind, f.Kind)
	}
	if len(f.Identities) == 0 && len(f.Mandates) == 0 {
		errs.add("identities", "the policy has neither identities nor mandates: it would do nothing")
	}

	validateFlux(&f.Flux, &errs)
	names := map[string]string{}
	for i := range f.Identities {
		validateIdentity(&f.Identities[i], fmt.Sprintf("identities[%d]", i), names, &errs)
	}
	oneRolePerName(f.Identities, &errs)
	identityModels(f, &errs)
	mandates := map[string]string{}
	for i := range f.Mandates {
		validateMandate(&f.Mandates[i], fmt.Sprintf("mandates[%d]", i), mandates, &errs, &warns)
	}
	for i := range f.Exceptions {
		validateException(&f.Exceptions[i], fmt.Sprintf("exceptions[%d]", i), now, &errs, &warns)
	}
	return errs, warns
}

func validateIdentity(id *Identity, path string, names map[string]string, errs *findings) {
	uniqueName(id.Name, path, "identity", names, errs)
	patterns(id.Namespaces, path+".namespaces", namespacePattern, "namespace", errs)
	patterns(id.ServiceAccounts, path+".serviceAccounts", serviceAccountPattern, "ServiceAccount", errs)

	clouds := 0
	if id.AWS != nil {
		clouds++
		validateAWS(id.AWS, path+".aws", errs)
	}
	if id.Azure != nil {
		clouds++
		validateAzure(id.Azure, path+".azure", errs)
	}
	if id.GCP != nil {
		clouds++
		validateGCP(id.GCP, path+".gcp", errs)
	}
	if clouds != 1 {
		errs.add(path, "set exactly one of aws, azure or gcp (found %d)", clouds)
	}

	switch id.Injection {
	case "":
		id.Injection = InjectionAnnotate
	case InjectionFull:
		if id.GCP != nil && id.GCP.WorkloadIdentityProvider == "" {
			errs.add(path+".injection", "full injection of a gcp identity needs gcp.workloadIdentityProvider "+
				"(on GKE the metadata server serves the identity: use annotate)")
		}
		if id.AWS.PodIdentity() {
			errs.add(path+".injection", "full injection has nothing to add for EKS Pod Identity: the Pod Identity Agent "+
				"runs on EKS only, where EKS's own webhook injects its endpoint for every association: use annotate")
		}
	case InjectionAnnotate:
	default:
		errs.add(path+".injection", "must be annotate or full, got %q", id.Injection)
	}
	id.Mode = defaultMode(id.Mode, path+".mode", errs)
}

func validateAWS(a *AWS, path string, errs *findings) {
	switch {
	case a.RoleARN == "":
		errs.add(path+".roleARN", "is required")
	case !validTemplate(a.RoleARN, path+".roleARN", errs):
	case !roleARN.MatchString(expandSample(a.RoleARN)):
		errs.add(path+".roleARN", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", a.RoleARN)
	case !distinctRoleName(a.RoleARN, path+".roleARN", errs):
	}
	validateMechanism(a, path, errs)
	switch {
	case a.PodIdentity():
	case a.Audience == "":
		a.Audience = keys.AWSDefaultAudience
	case !audience.MatchString(a.Audience):
		errs.add(path+".audience", "must be a non-empty audience without spaces")
	}
	if a.Region != "" && !awsRegion.MatchString(a.Region) {
		errs.add(path+".region", "%q is not an AWS region (e.g. eu-west-1)", a.Region)
	}
	switch t := a.TokenExpirationSeconds; {
	case t == nil:
	case *t < keys.AWSMinTokenSeconds:
		errs.add(path+".tokenExpirationSeconds", "must be at least %d seconds, got %d", keys.AWSMinTokenSeconds, *t)
	case *t > keys.MaxTokenSeconds:
		errs.add(path+".tokenExpirationSeconds", "must be %d..%d seconds, got %d", keys.AWSMinTokenSeconds,
			keys.MaxTokenSeconds, *t)
	}
}

func validateAzure(a *Azure, path string, errs *findings) {
	for _, f := range []struct{ name, value string }{{"clientID", a.ClientID}, {"tenantID", a.TenantID}} {
		switch {
		case f.value == "":
			errs.add(path+"."+f.name, "is required (Flux object-level identity needs both IDs)")
		case !uuid.MatchString(f.value):
			errs.add(path+"."+f.name, "%q is not a UUID", f.value)
		}
	}
	if t := a.TokenExpirationSeconds; t != nil && (*t < keys.AzureMinTokenSeconds || *t > keys.AzureMaxTokenSeconds) {
		errs.add(path+".tokenExpirationSeconds", "must be %d..%d seconds (the Azure webhook denies pods outside), got %d",
			keys.AzureMinTokenSeconds, keys.AzureMaxTokenSeconds, *t)
	}
	if _, known := keys.AzureCloudNamed(a.Cloud); !known {
		names := make([]string, len(keys.AzureClouds))
		for i, c := range keys.AzureClouds {
			names[i] = c.Name
		}
		errs.add(path+".cloud", "unknown Azure cloud %q (known: %s)", a.Cloud, strings.Join(names, ", "))
	} else if a.Cloud == "" {
		a.Cloud = keys.AzurePublicCloud
	}
}

func validateGCP(g *GCP, path string, errs *findings) {
	switch {
	case g.ServiceAccount == "":
		validateDirectFederation(g, path, errs)
	case !validTemplate(g.ServiceAccount, path+".serviceAccount", errs):
	case !gcpEmail.MatchString(expandSample(g.ServiceAccount)):
		errs.add(path+".serviceAccount",
			"%q is not a Google service account (NAME@PROJECT.iam.gserviceaccount.com, NAME of 6 to 30 characters)",
			g.ServiceAccount)
	case !distinctTemplate(CloudGCP, g.ServiceAccount, path+".serviceAccount", errs):
	}
	if g.WorkloadIdentityProvider != "" && !gcpProvider.MatchString(g.WorkloadIdentityProvider) {
		errs.add(path+".workloadIdentityProvider",
			"must be projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER")
	}
	validateGKEPool(g, path, errs)
}

func validateMandate(m *Mandate, path string, names map[string]string, errs, warns *findings) {
	uniqueName(m.Name, path, "mandate", names, errs)
	patterns(m.Namespaces, path+".namespaces", namespacePattern, "namespace", errs)
	m.Mode = defaultMode(m.Mode, path+".mode", errs)
	if len(m.Kinds) == 0 {
		m.Kinds = slices.Clone(Kinds)
	}
	for i, k := range m.Kinds {
		if !slices.Contains(Kinds, k) {
			errs.add(fmt.Sprintf("%s.kinds[%d]", path, i), "unknown kind %q (known: %s)", k, strings.Join(Kinds, ", "))
		}
	}
	for i, p := range m.AllowProviders {
		at := fmt.Sprintf("%s.allowProviders[%d]", path, i)
		switch p {
		case ProviderGitHub:
			if !slices.Contains(m.Kinds, sourcev1.GitRepositoryKind) {
				warns.add(at, "github excuses GitRepository secrets only, and this mandate does not cover GitRepository")
			}
		case "aws", "azure", "gcp", "generic":
			errs.add(at, "%q cannot excuse a secret: Flux reads static keys from spec.secretRef whatever the provider "+
				"(only github, a GitHub App, can be allowed; use an exception for anything else)", p)
		default:
			errs.add(at, "unknown secret-based scheme %q (only github, a GitHub App, can be allowed)", p)
		}
	}
	for i, c := range m.Cover {
		if !slices.Contains(CoverValues, c) {
			errs.add(fmt.Sprintf("%s.cover[%d]", path, i), "unknown value %q (known: %s)", c, strings.Join(CoverValues, ", "))
		}
	}
}

// validateFlux checks the flux section and fills in Flux's default namespace.
func validateFlux(fx *Flux, errs *findings) {
	if len(fx.Namespaces) == 0 {
		fx.Namespaces = []string{DefaultFluxNamespace}
	}
	for i, ns := range fx.Namespaces {
		if !dnsLabel.MatchString(ns) {
			errs.add(fmt.Sprintf("flux.namespaces[%d]", i), "must be a namespace name (no globs), got %q", ns)
		}
	}
	for _, f := range []struct{ field, value string }{{"defaultServiceAccount", fx.DefaultServiceAccount},
		{"defaultDecryptionServiceAccount", fx.DefaultDecryptionServiceAccount},
		{"defaultKubeConfigServiceAccount", fx.DefaultKubeConfigServiceAccount}} {
		if sa := f.value; sa != "" && (strings.ContainsAny(sa, "*?") || !serviceAccountPattern.MatchString(sa)) {
			errs.add("flux."+f.field, "must be a ServiceAccount name, got %q", sa)
		}
	}
}

func validateException(e *Exception, path string, now time.Time, errs, warns *findings) {
	if !dnsLabel.MatchString(e.Namespace) {
		errs.add(path+".namespace", "must be a namespace name, got %q", e.Namespace)
	}
	if !slices.Contains(Kinds, e.Kind) {
		errs.add(path+".kind", "unknown kind %q (known: %s)", e.Kind, strings.Join(Kinds, ", "))
	}
	if e.Name == "" || !serviceAccountPattern.MatchString(e.Name) {
		errs.add(path+".name", "must be an object name or a glob, got %q", e.Name)
	}
	if strings.TrimSpace(e.Reason) == "" {
		errs.add(path+".reason", "is required: say why and link the ticket")
	}
	expires, err := time.Parse(isoDate, e.Expires)
	if err != nil {
		errs.add(path+".expires", "must be a date YYYY-MM-DD, got %q", e.Expires)
		return
	}
	end := expires.Add(24 * time.Hour) // the exception holds through its last day (UTC)
	switch {
	case !now.Before(end):
		warns.add(path+".expires", "exception for %s/%s %s expired on %s and no longer applies", e.Namespace, e.Kind,
			e.Name, e.Expires)
	case end.Sub(now) <= expiryWarningWindow:
		warns.add(path+".expires", "exception for %s/%s %s expires on %s", e.Namespace, e.Kind, e.Name, e.Expires)
	}
}

func uniqueName(name, path, what string, names map[string]string, errs *findings) {
	switch {
	case name == "":
		errs.add(path+".name", "is required")
	case !dnsLabel.MatchString(name):
		errs.add(path+".name", "%q must be a DNS label (lower-case letters, digits and '-', at most 63)", name)
	case names[name] != "":
		errs.add(path+".name", "%s name %q is already used by %s", what, name, names[name])
	default:
		names[name] = path
	}
}

func patterns(ps []string, path string, re *regexp.Regexp, what string, errs *findings) {
	if len(ps) == 0 {
		errs.add(path, "list at least one %s (exact name or glob)", what)
	}
	for i, p := range ps {
		if !re.MatchString(p) {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a %s name or glob (allowed: %s)", p, what, allowed[re])
		}
	}
}

func defaultMode(m Mode, path string, errs *findings) Mode {
	switch m {
	case "":
		return ModeEnforce
	case ModeEnforce, ModeWarn, ModeOff:
		return m
	}
	errs.add(path, "must be enforce, warn or off, got %q", m)
	return m
}

// Placeholders in templated identity values.
const (
	placeholderNamespace      = "{namespace}"
	placeholderServiceAccount = "{serviceAccount}"
)

// expandSample fills the placeholders with six-letter names. Six is the shortest Google service account ID, so a
// template made of placeholders alone ("{serviceAccount}@PROJECT.iam.gserviceaccount.com") is accepted, while the
// fixed parts are still held to the formats.
func expandSample(s string) string { return sampleNames.Replace(s) }

// Built once: a Replacer is expensive to build, and a policy may hold 100k templated values.
var (
	sampleNames      = strings.NewReplacer(placeholderNamespace, "sample", placeholderServiceAccount, "sample")
	dropPlaceholders = strings.NewReplacer(placeholderNamespace, "", placeholderServiceAccount, "")
)

// validTemplate rejects braces that are not one of the two placeholders (a typo such as {namspace} would otherwise
// reach the cloud verbatim).
func validTemplate(s, path string, errs *findings) bool {
	rest := dropPlaceholders.Replace(s)
	if strings.ContainsAny(rest, "{}") {
		errs.add(path, "unknown placeholder in %q: only {namespace} and {serviceAccount} are expanded", s)
		return false
	}
	return true
}

// oneRolePerName refuses two role ARNs that differ only in the role's path. IAM keeps role names unique in an
// account whatever the path (and compares them without case), so such ARNs cannot both exist: one entry names a role
// that is not there, and `trust render` would write one role's trust policy twice. Templated ARNs are left to the
// template rules.
func oneRolePerName(ids []Identity, errs *findings) {
	type first struct{ arn, path string }
	seen := map[string]first{}
	for i := range ids {
		a := ids[i].AWS
		if a == nil || strings.Contains(a.RoleARN, "{") || !roleARN.MatchString(a.RoleARN) {
			continue
		}
		// arn:PARTITION:iam::ACCOUNT:role/PATH/NAME: the account up to ":role/", the name after the last '/'.
		account, role, _ := strings.Cut(a.RoleARN, ":role/")
		key := strings.ToLower(account + ":" + role[strings.LastIndex(role, "/")+1:])
		path := fmt.Sprintf("identities[%d].aws.roleARN", i)
		f, ok := seen[key]
		if !ok {
			seen[key] = first{a.RoleARN, path}
			continue
		}
		if !strings.EqualFold(f.arn, a.RoleARN) {
			errs.add(path, "%q and %q (%s) name one IAM role under two paths: role names are unique in an account "+
				"whatever the path, so one of them does not exist", a.RoleARN, f.arn, f.path)
		}
	}
}
