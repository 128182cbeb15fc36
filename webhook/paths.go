package webhook

// Handler paths. They are fixed: the chart, the kustomize config and the tests register these exact paths.
const (
	PathMutateServiceAccount = "/mutate-v1-serviceaccount"
	PathMutatePod            = "/mutate-v1-pod"
	// PathMutateDeployment is optional: it labels Azure pod templates (see deploymentMutator).
	PathMutateDeployment    = "/mutate-apps-v1-deployment"
	PathValidateFluxSources = "/validate-flux-sources"
	// PathValidatePod refuses changes to the pod annotations the webhook owns (see podMetadataValidator). It is
	// registered for pod UPDATEs and bindings only; pod CREATE stays on PathMutatePod.
	PathValidatePod = "/validate-v1-pod"
)
