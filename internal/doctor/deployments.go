package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook/pods"
)

// readDeployments reports the Deployments of Azure-mapped ServiceAccounts (annotate mode) whose pod template lacks
// the label the Azure webhook selects pods by.
func (d *diagnosis) readDeployments(ctx context.Context) error {
	newList := func() *appsv1.DeploymentList { return &appsv1.DeploymentList{} }
	return listIn(ctx, d, scopeFor(d.mapped, d.namespaces), "deployments", newList,
		func(list *appsv1.DeploymentList) error {
			for i := range list.Items {
				if f, bad := checkDeployment(d.p, &list.Items[i]); bad {
					d.findings = append(d.findings, f)
				}
			}
			return nil
		})
}

// checkDeployment compares a Deployment's pod template with the labels the Deployment webhook would put on it (the
// Azure use label, for an Azure identity the Azure webhook injects).
func checkDeployment(p *policy.Policy, dep *appsv1.Deployment) (Finding, bool) {
	m, ok := p.IdentityFor(dep.Namespace, pods.PodServiceAccount(&dep.Spec.Template.Spec))
	if !ok {
		return Finding{}, false
	}
	want := pods.PodTemplateLabels(m)
	var lacks []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if dep.Spec.Template.Labels[k] == want[k] {
			delete(want, k)
			continue
		}
		lacks = append(lacks, fmt.Sprintf("label %s: %q", k, want[k]))
	}
	if len(lacks) == 0 {
		return Finding{}, false
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{
		"metadata": map[string]any{"labels": want}}}})
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return Finding{Check: CheckDeployment, Namespace: dep.Namespace, Name: dep.Name, Identity: m.Identity.Name,
		Problem: "pod template lacks " + strings.Join(lacks, ", ") + "; the Azure webhook never sees its pods",
		Fix: "kubectl -n " + dep.Namespace + " patch deployment " + dep.Name + " --type merge -p " +
			trust.ShellQuote(string(patch)) +
			" (in Git: a kustomize patch on the Deployment, as Flux's bootstrap repository would carry it)"}, true
}
