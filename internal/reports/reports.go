// Package reports turns audit's findings into the policy report formats that Kyverno, Policy Reporter and the
// dashboards built on them read, wgpolicyk8s.io/v1alpha2 PolicyReport and its successor openreports.io/v1alpha1
// Report, one of each per namespace, and writes them to a cluster so that a run replaces what the last run wrote
// (apply.go). It knows findings only by their kind, namespace, name and violations: a kind audit learns is reported
// with no change here.
package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// API is a report format as the API server serves it.
type API struct {
	Kind     string
	Group    string
	Version  string
	Resource string
}

// GroupVersionKind of the format's objects.
func (a API) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: a.Group, Version: a.Version, Kind: a.Kind}
}

// The two formats. PolicyReport is the Policy WG's (kubernetes-sigs/wg-policy-prototypes), served in clusters by
// Kyverno's CRDs; Report is its successor, published with its Go types in github.com/openreports/reports-api.
var (
	PolicyReport = API{Kind: "PolicyReport", Group: "wgpolicyk8s.io", Version: "v1alpha2", Resource: "policyreports"}
	Report       = API{Kind: "Report", Group: openreportsv1alpha1.GroupName, Version: "v1alpha1", Resource: "reports"}
	// APIs are both, in the order audit writes them.
	APIs = []API{PolicyReport, Report}
)

// policyReport is wgpolicyk8s.io/v1alpha2 PolicyReport as kyverno/kyverno api/policyreport/v1alpha2 declares it
// (PolicyReport, PolicyReportResult, PolicyReportSummary; the Policy WG's module is not on the module proxy). Its
// results and summary have the JSON shape of openreports' ReportResult and ReportSummary field for field: Kyverno's
// PolicyReport.ToOpenReports copies one into the other (Resources → Subjects, Message → Description, both with the
// same JSON names). The Report holds in addition a top-level source. The CRDs of both, through a real API server with
// strict field validation, are what test/reports holds these shapes to.
type policyReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Summary           openreportsv1alpha1.ReportSummary  `json:"summary"`
	Results           []openreportsv1alpha1.ReportResult `json:"results,omitempty"`
}

// DefaultMaxResults bounds the results of one report: a result takes at most about 1 KiB (the message is at most 120
// bytes, names at most 253), so a report stays well under the API server's 1.5 MiB request limit.
const DefaultMaxResults = 1000

// Category is every result's category: what Policy Reporter groups them under.
const Category = "Flux credentials"

// Options shape the reports.
type Options struct {
	// Now stamps every result.
	Now time.Time
	// MaxResults bounds the results of one report (DefaultMaxResults when zero); the most severe are kept, the rest
	// counted in the summary and in the keys.AnnotationResultsOmitted annotation.
	MaxResults int
}

// namespaceReport is what both formats say about one namespace.
type namespaceReport struct {
	namespace string
	results   []openreportsv1alpha1.ReportResult
	summary   openreportsv1alpha1.ReportSummary
	omitted   int
}

// Build returns one report of api's format for every namespace with findings in res, ordered by namespace. A
// namespace without findings gets none: Apply deletes the one an earlier run wrote there.
func Build(api API, res audit.Result, o Options) ([]*unstructured.Unstructured, error) {
	out := []*unstructured.Unstructured{}
	for _, nr := range collect(res, o) {
		meta := metav1.ObjectMeta{
			Name:      keys.ReportSource,
			Namespace: nr.namespace,
			Labels:    map[string]string{keys.LabelManagedBy: keys.ReportSource},
		}
		if nr.omitted > 0 {
			meta.Annotations = map[string]string{keys.AnnotationResultsOmitted: strconv.Itoa(nr.omitted)}
		}
		typeMeta := metav1.TypeMeta{APIVersion: api.Group + "/" + api.Version, Kind: api.Kind}
		var obj any
		switch api {
		case PolicyReport:
			obj = &policyReport{TypeMeta: typeMeta, ObjectMeta: meta, Summary: nr.summary, Results: nr.results}
		case Report:
			obj = &openreportsv1alpha1.Report{TypeMeta: typeMeta, ObjectMeta: meta, Source: keys.ReportSource,
				Summary: nr.summary, Results: nr.results}
		default:
			return nil, fmt.Errorf("no report format %s", api.Kind)
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("convert the %s of %s: %w", api.Kind, nr.namespace, err)
		}
		// ObjectMeta's creationTimestamp is written as null; the API server sets it.
		unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
		out = append(out, &unstructured.Unstructured{Object: u})
	}
	return out, nil
}

// collect groups the violations of res by namespace, each as a result, most severe first, held to MaxResults.
func collect(res audit.Result, o Options) []namespaceReport {
	limit := cmp.Or(o.MaxResults, DefaultMaxResults)
	stamp := metav1.Timestamp{Seconds: o.Now.Unix()}
	byNamespace := map[string]*namespaceReport{}
	for _, f := range res.Findings {
		nr := byNamespace[f.Namespace]
		if nr == nil {
			nr = &namespaceReport{namespace: f.Namespace}
			byNamespace[f.Namespace] = nr
		}
		subject := corev1.ObjectReference{APIVersion: apiVersionOf(f.Kind), Kind: f.Kind, Namespace: f.Namespace,
			Name: f.Name, UID: f.UID}
		for _, v := range f.Violations {
			result, severity := outcome(v.Mode)
			switch result {
			case ResultFail:
				nr.summary.Fail++
			case ResultWarn:
				nr.summary.Warn++
			default:
				nr.summary.Skip++
			}
			nr.results = append(nr.results, openreportsv1alpha1.ReportResult{
				Source: keys.ReportSource, Policy: v.Mandate, Rule: v.Field, Category: Category,
				Severity: severity, Timestamp: stamp, Result: result, Scored: result == ResultFail,
				Subjects: []corev1.ObjectReference{subject}, Description: v.Message,
				Properties: map[string]string{"mode": string(v.Mode), "field": v.Field},
			})
		}
	}
	out := make([]namespaceReport, 0, len(byNamespace))
	for _, nr := range byNamespace {
		// Stable: within a severity, results keep audit's order (kind, name, then the mandates' order).
		slices.SortStableFunc(nr.results, func(a, b openreportsv1alpha1.ReportResult) int {
			return cmp.Compare(rank[a.Result], rank[b.Result])
		})
		if len(nr.results) > limit {
			nr.omitted = len(nr.results) - limit
			nr.results = slices.Clip(nr.results[:limit])
		}
		out = append(out, *nr)
	}
	slices.SortFunc(out, func(a, b namespaceReport) int { return cmp.Compare(a.namespace, b.namespace) })
	return out
}

// Results and severities, as both formats define them (kyverno api/policyreport/v1alpha2 common.go: "fail: the
// policy requirements are not met; warn: not met, and the policy is not scored; skip: the policy was not selected").
const (
	ResultFail = openreportsv1alpha1.Result("fail")
	ResultWarn = openreportsv1alpha1.Result("warn")
	ResultSkip = openreportsv1alpha1.Result("skip")

	SeverityHigh   = openreportsv1alpha1.ResultSeverity("high")
	SeverityMedium = openreportsv1alpha1.ResultSeverity("medium")
	SeverityInfo   = openreportsv1alpha1.ResultSeverity("info")
)

var rank = map[openreportsv1alpha1.Result]int{ResultFail: 0, ResultWarn: 1, ResultSkip: 2}

// outcome is a violation's result and severity by its mandate's mode: enforce denies (a scored failure), warn admits
// with a warning (an unscored one), off decides nothing (the mandate was not applied).
func outcome(mode policy.Mode) (openreportsv1alpha1.Result, openreportsv1alpha1.ResultSeverity) {
	switch mode {
	case policy.ModeEnforce:
		return ResultFail, SeverityHigh
	case policy.ModeWarn:
		return ResultWarn, SeverityMedium
	default:
		return ResultSkip, SeverityInfo
	}
}

// apiVersionOf is the apiVersion a finding's kind is served at, newest first as fluxauth lists them; empty for a kind
// fluxauth does not know (a reference is then read by its kind and name).
func apiVersionOf(kind string) string {
	for _, a := range fluxauth.APIs {
		if a.Kind == kind {
			return a.Group + "/" + a.Versions[0]
		}
	}
	return ""
}
