package webhook

import (
	"context"
	"errors"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

// serviceAccount stamps the policy's identity annotations on mapped ServiceAccounts and defends the identity
// annotation keys the policy owns in its namespaces.
func (s *Server) serviceAccount(_ context.Context, p *policy.Policy, body []byte) (types.UID, verdict, error) {
	req, err := decodeReview[serviceAccountView, none](body)
	if err != nil {
		return uidOf(req), verdict{}, err
	}
	if req.Object == nil {
		return req.UID, verdict{}, &badObject{errNoObject}
	}
	return req.UID, evaluateServiceAccount(p, req.Namespace, req.Object), nil
}

// evaluateServiceAccount decides about one ServiceAccount in namespace. Outside the namespaces the policy names it
// does nothing. Inside, a mapped ServiceAccount is patched to carry exactly its entry's values (spoofed values are
// replaced, removed ones come back), and identity keys the entry does not grant are violations; on an unmapped
// ServiceAccount every identity key is a violation.
func evaluateServiceAccount(p *policy.Policy, namespace string, sa *serviceAccountView) verdict {
	mode, owned := p.Ownership(namespace)
	if !owned {
		return verdict{}
	}
	v := verdict{kind: "ServiceAccount", namespace: namespace}
	md := metaOf(sa.Metadata)
	m, mapped := p.IdentityFor(namespace, md.Name)
	if !mapped {
		for _, k := range ownedKeys {
			if _, set := md.Annotations[k]; set {
				v.violations = append(v.violations, violation{ruleType: RuleOwnership, mode: mode,
					message: fitMessage(RuleOwnership, withDetail("annotation "+k+" is reserved: remove it",
						"no identity maps "+clip(namespace)+"/"+clip(md.Name))...)})
			}
		}
		return v
	}

	annotations, labels := ServiceAccountMetadata(m)
	v.identity = m.Identity.Name
	for _, k := range keys.IdentityAnnotationKeys {
		val, set := md.Annotations[k]
		if !set || annotations[k] != "" || grantedByDefault(m, k, val) {
			continue
		}
		v.violations = append(v.violations, violation{ruleType: RuleIdentity, rule: m.Identity.Name, mode: mode,
			message: fitMessage(m.Identity.Name, withDetail("annotation "+k+" is not granted by this identity: remove it",
				string(m.Cloud)+" identity")...)})
	}
	if len(sa.ImagePullSecrets) > 0 {
		if mandate := PullSecretMandate(p, namespace); mandate != nil {
			// Flux's OCIRepository reads the pull secrets of the ServiceAccount a source names before its identity
			// (OCIRepositoryReconciler.keychain): a mapped ServiceAccount must not carry any where identity is
			// mandated. Answered in the mandate's mode.
			v.violations = append(v.violations, violation{ruleType: RuleMandate, rule: mandate.Name, mode: mandate.Mode,
				message: fitMessage(mandate.Name, "imagePullSecrets on a mapped ServiceAccount win over its identity "+
					"for OCI sources: move them to the pods", "imagePullSecrets here win over the identity of OCI sources: "+
					"move them to the pods", "imagePullSecrets are not allowed on a mapped ServiceAccount")})
		}
	}
	v.patch = setMetadata(nil, "", sa.Metadata, annotations, labels)
	return v
}

// errNoObject answers a review without the object the handler decides about.
var errNoObject = errors.New("the request carries no object")

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

// ownedKeys are the annotation keys an unmapped ServiceAccount in a policy namespace may not carry: the cloud keys and
// ours (a leftover fluxidentity.dev/identity would claim an identity that no longer applies).
var ownedKeys = append(slices.Clone(keys.IdentityAnnotationKeys), keys.AnnotationIdentity)

// grantedByDefault accepts an optional key set to the value the cloud assumes anyway (the default STS audience).
func grantedByDefault(m policy.Match, key, value string) bool {
	return m.Cloud == policy.CloudAWS && key == keys.AnnotationAWSAudience && value == keys.AWSDefaultAudience &&
		(m.Identity.AWS.Audience == "" || m.Identity.AWS.Audience == keys.AWSDefaultAudience)
}
