package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/audit"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/reports"
)

// ReportOptions say what `audit` does with policy reports.
type ReportOptions struct {
	// Apply writes the reports to the cluster after a complete read.
	Apply bool
	// FailOnViolations exits 1 when there are violations in enforce or warn mode (off for a scheduled audit, whose
	// job would otherwise fail, and be retried, whenever the cluster has a violation).
	FailOnViolations bool
	// MaxResults bounds the results of one report.
	MaxResults int
}

func defaultReportOptions() ReportOptions {
	return ReportOptions{FailOnViolations: true, MaxResults: reports.DefaultMaxResults}
}

func (o *ReportOptions) bindFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Apply, "apply", o.Apply,
		"Write the reports to the cluster (both formats it serves) after a complete read; delete those of earlier runs "+
			"in namespaces without violations now.")
	fs.BoolVar(&o.FailOnViolations, "fail-on-violations", o.FailOnViolations,
		"Exit 1 when there are violations in enforce or warn mode.")
	fs.IntVar(&o.MaxResults, "max-results", o.MaxResults,
		"Results a report holds at most, the most severe first; the summary counts the rest.")
}

func (o *ReportOptions) validate() error {
	if o.MaxResults <= 0 {
		return fmt.Errorf("--max-results must be positive, got %d", o.MaxResults)
	}
	return nil
}

// auditOutputs are audit's -o values: its own formats, then the report formats by their lower-case kind.
var auditOutputs = []string{"table", "json", "policyreport", "report"}

const reportsHelp = `Reports: -o policyreport and -o report print a wgpolicyk8s.io/v1alpha2 PolicyReport or an openreports.io/v1alpha1
Report for each namespace with violations, named flux-identity-webhook and labelled
app.kubernetes.io/managed-by=flux-identity-webhook: one result per violation with the mandate as policy, the field
as rule, the source as resource and the fix as message; fail/high in enforce, warn/medium in warn, skip/info when
off. --apply writes both formats the cluster serves by server-side apply, only after a complete read, and deletes
the reports of earlier runs in namespaces that have no violations now, so a fixed violation leaves its report. It
needs list, create, patch and delete on policyreports.wgpolicyk8s.io and reports.openreports.io cluster-wide.`

// outputAPI is the report format an -o value names.
func outputAPI(output string) reports.API {
	if output == "policyreport" {
		return reports.PolicyReport
	}
	return reports.Report
}

// writeReports prints the reports of res in the format output names.
func writeReports(w io.Writer, output string, res audit.Result, o ReportOptions, now time.Time) error {
	objs, err := reports.Build(outputAPI(output), res, reports.Options{Now: now, MaxResults: o.MaxResults})
	if err != nil {
		return err
	}
	return reports.WriteYAML(w, objs)
}

// applyReports writes the reports of res, in each format the cluster serves, within --timeout, and says on stderr
// what it did. A format the cluster does not serve is skipped with a note; serving neither is an error (exit 2).
func (o AuditOptions) applyReports(ctx context.Context, c client.Client, res audit.Result, now time.Time,
	stderr io.Writer,
) error {
	ctx, cancel := context.WithTimeout(ctx, o.Cluster.Timeout)
	defer cancel()
	l := &kubelist.Lister{Reader: c, PageSize: o.Cluster.ChunkSize}
	served := 0
	for _, api := range reports.APIs {
		objs, err := reports.Build(api, res, reports.Options{Now: now, MaxResults: o.Reports.MaxResults})
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		done, err := reports.Apply(ctx, c, l, api, objs)
		if apimeta.IsNoMatchError(err) {
			_, _ = fmt.Fprintf(stderr, "note: the cluster does not serve %s (%s/%s); not written\n", api.Kind,
				api.Group, api.Version)
			continue
		}
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("write reports: %w (%d %ss written, %d deleted before it)", err,
				done.Written, api.Kind, done.Deleted)}
		}
		served++
		_, _ = fmt.Fprintf(stderr, "%ss: %d written, %d deleted\n", api.Kind, done.Written, done.Deleted)
	}
	if served == 0 {
		return &exitError{code: 2, err: errors.New("--apply: the cluster serves neither PolicyReport " +
			"(wgpolicyk8s.io/v1alpha2) nor Report (openreports.io/v1alpha1): install either CRD")}
	}
	return nil
}
