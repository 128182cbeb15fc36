// Package doctor checks a live cluster against the policy: mapped ServiceAccounts that are missing or differ from what
// the webhook writes, running pods of mapped ServiceAccounts without the identity their ServiceAccount now carries,
// Azure-mapped Deployments the Azure webhook cannot see, Flux's lockdown flags, and the Flux sources that violate a
// mandate (package audit). It reads the cluster the way admission does (the policy's matcher, the webhook's pod
// helpers) and a page at a time, keeping only what it found.
package doctor

import (
	"cmp"
	"context"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// The checks, in the order they print.
const (
	CheckFlux           = "flux"
	CheckServiceAccount = "serviceaccount"
	CheckPod            = "pod"
	CheckDeployment     = "deployment"
	CheckAudit          = "audit"
)

var checkOrder = map[string]int{CheckFlux: 0, CheckServiceAccount: 1, CheckPod: 2, CheckDeployment: 3, CheckAudit: 4}

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
	// stale are the running pods without their identity, until their owners are known.
	stale []stalePod
}

// Diagnose reads the cluster through l and checks it against p, auditing Flux sources as admission would at now.
// On an error (a deadline, a refused List) the report holds what was found before it, with Incomplete set, and the
// error is returned too.
func Diagnose(ctx context.Context, l *kubelist.Lister, p *policy.Policy, now time.Time) (Report, error) {
	d := &diagnosis{p: p, l: l, now: now, serviceAccounts: map[string]*time.Time{}}
	err := d.run(ctx)
	// Pods found so far are reported even when their owners could not all be read: a pod's own name is a fix too.
	d.findings = append(d.findings, d.podFindings()...)
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

func (d *diagnosis) run(ctx context.Context) error {
	if err := d.readNamespaces(ctx); err != nil {
		return err
	}
	if err := d.readServiceAccounts(ctx); err != nil {
		return err
	}
	d.findings = append(d.findings, missingServiceAccounts(d.p, d.mapped, d.serviceAccounts)...)
	if err := d.readPods(ctx); err != nil {
		return err
	}
	if err := d.resolveOwners(ctx); err != nil {
		return err
	}
	if err := d.readDeployments(ctx); err != nil {
		return err
	}
	if err := d.checkFlux(ctx); err != nil {
		return err
	}
	return d.audit(ctx)
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

// audit reports every Flux source violating a mandate in enforce or warn mode, as the audit command does.
func (d *diagnosis) audit(ctx context.Context) error {
	res, err := audit.Run(ctx, d.l, d.p, d.now)
	for _, k := range res.SkippedKinds {
		d.notes = append(d.notes, "the cluster does not serve "+k+": its sources were not audited")
	}
	for _, f := range res.Findings {
		for _, v := range f.Violations {
			// Mandates in mode off only log; audit does not count them either.
			if v.Mode == policy.ModeOff {
				continue
			}
			d.findings = append(d.findings, Finding{Check: CheckAudit, Namespace: f.Namespace, Name: f.Kind + "/" + f.Name,
				Problem: v.Field + " violates mandate " + v.Mandate + " (" + string(v.Mode) + ")", Fix: v.Message})
		}
	}
	return err
}
