// Package serviceaccounts decides about ServiceAccounts in the namespaces the policy names: it stamps the identity of
// the entry that maps one, defends the identity annotation keys the policy owns there, and keeps pull secrets off
// mapped ServiceAccounts where a mandate covers the Flux kinds that would read them.
package serviceaccounts

import (
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// View is what the decision reads of a ServiceAccount.
type View struct {
	Metadata *patch.Metadata `json:"metadata"`
	// ImagePullSecrets are counted, not read: Flux's OCI sources naming the ServiceAccount use them.
	ImagePullSecrets []struct{} `json:"imagePullSecrets"`
}

// Admit stamps the policy's identity annotations on a mapped ServiceAccount being created or updated and defends the
// identity annotation keys the policy owns in its namespaces.
func Admit(p *policy.Policy, req *verdict.Request[View, verdict.None], _ time.Time) (verdict.Verdict, error) {
	if req.Object == nil {
		return verdict.Verdict{}, &verdict.BadObject{Err: verdict.ErrNoObject}
	}
	return evaluate(p, req.Namespace, req.Object), nil
}

// evaluate decides about one ServiceAccount in namespace. Outside the namespaces the policy names it
// does nothing. Inside, a mapped ServiceAccount is patched to carry exactly its entry's values (spoofed values are
// replaced, removed ones come back), and identity keys the entry does not grant are violations; on an unmapped
// ServiceAccount every identity key is a violation.
func evaluate(p *policy.Policy, namespace string, sa *View) verdict.Verdict {
	mode, owned := p.Ownership(namespace)
	if !owned {
		return verdict.Verdict{}
	}
	v := verdict.Verdict{Kind: "ServiceAccount", Namespace: namespace}
	md := patch.MetaOf(sa.Metadata)
	name, shown := md.Name, md.Name
	if name == "" && md.GenerateName != "" {
		// The API server names it after this webhook (generatename.go): judged here only when every name it can
		// generate is mapped alike, else by the validating webhook, which sees the name.
		standIn, ok := generatedStandIn(p, namespace, md.GenerateName)
		if !ok {
			return v
		}
		name, shown = standIn, md.GenerateName+"*"
	}
	m, mapped := p.IdentityFor(namespace, name)
	if !mapped {
		for _, k := range keys.OwnedServiceAccountAnnotations {
			if _, set := md.Annotations[k]; set {
				v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleOwnership, Mode: mode,
					Message: verdict.FitMessage(verdict.RuleOwnership, verdict.WithDetail("annotation "+k+" is reserved: remove it",
						"no identity maps "+verdict.Clip(namespace)+"/"+verdict.Clip(shown))...)})
			}
		}
		return v
	}

	annotations, labels := Metadata(m)
	v.Identity = m.Identity.Name
	for _, k := range keys.IdentityAnnotationKeys {
		val, set := md.Annotations[k]
		if !set || annotations[k] != "" || grantedByDefault(m, k, val) {
			continue
		}
		v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleIdentity, Rule: m.Identity.Name,
			Mode: mode, Message: verdict.FitMessage(m.Identity.Name, notGranted(m, k)...)})
	}
	if len(sa.ImagePullSecrets) > 0 {
		if mandate := PullSecretMandate(p, namespace); mandate != nil {
			// Flux's OCIRepository reads the pull secrets of the ServiceAccount a source names before its identity
			// (OCIRepositoryReconciler.keychain): a mapped ServiceAccount must not carry any where identity is
			// mandated. Answered in the mandate's mode.
			v.Violations = append(v.Violations, verdict.Violation{RuleType: verdict.RuleMandate, Rule: mandate.Name,
				Mode: mandate.Mode, Message: verdict.FitMessage(mandate.Name, "imagePullSecrets on a mapped ServiceAccount win over its identity "+
					"for OCI sources: move them to the pods", "imagePullSecrets here win over the identity of OCI sources: "+
					"move them to the pods", "imagePullSecrets are not allowed on a mapped ServiceAccount")})
		}
	}
	v.Patch = patch.SetMetadata(nil, "", sa.Metadata, annotations, labels)
	return v
}

// PullSecretMandate is the strictest mandate of the namespace that covers a kind whose sources read the imagePullSecrets
// of the ServiceAccount they name (fluxauth.ReadsPullSecrets), or nil.
func PullSecretMandate(p *policy.Policy, namespace string) *policy.Mandate {
	var strictest *policy.Mandate
	for _, kind := range fluxauth.Kinds {
		if !fluxauth.ReadsPullSecrets(kind) {
			continue
		}
		for _, m := range p.MandatesFor(namespace, kind) {
			if strictest == nil || policy.Stricter(strictest.Mode, m.Mode) != strictest.Mode {
				strictest = m
			}
		}
	}
	return strictest
}

// grantedByDefault accepts an optional key set to the value the cloud assumes anyway (the default STS audience of
// an IRSA identity).
func grantedByDefault(m policy.Match, key, value string) bool {
	return m.Cloud == policy.CloudAWS && !m.Identity.AWS.PodIdentity() && key == keys.AnnotationAWSAudience &&
		value == keys.AWSDefaultAudience &&
		(m.Identity.AWS.Audience == "" || m.Identity.AWS.Audience == keys.AWSDefaultAudience)
}

// notGranted says why an identity key the entry does not grant is refused. Two keys change which identity the cloud's
// code picks, and the message says so: a Google service account turns direct federation into impersonation (Flux's gcp
// provider and GKE's metadata server impersonate whenever it is set), and an IRSA role wins over EKS Pod Identity in
// the AWS SDK's credential chain.
func notGranted(m policy.Match, key string) []string {
	switch {
	case key == keys.AnnotationGCPServiceAccount && m.Identity.GCP.Direct():
		return []string{"annotation " + key + " turns direct federation into impersonation: remove it"}
	case key == keys.AnnotationAWSRoleARN && m.Identity.AWS.PodIdentity():
		return []string{"annotation " + key + " would win over EKS Pod Identity (IRSA comes first): remove it"}
	}
	return verdict.WithDetail("annotation "+key+" is not granted by this identity: remove it", string(m.Cloud)+" identity")
}
