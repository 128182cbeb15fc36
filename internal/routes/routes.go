// Package routes is the route table of the admission webhook: every path the server answers and every webhook
// registration that calls it, with what the registration sends (API groups, versions, resources, operations) and how
// it fails. The server binds each path to its decision (webhook/routes.go); `policy explain`, the matchConditions
// (policy/conditions), config/webhook and the chart are held to this table by tests, so a new kind is one row here
// (for a Flux kind, one row of fluxauth.APIs) plus its decision.
package routes

import (
	"slices"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

// Paths the server answers. They are fixed: the chart, the kustomize config and the tests register these exact paths.
const (
	PathMutateServiceAccount = "/mutate-v1-serviceaccount"
	PathMutatePod            = "/mutate-v1-pod"
	// PathMutateDeployment is optional: it labels Azure pod templates (webhook/pods deployment.go).
	PathMutateDeployment    = "/mutate-apps-v1-deployment"
	PathValidateFluxSources = "/validate-flux-sources"
	// PathValidateFluxObjects answers Flux's other objects that read credentials (Kustomization, HelmRelease,
	// notification Provider and Receiver, ImageUpdateAutomation, ResourceSetInputProvider).
	PathValidateFluxObjects = "/validate-flux-objects"
	// PathValidateSecret answers SOPS decryption Secrets: its registration's matchCondition sends no other Secret.
	PathValidateSecret = "/validate-v1-secret"
	// PathValidatePod refuses changes to the pod annotations the webhook owns (webhook/pods podmetadata.go). It is
	// registered for pod UPDATEs and bindings only; pod CREATE stays on PathMutatePod.
	PathValidatePod = "/validate-v1-pod"
	// PathValidateServiceAccount judges a ServiceAccount created with metadata.generateName under the name the API
	// server generated, which the mutating webhook cannot see (webhook/serviceaccounts generatename.go).
	PathValidateServiceAccount = "/validate-v1-serviceaccount"
)

// Paths are every path the server answers, in the table's order.
var Paths = []string{PathMutateServiceAccount, PathMutatePod, PathMutateDeployment, PathValidateFluxSources,
	PathValidateFluxObjects, PathValidateSecret, PathValidatePod, PathValidateServiceAccount}

// Names of the webhook registrations (config/webhook, the chart).
const (
	WebhookServiceAccounts = "serviceaccounts.fluxidentity.dev"
	WebhookPods            = "pods.fluxidentity.dev"
	// WebhookPodsFullInjection is registered only when the policy has full-injection entries: it fails closed, and
	// its condition sends it exactly the pods whose ServiceAccount resolves to such an entry.
	WebhookPodsFullInjection = "pods-full-injection.fluxidentity.dev"
	WebhookDeployments       = "deployments.fluxidentity.dev"
	WebhookSources           = "flux-sources.fluxidentity.dev"
	WebhookFluxObjects       = "flux-objects.fluxidentity.dev"
	WebhookSOPSSecrets       = "sops-secrets.fluxidentity.dev"
	WebhookPodMetadata       = "pod-metadata.fluxidentity.dev"
	// WebhookGeneratedServiceAccounts sees ServiceAccount CREATEs with metadata.generateName (its matchCondition
	// generatedName), after the API server named them.
	WebhookGeneratedServiceAccounts = "serviceaccounts-generated.fluxidentity.dev"
)

// Operations a rule sends.
const (
	Create = "CREATE"
	Update = "UPDATE"
)

// Rule is what one rule of a registration selects.
type Rule struct {
	Group      string
	Versions   []string // the preferred version first
	Resources  []string
	Operations []string
	// Kind is the kind of the first resource, for tools that start from a manifest (explain); empty for a rule on
	// subresources only.
	Kind string
}

// Webhook is one registration.
type Webhook struct {
	Name     string
	Path     string
	Mutating bool
	// FailClosed: the API server refuses the request when the webhook does not answer (failurePolicy Fail).
	FailClosed bool
	Rules      []Rule
}

// Webhooks are every registration of config/webhook and of the chart, in their order there.
var Webhooks = []Webhook{
	{Name: WebhookServiceAccounts, Path: PathMutateServiceAccount, Mutating: true, FailClosed: true,
		Rules: []Rule{{Versions: []string{"v1"}, Resources: []string{"serviceaccounts"}, Operations: []string{Create, Update},
			Kind: "ServiceAccount"}}},
	{Name: WebhookPods, Path: PathMutatePod, Mutating: true,
		Rules: []Rule{podCreate}},
	{Name: WebhookPodsFullInjection, Path: PathMutatePod, Mutating: true, FailClosed: true,
		Rules: []Rule{podCreate}},
	{Name: WebhookSources, Path: PathValidateFluxSources, FailClosed: true, Rules: fluxRules(fluxauth.CategorySource)},
	{Name: WebhookFluxObjects, Path: PathValidateFluxObjects, FailClosed: true, Rules: fluxRules(fluxauth.CategoryObject)},
	{Name: WebhookSOPSSecrets, Path: PathValidateSecret, FailClosed: true, Rules: fluxRules(fluxauth.CategorySecrets)},
	{Name: WebhookGeneratedServiceAccounts, Path: PathValidateServiceAccount, FailClosed: true,
		Rules: []Rule{{Versions: []string{"v1"}, Resources: []string{"serviceaccounts"}, Operations: []string{Create}}}},
	{Name: WebhookPodMetadata, Path: PathValidatePod, FailClosed: true, Rules: []Rule{
		{Versions: []string{"v1"}, Resources: []string{"pods", "pods/status"}, Operations: []string{Update}},
		{Versions: []string{"v1"}, Resources: []string{"pods/binding", "bindings"}, Operations: []string{Create}},
	}},
	{Name: WebhookDeployments, Path: PathMutateDeployment, Mutating: true,
		Rules: []Rule{{Group: "apps", Versions: []string{"v1"}, Resources: []string{"deployments"},
			Operations: []string{Create, Update}, Kind: "Deployment"}}},
}

var podCreate = Rule{Versions: []string{"v1"}, Resources: []string{"pods"}, Operations: []string{Create}, Kind: "Pod"}

// fluxRules are one rule per kind of the category the credential model knows, naming every version Flux has served
// of it.
func fluxRules(c fluxauth.Category) []Rule {
	var rules []Rule
	for _, a := range fluxauth.APIs {
		if a.Category == c {
			rules = append(rules, Rule{Group: a.Group, Versions: a.Versions, Resources: []string{a.Resource},
				Operations: []string{Create, Update}, Kind: a.Kind})
		}
	}
	return rules
}

// WebhookOf is the registration that sends objects of a category of the credential model.
func WebhookOf(c fluxauth.Category) string {
	switch c {
	case fluxauth.CategorySource:
		return WebhookSources
	case fluxauth.CategoryObject:
		return WebhookFluxObjects
	}
	return WebhookSOPSSecrets
}

// Named is the registration of that name.
func Named(name string) (Webhook, bool) {
	i := slices.IndexFunc(Webhooks, func(w Webhook) bool { return w.Name == name })
	if i < 0 {
		return Webhook{}, false
	}
	return Webhooks[i], true
}

// Target is where a manifest's object goes: the path that answers its kind and the resource it is served as.
type Target struct {
	Path                     string
	Group, Version, Resource string
}

// ForKind is where an object of the kind is sent, in the rule's preferred version; ok is false for a kind no
// registration sends. The first registration naming the kind decides (the pods of full injection and the others
// share one path).
func ForKind(kind string) (Target, bool) {
	for _, w := range Webhooks {
		for _, r := range w.Rules {
			if r.Kind == kind {
				return Target{Path: w.Path, Group: r.Group, Version: r.Versions[0], Resource: r.Resources[0]}, true
			}
		}
	}
	return Target{}, false
}
