package chart

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// registration is what the route table says of one webhook, in a form both the table and a configuration give.
type registration struct {
	path       string
	mutating   bool
	failClosed bool
	rules      []string // group/version/resource OPERATION, sorted
}

func fromTable(w routes.Webhook) registration {
	r := registration{path: w.Path, mutating: w.Mutating, failClosed: w.FailClosed}
	for _, rule := range w.Rules {
		for _, v := range rule.Versions {
			for _, res := range rule.Resources {
				for _, op := range rule.Operations {
					r.rules = append(r.rules, fmt.Sprintf("%s/%s/%s %s", rule.Group, v, res, op))
				}
			}
		}
	}
	slices.Sort(r.rules)
	return r
}

func fromConfig(path string, mutating bool, fp *admissionv1.FailurePolicyType, rules []admissionv1.RuleWithOperations) registration {
	r := registration{path: path, mutating: mutating, failClosed: fp != nil && *fp == admissionv1.Fail}
	for _, rule := range rules {
		for _, g := range rule.APIGroups {
			for _, v := range rule.APIVersions {
				for _, res := range rule.Resources {
					for _, op := range rule.Operations {
						r.rules = append(r.rules, fmt.Sprintf("%s/%s/%s %s", g, v, res, op))
					}
				}
			}
		}
	}
	slices.Sort(r.rules)
	return r
}

// registrations reads every webhook of the configurations, by name.
func registrations(mutating []*admissionv1.MutatingWebhookConfiguration,
	validating []*admissionv1.ValidatingWebhookConfiguration,
) map[string]registration {
	out := map[string]registration{}
	for _, c := range mutating {
		for _, w := range c.Webhooks {
			out[w.Name] = fromConfig(*w.ClientConfig.Service.Path, true, w.FailurePolicy, w.Rules)
		}
	}
	for _, c := range validating {
		for _, w := range c.Webhooks {
			out[w.Name] = fromConfig(*w.ClientConfig.Service.Path, false, w.FailurePolicy, w.Rules)
		}
	}
	return out
}

// checkAgainstRouteTable holds each registration to its row of the route table, and requires the rows in want.
func checkAgainstRouteTable(t *testing.T, got map[string]registration, want []string) {
	t.Helper()
	for name, reg := range got {
		w, ok := routes.Named(name)
		if !ok {
			t.Errorf("webhook %s is not in the route table (internal/routes)", name)
			continue
		}
		row := fromTable(w)
		if reg.path != row.path || reg.mutating != row.mutating || reg.failClosed != row.failClosed {
			t.Errorf("webhook %s: path %s, mutating %v, fails closed %v; the route table says %s, %v, %v", name,
				reg.path, reg.mutating, reg.failClosed, row.path, row.mutating, row.failClosed)
		}
		for _, r := range reg.rules {
			if !slices.Contains(row.rules, r) {
				t.Errorf("webhook %s sends %s, which the route table does not name", name, r)
			}
		}
		for _, r := range row.rules {
			if !slices.Contains(reg.rules, r) {
				t.Errorf("webhook %s does not send %s, which the route table names", name, r)
			}
		}
	}
	for _, name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("webhook %s of the route table is not registered", name)
		}
	}
}

// config/webhook and the chart register what the route table says, and nothing else: adding a kind to the table and
// forgetting a configuration fails here.
func TestRegistrationsFollowTheRouteTable(t *testing.T) {
	var always []string // every registration but those a value or the policy adds
	for _, w := range routes.Webhooks {
		if w.Name != routes.WebhookPodsFullInjection && w.Name != routes.WebhookDeployments {
			always = append(always, w.Name)
		}
	}
	t.Run("config/webhook", func(t *testing.T) {
		var (
			mutating   []*admissionv1.MutatingWebhookConfiguration
			validating []*admissionv1.ValidatingWebhookConfiguration
		)
		for _, f := range []string{"manifests.yaml", "deployments.yaml"} {
			m, v, err := harness.ReadWebhookConfigurations(filepath.Join(repoRoot(t), "config", "webhook", f))
			if err != nil {
				t.Fatal(err)
			}
			mutating, validating = append(mutating, m...), append(validating, v...)
		}
		checkAgainstRouteTable(t, registrations(mutating, validating), append(always, routes.WebhookDeployments))
	})
	t.Run("the chart, every webhook enabled, with a full-injection policy", func(t *testing.T) {
		values := "webhooks:\n  deployments:\n    enabled: true\npolicy: |\n" + indent("apiVersion: fluxidentity.dev/v1alpha1\n"+
			"kind: IdentityPolicy\nidentities:\n"+identity("full", "flux-system", "source-controller", "full"), "  ")
		o := mustRender(t, releaseNS, values)
		var (
			mutating   []*admissionv1.MutatingWebhookConfiguration
			validating []*admissionv1.ValidatingWebhookConfiguration
		)
		for _, obj := range o.all {
			switch c := obj.(type) {
			case *admissionv1.MutatingWebhookConfiguration:
				mutating = append(mutating, c)
			case *admissionv1.ValidatingWebhookConfiguration:
				validating = append(validating, c)
			}
		}
		checkAgainstRouteTable(t, registrations(mutating, validating), append(always, routes.WebhookDeployments,
			routes.WebhookPodsFullInjection))
	})
}
