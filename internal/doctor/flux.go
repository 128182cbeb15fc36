package doctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

// Flux's lockdown flags and the controllers that take them. Flux publishes the names only in modules this one does
// not import (github.com/fluxcd/pkg/auth ControllerFlagDefaultServiceAccount; pkg/runtime/acl
// flagNoCrossNamespaceRefs), so they are spelled here once.
const (
	flagDefaultServiceAccount = "default-service-account"
	flagNoCrossNamespaceRefs  = "no-cross-namespace-refs"
)

// identityControllers read sources with cloud identities: --default-service-account decides whose identity a source
// without spec.serviceAccountName gets. consumerControllers apply sources: --no-cross-namespace-refs keeps a
// tenant's Kustomization or HelmRelease off another namespace's sources.
var (
	identityControllers = []string{"source-controller", "image-reflector-controller"}
	consumerControllers = []string{"kustomize-controller", "helm-controller"}
)

// checkFlux reads Flux's controller Deployments in the policy's Flux namespaces and reports their lockdown: a
// --default-service-account that differs from the policy's flux.defaultServiceAccount is a problem (the webhook would
// judge tenant sources by the wrong ServiceAccount); what the flags are, and what is missing where tenants are
// mandated, are notes.
func (d *diagnosis) checkFlux(ctx context.Context) error {
	p := d.p
	tenants := tenantMandates(p)
	for _, ns := range p.Spec.Flux.Namespaces {
		for _, name := range identityControllers {
			args, ok, err := controllerArgs(ctx, d.l.Reader, ns, name)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			running, set := flagValue(args, flagDefaultServiceAccount, false)
			want := p.Spec.Flux.DefaultServiceAccount
			switch {
			case set && running != want:
				fix := "set flux.defaultServiceAccount: " + running + " in the policy"
				if want != "" {
					fix = "run " + name + " with --" + flagDefaultServiceAccount + "=" + want + ", or " + fix
				}
				d.findings = append(d.findings, Finding{Check: CheckFlux, Namespace: ns, Name: "deployment/" + name,
					Problem: "runs with --" + flagDefaultServiceAccount + "=" + running + " but the policy says " +
						quoteOrNone(want) + ": tenant sources are judged by the wrong ServiceAccount",
					Fix: fix})
			case !set && want != "":
				d.findings = append(d.findings, Finding{Check: CheckFlux, Namespace: ns, Name: "deployment/" + name,
					Problem: "runs without --" + flagDefaultServiceAccount + " but the policy says " + want +
						": a tenant source without spec.serviceAccountName gets the controller's own identity",
					Fix: "kubectl -n " + ns + " patch deployment " + name + " --type json -p " + trust.ShellQuote(
						`[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--`+
							flagDefaultServiceAccount+"="+want+`"}]`) + " (in Git: a kustomize patch, as Flux's lockdown guide shows)"})
			case set:
				d.notes = append(d.notes, fmt.Sprintf("%s/%s runs with --%s=%s: sources without spec.serviceAccountName "+
					"use that ServiceAccount of their own namespace", ns, name, flagDefaultServiceAccount, running))
			case len(tenants) > 0:
				d.notes = append(d.notes, fmt.Sprintf("%s/%s runs without --%s: only the webhook keeps tenant sources "+
					"(mandates %s) off its identity", ns, name, flagDefaultServiceAccount, strings.Join(tenants, ", ")))
			}
		}
		for _, name := range consumerControllers {
			args, ok, err := controllerArgs(ctx, d.l.Reader, ns, name)
			if err != nil {
				return err
			}
			if !ok || len(tenants) == 0 {
				continue
			}
			// pflag reads a boolean's value with strconv.ParseBool: 0, f, F, FALSE... are off too.
			v, set := flagValue(args, flagNoCrossNamespaceRefs, true)
			if on, err := strconv.ParseBool(v); !set || err != nil || !on {
				d.notes = append(d.notes, fmt.Sprintf("%s/%s runs without --%s=true: a tenant's objects may use sources "+
					"of other namespaces, flux-system's included", ns, name, flagNoCrossNamespaceRefs))
			}
		}
	}
	return nil
}

// tenantMandates names the mandates that cover a namespace other than Flux's own (a glob always might).
func tenantMandates(p *policy.Policy) []string {
	var out []string
	for _, m := range p.Spec.Mandates {
		for _, ns := range m.Namespaces {
			if policy.IsGlob(ns) || !p.FluxNamespace(ns) {
				out = append(out, m.Name)
				break
			}
		}
	}
	return out
}

// controllerArgs returns the arguments of a Flux controller's manager container; ok is false when the Deployment
// does not exist.
func controllerArgs(ctx context.Context, c client.Reader, ns, name string) ([]string, bool, error) {
	var dep appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &dep); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read deployment %s/%s: %w", ns, name, err)
	}
	containers := dep.Spec.Template.Spec.Containers
	for _, ct := range containers {
		if ct.Name == "manager" {
			return append(append([]string{}, ct.Command...), ct.Args...), true, nil
		}
	}
	if len(containers) > 0 {
		return append(append([]string{}, containers[0].Command...), containers[0].Args...), true, nil
	}
	return nil, true, nil
}

// flagValue finds --name=value or --name value in args; the last one wins, as with pflag (spf13/pflag
// FlagSet.parseLongArg). A boolean flag never takes the next argument: a bare --name is "true".
func flagValue(args []string, name string, boolean bool) (string, bool) {
	var value string
	var set bool
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case strings.HasPrefix(a, name+"="):
			value, set = strings.TrimPrefix(a, name+"="), true
		case a == name:
			value, set = "true", true
			if !boolean && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				value = args[i+1]
			}
		}
	}
	return value, set
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
