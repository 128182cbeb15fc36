package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
)

// The identity models beyond one per cloud: GCP direct federation (no Google service account), EKS Pod Identity, and
// Azure's bound on federated credentials per identity.

var (
	// gkeWorkloadPool is PROJECT_ID.svc.id.goog, a project ID being 6 to 30 of [a-z0-9-], starting with a letter.
	gkeWorkloadPool = regexp.MustCompile(`^[a-z][-a-z0-9]{4,28}[a-z0-9]\.svc\.id\.goog$`)
	// gcpProjectNumber is as long as Flux's provider pattern allows one (fluxcd/pkg/auth gcp
	// workloadIdentityProviderPattern: projects/\d{1,30}/...).
	gcpProjectNumber = regexp.MustCompile(`^[1-9][0-9]{0,29}$`)
)

// validateMechanism checks aws.mechanism and what an EKS Pod Identity entry may not set.
func validateMechanism(a *AWS, path string, errs *findings) {
	switch a.Mechanism {
	case "":
		a.Mechanism = AWSMechanismIRSA
	case AWSMechanismIRSA:
	case AWSMechanismPodIdentity:
		// The Pod Identity token's audience is fixed (the EKS webhook's --container-credentials-audience,
		// pods.eks.amazonaws.com) and no annotation changes it; region is written only by full injection.
		if a.Audience != "" {
			errs.add(path+".audience", "EKS Pod Identity tokens have the audience %s: audience is for irsa only",
				keys.AWSPodIdentityAudience)
		}
		if a.Region != "" {
			errs.add(path+".region", "region is written by full injection only, which EKS Pod Identity does not use: "+
				"EKS's webhook sets AWS_REGION")
		}
	default:
		errs.add(path+".mechanism", "must be irsa or podIdentity, got %q", a.Mechanism)
	}
}

// validateDirectFederation checks a gcp entry without a Google service account: its principal must be nameable, on GKE
// by the pool and the project number, outside GKE by the workload identity provider Flux's annotation names.
func validateDirectFederation(g *GCP, path string, errs *findings) {
	if g.WorkloadIdentityProvider == "" && (g.WorkloadPool == "" || g.ProjectNumber == "") {
		errs.add(path, "set serviceAccount (impersonation), workloadPool and projectNumber (GKE direct federation) or "+
			"workloadIdentityProvider (direct federation outside GKE)")
	}
}

// validateGKEPool checks workloadPool and projectNumber. Flux never reads them (on GKE it takes the pool from the
// metadata server: fluxcd/pkg/auth gcp gkeMetadataLoader); they name the principal:// members trust render writes and
// trust check looks for, so they must agree with the rest of the entry.
func validateGKEPool(g *GCP, path string, errs *findings) {
	if g.WorkloadPool != "" {
		switch {
		case !gkeWorkloadPool.MatchString(g.WorkloadPool):
			errs.add(path+".workloadPool", "%q is not a GKE workload pool (PROJECT_ID.svc.id.goog)", g.WorkloadPool)
		case g.WorkloadIdentityProvider != "":
			errs.add(path+".workloadPool", "workloadPool is GKE's and workloadIdentityProvider is for clusters outside "+
				"GKE: set one of them")
		}
	}
	if g.ProjectNumber == "" {
		return
	}
	switch {
	case !gcpProjectNumber.MatchString(g.ProjectNumber):
		errs.add(path+".projectNumber", "%q is not a project number (digits, as a quoted string)", g.ProjectNumber)
	case g.WorkloadIdentityProvider != "":
		errs.add(path+".projectNumber", "the workload identity provider's path holds the project number: remove projectNumber")
	case g.WorkloadPool == "":
		errs.add(path+".projectNumber", "projectNumber names principals of workloadPool: set workloadPool too")
	}
}

// identityModels checks what depends on more than one entry: EKS Pod Identity serves Flux's controllers only, and an
// Azure identity holds a bounded number of federated credentials.
func identityModels(f *File, errs *findings) {
	for i := range f.Identities {
		id := &f.Identities[i]
		if id.AWS.PodIdentity() {
			podIdentityScope(id, fmt.Sprintf("identities[%d]", i), &f.Flux, errs)
		}
	}
	azureCredentialBound(f.Identities, errs)
}

// podIdentityScope refuses EKS Pod Identity for a ServiceAccount that Flux objects can name. Flux's object-level
// identity for AWS is IRSA only: fluxcd/pkg/auth v0.54.3 aws Provider.NewTokenForServiceAccount reads the
// ServiceAccount's eks.amazonaws.com/role-arn (getRoleARN fails without it) and calls sts:AssumeRoleWithWebIdentity
// with a token for sts.amazonaws.com; only NewControllerToken (config.LoadDefaultConfig, the controller's own
// credential chain) reaches the Pod Identity Agent. Flux objects name ServiceAccounts of their own namespace
// (spec.serviceAccountName, or the controllers' --default-service-account for every object that names none): the
// tenants' namespaces. Pod Identity is therefore accepted only in flux.namespaces, and never for the default
// ServiceAccount.
func podIdentityScope(id *Identity, path string, fx *Flux, errs *findings) {
	const why = "Flux's object-level identity is IRSA only (fluxcd/pkg/auth aws NewTokenForServiceAccount needs " +
		"eks.amazonaws.com/role-arn for sts:AssumeRoleWithWebIdentity)"
	for i, ns := range id.Namespaces {
		if !slices.Contains(fx.Namespaces, ns) {
			errs.add(fmt.Sprintf("%s.namespaces[%d]", path, i), "EKS Pod Identity serves Flux's controllers only, and "+
				"%q is not one of flux.namespaces (%s): ServiceAccounts Flux objects name need mechanism irsa: %s",
				ns, strings.Join(fx.Namespaces, ", "), why)
		}
	}
	if sa := fx.DefaultServiceAccount; sa != "" {
		for i, pattern := range id.ServiceAccounts {
			if globMatch(pattern, sa) {
				errs.add(fmt.Sprintf("%s.serviceAccounts[%d]", path, i), "%q matches flux.defaultServiceAccount %s, "+
					"which every Flux object without spec.serviceAccountName names: use mechanism irsa: %s", pattern, sa, why)
			}
		}
	}
}

// azureCredentialBound refuses an Azure identity (a client ID in one cloud) that the policy's exact names alone give
// more federated credentials than Azure accepts on one identity: one credential per namespace/ServiceAccount and
// cluster issuer. Globs cannot be counted here (trust render counts them once they are expanded).
func azureCredentialBound(ids []Identity, errs *findings) {
	type entryCount struct {
		index int
		name  string
		pairs int
	}
	type identity struct {
		clientID string
		entries  []entryCount
		total    int
	}
	var order []string
	byKey := map[string]*identity{}
	for i := range ids {
		a := ids[i].Azure
		if a == nil || !uuid.MatchString(a.ClientID) {
			continue
		}
		n := exactPairs(&ids[i])
		if n == 0 {
			continue
		}
		key := a.Cloud + "/" + strings.ToLower(a.ClientID)
		if byKey[key] == nil {
			byKey[key] = &identity{clientID: a.ClientID}
			order = append(order, key)
		}
		c := byKey[key]
		c.entries = append(c.entries, entryCount{index: i, name: ids[i].Name, pairs: n})
		c.total += n
	}
	for _, key := range order {
		c := byKey[key]
		if c.total <= keys.AzureMaxFederatedCredentials {
			continue
		}
		parts := make([]string, len(c.entries))
		for j, e := range c.entries {
			parts[j] = fmt.Sprintf("%s: %d", e.name, e.pairs)
		}
		errs.add(fmt.Sprintf("identities[%d].azure.clientID", c.entries[0].index), "client ID %s needs %d federated "+
			"credentials (%s), one per namespace/ServiceAccount, and Azure holds at most %d per identity: split the "+
			"entries across managed identities, e.g. one per namespace", c.clientID, c.total, strings.Join(parts, ", "),
			keys.AzureMaxFederatedCredentials)
	}
}

// exactPairs counts the distinct namespace/ServiceAccount pairs an entry names without globs.
func exactPairs(id *Identity) int {
	count := func(names []string) int {
		var exact []string
		for _, n := range names {
			if !IsGlob(n) && !slices.Contains(exact, n) {
				exact = append(exact, n)
			}
		}
		return len(exact)
	}
	return count(id.Namespaces) * count(id.ServiceAccounts)
}
