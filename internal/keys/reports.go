package keys

// The policy reports `audit` writes (internal/reports).
const (
	// ReportSource is the results' source and each report's name: one report of each format per namespace, so a
	// second `audit --apply` replaces the first instead of adding to it.
	ReportSource = "flux-identity-webhook"
	// LabelManagedBy marks the reports this project wrote (value ReportSource), the ones a later run may replace or
	// delete; reports of other tools (Kyverno's, Gatekeeper's) never carry it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationResultsOmitted (report) counts the results left out of a report held to its result limit; the
	// summary still counts them.
	AnnotationResultsOmitted = "fluxidentity.dev/results-omitted"
)
