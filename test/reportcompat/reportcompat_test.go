// Package reportcompat holds the PolicyReports internal/reports writes to Kyverno's own Go types: each decodes
// strictly (no field Kyverno does not know) into kyverno/kyverno api/policyreport/v1alpha2.PolicyReport, and
// Kyverno's conversion to the Open Reports format (PolicyReport.ToOpenReports) gives the Report internal/reports
// writes beside it, field for field but the top-level source, which Kyverno sets to its own name.
package reportcompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	kyvernov1alpha2 "github.com/kyverno/kyverno/api/policyreport/v1alpha2"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/reports"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// generate is a seeded audit result: findings of every kind fluxauth knows in a few namespaces, each with one to three
// violations in random modes.
func generate(seed uint64) audit.Result {
	r := rand.New(rand.NewPCG(seed, seed))
	modes := []policy.Mode{policy.ModeEnforce, policy.ModeWarn, policy.ModeOff}
	fields := []string{"spec.secretRef", "spec.url user info", "spec.certSecretRef", "spec.serviceAccountName"}
	var res audit.Result
	for i := range 5 + r.IntN(30) {
		f := audit.Finding{Kind: fluxauth.Kinds[r.IntN(len(fluxauth.Kinds))], Namespace: fmt.Sprintf("team-%d", r.IntN(4)),
			Name: fmt.Sprintf("src-%d", i), UID: "uid"}
		for range 1 + r.IntN(3) {
			m := fmt.Sprintf("mandate-%d", r.IntN(3))
			field := fields[r.IntN(len(fields))]
			f.Violations = append(f.Violations, fluxobjects.Violation{Mandate: m, Mode: modes[r.IntN(3)],
				Field: field, Message: "[" + m + "] " + field + " is not allowed: remove it"})
		}
		res.Findings = append(res.Findings, f)
	}
	return res
}

func strictJSON(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	raw, err := json.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetNamespace(), err)
	}
}

func TestPolicyReportsAreKyvernosAndConvertToTheReports(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for seed := range uint64(50) {
		res := generate(seed)
		o := reports.Options{Now: now, MaxResults: 1 + int(seed%20)}
		polrs, err := reports.Build(reports.PolicyReport, res, o)
		if err != nil {
			t.Fatal(err)
		}
		reps, err := reports.Build(reports.Report, res, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(polrs) != len(reps) || len(polrs) == 0 {
			t.Fatalf("seed %d: %d PolicyReports, %d Reports", seed, len(polrs), len(reps))
		}
		for i := range polrs {
			var polr kyvernov1alpha2.PolicyReport
			strictJSON(t, polrs[i], &polr)
			var want openreportsv1alpha1.Report
			strictJSON(t, reps[i], &want)
			got := polr.ToOpenReports()
			if got.Source != "kyverno" || want.Source != keys.ReportSource {
				t.Errorf("sources: Kyverno's conversion %q, ours %q", got.Source, want.Source)
			}
			got.Source, got.TypeMeta = want.Source, want.TypeMeta
			if !equality.Semantic.DeepEqual(*got, want) {
				t.Errorf("seed %d, %s: Kyverno converts our PolicyReport to\n%+v\nwe write\n%+v", seed, want.Namespace, *got, want)
			}
			sum := kyvernov1alpha2.PolicyReportSummary{}
			for _, r := range polr.Results {
				switch r.Result {
				case kyvernov1alpha2.StatusFail:
					sum.Fail++
				case kyvernov1alpha2.StatusWarn:
					sum.Warn++
				case kyvernov1alpha2.StatusSkip:
					sum.Skip++
				default:
					t.Errorf("result %q", r.Result)
				}
			}
			if polr.Annotations[keys.AnnotationResultsOmitted] == "" && polr.Summary != sum {
				t.Errorf("summary %+v, results %+v", polr.Summary, sum)
			}
		}
	}
}
