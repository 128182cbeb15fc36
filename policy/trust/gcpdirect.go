package trust

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// GCP direct Workload Identity Federation: no Google service account is impersonated; the Kubernetes ServiceAccount's
// own principal gets IAM roles on the resources Flux reads. On GKE that principal is
// principal://iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/PROJECT_ID.svc.id.goog/subject/ns/NS/sa/SA
// (or principalSet://.../namespace/NS for every ServiceAccount of a namespace); outside GKE the provider's pool's
// principal for the token subject.

// GCPPrincipal is the principal of one ServiceAccount (or namespace) under direct federation.
type GCPPrincipal struct {
	Identity string `json:"identity"`
	// ServiceAccount is NS/SA, or NS/* for a namespace set.
	ServiceAccount string `json:"serviceAccount"`
	Member         string `json:"member"`
}

// GCPResourceRole is what Flux needs on one kind of resource it reads, as an example binding: the policy does not say
// which resources a ServiceAccount reaches.
type GCPResourceRole struct {
	// Kind names the resource kind: bucket, repository, cryptoKey or topic.
	Kind string `json:"kind"`
	// Example is the resource's name as trust check takes it (RESOURCE=FILE), with upper-case placeholders.
	Example string `json:"example"`
	// Roles are all needed.
	Roles []string `json:"roles"`
	// Flux says which Flux objects read the kind.
	Flux string `json:"flux"`
	// Grant is the gcloud command that binds a member to one role (MEMBER and ROLE are filled in), Export the one
	// that prints the resource's IAM policy for trust check.
	Grant  string `json:"grant"`
	Export string `json:"export"`

	// name recognises the kind's resource names; also is a role that grants what Flux needs as well (a wider one of
	// the same service that still reads).
	name *regexp.Regexp
	also map[string]string
}

// GCPResourceRoles are the roles Flux's documentation asks for on each resource kind (fluxcd/website
// content/en/flux/integrations/gcp.md, "Authorization"): Artifact Registry Reader for OCIRepository, HelmRepository
// (oci) and ImageRepository; Storage Bucket Viewer and Storage Object Viewer, both, for Bucket ("Flux needs to confirm
// the existence of the bucket"); Cloud KMS CryptoKey Decrypter, on the key or its key ring, for SOPS; Pub/Sub Publisher
// for notification Providers.
var GCPResourceRoles = []GCPResourceRole{
	{Kind: "bucket", Example: "gs://BUCKET", Roles: []string{"roles/storage.bucketViewer", "roles/storage.objectViewer"},
		Flux:   "Bucket (provider gcp)",
		Grant:  "gcloud storage buckets add-iam-policy-binding gs://BUCKET --member=MEMBER --role=ROLE",
		Export: "gcloud storage buckets get-iam-policy gs://BUCKET --format=json",
		name:   regexp.MustCompile(`^gs://[a-z0-9][-a-z0-9_.]{1,220}$`)},
	{Kind: "repository", Example: "projects/PROJECT/locations/LOCATION/repositories/REPOSITORY",
		Roles: []string{"roles/artifactregistry.reader"}, Flux: "OCIRepository, HelmRepository (oci), ImageRepository",
		Grant: "gcloud artifacts repositories add-iam-policy-binding REPOSITORY --project=PROJECT --location=LOCATION " +
			"--member=MEMBER --role=ROLE",
		Export: "gcloud artifacts repositories get-iam-policy REPOSITORY --project=PROJECT --location=LOCATION --format=json",
		name:   regexp.MustCompile(`^projects/[^/\s]+/locations/[^/\s]+/repositories/[^/\s]+$`)},
	{Kind: "cryptoKey", Example: "projects/PROJECT/locations/LOCATION/keyRings/KEYRING/cryptoKeys/KEY",
		Roles: []string{"roles/cloudkms.cryptoKeyDecrypter"}, Flux: "Kustomization (SOPS decryption)",
		Grant: "gcloud kms keys add-iam-policy-binding KEY --project=PROJECT --location=LOCATION --keyring=KEYRING " +
			"--member=MEMBER --role=ROLE",
		Export: "gcloud kms keys get-iam-policy KEY --project=PROJECT --location=LOCATION --keyring=KEYRING --format=json",
		name:   regexp.MustCompile(`^projects/[^/\s]+/locations/[^/\s]+/keyRings/[^/\s]+(/cryptoKeys/[^/\s]+)?$`),
		also:   map[string]string{"roles/cloudkms.cryptoKeyDecrypter": "roles/cloudkms.cryptoKeyEncrypterDecrypter"}},
	{Kind: "topic", Example: "projects/PROJECT/topics/TOPIC", Roles: []string{"roles/pubsub.publisher"},
		Flux:   "Provider (googlepubsub)",
		Grant:  "gcloud pubsub topics add-iam-policy-binding TOPIC --project=PROJECT --member=MEMBER --role=ROLE",
		Export: "gcloud pubsub topics get-iam-policy TOPIC --project=PROJECT --format=json",
		name:   regexp.MustCompile(`^projects/[^/\s]+/topics/[^/\s]+$`)},
}

// gcpProjectResource is a project's own IAM policy (gcloud projects get-iam-policy): a grant there reaches every
// resource of the project.
var gcpProjectResource = regexp.MustCompile(`^projects/[^/\s]+$`)

// gcpResourceKind returns the kind of a resource name, and whether it is a project.
func gcpResourceKind(name string) (kind *GCPResourceRole, project bool) {
	for i := range GCPResourceRoles {
		if GCPResourceRoles[i].name.MatchString(name) {
			return &GCPResourceRoles[i], false
		}
	}
	return nil, gcpProjectResource.MatchString(name)
}

// isGCPResource reports whether a trust check key names a resource (or project) whose IAM policy it reads.
func isGCPResource(name string) bool {
	kind, project := gcpResourceKind(name)
	return kind != nil || project
}

// wideRole reports roles that give a reader far more than Flux needs: basic roles and a service's admin roles.
func wideRole(role string) bool {
	return role == "roles/owner" || role == "roles/editor" || strings.HasSuffix(role, ".admin") ||
		strings.HasSuffix(role, "Admin")
}

// checkGCPDirect judges a direct federation pair against the IAM policies of the resources given. The policy does not
// say which resources a ServiceAccount should reach, so ok means: some resource grants the pair's exact member every
// role Flux needs on its kind, and nothing admits the pair together with others (a pool-wide or, for a single
// ServiceAccount, a namespace-wide principal set; allUsers on a resource the pair is granted roles on) or gives it more
// than Flux needs (a basic or admin role, a project-level grant). A grant under an IAM condition is reported, not
// evaluated.
func checkGCPDirect(p Pair, resources map[string]*GCPPolicy, workloadPool string, expected map[string]bool) verdict {
	var v verdict
	member := GCPMember(p, workloadPool)
	if len(resources) == 0 {
		v.missing = "no exported IAM policy of a resource Flux reads (add e.g. gcloud storage buckets get-iam-policy " +
			"gs://BUCKET --format=json as gs://BUCKET=FILE)"
		return v
	}
	names := make([]string, 0, len(resources))
	for name := range resources {
		names = append(names, name)
	}
	slices.Sort(names)
	v.missing = member + " has no role on " + strings.Join(names, ", ")
	pool := gcpPool(member)
	var granted []string
	for _, name := range names {
		kind, project := gcpResourceKind(name)
		roles := map[string]bool{}
		public := "" // a grant to everyone: too broad for the pairs that use the resource
		for _, b := range resources[name].Bindings {
			for _, m := range b.Members {
				exact := directMember(m, member, p)
				switch {
				case exact && b.Condition != nil:
					v.miss(rankConditionKey, "%s is granted %s on %s only under condition %q (not evaluated)", m, b.Role,
						name, b.Condition.Title+b.Condition.Expression)
				case exact && project:
					v.broad = fmt.Sprintf("%s is granted %s on project %s: it reaches every resource of the project",
						m, b.Role, strings.TrimPrefix(name, "projects/"))
				case exact && wideRole(b.Role):
					v.broad = fmt.Sprintf("%s is granted %s on %s: more than Flux needs there", m, b.Role, name)
				case exact:
					roles[b.Role] = true
				case m == "allUsers" || m == "allAuthenticatedUsers":
					public = m + " is granted " + b.Role + " on " + name
				case principalSetCovers(m, pool, p.Namespace) && (!p.NamespaceSet() || m != member):
					v.broad = m + " grants " + b.Role + " on " + name + " to a set of identities of pool " + pool
				case strings.EqualFold(m, member):
					v.miss(rankCase, "member %s on %s, want %s (case differs)", m, name, member)
				case !expected[m] && sameKindOfMember(m, member):
					rank := rankSubject
					if gcpPool(m) != pool || projectNumberOf(m) != projectNumberOf(member) {
						rank = rankIssuer
					}
					v.miss(rank, "member %s on %s, want %s", m, name, member)
				}
			}
		}
		if len(roles) > 0 && public != "" {
			v.broad = public
		}
		if kind == nil || len(roles) == 0 {
			continue
		}
		var lacking []string
		for _, want := range kind.Roles {
			if !roles[want] && !roles[kind.also[want]] {
				lacking = append(lacking, want)
			}
		}
		switch {
		case len(lacking) == 0:
			v.ok = true
			granted = append(granted, strings.Join(kind.Roles, " + ")+" on "+name)
		case len(lacking) < len(kind.Roles):
			v.miss(rankAudience, "%s has %s on %s but not %s: Flux needs both", member, strings.Join(setOf(roles), ", "),
				name, strings.Join(lacking, ", "))
		default:
			v.miss(rankAudience, "%s is granted %s on %s, want %s", member, strings.Join(setOf(roles), ", "), name,
				strings.Join(kind.Roles, " + "))
		}
	}
	v.okDetail = strings.Join(granted, "; ")
	return v
}

// directMember reports whether m names the pair's principal: the member rendered, or on GKE the older spelling of the
// same Kubernetes ServiceAccount, serviceAccount:POOL[NS/SA] (Google's IAM member reference lists both).
func directMember(m, member string, p Pair) bool {
	if m == member {
		return true
	}
	g := p.Match.Identity.GCP
	return g.WorkloadIdentityProvider == "" && !p.NamespaceSet() &&
		m == "serviceAccount:"+g.WorkloadPool+"["+p.Namespace+"/"+p.ServiceAccount+"]"
}

// sameKindOfMember reports whether m is a Kubernetes principal of the kind want is, so that it is a near miss.
func sameKindOfMember(m, want string) bool {
	for _, prefix := range []string{"principal://", "principalSet://"} {
		if strings.HasPrefix(want, prefix) {
			return strings.HasPrefix(m, prefix) || prefix == "principal://" &&
				strings.HasPrefix(m, "serviceAccount:") && strings.Contains(m, ".svc.id.goog[")
		}
	}
	return false
}

// projectNumberOf is NUMBER of a principal URL naming projects/NUMBER.
func projectNumberOf(member string) string {
	_, rest, ok := strings.Cut(member, "iam.googleapis.com/projects/")
	if !ok {
		return ""
	}
	number, _, _ := strings.Cut(rest, "/")
	return number
}

func setOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
