package doctor

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// The posture of Flux's workload identity: what each running controller must run with for the policy to hold, from
// the policy's flux section, its mandates and the Flux objects in the cluster, compared with the flags of its
// Deployment, the permissions bound to its ServiceAccount and, where Flux Operator renders the controllers, with the
// FluxInstance it renders them from. One root cause is one finding: a FluxInstance field that turns a flag off for
// four controllers is reported once, on the FluxInstance.

// aspect is one part of a controller's posture.
type aspect int

const (
	aspectGate aspect = iota
	aspectLockdown
	aspectCrossNamespace
	aspectSOPSAge
	aspectTokenRBAC
)

// mismatch is one aspect of a running controller that differs from what the policy needs.
type mismatch struct {
	r      *running
	aspect aspect
	// lockdown and want (aspectLockdown): the flag and the policy's value for it.
	lockdown fluxauth.Lockdown
	want     string
	// have is the controller's value, for messages.
	have string
	// why says why the controller needs object-level identity (aspectGate, aspectTokenRBAC).
	why     string
	problem string
	// fix repairs the Deployment (or the cluster's RBAC) directly, for controllers no FluxInstance renders.
	fix string
}

// postureFindings compares every running controller with what the policy needs and reports the differences.
func (d *diagnosis) postureFindings() {
	var all []mismatch
	for _, r := range d.controllers {
		all = append(all, d.controllerMismatches(r)...)
	}
	groups := map[string][]mismatch{} // FluxInstance namespace/name + field -> its mismatches
	var order []string
	for _, m := range all {
		fi := d.instanceOf(m.r)
		if fi == nil {
			d.findings = append(d.findings, Finding{Check: CheckFlux, Namespace: m.r.namespace,
				Name: "deployment/" + m.r.name, Problem: m.problem, Fix: m.fix})
			continue
		}
		field := instanceField(m)
		if field != "" && !fi.renders(m) {
			key := fi.namespace + "/" + fi.name + " " + field
			if _, ok := groups[key]; !ok {
				order = append(order, key)
			}
			groups[key] = append(groups[key], m)
			continue
		}
		// The FluxInstance asks for the right thing, yet the Deployment runs otherwise.
		fix := "FluxInstance " + fi.namespace + "/" + fi.name + " asks for it: a spec.kustomize.patches entry " +
			"overrides it, or the operator has not applied it yet: " + reconcileCommand(fi)
		if field == "" {
			fix = "remove the spec.kustomize.patches entry of FluxInstance " + fi.namespace + "/" + fi.name +
				" that adds it (Flux Operator has no field for it)"
		}
		d.findings = append(d.findings, Finding{Check: CheckFlux, Namespace: m.r.namespace,
			Name: "deployment/" + m.r.name, Problem: m.problem, Fix: fix})
	}
	for _, key := range order {
		d.findings = append(d.findings, d.instanceFinding(groups[key]))
	}
	for _, r := range append(slices.Clone(d.controllers), d.operator...) {
		if f, bad := d.credentialFinding(r); bad {
			d.findings = append(d.findings, f)
			d.credentialed[r.namespace+"/"+r.name] = true
		}
	}
}

// controllerMismatches lists the aspects of r that differ from what the policy needs, and notes what is worth knowing.
func (d *diagnosis) controllerMismatches(r *running) []mismatch {
	var out []mismatch
	reasons := d.gateReasons(r)
	if len(reasons) > 0 && !r.gate() {
		out = append(out, mismatch{r: r, aspect: aspectGate, have: "off", why: strings.Join(reasons, "; "),
			problem: "runs without the " + gateObjectLevelWorkloadIdentity + " feature gate, needed because " +
				strings.Join(reasons, "; ") + ": Flux refuses ServiceAccounts there (FeatureGateDisabled)",
			fix: addArgCommand(r, "--"+flagFeatureGates+"="+gateObjectLevelWorkloadIdentity+"=true")})
	}
	for _, l := range r.lockdowns {
		if m, bad := d.lockdownMismatch(r, l); bad {
			out = append(out, m)
		}
	}
	if r.crossNamespaceRefs {
		if tenants := tenantMandates(d.p); len(tenants) > 0 && !flagOn(r.args, flagNoCrossNamespaceRefs) {
			out = append(out, mismatch{r: r, aspect: aspectCrossNamespace, have: "off",
				problem: "runs without --" + flagNoCrossNamespaceRefs + "=true while mandates " +
					strings.Join(tenants, ", ") + " cover tenants: a tenant's objects may use other namespaces' " +
					"objects and the credentials those hold, flux-system's included",
				fix: addArgCommand(r, "--"+flagNoCrossNamespaceRefs+"=true")})
		}
	}
	if r.sopsAgeSecret {
		if secret, set := flagValue(r.args, flagSOPSAgeSecret, false); set && secret != "" {
			if m := sopsKeyMandate(d.p); m != "" {
				out = append(out, mismatch{r: r, aspect: aspectSOPSAge, have: secret,
					problem: "runs with --" + flagSOPSAgeSecret + "=" + secret + ": every Kustomization without " +
						"spec.decryption.secretRef decrypts with that age key of " + r.namespace + ", where mandate " + m +
						" refuses SOPS private keys",
					fix: removeArgCommand(r, flagSOPSAgeSecret) + " (tenants decrypt with KMS through " +
						"spec.decryption.serviceAccountName)"})
			} else if len(tenantMandates(d.p)) > 0 {
				d.notes = append(d.notes, fmt.Sprintf("%s/%s runs with --%s: tenant Kustomizations without "+
					"spec.decryption.secretRef decrypt with the age key of Secret %s/%s", r.namespace, r.name,
					flagSOPSAgeSecret, r.namespace, secret))
			}
		}
	}
	if len(reasons) > 0 && d.rbacRead {
		if missing := d.tokenPermissions(r.namespace, r.name).missing(); missing != "" {
			out = append(out, mismatch{r: r, aspect: aspectTokenRBAC, have: "off", why: strings.Join(reasons, "; "),
				problem: "ServiceAccount " + r.namespace + "/" + r.name + " may not " + missing + " in every " +
					"namespace (no ClusterRoleBinding grants it): Flux cannot get tokens of tenants' ServiceAccounts, " +
					"needed because " + strings.Join(reasons, "; "),
				fix: tokenRBACCommand(r)})
		}
	}
	return out
}

// lockdownMismatch compares a lockdown flag with the policy's flux section: a value the policy does not declare, or
// declares differently, is a problem (the webhook would judge tenants' objects by the wrong ServiceAccount).
func (d *diagnosis) lockdownMismatch(r *running, l fluxauth.Lockdown) (mismatch, bool) {
	flag, field := flagOf(l), policyField(l)
	running, set := flagValue(r.args, flag, false)
	want := fluxobjects.LockdownAccount(d.p, l)
	m := mismatch{r: r, aspect: aspectLockdown, lockdown: l, want: want, have: running}
	switch {
	case set && running != want:
		m.problem = "runs with --" + flag + "=" + running + " but the policy's flux." + field + " is " +
			quoteOrNone(want) + ": tenants' objects are judged by the wrong ServiceAccount"
		m.fix = "set flux." + field + ": " + running + " in the policy"
		if want != "" {
			m.fix = "run " + r.name + " with --" + flag + "=" + want + " (" + addArgCommand(r, "--"+flag+"="+want) +
				"), or " + m.fix
		}
		return m, true
	case !set && want != "":
		m.problem = "runs without --" + flag + " but the policy's flux." + field + " is " + want + ": " +
			lockdowns[l].without
		m.fix = addArgCommand(r, "--"+flag+"="+want)
		return m, true
	case set:
		d.notes = append(d.notes, fmt.Sprintf("%s/%s runs with --%s=%s: %s use that ServiceAccount of their own "+
			"namespace", r.namespace, r.name, flag, running, lockdowns[l].subjects))
	case l == fluxauth.LockdownServiceAccount && len(tenantMandates(d.p)) > 0:
		d.notes = append(d.notes, fmt.Sprintf("%s/%s runs without --%s: only the webhook keeps tenants' objects "+
			"(mandates %s) off its identity", r.namespace, r.name, flag, strings.Join(tenantMandates(d.p), ", ")))
	}
	return mismatch{}, false
}

// lockdowns says, per lockdown flag, the field of the policy's flux section that declares it, whose identity it
// decides, and what happens without it.
var lockdowns = map[fluxauth.Lockdown]struct{ field, subjects, without string }{
	fluxauth.LockdownServiceAccount: {"defaultServiceAccount", "objects without spec.serviceAccountName",
		"an object without spec.serviceAccountName gets the controller's own identity"},
	fluxauth.LockdownDecryption: {"defaultDecryptionServiceAccount", "decryptions without serviceAccountName",
		"a Kustomization's decryption without serviceAccountName gets kustomize-controller's own identity"},
	fluxauth.LockdownKubeConfig: {"defaultKubeConfigServiceAccount", "kubeconfig ConfigMaps without serviceAccountName",
		"a kubeconfig ConfigMap without serviceAccountName gets the controller's own identity"},
}

func policyField(l fluxauth.Lockdown) string { return lockdowns[l].field }

// gateReasons says why a controller needs the ObjectLevelWorkloadIdentity gate, if it does: a lockdown flag it runs
// with or the policy declares (a default ServiceAccount is an object-level identity); a mandate that makes tenants
// name a ServiceAccount for a kind the controller authenticates; objects in the cluster that name one.
func (d *diagnosis) gateReasons(r *running) []string {
	var why []string
	for _, l := range r.lockdowns {
		if v := r.lockdown(l); v != "" {
			why = append(why, "it runs with "+string(l)+"="+v+" (and refuses to start without the gate)")
		} else if want := fluxobjects.LockdownAccount(d.p, l); want != "" {
			why = append(why, "the policy's flux."+policyField(l)+" is "+want)
		}
	}
	for _, kind := range identityKinds(r.name) {
		if m := identityMandate(d.p, kind); m != "" {
			why = append(why, "mandate "+m+" makes tenants' "+kind+" objects name a ServiceAccount")
			break
		}
	}
	if n := d.namers[r.name]; n.count > 0 {
		why = append(why, fmt.Sprintf("%d objects name a ServiceAccount for their identity (%s among them)", n.count,
			n.first))
	}
	return why
}

// identityMandate names a mandate that covers kind outside Flux's namespaces without allowing the controller's
// identity, where the kind has an object-level identity (a ServiceAccount, a decryption ServiceAccount, a kubeconfig
// ConfigMap's): there tenants must name a ServiceAccount, which the controller resolves only with the gate on.
func identityMandate(p *policy.Policy, kind string) string {
	if !hasObjectIdentity(kind) {
		return ""
	}
	for i := range p.Spec.Mandates {
		m := &p.Spec.Mandates[i]
		if m.Mode == policy.ModeOff || m.AllowControllerIdentity || !slices.Contains(m.Kinds, kind) {
			continue
		}
		if coversTenants(p, m) {
			return m.Name
		}
	}
	return ""
}

func hasObjectIdentity(kind string) bool {
	for i := range fluxauth.Model {
		r := &fluxauth.Model[i]
		if r.Kind == kind && (r.Class == fluxauth.ObjectIdentity || r.Class == fluxauth.KMSIdentity ||
			r.Class == fluxauth.ConfigMapIdentity) {
			return true
		}
	}
	return false
}

// tenantMandates names the mandates that cover a namespace other than Flux's own (a glob always might).
func tenantMandates(p *policy.Policy) []string {
	var out []string
	for i := range p.Spec.Mandates {
		if coversTenants(p, &p.Spec.Mandates[i]) {
			out = append(out, p.Spec.Mandates[i].Name)
		}
	}
	return out
}

func coversTenants(p *policy.Policy, m *policy.Mandate) bool {
	for _, ns := range m.Namespaces {
		if policy.IsGlob(ns) || !p.FluxNamespace(ns) {
			return true
		}
	}
	return false
}

// sopsKeyMandate names a tenant mandate that refuses SOPS private keys on Kustomizations (cover sopsPrivateKeys).
func sopsKeyMandate(p *policy.Policy) string {
	for i := range p.Spec.Mandates {
		m := &p.Spec.Mandates[i]
		if m.Mode != policy.ModeOff && m.Covers(policy.CoverSOPSPrivateKeys) &&
			slices.Contains(m.Kinds, "Kustomization") && coversTenants(p, m) {
			return m.Name
		}
	}
	return ""
}

// addArgCommand appends an argument to the manager container of r's Deployment. A flag given twice takes its last
// value (pflag), and --feature-gates pairs add up, so appending overrides what the arguments said before.
func addArgCommand(r *running, arg string) string {
	c := r.dep.Spec.Template.Spec.Containers
	path := fmt.Sprintf("/spec/template/spec/containers/%d/args", r.container)
	var op map[string]any
	if len(c) > r.container && len(c[r.container].Args) > 0 {
		op = map[string]any{"op": "add", "path": path + "/-", "value": arg}
	} else {
		op = map[string]any{"op": "add", "path": path, "value": []string{arg}}
	}
	return patchCommand(r, []map[string]any{op})
}

// removeArgCommand removes every occurrence of a flag (and the value of a "--flag value" pair) from the manager
// container's arguments. The values are tested first, on the list as doctor read it, so that a Deployment changed
// since is left alone; the removals then go from the last index to the first, so that none shifts another.
func removeArgCommand(r *running, flag string) string {
	c := r.dep.Spec.Template.Spec.Containers
	var remove []int
	if len(c) > r.container {
		args := c[r.container].Args
		for i, a := range args {
			a = strings.TrimLeft(a, "-")
			if a == flag || strings.HasPrefix(a, flag+"=") {
				remove = append(remove, i)
				if a == flag && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
					remove = append(remove, i+1)
				}
			}
		}
		slices.Sort(remove)
		remove = slices.Compact(remove)
		var tests, removes []map[string]any
		for j := len(remove) - 1; j >= 0; j-- {
			path := fmt.Sprintf("/spec/template/spec/containers/%d/args/%d", r.container, remove[j])
			tests = append(tests, map[string]any{"op": "test", "path": path, "value": args[remove[j]]})
			removes = append(removes, map[string]any{"op": "remove", "path": path})
		}
		if len(removes) > 0 {
			return patchCommand(r, append(tests, removes...))
		}
	}
	return "remove --" + flag + " from the command of " + r.namespace + "/" + r.name + "'s manager container"
}

func patchCommand(r *running, ops []map[string]any) string {
	raw, err := json.Marshal(ops)
	if err != nil {
		panic(err) // strings and numbers always marshal
	}
	return "kubectl -n " + r.namespace + " patch deployment " + r.name + " --type json -p " +
		trust.ShellQuote(string(raw)) + " (in Git: a kustomize patch, as Flux's multi-tenancy guide shows)"
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
