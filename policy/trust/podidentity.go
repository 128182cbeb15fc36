package trust

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// EKS Pod Identity: the role trusts the EKS service principal pods.eks.amazonaws.com for sts:AssumeRole and
// sts:TagSession, narrowed by the session tags EKS Auth sets (aws:RequestTag/kubernetes-namespace,
// .../kubernetes-service-account, .../eks-cluster-arn: EKS User Guide, pod-id-role and pod-id-abac), and an association
// in the EKS API names the cluster, namespace, ServiceAccount and role.

const (
	awsAssumeRoleAction = "sts:AssumeRole"
	awsTagSessionAction = "sts:TagSession"
	requestTag          = "aws:RequestTag/"
)

// PodIdentityAssociation is one EKS Pod Identity association, as aws eks create-pod-identity-association takes it.
type PodIdentityAssociation struct {
	ClusterName    string `json:"clusterName"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	RoleARN        string `json:"roleArn"`
}

// eksClusterARN is arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME; EKS cluster names are 1-100 of [A-Za-z0-9_-],
// starting with a letter or digit.
var eksClusterARN = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-[a-z]|aws-eusc):eks:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:cluster/[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)

// ValidateEKSClusterARN checks an EKS cluster ARN.
func ValidateEKSClusterARN(arn string) error {
	if !eksClusterARN.MatchString(arn) {
		return fmt.Errorf("EKS cluster %q is not a cluster ARN (arn:aws:eks:REGION:ACCOUNT:cluster/NAME: "+
			"aws eks describe-cluster --name NAME --query cluster.arn)", arn)
	}
	return nil
}

// EKSClusterParts returns the region, account and name of a (validated) cluster ARN.
func EKSClusterParts(arn string) (region, account, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "", "", ""
	}
	return parts[3], parts[4], strings.TrimPrefix(parts[5], "cluster/")
}

// addPodIdentity trusts one more pair through EKS Pod Identity: its ServiceAccount joins the statement of its
// namespace, or a new one is started (one statement per namespace, so that each condition lists only one namespace's
// ServiceAccounts: a statement over two namespaces and their ServiceAccounts would admit every combination), and the
// pair's association is added.
func (r *AWSRole) addPodIdentity(p Pair, clusterARN string) {
	r.ServiceAccounts = append(r.ServiceAccounts, p.String())
	_, _, cluster := EKSClusterParts(clusterARN)
	r.Associations = append(r.Associations, PodIdentityAssociation{ClusterName: cluster, Namespace: p.Namespace,
		ServiceAccount: p.ServiceAccount, RoleARN: r.RoleARN})
	nsKey, saKey := requestTag+keys.AWSPodIdentityTagNS, requestTag+keys.AWSPodIdentityTagSA
	for i := range r.TrustPolicy.Statement {
		cond := r.TrustPolicy.Statement[i].Condition["StringEquals"]
		if r.TrustPolicy.Statement[i].Principal["Service"] != keys.AWSPodIdentityPrincipal || cond[nsKey] != p.Namespace {
			continue
		}
		switch sas := cond[saKey].(type) {
		case string:
			cond[saKey] = []string{sas, p.ServiceAccount}
		case []string:
			cond[saKey] = append(sas, p.ServiceAccount)
		}
		return
	}
	r.TrustPolicy.Statement = append(r.TrustPolicy.Statement, Statement{
		Effect:    "Allow",
		Principal: map[string]string{"Service": keys.AWSPodIdentityPrincipal},
		Action:    Actions{awsAssumeRoleAction, awsTagSessionAction},
		Condition: map[string]map[string]any{"StringEquals": {
			requestTag + keys.AWSPodIdentityTagCluster: clusterARN,
			nsKey: p.Namespace,
			saKey: p.ServiceAccount,
		}},
	})
}

// crossAccountRoles refuses Pod Identity roles of another account than the cluster's: EKS associates only roles of the
// cluster's account (EKS User Guide, pod-identities "EKS Pod Identity considerations").
func crossAccountRoles(roles []AWSRole, clusterARN string) []Refusal {
	_, clusterAccount, _ := EKSClusterParts(clusterARN)
	var out []Refusal
	for _, r := range roles {
		if len(r.Associations) == 0 {
			continue
		}
		if _, account := awsARNParts(r.RoleARN); account != clusterAccount {
			out = append(out, Refusal{Cloud: policy.CloudAWS, Target: r.RoleARN, Identities: r.ServiceAccounts,
				Message: fmt.Sprintf("role %s is in account %s and cluster %s in account %s: EKS Pod Identity "+
					"associates roles of the cluster's account only", r.RoleARN, account, clusterARN, clusterAccount)})
		}
	}
	return out
}

// AssociationDoc is an association as aws eks describe-pod-identity-association prints it.
type AssociationDoc struct {
	AssociationID      string `json:"associationId"`
	ClusterName        string `json:"clusterName"`
	Namespace          string `json:"namespace"`
	ServiceAccount     string `json:"serviceAccount"`
	RoleArn            string `json:"roleArn"`
	TargetRoleArn      string `json:"targetRoleArn"`
	DisableSessionTags bool   `json:"disableSessionTags"`

	source string
}

// checkPodIdentity judges a Pod Identity pair: the role's trust policy must admit the EKS service for exactly this
// namespace, ServiceAccount and cluster, and the cluster must hold an association giving the pair this role.
func checkPodIdentity(p Pair, docs *Documents, clusterARN string, expected map[string]bool) verdict {
	trust := podIdentityTrust(p, docs.AWSRoles[p.Match.RoleARN], clusterARN, expected)
	assoc := podIdentityAssociation(p, docs.PodIdentity, clusterARN, docs.AWSRoles[p.Match.RoleARN] != nil)
	switch {
	case trust.broad != "" || !trust.ok:
		return trust
	default:
		return assoc
	}
}

func podIdentityTrust(p Pair, doc *AWSTrustPolicy, clusterARN string, expected map[string]bool) verdict {
	var v verdict
	if doc == nil {
		v.missing = "no exported document for role " + p.Match.RoleARN + " (add its aws iam get-role output)"
		return v
	}
	_, _, clusterName := EKSClusterParts(clusterARN)
	v.missing = "role " + p.Match.RoleARN + " does not trust " + keys.AWSPodIdentityPrincipal + " for " + p.String()
	nsKey, saKey := requestTag+keys.AWSPodIdentityTagNS, requestTag+keys.AWSPodIdentityTagSA
	for _, st := range doc.Statement {
		if st.Effect != "Allow" || !hasAction(st.Action, awsAssumeRoleAction) {
			continue
		}
		if st.Principal.Any {
			v.broad = `a statement trusts Principal "*"`
			continue
		}
		if !slices.Contains(st.Principal.ByType["Service"], keys.AWSPodIdentityPrincipal) {
			continue
		}
		ns := evalCondition(st.Condition, nsKey, p.Namespace)
		sa := evalCondition(st.Condition, saKey, p.ServiceAccount)
		byARN := evalCondition(st.Condition, requestTag+keys.AWSPodIdentityTagCluster, clusterARN)
		byName := evalCondition(st.Condition, requestTag+"eks-cluster-name", clusterName)
		switch {
		case !ns.found:
			v.broad = "no condition on " + nsKey + ": any association in the account's clusters may use the role"
		case !sa.found:
			v.broad = "no condition on " + saKey + ": every ServiceAccount of " + p.Namespace + " with an association " +
				"may use the role"
		case ns.admits && sa.admits:
			switch {
			case ns.broad != "" || sa.broad != "":
				v.broad = ns.broad + sa.broad
			case !byARN.found && !byName.found:
				v.broad = "no condition on " + requestTag + keys.AWSPodIdentityTagCluster + ": an association in any " +
					"cluster of the account may use the role"
			case byARN.found && !byARN.admits:
				v.miss(rankIssuer, "%s%s is %s, want %s", requestTag, keys.AWSPodIdentityTagCluster,
					strings.Join(byARN.values, ", "), clusterARN)
			case byName.found && !byName.admits:
				v.miss(rankIssuer, "%seks-cluster-name is %s, want %s", requestTag, strings.Join(byName.values, ", "),
					clusterName)
			case byARN.found && byARN.broad != "":
				v.broad = byARN.broad
			case byName.found && byName.broad != "":
				v.broad = byName.broad
			case !hasAction(st.Action, awsTagSessionAction):
				v.miss(rankConditionKey, "the statement lacks %s: EKS Pod Identity tags every session it starts",
					awsTagSessionAction)
			default:
				v.ok = true
			}
		case ns.admits:
			for _, val := range sa.values {
				switch {
				case expected[Subject(p.Namespace, val)]:
				case strings.EqualFold(val, p.ServiceAccount):
					v.miss(rankCase, "%s is %s, want %s (case differs)", saKey, val, p.ServiceAccount)
				default:
					v.miss(rankSubject, "%s is %s, want %s", saKey, val, p.ServiceAccount)
				}
			}
		default:
			for _, val := range ns.values {
				if !expectsNamespace(expected, val) {
					v.miss(rankSubject, "%s is %s, want %s", nsKey, val, p.Namespace)
				}
			}
		}
	}
	return v
}

// expectsNamespace reports whether some pair of the role lives in namespace ns.
func expectsNamespace(expected map[string]bool, ns string) bool {
	prefix := Subject(ns, "")
	for s := range expected {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func hasAction(actions stringSet, want string) bool {
	for _, a := range actions {
		if a == "*" || a == "sts:*" || strings.EqualFold(a, want) {
			return true
		}
	}
	return false
}

// podIdentityAssociation judges the associations exported for the pair's cluster.
func podIdentityAssociation(p Pair, assocs []AssociationDoc, clusterARN string, tagConditions bool) verdict {
	var v verdict
	_, _, cluster := EKSClusterParts(clusterARN)
	v.missing = "cluster " + cluster + " has no association for " + p.String() +
		" (add aws eks describe-pod-identity-association output)"
	for _, a := range assocs {
		same := a.Namespace == p.Namespace && a.ServiceAccount == p.ServiceAccount
		switch {
		case same && a.ClusterName != cluster:
			v.miss(rankIssuer, "association %s is in cluster %s, want %s", a.AssociationID, a.ClusterName, cluster)
		case !same && a.ClusterName == cluster && strings.EqualFold(a.Namespace+"/"+a.ServiceAccount, p.String()):
			v.miss(rankCase, "association %s is for %s/%s, want %s (case differs)", a.AssociationID, a.Namespace,
				a.ServiceAccount, p.String())
		case !same:
		case a.RoleArn != p.Match.RoleARN:
			v.miss(rankAudience, "association %s gives role %s, want %s", a.AssociationID, a.RoleArn, p.Match.RoleARN)
		case a.TargetRoleArn != "":
			v.miss(rankAudience, "association %s chains to role %s (targetRoleArn): pods get that role, not %s",
				a.AssociationID, a.TargetRoleArn, p.Match.RoleARN)
		case a.DisableSessionTags && tagConditions:
			v.miss(rankConditionKey, "association %s disables session tags: the trust policy's %s conditions never "+
				"hold", a.AssociationID, requestTag)
		default:
			v.ok = true
		}
	}
	return v
}

// podIdentitySources names the files a Pod Identity finding was judged from.
func podIdentitySources(p Pair, docs *Documents, clusterARN string) string {
	_, _, cluster := EKSClusterParts(clusterARN)
	sources := []string{}
	if s := docs.Sources[p.Match.RoleARN]; s != "" {
		sources = append(sources, s)
	}
	for _, a := range docs.PodIdentity {
		if a.ClusterName == cluster && a.Namespace == p.Namespace && a.ServiceAccount == p.ServiceAccount &&
			!slices.Contains(sources, a.source) {
			sources = append(sources, a.source)
		}
	}
	return strings.Join(sources, ", ")
}
