package webhook

// Handler paths. They are fixed: the chart, the kustomize config and the tests register these exact paths.
const (
	PathMutateServiceAccount = "/mutate-v1-serviceaccount"
	PathMutatePod            = "/mutate-v1-pod"
	// PathMutateDeployment is optional: it labels Azure pod templates (see deploymentMutator).
	PathMutateDeployment    = "/mutate-apps-v1-deployment"
	PathValidateFluxSources = "/validate-flux-sources"
)
