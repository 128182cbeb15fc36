package pods

import (
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// The pod annotations full injection honours, read as the cloud's own webhook reads them. Where that webhook is
// silent about a value it ignores or changes, full injection says so in a warning; where the value would break the
// pod, it is a violation of the identity, answered in the identity's mode.

// SkippedContainers are the containers of a pod that full injection of the cloud leaves alone: the names in the
// cloud's skip-containers annotation (AWS separates them with ',', Azure with ';'; GCP has none).
func SkippedContainers(cloud policy.Cloud, annotations map[string]string) map[string]bool {
	names, _ := skipList(cloud, annotations)
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		if n != "" {
			out[n] = true
		}
	}
	return out
}

// skipList is the cloud's skip-containers annotation as the cloud's webhook splits it.
//
// AWS (aws/amazon-eks-pod-identity-webhook pkg/handler getContainersToSkip): the value is one CSV record
// (encoding/csv, quotes allowed); a value that is not CSV skips nothing (the error is returned for a warning). The EKS
// webhook keeps spaces around a name, so "a, b" never skips b; full injection trims them, as a container name never
// holds a space.
//
// Azure (Azure/azure-workload-identity pkg/webhook getSkipContainers): split on ';', spaces trimmed.
func skipList(cloud policy.Cloud, annotations map[string]string) ([]string, error) {
	switch cloud {
	case policy.CloudAWS:
		v, ok := annotations[keys.AnnotationAWSSkipContainers]
		if !ok || v == "" {
			return nil, nil
		}
		names, err := csv.NewReader(strings.NewReader(v)).Read()
		if err != nil {
			return nil, err
		}
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		return names, nil
	case policy.CloudAzure:
		v := annotations[keys.AnnotationAzureSkipContainers]
		if v == "" {
			return nil, nil
		}
		names := strings.Split(v, ";")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		return names, nil
	}
	return nil, nil
}

// containerName is what Kubernetes accepts as a container name (a DNS-1123 label).
var containerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// skipWarnings flag a skip-containers annotation that cannot mean what its author wrote: not CSV, or an entry that
// is no container name (the other cloud's separator, a space inside).
func skipWarnings(identity string, cloud policy.Cloud, annotations map[string]string) []string {
	key, sep := keys.AnnotationAWSSkipContainers, "','"
	if cloud == policy.CloudAzure {
		key, sep = keys.AnnotationAzureSkipContainers, "';'"
	}
	names, err := skipList(cloud, annotations)
	if err != nil {
		return []string{verdict.FitMessage(identity, fmt.Sprintf("%s is not a CSV list of names: no container is skipped", key),
			key+" is not a list: no container is skipped")}
	}
	var warnings []string
	bad := 0
	for _, n := range names {
		if n == "" || containerName.MatchString(n) {
			continue
		}
		if bad++; bad <= maxContainerWarnings { // a request can list any number: name a few, count the rest
			warnings = append(warnings, verdict.FitMessage(identity,
				fmt.Sprintf("%s entry %q is not a container name: separate names with %s", key, verdict.Short(n), sep),
				fmt.Sprintf("%s has an entry that is not a container name: separate names with %s", key, sep)))
		}
	}
	if bad > maxContainerWarnings {
		warnings = append(warnings, verdict.FitMessage(identity, fmt.Sprintf("%s has %d more entries that are not container names",
			key, bad-maxContainerWarnings)))
	}
	return warnings
}

// tokenSeconds is the lifetime of the pod's token: the pod's lifetime annotation as the cloud's webhook honours it,
// else the identity's (which the ServiceAccount carries), else the cloud's default. A value the cloud's webhook would
// change or ignore gives a warning; one it would deny, or the API server refuse, a violation (the identity's lifetime
// then applies where the violation is not enforced). GCP has no such annotation.
func tokenSeconds(m policy.Match, annotations map[string]string) (seconds int64, warnings []string, violations []verdict.Violation) {
	name := m.Identity.Name
	switch m.Cloud {
	case policy.CloudAWS:
		// aws/amazon-eks-pod-identity-webhook pkg/handler parsePodAnnotations: the pod annotation overrides the
		// ServiceAccount's; one that is not a number is ignored; pkg.ValidateMinTokenExpiration raises it to 600.
		seconds = keys.AWSDefaultTokenSeconds
		if t := m.Identity.AWS.TokenExpirationSeconds; t != nil {
			seconds = *t
		}
		v, ok := annotations[keys.AnnotationAWSTokenExpiration]
		if !ok {
			return seconds, nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			warnings = append(warnings, verdict.FitMessage(name,
				fmt.Sprintf("%s %q is not a number: the token lives %d s", keys.AnnotationAWSTokenExpiration, verdict.Short(v), seconds),
				fmt.Sprintf("%s is not a number: the token lives %d s", keys.AnnotationAWSTokenExpiration, seconds)))
		case n < keys.AWSMinTokenSeconds:
			seconds = keys.AWSMinTokenSeconds
			warnings = append(warnings, verdict.FitMessage(name, fmt.Sprintf("%s %d is under %d: the token lives %d s",
				keys.AnnotationAWSTokenExpiration, n, keys.AWSMinTokenSeconds, keys.AWSMinTokenSeconds)))
		case n > keys.MaxTokenSeconds:
			violations = append(violations, verdict.Violation{RuleType: verdict.RuleIdentity, Rule: name, Mode: m.Identity.Mode,
				Message: verdict.FitMessage(name, fmt.Sprintf("%s %d is over 2^32 s, which the API server refuses: lower it",
					keys.AnnotationAWSTokenExpiration, n))})
		default:
			seconds = n
		}
		return seconds, warnings, violations
	case policy.CloudAzure:
		// Azure/azure-workload-identity pkg/webhook getServiceAccountTokenExpiration: a non-empty pod annotation
		// overrides the ServiceAccount's; one that is not a number or outside 3600..86400 denies the pod.
		seconds = keys.AzureDefaultTokenSeconds
		if t := m.Identity.Azure.TokenExpirationSeconds; t != nil {
			seconds = *t
		}
		v := annotations[keys.AnnotationAzureTokenExpiration]
		if v == "" {
			return seconds, nil, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < keys.AzureMinTokenSeconds || n > keys.AzureMaxTokenSeconds {
			violations = append(violations, verdict.Violation{RuleType: verdict.RuleIdentity, Rule: name, Mode: m.Identity.Mode,
				Message: verdict.FitMessage(name,
					fmt.Sprintf("%s %q is not %d..%d s: fix or remove it", keys.AnnotationAzureTokenExpiration, verdict.Short(v),
						keys.AzureMinTokenSeconds, keys.AzureMaxTokenSeconds),
					fmt.Sprintf("%s %q is not %d..%d s", keys.AnnotationAzureTokenExpiration, verdict.Short(v),
						keys.AzureMinTokenSeconds, keys.AzureMaxTokenSeconds),
					fmt.Sprintf("%s is not %d..%d seconds: fix or remove it", keys.AnnotationAzureTokenExpiration,
						keys.AzureMinTokenSeconds, keys.AzureMaxTokenSeconds))})
			return seconds, nil, violations
		}
		return n, nil, nil
	}
	return keys.GCPTokenSeconds, nil, nil
}
