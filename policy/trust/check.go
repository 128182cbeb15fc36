package trust

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Status is the verdict for one pair.
type Status string

// The verdicts, from worst to best.
const (
	StatusTooBroad   Status = "too-broad"
	StatusMismatched Status = "mismatched"
	StatusMissing    Status = "missing"
	StatusOK         Status = "ok"
)

// Finding is the verdict for one namespace/ServiceAccount on the cloud side.
type Finding struct {
	Cloud          policy.Cloud `json:"cloud"`
	Identity       string       `json:"identity"`
	Namespace      string       `json:"namespace"`
	ServiceAccount string       `json:"serviceAccount"`
	// Target is the cloud resource checked: role ARN, client ID, Google service account, or for direct GCP federation
	// the principal.
	Target string `json:"target"`
	Status Status `json:"status"`
	// Detail is the exact difference (mismatched), what admits too much (too-broad), what was not found (missing), or
	// for direct GCP federation what grants it (ok).
	Detail string `json:"detail,omitempty"`
	Source string `json:"source,omitempty"`
}

// Check compares the documents with what the pairs need. Every pair gets one finding. A grant that admits the pair
// but also others (wildcards, no subject or audience condition, pool-wide principal sets) makes it too-broad even when
// an exact grant exists too; otherwise an exact grant makes it ok; otherwise the closest near miss (wrong issuer or
// provider, condition key, subject, audience, role) makes it mismatched, with the difference; otherwise missing.
func Check(pairs []Pair, docs *Documents, o Options) []Finding {
	// Subjects each resource is meant to trust: a subject one of these expects is not a near miss for another.
	// Direct GCP members share the resources' policies: any of them is expected there.
	expected := map[string]map[string]bool{}
	for _, p := range pairs {
		t := target(p, o)
		if direct(p) {
			t = directTarget
		}
		if expected[t] == nil {
			expected[t] = map[string]bool{}
		}
		expected[t][p.Subject()] = true
		if p.Match.Cloud == policy.CloudGCP {
			expected[t][GCPMember(p, o.WorkloadPool)] = true
		}
	}
	out := make([]Finding, 0, len(pairs))
	for _, p := range pairs {
		t := target(p, o)
		f := Finding{Cloud: p.Match.Cloud, Identity: p.Match.Identity.Name, Namespace: p.Namespace,
			ServiceAccount: p.ServiceAccount, Target: t, Source: docs.Sources[t]}
		var v verdict
		switch {
		case NeedsEKSCluster(p):
			v = checkPodIdentity(p, docs, o.EKSClusterARN, expected[t])
			f.Source = podIdentitySources(p, docs, o.EKSClusterARN)
		case p.Match.Cloud == policy.CloudAWS:
			v = checkAWS(p, docs.AWSRoles[t], o.Issuer, expected[t])
		case p.Match.Cloud == policy.CloudAzure:
			creds, ok := docs.Azure[t]
			v = checkAzure(p, creds, ok, o.Issuer, expected[t])
		case direct(p):
			v = checkGCPDirect(p, docs.GCPResources, o.WorkloadPool, expected[directTarget])
			f.Source = strings.Join(docs.gcpResourceSources(), ", ")
		default:
			v = checkGCP(p, docs.GCP[t], o.WorkloadPool, expected[t])
		}
		f.Status, f.Detail = v.result()
		out = append(out, f)
	}
	return out
}

func target(p Pair, o Options) string {
	switch {
	case p.Match.Cloud == policy.CloudAWS:
		return p.Match.RoleARN
	case p.Match.Cloud == policy.CloudAzure:
		return strings.ToLower(p.Match.Identity.Azure.ClientID)
	case direct(p):
		return GCPMember(p, o.WorkloadPool)
	default:
		return p.Match.GCPServiceAccount
	}
}

// directTarget keys the members expected on the resources direct federation grants roles on.
const directTarget = "gcp resources"

// direct says whether the pair is GCP direct federation.
func direct(p Pair) bool { return p.Match.Cloud == policy.CloudGCP && p.Match.Identity.GCP.Direct() }

// verdict collects what the documents say about one pair.
type verdict struct {
	ok bool
	// okDetail says what grants the pair, when that is worth printing (direct federation: which resources).
	okDetail string
	broad    string
	nearMiss []nearMiss
	missing  string
}

// nearMiss is a grant that almost admits the pair; rank orders them (lower is more telling).
type nearMiss struct {
	rank   int
	detail string
}

func (v *verdict) miss(rank int, format string, args ...any) {
	v.nearMiss = append(v.nearMiss, nearMiss{rank: rank, detail: fmt.Sprintf(format, args...)})
}

func (v *verdict) result() (Status, string) {
	switch {
	case v.broad != "":
		return StatusTooBroad, v.broad
	case v.ok:
		return StatusOK, v.okDetail
	case len(v.nearMiss) > 0:
		best := slices.MinFunc(v.nearMiss, func(a, b nearMiss) int { return a.rank - b.rank })
		return StatusMismatched, best.detail
	default:
		return StatusMissing, v.missing
	}
}

// Near-miss ranks: a grant right in everything but one value beats a grant that merely exists for someone else.
const (
	rankAudience = iota
	rankIssuer
	rankConditionKey
	rankCase
	rankSubject
)

func checkAWS(p Pair, doc *AWSTrustPolicy, issuer string, expected map[string]bool) verdict {
	var v verdict
	if doc == nil {
		v.missing = "no exported document for role " + p.Match.RoleARN + " (add its aws iam get-role output)"
		return v
	}
	provider := AWSProviderARN(p.Match.RoleARN, issuer)
	key := AWSProviderPath(issuer)
	subject := p.Subject()
	audience := p.Match.Identity.AWS.Audience
	if audience == "" {
		audience = keys.AWSDefaultAudience
	}
	v.missing = "role " + p.Match.RoleARN + " has no statement trusting " + subject
	for _, st := range doc.Statement {
		if st.Effect != "Allow" || !webIdentityAction(st.Action) {
			continue
		}
		if st.Principal.Any {
			v.broad = `a statement trusts Principal "*"`
			continue
		}
		federated := st.Principal.ByType["Federated"]
		if !slices.Contains(federated, provider) {
			for _, f := range federated {
				if strings.Contains(f, ":oidc-provider/") {
					v.miss(rankIssuer, "trusted provider is %s, want %s", f, provider)
				}
			}
			continue
		}
		if others := otherKeys(st.Condition, key); len(others) > 0 {
			// A condition on a key the token does not carry never holds: the statement admits nobody.
			for _, k := range others {
				v.miss(rankConditionKey, "condition key %s, want %s", k, key+k[strings.LastIndex(k, ":"):])
			}
			continue
		}
		sub := evalCondition(st.Condition, key+":sub", subject)
		aud := evalCondition(st.Condition, key+":aud", audience)
		switch {
		case sub.admits && aud.admits:
			switch {
			case sub.broad != "":
				v.broad = sub.broad
			case aud.broad != "":
				v.broad = aud.broad
			default:
				v.ok = true
			}
		case sub.admits:
			v.miss(rankAudience, "%s:aud is %s, want %s", key, strings.Join(aud.values, ", "), audience)
		default:
			for _, val := range sub.values {
				switch {
				case expected[val]:
				case strings.EqualFold(val, subject):
					v.miss(rankCase, "%s:sub is %s, want %s (case differs)", key, val, subject)
				default:
					v.miss(rankSubject, "%s:sub is %s, want %s", key, val, subject)
				}
			}
		}
	}
	return v
}

func webIdentityAction(actions stringSet) bool {
	for _, a := range actions {
		if a == "*" || a == "sts:*" || strings.EqualFold(a, awsWebIdentityAction) {
			return true
		}
	}
	return false
}

// condition is how the conditions on one key treat one value.
type condition struct {
	admits bool
	found  bool     // some condition names the key
	broad  string   // why it admits more than the value, if it does
	values []string // every value the conditions name
}

// evalCondition evaluates every condition on key (IAM condition keys are case-insensitive; all conditions must hold)
// for value. No condition on the key admits everything, which is too broad.
func evalCondition(conds map[string]map[string]stringSet, key, value string) condition {
	c := condition{admits: true}
	found := false
	for op, byKey := range conds {
		for k, vals := range byKey {
			if !strings.EqualFold(k, key) {
				continue
			}
			holds := false
			switch op {
			case "StringEquals":
				holds = slices.Contains(vals, value)
			case "StringEqualsIgnoreCase":
				holds = slices.ContainsFunc(vals, func(s string) bool { return strings.EqualFold(s, value) })
			case "StringLike":
				for _, pat := range vals {
					if likeMatch(pat, value) {
						holds = true
						if strings.ContainsAny(pat, "*?") {
							c.broad = fmt.Sprintf("StringLike %s admits %s", key, pat)
						}
					}
				}
			default:
				// Other operators (StringNotEquals, ForAnyValue:..., Null) only narrow what the operators above
				// admit; they are not evaluated, and alone they do not pin the key down.
				continue
			}
			found = true
			c.values = append(c.values, vals...)
			if !holds {
				c.admits = false
			}
		}
	}
	slices.Sort(c.values)
	c.values = slices.Compact(c.values)
	c.found = found
	if !found {
		c.broad = "no condition on " + key + ": every token from the issuer is admitted"
	}
	return c
}

// likeMatch is IAM's StringLike: '*' matches any run of characters including '/', '?' exactly one.
func likeMatch(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if likeMatch(pat[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && likeMatch(pat[1:], s[1:])
	default:
		return s != "" && s[0] == pat[0] && likeMatch(pat[1:], s[1:])
	}
}

// otherKeys lists :sub and :aud condition keys that name another issuer path than key (a scheme, a trailing slash,
// another cluster).
func otherKeys(conds map[string]map[string]stringSet, key string) []string {
	var out []string
	for _, byKey := range conds {
		for k := range byKey {
			lower := strings.ToLower(k)
			if (strings.HasSuffix(lower, ":sub") || strings.HasSuffix(lower, ":aud")) &&
				!strings.EqualFold(k[:strings.LastIndex(k, ":")], key) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func checkAzure(p Pair, creds []AzureCredential, exported bool, issuer string, expected map[string]bool) verdict {
	var v verdict
	clientID := p.Match.Identity.Azure.ClientID
	if !exported {
		v.missing = "no exported federated credentials for client ID " + clientID +
			" (add az identity federated-credential list output as " + clientID + "=FILE)"
		return v
	}
	subject := p.Subject()
	v.missing = "no federated credential for issuer " + issuer + " and subject " + subject
	for _, c := range creds {
		sameIssuer := c.Issuer == issuer
		if c.ClaimsMatchingExpression != nil && sameIssuer {
			v.broad = fmt.Sprintf("credential %s matches subjects by expression %q", c.Name, c.ClaimsMatchingExpression.Value)
			continue
		}
		switch {
		case sameIssuer && c.Subject == subject:
			if slices.Equal(c.Audiences, []string{keys.AzureAudience}) {
				v.ok = true
			} else {
				v.miss(rankAudience, "credential %s has audiences [%s], want [%s]", c.Name,
					strings.Join(c.Audiences, ", "), keys.AzureAudience)
			}
		case sameIssuer && strings.ContainsAny(c.Subject, "*?"):
			v.miss(rankSubject, "credential %s has subject %s: Azure matches subjects exactly, want %s",
				c.Name, c.Subject, subject)
		case c.Subject == subject:
			detail := ""
			if strings.TrimSuffix(c.Issuer, "/") == strings.TrimSuffix(issuer, "/") {
				detail = " (a trailing slash differs; Azure compares issuers exactly)"
			}
			v.miss(rankIssuer, "credential %s has issuer %s, want %s%s", c.Name, c.Issuer, issuer, detail)
		case sameIssuer && strings.EqualFold(c.Subject, subject):
			v.miss(rankCase, "credential %s has subject %s, want %s (case differs)", c.Name, c.Subject, subject)
		case sameIssuer && !expected[c.Subject]:
			v.miss(rankSubject, "credential %s has subject %s, want %s", c.Name, c.Subject, subject)
		}
	}
	return v
}

func checkGCP(p Pair, doc *GCPPolicy, workloadPool string, expected map[string]bool) verdict {
	var v verdict
	gsa := p.Match.GCPServiceAccount
	if doc == nil {
		v.missing = "no exported IAM policy for " + gsa + " (add gcloud iam service-accounts get-iam-policy output as " +
			gsa + "=FILE)"
		return v
	}
	member := GCPMember(p, workloadPool)
	pool := gcpPool(member)
	v.missing = gsa + " does not grant " + GCPWorkloadIdentityRole + " to " + member
	for _, b := range doc.Bindings {
		for _, m := range b.Members {
			exact := m == member || gkePrincipal(m, pool, p)
			switch {
			case exact && b.Role == GCPWorkloadIdentityRole:
				v.ok = true
			case exact:
				v.miss(rankAudience, "%s is granted %s, want %s", m, b.Role, GCPWorkloadIdentityRole)
			case b.Role != GCPWorkloadIdentityRole:
			case m == "allUsers" || m == "allAuthenticatedUsers":
				v.broad = m + " is granted " + b.Role
			case principalSetCovers(m, pool, p.Namespace):
				v.broad = m + " grants " + b.Role + " to a set of identities of pool " + pool
			case strings.EqualFold(m, member):
				v.miss(rankCase, "member %s, want %s (case differs)", m, member)
			case !expected[m] && (strings.HasPrefix(m, "serviceAccount:") && strings.Contains(m, ".svc.id.goog[") ||
				strings.HasPrefix(m, "principal://")):
				rank := rankSubject
				if gcpPool(m) != pool {
					rank = rankIssuer
				}
				v.miss(rank, "member %s, want %s", m, member)
			}
		}
	}
	return v
}

// principalSetCovers reports whether a principalSet member of the pool includes the namespace: the whole pool
// (".../POOL/*"), the namespace (GKE: ".../POOL/namespace/NS"), or attribute-based sets, which are not evaluated
// here and count as covering.
func principalSetCovers(m, pool, namespace string) bool {
	if !strings.HasPrefix(m, "principalSet://") || pool == "" {
		return false
	}
	_, rest, ok := strings.Cut(m, "/workloadIdentityPools/"+pool+"/")
	if !ok {
		return false
	}
	if ns, isNS := strings.CutPrefix(rest, "namespace/"); isNS {
		return ns == namespace
	}
	return true
}

// gcpPool is the workload pool a member names: POOL of serviceAccount:POOL[NS/SA] or of a principal URL.
func gcpPool(member string) string {
	if rest, ok := strings.CutPrefix(member, "serviceAccount:"); ok {
		pool, _, _ := strings.Cut(rest, "[")
		return pool
	}
	_, rest, ok := strings.Cut(member, "/workloadIdentityPools/")
	if !ok {
		return ""
	}
	pool, _, _ := strings.Cut(rest, "/")
	return pool
}

// gkePrincipal accepts GKE's newer principal form for the same ServiceAccount:
// principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/subject/ns/NS/sa/SA.
func gkePrincipal(m, pool string, p Pair) bool {
	return p.Match.Identity.GCP.WorkloadIdentityProvider == "" && strings.HasPrefix(m, "principal://iam.googleapis.com/projects/") &&
		strings.HasSuffix(m, "/workloadIdentityPools/"+pool+"/subject/ns/"+p.Namespace+"/sa/"+p.ServiceAccount)
}

// Problems counts findings that are not ok.
func Problems(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Status != StatusOK {
			n++
		}
	}
	return n
}
