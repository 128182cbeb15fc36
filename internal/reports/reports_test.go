package reports

import (
	"bytes"
	"strings"
	"testing"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func violation(mandate string, mode policy.Mode, field string) fluxobjects.Violation {
	return fluxobjects.Violation{Mandate: mandate, Mode: mode, Field: field,
		Message: "[" + mandate + "] " + field + " is not allowed: remove it"}
}

// sample has findings in two namespaces, team-b before team-a as a caller may hand them.
var sample = audit.Result{Checked: 9, Findings: []audit.Finding{
	{Kind: "Bucket", Namespace: "team-b", Name: "logs", UID: "uid-logs",
		Violations: []fluxobjects.Violation{violation("quiet", policy.ModeOff, "spec.secretRef")}},
	{Kind: "GitRepository", Namespace: "team-b", Name: "app", UID: "uid-app", Violations: []fluxobjects.Violation{
		violation("soft", policy.ModeWarn, "spec.url user info"),
		violation("strict", policy.ModeEnforce, "spec.secretRef"),
	}},
	{Kind: "OCIRepository", Namespace: "team-a", Name: "charts", UID: "uid-charts",
		Violations: []fluxobjects.Violation{violation("strict", policy.ModeEnforce, "spec.secretRef")}},
}}

// decode reads a built report back into openreports' Report, which also has every field of a PolicyReport.
func decode(t *testing.T, u *unstructured.Unstructured) openreportsv1alpha1.Report {
	t.Helper()
	var r openreportsv1alpha1.Report
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &r, true); err != nil {
		t.Fatalf("%s of %s: %v", u.GetKind(), u.GetNamespace(), err)
	}
	return r
}

func TestBuild(t *testing.T) {
	for _, api := range APIs {
		t.Run(api.Kind, func(t *testing.T) {
			objs, err := Build(api, sample, Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Run("one report per namespace with findings, ordered by namespace, named and labelled as ours", func(t *testing.T) {
				if len(objs) != 2 || objs[0].GetNamespace() != "team-a" || objs[1].GetNamespace() != "team-b" {
					t.Fatalf("reports %v", objs)
				}
				for _, o := range objs {
					if o.GroupVersionKind() != api.GroupVersionKind() || o.GetName() != keys.ReportSource ||
						o.GetLabels()[keys.LabelManagedBy] != keys.ReportSource || o.GetAnnotations() != nil {
						t.Errorf("metadata %v %s %v %v", o.GroupVersionKind(), o.GetName(), o.GetLabels(), o.GetAnnotations())
					}
					if _, ok := o.Object["metadata"].(map[string]any)["creationTimestamp"]; ok {
						t.Errorf("creationTimestamp written")
					}
				}
			})
			t.Run("enforce is a scored high fail, warn an unscored medium warn, off an info skip; fail first", func(t *testing.T) {
				r := decode(t, objs[1])
				var got []string
				for _, res := range r.Results {
					got = append(got, string(res.Result)+"/"+string(res.Severity)+"/"+res.Policy+"/"+res.Rule+"/"+
						map[bool]string{true: "scored", false: "unscored"}[res.Scored])
				}
				want := []string{"fail/high/strict/spec.secretRef/scored", "warn/medium/soft/spec.url user info/unscored",
					"skip/info/quiet/spec.secretRef/unscored"}
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("results\n got %q\nwant %q", got, want)
				}
				if r.Summary != (openreportsv1alpha1.ReportSummary{Fail: 1, Warn: 1, Skip: 1}) {
					t.Errorf("summary %+v", r.Summary)
				}
			})
			t.Run("a result names its source by apiVersion, kind, namespace, name and UID, and holds the fix", func(t *testing.T) {
				res := decode(t, objs[0]).Results[0]
				if len(res.Subjects) != 1 {
					t.Fatalf("subjects %v", res.Subjects)
				}
				s := res.Subjects[0]
				if s.APIVersion != "source.toolkit.fluxcd.io/v1" || s.Kind != "OCIRepository" || s.Namespace != "team-a" ||
					s.Name != "charts" || s.UID != "uid-charts" {
					t.Errorf("subject %+v", s)
				}
				if res.Description != "[strict] spec.secretRef is not allowed: remove it" || res.Source != keys.ReportSource ||
					res.Category != Category || res.Timestamp.Seconds != now.Unix() ||
					res.Properties["mode"] != "enforce" || res.Properties["field"] != "spec.secretRef" {
					t.Errorf("result %+v", res)
				}
			})
			t.Run("only the Report names its source at the top", func(t *testing.T) {
				_, has := objs[0].Object["source"]
				if has != (api == Report) {
					t.Errorf("top-level source: %v", objs[0].Object["source"])
				}
			})
		})
	}
}

func TestBuildBounds(t *testing.T) {
	t.Run("past MaxResults the least severe results are left out, counted in the summary and an annotation", func(t *testing.T) {
		objs, err := Build(Report, sample, Options{Now: now, MaxResults: 2})
		if err != nil {
			t.Fatal(err)
		}
		r := decode(t, objs[1])
		if len(r.Results) != 2 || r.Results[1].Result != ResultWarn || r.Summary.Skip != 1 ||
			r.Annotations[keys.AnnotationResultsOmitted] != "1" {
			t.Errorf("results %d, last %s, summary %+v, annotations %v", len(r.Results), r.Results[1].Result, r.Summary,
				r.Annotations)
		}
		if a := decode(t, objs[0]).Annotations; a != nil {
			t.Errorf("a report within the limit is annotated: %v", a)
		}
	})
	t.Run("no findings, no reports", func(t *testing.T) {
		objs, err := Build(PolicyReport, audit.Result{Checked: 3}, Options{Now: now})
		if err != nil || len(objs) != 0 {
			t.Errorf("%v %v", objs, err)
		}
	})
	t.Run("a kind fluxauth does not know is referenced without an apiVersion", func(t *testing.T) {
		res := audit.Result{Findings: []audit.Finding{{Kind: "Unknown", Namespace: "a", Name: "x",
			Violations: []fluxobjects.Violation{violation("m", policy.ModeEnforce, "spec.x")}}}}
		objs, err := Build(Report, res, Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if s := decode(t, objs[0]).Results[0].Subjects[0]; s.APIVersion != "" || s.Kind != "Unknown" {
			t.Errorf("subject %+v", s)
		}
	})
}

func TestWriteYAML(t *testing.T) {
	objs, err := Build(PolicyReport, sample, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, objs); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(buf.String(), "---\n"), "---\n")
	if len(docs) != 2 {
		t.Fatalf("%d documents:\n%s", len(docs), buf.String())
	}
	for i, doc := range docs {
		var back map[string]any
		if err := yaml.Unmarshal([]byte(doc), &back); err != nil {
			t.Fatal(err)
		}
		if got := (&unstructured.Unstructured{Object: back}); got.GetNamespace() != objs[i].GetNamespace() ||
			got.GetKind() != "PolicyReport" {
			t.Errorf("document %d is the %s of %s", i, got.GetKind(), got.GetNamespace())
		}
	}
}
