package trust

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Documents are exported cloud documents, indexed by the cloud resource they describe.
type Documents struct {
	// AWSRoles maps a role ARN to its trust policy (aws iam get-role, or each role of aws iam list-roles).
	AWSRoles map[string]*AWSTrustPolicy
	// Azure maps a client ID to its federated credentials (az identity federated-credential list).
	Azure map[string][]AzureCredential
	// GCP maps a Google service account to its IAM policy (gcloud iam service-accounts get-iam-policy).
	GCP map[string]*GCPPolicy
	// GCPResources maps a resource Flux reads (gs://BUCKET, an Artifact Registry repository, a KMS key or key ring, a
	// Pub/Sub topic, or a project) to its IAM policy, for direct federation.
	GCPResources map[string]*GCPPolicy
	// PodIdentity are EKS Pod Identity associations (aws eks describe-pod-identity-association).
	PodIdentity []AssociationDoc
	// Sources names the file each resource came from, for messages.
	Sources map[string]string
}

// AWSTrustPolicy is an IAM policy document as AWS accepts it: Statement and its fields may be one value or a list.
type AWSTrustPolicy struct {
	Version   string        `json:"Version"`
	Statement awsStatements `json:"Statement"`
}

// AWSStatement is one statement of a trust policy.
type AWSStatement struct {
	Sid       string                          `json:"Sid"`
	Effect    string                          `json:"Effect"`
	Principal awsPrincipal                    `json:"Principal"`
	Action    stringSet                       `json:"Action"`
	Condition map[string]map[string]stringSet `json:"Condition"`
}

// AzureCredential is one federated identity credential as az prints it.
type AzureCredential struct {
	Name      string   `json:"name"`
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
	// ClaimsMatchingExpression is set on flexible federated credentials, which match subjects by expression.
	ClaimsMatchingExpression *struct {
		Value string `json:"value"`
	} `json:"claimsMatchingExpression,omitempty"`
}

// GCPPolicy is an IAM policy as gcloud prints it. ResourceID is set by Cloud Storage (projects/_/buckets/NAME).
type GCPPolicy struct {
	Bindings   []GCPPolicyBinding `json:"bindings"`
	ResourceID string             `json:"resourceId"`
}

// GCPPolicyBinding grants one role to members, under a condition when one is set (policy version 3).
type GCPPolicyBinding struct {
	Role      string   `json:"role"`
	Members   []string `json:"members"`
	Condition *struct {
		Title      string `json:"title"`
		Expression string `json:"expression"`
	} `json:"condition,omitempty"`
}

// stringSet is an IAM value that may be written as one string or a list of strings.
type stringSet []string

func (s *stringSet) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = many
	return nil
}

type awsStatements []AWSStatement

func (s *awsStatements) UnmarshalJSON(data []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var one AWSStatement
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = []AWSStatement{one}
		return nil
	}
	var many []AWSStatement
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// awsPrincipal is "*" (Any true) or a map from principal type to values.
type awsPrincipal struct {
	Any    bool
	ByType map[string]stringSet
}

func (p *awsPrincipal) UnmarshalJSON(data []byte) error {
	var star string
	if err := json.Unmarshal(data, &star); err == nil {
		p.Any = star == "*"
		return nil
	}
	return json.Unmarshal(data, &p.ByType)
}

var (
	uuidRE  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.gserviceaccount\.com$`)
)

// Add reads one exported document. key names the resource when the document does not: the client ID for an Azure
// federated credential list, the Google service account or the resource (gs://BUCKET, projects/...) for an IAM policy.
// AWS role documents and EKS Pod Identity associations carry their names; a key given with a role must equal its ARN.
func (d *Documents) Add(source, key string, data []byte) error {
	if d.AWSRoles == nil {
		d.AWSRoles, d.Azure, d.GCP, d.GCPResources, d.Sources = map[string]*AWSTrustPolicy{},
			map[string][]AzureCredential{}, map[string]*GCPPolicy{}, map[string]*GCPPolicy{}, map[string]string{}
	}
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		return d.addAzure(source, key, trimmed)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return fmt.Errorf("%s: not a JSON object or list: %w", source, err)
	}
	switch {
	case probe["Role"] != nil:
		var doc struct{ Role awsRole }
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return fmt.Errorf("%s: read aws iam get-role output: %w", source, err)
		}
		return d.addAWS(source, key, []awsRole{doc.Role})
	case probe["Roles"] != nil:
		var doc struct{ Roles []awsRole }
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return fmt.Errorf("%s: read aws iam list-roles output: %w", source, err)
		}
		return d.addAWS(source, key, doc.Roles)
	case probe["bindings"] != nil || probe["etag"] != nil:
		return d.addGCP(source, key, trimmed)
	case probe["association"] != nil:
		var doc struct{ Association AssociationDoc }
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return fmt.Errorf("%s: read aws eks describe-pod-identity-association output: %w", source, err)
		}
		a := doc.Association
		if a.ClusterName == "" || a.Namespace == "" || a.ServiceAccount == "" {
			return fmt.Errorf("%s: an association without clusterName, namespace or serviceAccount", source)
		}
		a.source = source
		d.PodIdentity = append(d.PodIdentity, a)
		return nil
	case probe["associations"] != nil:
		return fmt.Errorf("%s: aws eks list-pod-identity-associations does not print roles: export each association "+
			"with aws eks describe-pod-identity-association --cluster-name CLUSTER --association-id ID", source)
	case probe["issuer"] != nil && probe["subject"] != nil:
		return d.addAzure(source, key, append(append([]byte("["), trimmed...), ']'))
	default:
		return fmt.Errorf("%s: not an exported trust document (aws iam get-role, aws eks describe-pod-identity-association, "+
			"az identity federated-credential list or an IAM policy)", source)
	}
}

// addGCP reads an IAM policy: a Google service account's (impersonation) or a resource's (direct federation). Cloud
// Storage names its bucket in resourceId, so a bucket's policy needs no key.
func (d *Documents) addGCP(source, key string, data []byte) error {
	var doc GCPPolicy
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: read IAM policy: %w", source, err)
	}
	if bucket, ok := strings.CutPrefix(doc.ResourceID, "projects/_/buckets/"); ok && key == "" {
		key = "gs://" + bucket
	}
	into := d.GCP
	switch {
	case emailRE.MatchString(key):
	case isGCPResource(key):
		into = d.GCPResources
	default:
		return fmt.Errorf("%s: an IAM policy does not name what it governs: pass it as EMAIL=%s (a Google service "+
			"account) or RESOURCE=%s (gs://BUCKET, projects/P/locations/L/repositories/R, "+
			"projects/P/locations/L/keyRings/K/cryptoKeys/C, projects/P/topics/T, projects/P)", source, source, source)
	}
	if _, dup := into[key]; dup {
		return fmt.Errorf("%s: a second IAM policy for %s (first in %s)", source, key, d.Sources[key])
	}
	into[key], d.Sources[key] = &doc, source
	return nil
}

// gcpResourceSources lists the files of the resources' IAM policies, in resource order.
func (d *Documents) gcpResourceSources() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(d.GCPResources)) {
		if s := d.Sources[name]; !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

type awsRole struct {
	Arn string `json:"Arn"`
	// AssumeRolePolicyDocument is an object as the AWS CLI prints it, or a URL-encoded JSON string as the IAM API
	// returns it.
	AssumeRolePolicyDocument json.RawMessage `json:"AssumeRolePolicyDocument"`
}

func (d *Documents) addAWS(source, key string, roles []awsRole) error {
	if key != "" && (len(roles) != 1 || roles[0].Arn != key) {
		return fmt.Errorf("%s: the document is role %s, not %s", source, roleARNs(roles), key)
	}
	for _, r := range roles {
		if r.Arn == "" {
			return fmt.Errorf("%s: a role without Arn", source)
		}
		raw := []byte(r.AssumeRolePolicyDocument)
		var encoded string
		if err := json.Unmarshal(raw, &encoded); err == nil {
			decoded, err := url.QueryUnescape(encoded)
			if err != nil {
				return fmt.Errorf("%s: role %s: decode AssumeRolePolicyDocument: %w", source, r.Arn, err)
			}
			raw = []byte(decoded)
		}
		var doc AWSTrustPolicy
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("%s: role %s: read AssumeRolePolicyDocument: %w", source, r.Arn, err)
		}
		if _, dup := d.AWSRoles[r.Arn]; dup {
			return fmt.Errorf("%s: a second document for role %s (first in %s)", source, r.Arn, d.Sources[r.Arn])
		}
		d.AWSRoles[r.Arn], d.Sources[r.Arn] = &doc, source
	}
	return nil
}

func roleARNs(roles []awsRole) string {
	arns := make([]string, len(roles))
	for i, r := range roles {
		arns[i] = r.Arn
	}
	return strings.Join(arns, ", ")
}

func (d *Documents) addAzure(source, key string, data []byte) error {
	if !uuidRE.MatchString(key) {
		return fmt.Errorf("%s: federated credentials do not name their identity's client ID: pass it as CLIENT_ID=%s",
			source, source)
	}
	var creds []AzureCredential
	if err := json.Unmarshal(data, &creds); err != nil {
		return fmt.Errorf("%s: read federated credentials: %w", source, err)
	}
	key = strings.ToLower(key)
	if _, dup := d.Sources[key]; dup {
		return fmt.Errorf("%s: a second credential list for client ID %s (first in %s)", source, key, d.Sources[key])
	}
	d.Azure[key], d.Sources[key] = creds, source
	return nil
}
