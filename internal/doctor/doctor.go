// Package doctor checks a live cluster against the policy: the posture of Flux's workload identity (each controller's
// ObjectLevelWorkloadIdentity gate, lockdown flags, serviceaccounts/token permission and long-lived credentials, and
// the FluxInstance Flux Operator renders them from), the Flux objects whose status says authentication failed with
// the likely cause, mapped ServiceAccounts that are missing or differ from what the webhook writes, running pods of
// mapped ServiceAccounts without the identity their ServiceAccount now carries, Azure-mapped Deployments the Azure
// webhook cannot see, and the Flux objects that violate a mandate (package audit). It reads the cluster the way
// admission does (the policy's matcher, the webhook's pod helpers, the credential model) and a page at a time,
// keeping only what it found.
package doctor

import (
	"cmp"
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The checks, in the order they print.
const (
	CheckFlux           = "flux"
	CheckStatus         = "status"
	CheckServiceAccount = "serviceaccount"
	CheckPod            = "pod"
	CheckDeployment     = "deployment"
	CheckAudit          = "audit"
)

var checkOrder = map[string]int{CheckFlux: 0, CheckStatus: 1, CheckServiceAccount: 2, CheckPod: 3, CheckDeployment: 4,
	CheckAudit: 5}

// Finding is one problem in the cluster and the command that fixes it.
type Finding struct {
	Check     string `json:"check"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Identity  string `json:"identity,omitempty"`
	Problem   string `json:"problem"`
	Fix       string `json:"fix"`
}

// Report is everything Diagnose found.
type Report struct {
	Findings []Finding `json:"findings"`
	Problems int       `json:"problems"`
	// Notes say what could not be checked (a Flux kind the cluster does not serve) or how it was read.
	Notes []string `json:"notes,omitempty"`
	// Incomplete says why the diagnosis stopped before the end, when it did; Findings then hold what was found until
	// then.
	Incomplete string `json:"incomplete,omitempty"`
}

// diagnosis is the state of one run: what was found, and the little it must remember between steps.
type diagnosis struct {
	p   *policy.Policy
	l   *kubelist.Lister
	now time.Time

	findings []Finding
	notes    []string
	// namespaces counts the cluster's namespaces; mapped lists those some identity entry can match, in order.
	namespaces int
	mapped     []string
	// serviceAccounts are the mapped ServiceAccounts that exist (NS/SA), with the last write of their identity
	// annotation when the API server recorded one.
	serviceAccounts map[string]*time.Time
	// stale are the running pods without their identity, until their owners are known; staleWorkloads then names
	// their workloads ("NS deployment/NAME").
	stale          []stalePod
	staleWorkloads map[string]bool

	// controllers are Flux's controller Deployments found in Flux's namespaces, operator Flux Operator's; instances
	// the FluxInstances rendering them, by namespace.
	controllers []*running
	operator    []*running
	instances   map[string]*instance
	// credentialed are the controllers (NS/NAME) whose pods carry long-lived cloud credentials.
	credentialed map[string]bool
	// namers counts, per controller, the objects that name a ServiceAccount for their identity.
	namers map[string]namer
	// rbac holds what ClusterRoleBindings grant the controllers' ServiceAccounts (NS/SA), once rbacRead.
	rbac     map[string]grants
	rbacRead bool
	// failures are the Flux objects whose status says authentication failed; wanted the ServiceAccounts (NS/SA) their
	// identities come from, with what doctor read of each that exists (nil: absent), once saRead.
	failures []*authFailure
	wanted   map[string]*saFacts
	saRead   bool
}

// Diagnose reads the cluster through l and checks it against p, auditing Flux sources as admission would at now.
// On an error (a deadline, a refused List) the report holds what was found before it, with Incomplete set, and the
// error is returned too.
func Diagnose(ctx context.Context, l *kubelist.Lister, p *policy.Policy, now time.Time) (Report, error) {
	d := &diagnosis{p: p, l: l, now: now, serviceAccounts: map[string]*time.Time{}, staleWorkloads: map[string]bool{},
		instances: map[string]*instance{}, namers: map[string]namer{}, rbac: map[string]grants{},
		credentialed: map[string]bool{},
		wanted:       map[string]*saFacts{}}
	err := d.run(ctx)
	// Pods found so far are reported even when their owners could not all be read: a pod's own name is a fix too.
	d.findings = append(d.findings, d.podFindings()...)
	if err != nil {
		// What the posture and the failing objects need may not all have been read: report what can be told.
		d.postureFindings()
		d.statusFindings()
	}
	slices.SortStableFunc(d.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(checkOrder[a.Check], checkOrder[b.Check]), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Name, b.Name))
	})
	r := Report{Findings: d.findings, Problems: len(d.findings), Notes: d.notes}
	if err != nil {
		r.Incomplete = err.Error()
	}
	return r, err
}

// run reads the cluster in an order that lets each step use what the earlier ones found: the controllers and the Flux
// objects first (what they name decides which ServiceAccounts and permissions matter), then the ServiceAccounts, pods
// and Deployments, then the findings that need all of it.
func (d *diagnosis) run(ctx context.Context) error {
	for _, step := range []func(context.Context) error{d.readNamespaces, d.readControllers, d.readFluxInstances,
		d.readFluxObjects, d.resolveFailures, d.readRBACIfNeeded, d.readServiceAccounts} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	d.findings = append(d.findings, missingServiceAccounts(d.p, d.mapped, d.serviceAccounts)...)
	if err := d.readPods(ctx); err != nil {
		return err
	}
	if err := d.resolveOwners(ctx); err != nil {
		return err
	}
	d.findings = append(d.findings, d.podFindings()...)
	if err := d.readDeployments(ctx); err != nil {
		return err
	}
	d.postureFindings()
	d.statusFindings()
	return nil
}

// readRBACIfNeeded reads the cluster's RBAC when some running controller needs object-level identity.
func (d *diagnosis) readRBACIfNeeded(ctx context.Context) error {
	for _, r := range d.controllers {
		if len(d.gateReasons(r)) > 0 {
			return d.readRBAC(ctx)
		}
	}
	return nil
}

// readNamespaces finds the namespaces the policy maps identities in.
func (d *diagnosis) readNamespaces(ctx context.Context) error {
	return kubelist.Pages(ctx, d.l, "namespaces", func() *corev1.NamespaceList { return &corev1.NamespaceList{} },
		func(list *corev1.NamespaceList) error {
			d.namespaces += len(list.Items)
			for _, ns := range list.Items {
				if d.p.MapsNamespace(ns.Name) {
					d.mapped = append(d.mapped, ns.Name)
				}
			}
			return nil
		})
}
