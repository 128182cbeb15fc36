package app

import (
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// checkFlux is the doctor check of Flux's own controllers: their multi-tenancy lockdown flags against the policy.
const checkFlux = "flux"

// Flux's lockdown flags (github.com/fluxcd/pkg/auth ControllerFlagDefaultServiceAccount; pkg/runtime/acl
// flagNoCrossNamespaceRefs) and the controllers that take them.
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

// diagnoseFlux reads Flux's controller Deployments in the policy's Flux namespaces and reports their lockdown: a
// --default-service-account that differs from the policy's flux.defaultServiceAccount is a problem (the webhook would
// judge tenant sources by the wrong ServiceAccount); what the flags are, and what is missing where tenants are
// mandated, are notes.
func diagnoseFlux(ctx context.Context, c client.Reader, p *policy.Policy) ([]doctorFinding, []string, error) {
	var found []doctorFinding
	var notes []string
	tenants := tenantMandates(p)
	for _, ns := range p.Spec.Flux.Namespaces {
		for _, name := range identityControllers {
			args, ok, err := controllerArgs(ctx, c, ns, name)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
			running, set := flagValue(args, flagDefaultServiceAccount)
			want := p.Spec.Flux.DefaultServiceAccount
			switch {
			case set && running != want:
				fix := "set flux.defaultServiceAccount: " + running + " in the policy"
				if want != "" {
					fix = "run " + name + " with --" + flagDefaultServiceAccount + "=" + want + ", or " + fix
				}
				found = append(found, doctorFinding{Check: checkFlux, Namespace: ns, Name: "deployment/" + name,
					Problem: "runs with --" + flagDefaultServiceAccount + "=" + running + " but the policy says " +
						quoteOrNone(want) + ": tenant sources are judged by the wrong ServiceAccount",
					Fix: fix})
			case !set && want != "":
				found = append(found, doctorFinding{Check: checkFlux, Namespace: ns, Name: "deployment/" + name,
					Problem: "runs without --" + flagDefaultServiceAccount + " but the policy says " + want +
						": a tenant source without spec.serviceAccountName gets the controller's own identity",
					Fix: "kubectl -n " + ns + " patch deployment " + name + " --type json -p " + trust.ShellQuote(
						`[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--`+
							flagDefaultServiceAccount+"="+want+`"}]`) + " (in Git: a kustomize patch, as Flux's lockdown guide shows)"})
			case set:
				notes = append(notes, fmt.Sprintf("%s/%s runs with --%s=%s: sources without spec.serviceAccountName use that "+
					"ServiceAccount of their own namespace", ns, name, flagDefaultServiceAccount, running))
			case len(tenants) > 0:
				notes = append(notes, fmt.Sprintf("%s/%s runs without --%s: only the webhook keeps tenant sources "+
					"(mandates %s) off its identity", ns, name, flagDefaultServiceAccount, strings.Join(tenants, ", ")))
			}
		}
		for _, name := range consumerControllers {
			args, ok, err := controllerArgs(ctx, c, ns, name)
			if err != nil {
				return nil, nil, err
			}
			if !ok || len(tenants) == 0 {
				continue
			}
			if v, set := flagValue(args, flagNoCrossNamespaceRefs); !set || v == "false" {
				notes = append(notes, fmt.Sprintf("%s/%s runs without --%s=true: a tenant's objects may use sources of "+
					"other namespaces, flux-system's included", ns, name, flagNoCrossNamespaceRefs))
			}
		}
	}
	return found, notes, nil
}

// tenantMandates names the mandates that cover a namespace other than Flux's own (a glob always might).
func tenantMandates(p *policy.Policy) []string {
	var out []string
	for _, m := range p.Spec.Mandates {
		for _, ns := range m.Namespaces {
			if strings.ContainsAny(ns, "*?") || !p.FluxNamespace(ns) {
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
	var d appsv1.Deployment
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read deployment %s/%s: %w", ns, name, err)
	}
	containers := d.Spec.Template.Spec.Containers
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

// flagValue finds --name=value, --name value or a bare --name (then "true") in args; the last one wins, as with
// pflag.
func flagValue(args []string, name string) (string, bool) {
	var value string
	var set bool
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		switch {
		case strings.HasPrefix(a, name+"="):
			value, set = strings.TrimPrefix(a, name+"="), true
		case a == name:
			value, set = "true", true
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
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

// checkPullSecrets reports mapped ServiceAccounts that carry imagePullSecrets where a mandate covers a kind whose
// sources read them: admission refuses new ones, this finds those that were there before.
func checkPullSecrets(p *policy.Policy, sa *corev1.ServiceAccount, m policy.Match) (doctorFinding, bool) {
	if len(sa.ImagePullSecrets) == 0 {
		return doctorFinding{}, false
	}
	mandate := webhook.PullSecretMandate(p, sa.Namespace)
	if mandate == nil {
		return doctorFinding{}, false
	}
	return doctorFinding{Check: checkServiceAccount, Namespace: sa.Namespace, Name: sa.Name, Identity: m.Identity.Name,
		Problem: fmt.Sprintf("carries %d imagePullSecrets: an OCIRepository naming it uses them instead of its identity "+
			"(mandate %s)", len(sa.ImagePullSecrets), mandate.Name),
		Fix: "kubectl -n " + sa.Namespace + " patch serviceaccount " + sa.Name + " --type json -p " +
			trust.ShellQuote(`[{"op":"remove","path":"/imagePullSecrets"}]`) +
			" (pods that need them list them in spec.imagePullSecrets)"}, true
}
