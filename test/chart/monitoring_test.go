package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxidentity/flux-identity-webhook/test/promql"
)

const monitoringValues = "metrics:\n  serviceMonitor:\n    enabled: true\n  prometheusRule:\n    enabled: true\n" +
	"    latencyThresholdSeconds: 0.5\n  grafanaDashboard:\n    enabled: true\n"

// rule is one alerting rule of the rendered PrometheusRule.
type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func prometheusRules(t *testing.T, o objects) []rule {
	t.Helper()
	pr, ok := o.get("PrometheusRule", releaseName).(*unstructured.Unstructured)
	if !ok {
		t.Fatal("no PrometheusRule")
	}
	groups, _, _ := unstructured.NestedSlice(pr.Object, "spec", "groups")
	var rules []rule
	for _, g := range groups {
		raw, err := json.Marshal(g.(map[string]any)["rules"])
		if err != nil {
			t.Fatal(err)
		}
		var rs []rule
		if err := json.Unmarshal(raw, &rs); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, rs...)
	}
	return rules
}

// Every alert parses, says how bad it is and what to do, links its README section, and selects the server's own
// metrics only in the release's namespace; the README explains each one.
func TestAlertingRules(t *testing.T) {
	rules := prometheusRules(t, mustRender(t, releaseNS, monitoringValues))
	if len(rules) < 6 {
		t.Fatalf("%d rules: want the documented set", len(rules))
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Alert] || !regexp.MustCompile(`^FluxIdentity[A-Za-z]+$`).MatchString(r.Alert) {
			t.Errorf("alert name %q is repeated or not FluxIdentity...", r.Alert)
		}
		seen[r.Alert] = true
		e, err := promql.Parse(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", r.Alert, err)
			continue
		}
		for _, s := range e.Selectors {
			switch {
			case strings.HasPrefix(s.Metric, "fluxidentity_"):
				if !slices.Contains(s.Matchers, promql.Matcher{Label: "namespace", Op: "=", Value: releaseNS}) {
					t.Errorf("%s: %s is not scoped to namespace=%q", r.Alert, s.Metric, releaseNS)
				}
			case strings.HasPrefix(s.Metric, "apiserver_admission_webhook_"):
				if !slices.Contains(s.Matchers, promql.Matcher{Label: "name", Op: "=~", Value: ".+[.]fluxidentity[.]dev"}) {
					t.Errorf("%s: %s is not scoped to this project's webhooks", r.Alert, s.Metric)
				}
			default:
				t.Errorf("%s: %s is neither the server's nor the API server's webhook metric", r.Alert, s.Metric)
			}
		}
		if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
			t.Errorf("%s: severity %q", r.Alert, sev)
		}
		if r.Labels["severity"] != "info" {
			if d, err := time.ParseDuration(r.For); err != nil || d < time.Minute {
				t.Errorf("%s: for %q: an alert that pages must hold for a minute at least", r.Alert, r.For)
			}
		}
		for _, a := range []string{"summary", "description", "runbook_url"} {
			if r.Annotations[a] == "" {
				t.Errorf("%s: no %s", r.Alert, a)
			}
		}
		anchor := strings.ToLower(r.Alert)
		if !strings.HasSuffix(r.Annotations["runbook_url"], "#"+anchor) || !strings.Contains(string(readme), "\n### "+r.Alert+"\n") {
			t.Errorf("%s: runbook_url %q must point at the README section '### %s'", r.Alert, r.Annotations["runbook_url"], r.Alert)
		}
	}
	if !strings.Contains(rulesExpr(rules, "FluxIdentityWebhookSlow"), "> 0.5") {
		t.Error("latencyThresholdSeconds does not reach FluxIdentityWebhookSlow")
	}
	if o := mustRender(t, releaseNS, ""); o.get("PrometheusRule", releaseName) != nil || o.get("ConfigMap", releaseName+"-dashboard") != nil {
		t.Error("alerts or the dashboard are rendered by default; they need the Prometheus operator and Grafana")
	}
}

func rulesExpr(rules []rule, alert string) string {
	for _, r := range rules {
		if r.Alert == alert {
			return r.Expr
		}
	}
	return ""
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int            `json:"id"`
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		Datasource map[string]any `json:"datasource"`
		Targets    []struct {
			Expr       string         `json:"expr"`
			Datasource map[string]any `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

// DashboardQueries returns the dashboard's queries with its variables as Grafana would substitute them.
func dashboardQueries(t *testing.T, raw []byte, namespace string) map[string]string {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name+":"+v.Type)
	}
	if !slices.Contains(vars, "datasource:datasource") || !slices.Contains(vars, "namespace:query") {
		t.Errorf("templating %v: want a datasource and a namespace variable", vars)
	}
	ids := map[int]bool{}
	out := map[string]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is repeated", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %v, %d targets", p.Title, p.Datasource, len(p.Targets))
		}
		for i, tg := range p.Targets {
			q := strings.NewReplacer("$namespace", namespace, "$__rate_interval", "5m", "$__range", "1h").Replace(tg.Expr)
			out[p.Title+"#"+string(rune('A'+i))] = q
		}
	}
	return out
}

// The dashboard ships unchanged in its ConfigMap, for Grafana's sidecar, and every query parses.
func TestGrafanaDashboard(t *testing.T) {
	o := mustRender(t, releaseNS, monitoringValues)
	cm, ok := o.get("ConfigMap", releaseName+"-dashboard").(*corev1.ConfigMap)
	if !ok {
		t.Fatal("no dashboard ConfigMap")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v: Grafana's sidecar selects grafana_dashboard=1", cm.Labels)
	}
	file, err := os.ReadFile(filepath.Join(chartDir(t), "dashboards", "flux-identity-webhook.json"))
	if err != nil {
		t.Fatal(err)
	}
	if cm.Data["flux-identity-webhook.json"] != strings.TrimSuffix(string(file), "\n") {
		t.Error("the ConfigMap's dashboard is not dashboards/flux-identity-webhook.json")
	}
	queries := dashboardQueries(t, file, releaseNS)
	if len(queries) < 10 {
		t.Fatalf("%d queries", len(queries))
	}
	for panel, q := range queries {
		if _, err := promql.Parse(q); err != nil {
			t.Errorf("%s: %v", panel, err)
		}
	}
}
