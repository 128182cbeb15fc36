package doctor

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// Where Flux Operator runs Flux, a FluxInstance says how: Flux Operator v0.58.1 renders its spec.cluster fields into
// the controllers' flags and RBAC (internal/builder workload_identity.go ValidateAndApplyWorkloadIdentityConfig,
// profiles.go GetProfileObjectLevelWorkloadIdentity, GetProfileMultitenantWorkloadIdentity, GetProfileMultitenant;
// templates.go drops the serviceaccounts/token rule of ClusterRole crd-controller when objectLevelWorkloadIdentity is
// false), and reverts any edit of the Deployments it renders. So a flag that is wrong because of a FluxInstance field
// is reported on the FluxInstance, with a patch of the field. The rendering followed is that of Flux 2.7 and later
// (helm-controller's gate included).

// instance is a FluxInstance in one of Flux's namespaces: its operator renders the controllers there.
type instance struct {
	namespace, name string
	cluster         fluxcdv1.Cluster
	components      []string
}

// readFluxInstances lists the FluxInstances (one List; none where Flux Operator is not installed).
func (d *diagnosis) readFluxInstances(ctx context.Context) error {
	newList := func() *fluxcdv1.FluxInstanceList { return &fluxcdv1.FluxInstanceList{} }
	err := kubelist.Pages(ctx, d.l, "fluxinstances", newList, func(list *fluxcdv1.FluxInstanceList) error {
		for i := range list.Items {
			fi := &list.Items[i]
			if !d.p.FluxNamespace(fi.Namespace) || d.instances[fi.Namespace] != nil || fi.DeletionTimestamp != nil {
				continue
			}
			in := &instance{namespace: fi.Namespace, name: fi.Name, components: fi.GetComponents()}
			if fi.Spec.Cluster != nil {
				in.cluster = *fi.Spec.Cluster
			}
			d.instances[fi.Namespace] = in
		}
		return nil
	})
	switch {
	case apimeta.IsNoMatchError(err):
		return nil // Flux Operator is not installed
	case apierrors.IsForbidden(err):
		d.notes = append(d.notes, "no permission to list fluxinstances: a Flux Operator's FluxInstance was not compared "+
			"with the policy")
		return nil
	}
	return err
}

// instanceOf is the FluxInstance that renders r's Deployment, if any.
func (d *diagnosis) instanceOf(r *running) *instance {
	fi := d.instances[r.namespace]
	if fi == nil || !slices.Contains(fi.components, r.name) {
		return nil
	}
	return fi
}

// instanceField is the spec.cluster field of a FluxInstance that decides an aspect; "" when none does.
func instanceField(m mismatch) string {
	switch m.aspect {
	case aspectGate, aspectTokenRBAC:
		return "objectLevelWorkloadIdentity"
	case aspectLockdown:
		return "multitenantWorkloadIdentity"
	case aspectCrossNamespace:
		return "multitenant"
	}
	return ""
}

// renders says whether the FluxInstance, as Flux Operator renders it, gives the controller what the policy needs.
func (fi *instance) renders(m mismatch) bool {
	switch m.aspect {
	case aspectGate, aspectTokenRBAC:
		return fi.cluster.ObjectLevelWorkloadIdentity
	case aspectLockdown:
		return fi.lockdown(m.lockdown) == m.want
	case aspectCrossNamespace:
		return fi.cluster.Multitenant
	}
	return true
}

// lockdown is the value Flux Operator gives a lockdown flag: with multitenantWorkloadIdentity every one of them, the
// tenantDefault*ServiceAccount field or "default" (GetProfileMultitenantWorkloadIdentity); without it none.
func (fi *instance) lockdown(l fluxauth.Lockdown) string {
	if !fi.cluster.MultitenantWorkloadIdentity {
		return ""
	}
	v := fi.cluster.TenantDefaultServiceAccount
	switch l {
	case fluxauth.LockdownDecryption:
		v = fi.cluster.TenantDefaultDecryptionServiceAccount
	case fluxauth.LockdownKubeConfig:
		v = fi.cluster.TenantDefaultKubeConfigServiceAccount
	}
	if v == "" {
		return "default"
	}
	return v
}

// instanceFinding reports the mismatches one FluxInstance field causes, with the patch of the FluxInstance (and, where
// the operator cannot express the policy, the change of the policy) that ends them all.
func (d *diagnosis) instanceFinding(ms []mismatch) Finding {
	fi := d.instanceOf(ms[0].r)
	var names []string
	for _, m := range ms {
		if !slices.Contains(names, m.r.name) {
			names = append(names, m.r.name)
		}
	}
	f := Finding{Check: CheckFlux, Namespace: fi.namespace, Name: "fluxinstance/" + fi.name}
	cluster := map[string]any{}
	var advice []string
	switch ms[0].aspect {
	case aspectGate, aspectTokenRBAC:
		f.Problem = "spec.cluster.objectLevelWorkloadIdentity is false: Flux Operator turns the " +
			gateObjectLevelWorkloadIdentity + " gate off in " + strings.Join(names, ", ") + " and drops their " +
			"serviceaccounts/token permission, needed because " + ms[0].why
		cluster["objectLevelWorkloadIdentity"] = true
	case aspectCrossNamespace:
		f.Problem = "spec.cluster.multitenant is false: " + strings.Join(names, ", ") + " run without --" +
			flagNoCrossNamespaceRefs + "=true while mandates " + strings.Join(tenantMandates(d.p), ", ") +
			" cover tenants"
		cluster["multitenant"] = true
		advice = append(advice, "it also makes kustomize-controller and helm-controller impersonate each tenant's "+
			"default ServiceAccount (spec.cluster.tenantDefaultServiceAccount)")
	case aspectLockdown:
		var diffs []string
		for _, m := range ms {
			diffs = append(diffs, m.r.name+" gets "+quoteOrNone(fi.lockdown(m.lockdown))+" as "+string(m.lockdown)+
				", the policy's flux."+policyField(m.lockdown)+" is "+quoteOrNone(m.want))
		}
		f.Problem = "spec.cluster.multitenantWorkloadIdentity is " + strconv.FormatBool(
			fi.cluster.MultitenantWorkloadIdentity) + ": " + strings.Join(diffs, "; ")
		cluster, advice = lockdownPatch(d, fi)
	}
	fix := d.instancePatchCommand(fi, cluster)
	if len(advice) > 0 {
		fix += "; " + strings.Join(advice, "; ")
	}
	f.Fix = fix
	return f
}

// lockdownPatch is the spec.cluster patch that makes Flux Operator render the policy's lockdown flags: all three
// defaults with multitenantWorkloadIdentity (those the policy leaves out become "default", which the policy must then
// say too), or none without it.
func lockdownPatch(d *diagnosis, fi *instance) (map[string]any, []string) {
	fields := map[fluxauth.Lockdown]string{
		fluxauth.LockdownServiceAccount: "tenantDefaultServiceAccount",
		fluxauth.LockdownDecryption:     "tenantDefaultDecryptionServiceAccount",
		fluxauth.LockdownKubeConfig:     "tenantDefaultKubeConfigServiceAccount",
	}
	order := []fluxauth.Lockdown{fluxauth.LockdownServiceAccount, fluxauth.LockdownDecryption, fluxauth.LockdownKubeConfig}
	declared := false
	for _, l := range order {
		declared = declared || fluxobjects.LockdownAccount(d.p, l) != ""
	}
	if !declared {
		return map[string]any{"multitenantWorkloadIdentity": false}, nil
	}
	cluster := map[string]any{}
	var advice []string
	if !fi.cluster.MultitenantWorkloadIdentity || !fi.cluster.ObjectLevelWorkloadIdentity {
		cluster["objectLevelWorkloadIdentity"] = true
		cluster["multitenantWorkloadIdentity"] = true
	}
	for _, l := range order {
		want := fluxobjects.LockdownAccount(d.p, l)
		switch {
		case want == "":
			advice = append(advice, "set flux."+policyField(l)+": default in the policy (with "+
				"multitenantWorkloadIdentity Flux Operator gives every controller a default ServiceAccount)")
		case fi.lockdown(l) != want || !fi.cluster.MultitenantWorkloadIdentity:
			cluster[fields[l]] = want
		}
	}
	return cluster, advice
}

// instancePatchCommand patches spec.cluster of a FluxInstance; nothing when there is nothing to patch.
func (d *diagnosis) instancePatchCommand(fi *instance, cluster map[string]any) string {
	if len(cluster) == 0 {
		return "the FluxInstance is right once the policy is"
	}
	raw, err := json.Marshal(map[string]any{"spec": map[string]any{"cluster": cluster}})
	if err != nil {
		panic(err) // booleans and strings always marshal
	}
	return "kubectl -n " + fi.namespace + " patch fluxinstance " + fi.name + " --type merge -p " +
		trust.ShellQuote(string(raw)) + " (in Git: the FluxInstance's manifest)"
}

// reconcileCommand asks Flux Operator to reconcile a FluxInstance now: its controller watches annotation changes
// (fluxinstance_manager.go: predicate.AnnotationChangedPredicate) and reconcile.fluxcd.io/requestedAt is Flux's
// request annotation (meta.ReconcileRequestAnnotation).
func reconcileCommand(fi *instance) string {
	return "kubectl -n " + fi.namespace + " annotate fluxinstance " + fi.name + " --overwrite " +
		meta.ReconcileRequestAnnotation + `="$(date +%s)"`
}
