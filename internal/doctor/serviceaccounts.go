package doctor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
	"github.com/fluxidentity/flux-identity-webhook/webhook/serviceaccounts"
)

// readServiceAccounts checks every mapped ServiceAccount against what the webhook writes for it and remembers which
// exist, with the time their identity annotation was last written; it also keeps what failing objects' identities
// need of the ServiceAccounts they come from (d.wanted), read in the same pass.
func (d *diagnosis) readServiceAccounts(ctx context.Context) error {
	namespaces := slices.Clone(d.mapped)
	for key := range d.wanted {
		if ns, _, _ := strings.Cut(key, "/"); !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	slices.Sort(namespaces)
	newList := func() *corev1.ServiceAccountList { return &corev1.ServiceAccountList{} }
	err := listIn(ctx, d, scopeFor(namespaces, d.namespaces), "serviceaccounts", newList,
		func(list *corev1.ServiceAccountList) error {
			for i := range list.Items {
				sa := &list.Items[i]
				if _, ok := d.wanted[sa.Namespace+"/"+sa.Name]; ok {
					d.wanted[sa.Namespace+"/"+sa.Name] = &saFacts{annotations: sa.Annotations, labels: sa.Labels}
				}
				m, ok := d.p.IdentityFor(sa.Namespace, sa.Name)
				if !ok {
					continue
				}
				d.serviceAccounts[sa.Namespace+"/"+sa.Name] = annotationWrittenAt(sa, identityKey(m.Cloud))
				if f, bad := checkServiceAccountMetadata(sa, m); bad {
					d.findings = append(d.findings, f)
				}
				if f, bad := checkPullSecrets(d.p, sa, m); bad {
					d.findings = append(d.findings, f)
				}
			}
			return nil
		})
	d.saRead = err == nil
	return err
}

// checkServiceAccountMetadata compares a mapped ServiceAccount with exactly what the webhook writes for it.
func checkServiceAccountMetadata(sa *corev1.ServiceAccount, m policy.Match) (Finding, bool) {
	wantAnn, wantLabels := serviceaccounts.Metadata(m)
	var diffs, set, unset []string
	for _, k := range slices.Sorted(maps.Keys(wantAnn)) {
		have, ok := sa.Annotations[k]
		switch {
		case !ok:
			diffs = append(diffs, "annotation "+k+" is missing")
		case have != wantAnn[k]:
			diffs = append(diffs, fmt.Sprintf("annotation %s is %q, want %q", k, have, wantAnn[k]))
		default:
			continue
		}
		set = append(set, k+"="+wantAnn[k])
	}
	for _, k := range keys.IdentityAnnotationKeys {
		if _, granted := wantAnn[k]; !granted {
			if _, ok := sa.Annotations[k]; ok {
				diffs = append(diffs, "annotation "+k+" is set but the policy does not grant it")
				unset = append(unset, k+"-")
			}
		}
	}
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(wantLabels)) {
		if sa.Labels[k] != wantLabels[k] {
			diffs = append(diffs, fmt.Sprintf("label %s is %q, want %q", k, sa.Labels[k], wantLabels[k]))
			labels = append(labels, k+"="+wantLabels[k])
		}
	}
	if len(diffs) == 0 {
		return Finding{}, false
	}
	var fix []string
	if len(set)+len(unset) > 0 {
		fix = append(fix, "kubectl -n "+sa.Namespace+" annotate serviceaccount "+sa.Name+" --overwrite "+
			quoteAll(append(set, unset...)))
	}
	if len(labels) > 0 {
		fix = append(fix, "kubectl -n "+sa.Namespace+" label serviceaccount "+sa.Name+" --overwrite "+quoteAll(labels))
	}
	return Finding{Check: CheckServiceAccount, Namespace: sa.Namespace, Name: sa.Name, Identity: m.Identity.Name,
		Problem: strings.Join(diffs, "; "), Fix: strings.Join(fix, " && ")}, true
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = trust.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// checkPullSecrets reports mapped ServiceAccounts that carry imagePullSecrets where a mandate covers a kind whose
// sources read them: admission refuses new ones, this finds those that were there before.
func checkPullSecrets(p *policy.Policy, sa *corev1.ServiceAccount, m policy.Match) (Finding, bool) {
	if len(sa.ImagePullSecrets) == 0 {
		return Finding{}, false
	}
	mandate := serviceaccounts.PullSecretMandate(p, sa.Namespace)
	if mandate == nil {
		return Finding{}, false
	}
	return Finding{Check: CheckServiceAccount, Namespace: sa.Namespace, Name: sa.Name, Identity: m.Identity.Name,
		Problem: fmt.Sprintf("carries %d imagePullSecrets: an OCIRepository naming it uses them instead of its identity "+
			"(mandate %s)", len(sa.ImagePullSecrets), mandate.Name),
		Fix: "kubectl -n " + sa.Namespace + " patch serviceaccount " + sa.Name + " --type json -p " +
			trust.ShellQuote(`[{"op":"remove","path":"/imagePullSecrets"}]`) +
			" (pods that need them list them in spec.imagePullSecrets)"}, true
}

// missingServiceAccounts reports the exact namespace/ServiceAccount names of the policy that do not exist (exists
// holds NS/SA of those that do; mapped lists the existing namespaces the policy maps). Globs cannot be missing: they
// stand for whatever exists.
func missingServiceAccounts(p *policy.Policy, mapped []string, exists map[string]*time.Time) []Finding {
	var out []Finding
	for i := range p.Spec.Identities {
		id := &p.Spec.Identities[i]
		for _, ns := range id.Namespaces {
			for _, sa := range id.ServiceAccounts {
				if _, ok := exists[ns+"/"+sa]; ok || policy.IsGlob(ns) || policy.IsGlob(sa) {
					continue
				}
				if m, ok := p.IdentityFor(ns, sa); !ok || m.Identity != id {
					continue
				}
				problem := "mapped by the policy but does not exist"
				if !slices.Contains(mapped, ns) {
					problem += " (namespace " + ns + " does not exist)"
				}
				out = append(out, Finding{Check: CheckServiceAccount, Namespace: ns, Name: sa, Identity: id.Name,
					Problem: problem,
					Fix: "kubectl -n " + ns + " create serviceaccount " + sa +
						" (the webhook annotates it), or remove it from identity " + id.Name})
			}
		}
	}
	return out
}

// identityKey is the ServiceAccount annotation that carries a cloud's identity: its last write tells when a pod that
// lacks the identity should have got it.
func identityKey(c policy.Cloud) string {
	switch c {
	case policy.CloudAWS:
		return keys.AnnotationAWSRoleARN
	case policy.CloudAzure:
		return keys.AnnotationAzureClientID
	case policy.CloudGCP:
		return keys.AnnotationGCPServiceAccount
	}
	return keys.AnnotationIdentity
}

// annotationWrittenAt is the latest time of the managedFields entries owning the annotation, if any.
func annotationWrittenAt(obj metav1.Object, key string) *time.Time {
	field := `"f:` + key + `"`
	var at *time.Time
	for _, mf := range obj.GetManagedFields() {
		if mf.FieldsV1 != nil && mf.Time != nil && strings.Contains(mf.FieldsV1.GetRawString(), field) &&
			(at == nil || mf.Time.After(*at)) {
			t := mf.Time.Time
			at = &t
		}
	}
	return at
}
