package fluxobjects

import (
	"time"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// A Kustomization's or HelmRelease's spec.kubeConfig.configMapRef names a ConfigMap in its namespace whose keys say
// how the controller reaches the remote cluster (fluxcd/pkg auth utils GetRESTConfig; meta KubeConfigKey*): a
// provider (aws, azure, gcp or generic), and in serviceAccountName the ServiceAccount whose identity it uses; without
// one, --default-kubeconfig-service-account's, else the controller's own. Admission cannot read the ConfigMap;
// audit and doctor can, and decide it here.

// KubeConfigMap is what a kubeconfig ConfigMap says.
type KubeConfigMap struct {
	// Found is false when the ConfigMap does not exist (the controller then fails; nothing is borrowed).
	Found                        bool
	Provider, ServiceAccountName string
}

// EvaluateKubeConfig decides the ConfigMap an object's spec.kubeConfig.configMapRef names, under the mandates covering
// the object: a ServiceAccount it names must be mapped to the provider's cloud (a generic provider sends the
// ServiceAccount's Kubernetes token, which needs no mapping); without one, --default-kubeconfig-service-account's (as
// the policy declares it) is checked instead, and with neither the controller's own identity is borrowed: outside
// Flux's namespaces a violation unless the mandate allows controller identity.
func EvaluateKubeConfig(p *policy.Policy, o fluxauth.Object, cm KubeConfigMap, now time.Time) Decision {
	d := Decision{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
	mandates := p.MandatesFor(o.Namespace, o.Kind)
	if len(mandates) == 0 || !cm.Found || o.KubeConfigConfigMapRef == "" {
		return d
	}
	strictest := mandates[0]
	for _, m := range mandates {
		d.Mandates = append(d.Mandates, m.Name)
		if policy.Stricter(strictest.Mode, m.Mode) != strictest.Mode {
			strictest = m
		}
	}
	api, _ := fluxauth.APIOf(o.Kind)
	field := fluxauth.FieldKubeConfigConfigMapRef
	violate := func(m *policy.Mandate, messages ...string) {
		d.Violations = append(d.Violations, Violation{Mandate: m.Name, Mode: m.Mode, Field: field,
			Class: string(fluxauth.ConfigMapIdentity), Message: verdict.FitMessage(m.Name, messages...)})
	}
	account, what := cm.ServiceAccountName, "its serviceAccountName "+cm.ServiceAccountName
	if account == "" {
		account, what = p.Spec.Flux.DefaultKubeConfigServiceAccount, string(fluxauth.LockdownKubeConfig)+" "+
			p.Spec.Flux.DefaultKubeConfigServiceAccount
	}
	if account == "" {
		if p.FluxNamespace(o.Namespace) {
			return d
		}
		for _, m := range mandates {
			if !m.AllowControllerIdentity {
				violate(m, "ConfigMap "+o.KubeConfigConfigMapRef+" names no serviceAccountName: "+api.Controller+
					"'s identity reaches the cluster", "the kubeconfig ConfigMap borrows "+api.Controller+"'s identity")
			}
		}
		return d
	}
	if cm.Provider == fluxauth.ProviderGeneric || cm.Provider == "" {
		return d // a Kubernetes token of the ServiceAccount itself: no cloud identity to map
	}
	match, mapped := p.IdentityFor(o.Namespace, account)
	switch {
	case !mapped:
		violate(strictest, "ConfigMap "+o.KubeConfigConfigMapRef+": "+what+" has no identity here: map it to "+
			aCloud(cm.Provider)+" identity", "the kubeconfig ConfigMap's ServiceAccount has no identity here")
	case string(match.Cloud) != cm.Provider:
		violate(strictest, "ConfigMap "+o.KubeConfigConfigMapRef+": "+what+" is "+string(match.Cloud)+
			", its provider "+cm.Provider, "the kubeconfig ConfigMap's provider does not fit its identity")
	}
	return d
}
