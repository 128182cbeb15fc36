package doctor

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

// Flux's controllers as doctor checks them, and the flags it reads from their Deployments. Flux publishes the flag
// names only in modules this one does not import, so they are spelled here once and test/fluxcompat holds them to
// Flux's own: pkg/runtime features (flagFeatureGates), pkg/auth (FeatureGateObjectLevelWorkloadIdentity and the
// ControllerFlagDefault*ServiceAccount names, which fluxauth's Lockdown constants carry), pkg/runtime acl
// (flagNoCrossNamespaceRefs) and kustomize-controller's main.go (--sops-age-secret).
const (
	flagFeatureGates                = "feature-gates"
	gateObjectLevelWorkloadIdentity = "ObjectLevelWorkloadIdentity"
	flagNoCrossNamespaceRefs        = "no-cross-namespace-refs"
	flagSOPSAgeSecret               = "sops-age-secret"
	// fluxOperator is Flux Operator's Deployment and ServiceAccount: it authenticates ResourceSetInputProviders
	// itself, with object-level identity always on (cmd/operator/main.go calls auth.EnableObjectLevelWorkloadIdentity).
	fluxOperator = "flux-operator"
)

// flagOf is the flag name of a lockdown ("--default-service-account" → "default-service-account").
func flagOf(l fluxauth.Lockdown) string { return strings.TrimPrefix(string(l), "--") }

// controller is one of Flux's six controllers.
type controller struct {
	name string
	// lockdowns are the --default-*-service-account flags the controller hands pkg/auth: each makes an object without
	// a ServiceAccount of its own use that ServiceAccount of its namespace instead of the controller's identity.
	// kustomize-controller and helm-controller take a --default-service-account too, but only for impersonation
	// (their main.go: "defaultServiceAccount is used for regular impersonation, not workload identity lockdown").
	lockdowns []fluxauth.Lockdown
	// crossNamespaceRefs: the controller takes --no-cross-namespace-refs (pkg/runtime acl.Options.BindFlags); every
	// controller but source-controller does.
	crossNamespaceRefs bool
	// sopsAgeSecret: kustomize-controller's --sops-age-secret, a fallback age key in its own namespace for every
	// Kustomization whose decryption names no Secret (decryptor.go ImportKeys).
	sopsAgeSecret bool
}

// controllers are Flux's controllers, in the order Flux lists them. Each registers the ObjectLevelWorkloadIdentity
// gate (auth.SetFeatureGates in its internal/features) and refuses to start with a lockdown flag but the gate off
// (auth.InconsistentObjectLevelConfiguration).
var controllers = []controller{
	{name: "source-controller", lockdowns: []fluxauth.Lockdown{fluxauth.LockdownServiceAccount}},
	{name: "kustomize-controller", crossNamespaceRefs: true, sopsAgeSecret: true,
		lockdowns: []fluxauth.Lockdown{fluxauth.LockdownDecryption, fluxauth.LockdownKubeConfig}},
	{name: "helm-controller", lockdowns: []fluxauth.Lockdown{fluxauth.LockdownKubeConfig}, crossNamespaceRefs: true},
	{name: "notification-controller", lockdowns: []fluxauth.Lockdown{fluxauth.LockdownServiceAccount},
		crossNamespaceRefs: true},
	{name: "image-reflector-controller", lockdowns: []fluxauth.Lockdown{fluxauth.LockdownServiceAccount},
		crossNamespaceRefs: true},
	{name: "image-automation-controller", lockdowns: []fluxauth.Lockdown{fluxauth.LockdownServiceAccount},
		crossNamespaceRefs: true},
}

// identityKinds are the kinds whose object-level identity a controller resolves: those fluxauth names it the
// controller of, and for image-automation-controller the GitRepository it pushes with (image-automation-controller
// internal/source/git.go getAuthOpts resolves the GitRepository's serviceAccountName itself, behind its own gate).
func identityKinds(name string) []string {
	var kinds []string
	for _, a := range fluxauth.APIs {
		if a.Controller == name {
			kinds = append(kinds, a.Kind)
		}
	}
	if name == "image-automation-controller" {
		kinds = append(kinds, "GitRepository")
	}
	return kinds
}

// running is a controller Deployment doctor found in one of Flux's namespaces.
type running struct {
	controller
	namespace string
	dep       *appsv1.Deployment
	// container is the index of the manager container in the pod template; args its command and arguments.
	container int
	args      []string
}

// gate is the value the controller gives the ObjectLevelWorkloadIdentity feature gate.
func (r *running) gate() bool { return featureGate(r.args, gateObjectLevelWorkloadIdentity) }

// lockdown is the value of a lockdown flag, "" when unset.
func (r *running) lockdown(l fluxauth.Lockdown) string {
	v, _ := flagValue(r.args, flagOf(l), false)
	return v
}

// takes says whether the controller hands pkg/auth the lockdown.
func (c controller) takes(l fluxauth.Lockdown) bool { return slices.Contains(c.lockdowns, l) }

// readControllers reads Flux's controller Deployments, and Flux Operator's, in the policy's Flux namespaces: a GET
// each, as they are a handful whatever the cluster's size.
func (d *diagnosis) readControllers(ctx context.Context) error {
	for _, ns := range d.p.Spec.Flux.Namespaces {
		for _, c := range append(slices.Clone(controllers), controller{name: fluxOperator}) {
			var dep appsv1.Deployment
			err := d.l.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: c.name}, &dep)
			switch {
			case apierrors.IsNotFound(err):
				continue
			case apierrors.IsForbidden(err):
				d.notes = append(d.notes, fmt.Sprintf("no permission to get deployment %s/%s: its flags, "+
					"credentials and permissions were not checked", ns, c.name))
				continue
			case err != nil:
				return fmt.Errorf("read deployment %s/%s: %w", ns, c.name, err)
			}
			r := &running{controller: c, namespace: ns, dep: &dep}
			r.container, r.args = managerArgs(&dep)
			if c.name == fluxOperator {
				d.operator = append(d.operator, r)
			} else {
				d.controllers = append(d.controllers, r)
			}
		}
	}
	return nil
}

// controllerNamed is the running controller of that name, the first of Flux's namespaces that runs one.
func (d *diagnosis) controllerNamed(name string) *running {
	for _, r := range append(slices.Clone(d.controllers), d.operator...) {
		if r.name == name {
			return r
		}
	}
	return nil
}

// managerArgs returns the index of a Flux Deployment's manager container (the first when none is called manager) and
// its command and arguments.
func managerArgs(dep *appsv1.Deployment) (int, []string) {
	containers := dep.Spec.Template.Spec.Containers
	i := slices.IndexFunc(containers, func(c corev1.Container) bool { return c.Name == "manager" })
	if i < 0 {
		i = 0
	}
	if len(containers) == 0 {
		return 0, nil
	}
	return i, append(slices.Clone(containers[i].Command), containers[i].Args...)
}

// flagValue finds --name=value or --name value in args; the last one wins, as with pflag (spf13/pflag
// FlagSet.parseLongArg). A boolean flag never takes the next argument: a bare --name is "true".
func flagValue(args []string, name string, boolean bool) (string, bool) {
	values := flagValues(args, name, boolean)
	if len(values) == 0 {
		return "", false
	}
	return values[len(values)-1], true
}

// flagValues lists every value args give the flag, in order.
func flagValues(args []string, name string, boolean bool) []string {
	var out []string
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case strings.HasPrefix(a, name+"="):
			out = append(out, strings.TrimPrefix(a, name+"="))
		case a == name:
			v := "true"
			if !boolean && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				v = args[i+1]
			}
			out = append(out, v)
		}
	}
	return out
}

// flagOn reads a boolean flag as pflag does (strconv.ParseBool: 1, t, T, TRUE, true, True are on).
func flagOn(args []string, name string) bool {
	v, set := flagValue(args, name, true)
	on, err := strconv.ParseBool(v)
	return set && err == nil && on
}

// featureGate is the value args give a feature gate. Every --feature-gates flag adds its comma-separated key=value
// pairs to one map and a later pair wins (component-base cli/flag MapStringBool.Set, which pkg/runtime features
// FeatureGates.BindFlags binds); a gate never named keeps its default, off for ObjectLevelWorkloadIdentity (pkg/auth
// feature_gates.go: opt-in since Flux v2.6). A malformed value makes the controller fail to start, so it counts as off.
func featureGate(args []string, gate string) bool {
	on := false
	for _, v := range flagValues(args, flagFeatureGates, false) {
		for _, pair := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(k) != gate {
				continue
			}
			b, err := strconv.ParseBool(strings.TrimSpace(val))
			on = err == nil && b
		}
	}
	return on
}
