package webhook

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"gomodules.xyz/jsonpatch/v2"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestRespondAnswersEachViolationInItsMode(t *testing.T) {
	vio := func(mode policy.Mode, msg string) violation {
		return violation{ruleType: RuleMandate, rule: "m", mode: mode, message: msg}
	}
	mixed := []violation{vio(policy.ModeEnforce, "e"), vio(policy.ModeWarn, "w"), vio(policy.ModeOff, "o")}
	patch := []jsonpatch.Operation{jsonpatch.NewOperation("add", "/metadata/labels", map[string]string{"a": "b"})}
	tests := map[string]struct {
		v            verdict
		server       policy.Mode
		wantDecision string
		wantDenial   string
		wantWarnings []string
		wantPatch    bool
	}{
		"enforce denies with its messages; warn messages still come back as warnings; off says nothing": {
			v: verdict{violations: mixed}, server: policy.ModeEnforce,
			wantDecision: DecisionDenied, wantDenial: "e", wantWarnings: []string{"w"},
		},
		"the server-wide warn mode turns every denial into a warning with the same text": {
			v: verdict{violations: mixed}, server: policy.ModeWarn,
			wantDecision: DecisionWarned, wantWarnings: []string{"e", "w"},
		},
		"an update that brings nothing new is reported as a warning, not denied": {
			v: verdict{violations: mixed, unchanged: true}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"e", "w"},
		},
		"off violations alone admit silently but are a decision of their own": {
			v: verdict{violations: []violation{vio(policy.ModeOff, "o")}}, server: policy.ModeEnforce,
			wantDecision: DecisionUnenforced,
		},
		"a patch is applied, and a denial drops it": {
			v: verdict{patch: patch}, server: policy.ModeEnforce, wantDecision: DecisionPatched, wantPatch: true,
		},
		"a warned request keeps its patch": {
			v: verdict{patch: patch, violations: []violation{vio(policy.ModeWarn, "w")}}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"w"}, wantPatch: true,
		},
		"a denied request carries no patch": {
			v: verdict{patch: patch, violations: []violation{vio(policy.ModeEnforce, "e")}}, server: policy.ModeEnforce,
			wantDecision: DecisionDenied, wantDenial: "e",
		},
		"an advisory warning comes back in every mode": {
			v: verdict{patch: patch, warnings: []string{"a"}}, server: policy.ModeEnforce,
			wantDecision: DecisionWarned, wantWarnings: []string{"a"}, wantPatch: true,
		},
		"an exception is a decision of its own": {
			v: verdict{excepted: true, mandates: []string{"m"}}, server: policy.ModeEnforce, wantDecision: DecisionExcepted,
		},
		"a skipped request is skipped": {v: verdict{skipped: true}, server: policy.ModeEnforce, wantDecision: DecisionSkipped},
		"nothing to do is allowed":     {v: verdict{}, server: policy.ModeEnforce, wantDecision: DecisionAllowed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, decision := tc.v.respond(tc.server, newCountedHandler("test"))
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
			if len(tc.v.violations) > 0 && resp.AuditAnnotations[keys.AuditRules] != "mandate:m" {
				t.Errorf("rules annotation = %q", resp.AuditAnnotations[keys.AuditRules])
			}
		})
	}
}

func TestFitMessage(t *testing.T) {
	if m := fitMessage("x", withDetail("short rule: fix it", "detail")...); m != "[x] short rule: fix it (detail)" {
		t.Errorf("a detail that fits is kept: %q", m)
	}
	long := strings.Repeat("d", 100)
	if m := fitMessage("ownership", withDetail("annotation eks.amazonaws.com/role-arn is reserved: remove it", long)...); m != "[ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it" {
		t.Errorf("a detail that does not fit is dropped: %q", m)
	}
	m := fitMessage(strings.Repeat("e", 63), strings.Repeat("r", 200))
	if len(m) != MaxMessageLength || !strings.HasSuffix(m, "...") {
		t.Errorf("an overlong message is cut to %d bytes: %d %q", MaxMessageLength, len(m), m)
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
	if got := boundedKind("Secret"); got != labelInvalid {
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
	if got := clip(strings.Repeat("n", 3<<20)); len(got) > maxLoggedBytes+20 {
		t.Errorf("a 3 MB string is logged as %d bytes", len(got))
	}
}
