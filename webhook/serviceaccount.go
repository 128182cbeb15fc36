package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxauth"
)

// serviceAccountMutator stamps the policy's identity annotations on mapped ServiceAccounts and defends the identity
// annotation keys the policy owns in its namespaces.
type serviceAccountMutator struct {
	opts  Options
	count countedHandler
}

var _ admission.Handler = &serviceAccountMutator{}

func (h *serviceAccountMutator) Handle(_ context.Context, req admission.Request) admission.Response {
	var sa serviceAccountView
	if err := json.Unmarshal(req.Object.Raw, &sa); err != nil {
		h.count.errored.Inc()
		return admission.Errored(http.StatusBadRequest, err)
	}
	return evaluateServiceAccount(h.opts.Policy.Current(), req.Namespace, &sa).answer(h.opts.Mode, h.count)
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
	v := verdict{mode: mode, kind: "ServiceAccount", namespace: namespace, rule: "ownership"}
	md := metaOf(sa.Metadata)
	m, mapped := p.IdentityFor(namespace, md.Name)
	if !mapped {
		for _, k := range ownedKeys {
			if _, set := md.Annotations[k]; set {
				v.violations = append(v.violations, message(v.rule,
					"annotation "+k+" is reserved: remove it",
					"no identity maps "+namespace+"/"+md.Name))
			}
		}
		return v
	}

	annotations, labels := ServiceAccountMetadata(m)
	v.identity, v.rule = m.Identity.Name, m.Identity.Name
	for _, k := range keys.IdentityAnnotationKeys {
		val, set := md.Annotations[k]
		if !set || annotations[k] != "" || grantedByDefault(m, k, val) {
			continue
		}
		v.violations = append(v.violations, message(v.rule,
			"annotation "+k+" is not granted by this identity: remove it", string(m.Cloud)+" identity"))
	}
	if len(sa.ImagePullSecrets) > 0 {
		if mandate := PullSecretMandate(p, namespace); mandate != nil {
			// Flux's OCIRepository reads the pull secrets of the ServiceAccount a source names before its identity
			// (OCIRepositoryReconciler.keychain): a mapped ServiceAccount must not carry any where identity is
			// mandated. Answered in the mandate's mode, or the stricter one when other violations come along.
			if len(v.violations) == 0 {
				v.mode = mandate.Mode
			} else {
				v.mode = policy.Stricter(v.mode, mandate.Mode)
			}
			v.violations = append(v.violations, message(v.rule,
				"imagePullSecrets on a mapped ServiceAccount win over its identity for OCI sources: move them to the pods",
				"mandate "+mandate.Name))
		}
	}
	v.patch = setMetadata(nil, "", sa.Metadata, annotations, labels)
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

// ownedKeys are the annotation keys an unmapped ServiceAccount in a policy namespace may not carry: the cloud keys and
// ours (a leftover fluxidentity.dev/identity would claim an identity that no longer applies).
var ownedKeys = append(slices.Clone(keys.IdentityAnnotationKeys), keys.AnnotationIdentity)

// grantedByDefault accepts an optional key set to the value the cloud assumes anyway (the default STS audience).
func grantedByDefault(m policy.Match, key, value string) bool {
	return m.Cloud == policy.CloudAWS && key == keys.AnnotationAWSAudience && value == keys.AWSDefaultAudience &&
		(m.Identity.AWS.Audience == "" || m.Identity.AWS.Audience == keys.AWSDefaultAudience)
}
