package webhook

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

func TestRespondAnswersEachViolationInItsMode(t *testing.T) {
	vio := func(mode policy.Mode, msg string) verdict.Violation {
		return verdict.Violation{RuleType: verdict.RuleMandate, Rule: "m", Mode: mode, Message: msg}
	}
	mixed := []verdict.Violation{vio(policy.ModeEnforce, "e"), vio(policy.ModeWarn, "w"), vio(policy.ModeOff, "o")}
	patch := []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/labels", map[string]string{"a": "b"})}
	tests := map[string]struct {
		v            verdict.Verdict
		server       policy.Mode
		wantDecision string
		wantDenial   string
		wantWarnings []string
		wantPatch    bool
	}{
		"enforce denies with its messages; warn messages still come back as warnings; off says nothing": {
			v: verdict.Verdict{Violations: mixed}, server: policy.ModeEnforce,
			wantDecision: DecisionDenied, wantDenial: "e", wantWarnings: []string{"w"},
		},
		"the server-wide warn mode turns every denial into a warning with the same text": {
			v: verdict.Verdict{Violations: mixed}, server: policy.ModeWarn,
			wantDecision: DecisionWarned, wantWarnings: []string{"e", "w"},
		},
		"an update that brings nothing new is reported as a warning, not denied": {
			v: verdict.Verdict{Violations: mixed, Unchanged: true}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"e", "w"},
		},
		"off violations alone admit silently but are a decision of their own": {
			v: verdict.Verdict{Violations: []verdict.Violation{vio(policy.ModeOff, "o")}}, server: policy.ModeEnforce,
			wantDecision: DecisionUnenforced,
		},
		"a patch is applied, and a denial drops it": {
			v: verdict.Verdict{Patch: patch}, server: policy.ModeEnforce, wantDecision: DecisionPatched, wantPatch: true,
		},
		"a warned request keeps its patch": {
			v: verdict.Verdict{Patch: patch, Violations: []verdict.Violation{vio(policy.ModeWarn, "w")}}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"w"}, wantPatch: true,
		},
		"a denied request carries no patch": {
			v: verdict.Verdict{Patch: patch, Violations: []verdict.Violation{vio(policy.ModeEnforce, "e")}}, server: policy.ModeEnforce,
			wantDecision: DecisionDenied, wantDenial: "e",
		},
		"an advisory warning comes back in every mode": {
			v: verdict.Verdict{Patch: patch, Warnings: []string{"a"}}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"a"}, wantPatch: true,
		},
		"an exception is a decision of its own": {
			v: verdict.Verdict{Excepted: true, Mandates: []string{"m"}}, server: policy.ModeEnforce, wantDecision: DecisionExcepted,
		},
		"a skipped request is skipped": {v: verdict.Verdict{Skipped: true}, server: policy.ModeEnforce, wantDecision: DecisionSkipped},
		"nothing to do is allowed":     {v: verdict.Verdict{}, server: policy.ModeEnforce, wantDecision: DecisionAllowed},
		"a message many violations share is said once (a Secret's 2,000 decryption keys)": {
			v: verdict.Verdict{Violations: slices.Concat(slices.Repeat([]verdict.Violation{vio(policy.ModeEnforce, "e"),
				vio(policy.ModeWarn, "w")}, 2000), []verdict.Violation{vio(policy.ModeEnforce, "f")})},
			server: policy.ModeEnforce, wantDecision: DecisionDenied, wantDenial: "e; f", wantWarnings: []string{"w"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, decision := respond(&tc.v, tc.server, newCountedHandler("test"))
			if outcome := Outcome(&tc.v, tc.server); outcome != decision {
				t.Errorf("Outcome says %q, the answer %q", outcome, decision)
			}
			if decision != tc.wantDecision || resp.AuditAnnotations[keys.AuditDecision] != tc.wantDecision {
				t.Errorf("decision %q, audit %q, want %q", decision, resp.AuditAnnotations[keys.AuditDecision], tc.wantDecision)
			}
			if resp.Allowed != (tc.wantDenial == "") {
				t.Errorf("allowed = %v", resp.Allowed)
			}
			if tc.wantDenial != "" && (resp.Result == nil || resp.Result.Message != tc.wantDenial || resp.Result.Code != 403) {
				t.Errorf("result = %+v, want 403 %q", resp.Result, tc.wantDenial)
			}
			if !slices.Equal(resp.Warnings, tc.wantWarnings) {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tc.wantWarnings)
			}
			if (len(resp.Patch) > 0) != tc.wantPatch || (tc.wantPatch && string(*resp.PatchType) != "JSONPatch") {
				t.Errorf("patch = %s", resp.Patch)
			}
			if len(tc.v.Violations) > 0 && resp.AuditAnnotations[keys.AuditRules] != "mandate:m" {
				t.Errorf("rules annotation = %q", resp.AuditAnnotations[keys.AuditRules])
			}
		})
	}
}

func TestBoundedLabels(t *testing.T) {
	// The cap is process-wide: give the other tests their namespaces back.
	namespaceLabels.Lock()
	saved := namespaceLabels.seen
	namespaceLabels.seen = map[string]struct{}{}
	namespaceLabels.Unlock()
	t.Cleanup(func() {
		namespaceLabels.Lock()
		namespaceLabels.seen = saved
		namespaceLabels.Unlock()
	})
	if got := namespaceLabel(strings.Repeat("a", 1<<20)); got != labelInvalid {
		t.Errorf("a 1 MB namespace became the label %.20q", got)
	}
	if got := namespaceLabel("Team_A"); got != labelInvalid {
		t.Errorf("an invalid namespace became the label %q", got)
	}
	if got := boundedKind("ConfigMap"); got != labelInvalid {
		t.Errorf("an unknown kind became the label %q", got)
	}
	seen := 0
	for i := 0; i < 2*maxNamespaceLabels; i++ {
		if namespaceLabel("ns-"+strings.Repeat("x", i%50)+"-"+strconv.Itoa(i)) != labelOther {
			seen++
		}
	}
	if seen > maxNamespaceLabels {
		t.Errorf("%d distinct namespaces became labels, cap %d", seen, maxNamespaceLabels)
	}
}

func TestServiceAccountViolationsAreCountedAndAudited(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
	intruder := `{"metadata":{"name":"intruder-audit","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::1:role/x"}}}`
	tests := map[string]struct {
		namespace    string
		server       policy.Mode
		wantMode     string
		wantDecision string
		wantAllowed  bool
	}{
		"enforce denies and counts as enforce":          {"flux-system", policy.ModeEnforce, "enforce", "denied", false},
		"an audit-only server warns and counts as warn": {"flux-system", policy.ModeWarn, "warn", "warned", true},
		"a warn namespace warns whatever the server":    {"team-b", policy.ModeEnforce, "warn", "warned", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sa serviceaccounts.View
			if err := json.Unmarshal([]byte(intruder), &sa); err != nil {
				t.Fatal(err)
			}
			counter := violations.WithLabelValues(tc.wantMode, "ServiceAccount", tc.namespace, verdict.RuleOwnership, "")
			before := testutil.ToFloat64(counter)
			v, err := serviceaccounts.Admit(p, &verdict.Request[serviceaccounts.View, verdict.None]{Namespace: tc.namespace,
				Object: &sa}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := respond(&v, tc.server, newCountedHandler("test"))
			if resp.Allowed != tc.wantAllowed {
				t.Errorf("allowed %v, want %v", resp.Allowed, tc.wantAllowed)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("fluxidentity_violations_total{mode=%s} grew by %v, want 1", tc.wantMode, got)
			}
			if resp.AuditAnnotations[keys.AuditDecision] != tc.wantDecision || resp.AuditAnnotations[keys.AuditRules] != verdict.RuleOwnership {
				t.Errorf("audit annotations %v, want decision %s and rules ownership", resp.AuditAnnotations, tc.wantDecision)
			}
		})
	}
}
