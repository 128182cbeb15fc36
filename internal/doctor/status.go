package doctor

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

// What users ask first when identity fails: which Flux objects cannot authenticate, and why. A failing object is
// reported with the likely cause, read from the cluster and the policy in the order Flux meets them (pkg/auth v0.54.x
// GetAccessToken: the feature gate, the ServiceAccount, its annotations, the TokenRequest, the exchange at the
// cloud), and the message of its condition only where the cluster does not tell. The message itself is never printed
// (it may quote a URL): only the reason and the pkg/auth error recognised in it.

// cause is what a recognised error points at.
type cause int

const (
	causeUnknown cause = iota
	causeGate
	causeDefaultServiceAccount
	causeAnnotations
	causeServiceAccount
	causeTokenRequest
	causeControllerEnv
	causeExchange
	causeSecret
)

// authMarker is an error text of Flux's (pkg/auth v0.54.x access_token.go, feature_gates.go, the providers; the
// controllers' own wrapping) and what it points at.
type authMarker struct {
	phrase string
	cause  cause
}

// markers are tried in order: an error chain holds the outer text first, so the more precise markers come first.
var markers = []authMarker{
	// ErrObjectLevelWorkloadIdentityNotEnabled, and the controllers' "please enable the ObjectLevelWorkloadIdentity
	// feature gate in the controller" (FeatureGateDisabled).
	{gateObjectLevelWorkloadIdentity + " feature gate", causeGate},
	// ErrDefaultServiceAccountNotFound.
	{"the specified default service account does not exist", causeDefaultServiceAccount},
	// azure provider GetIdentity; getServiceAccountAndProviderInfo; the aws and gcp annotation parsers.
	{"is not set in the service account annotation", causeAnnotations},
	{"failed to get provider identity from service account", causeAnnotations},
	{"invalid " + keys.AnnotationAWSRoleARN + " annotation", causeAnnotations},
	{"invalid " + keys.AnnotationGCPServiceAccount + " annotation", causeAnnotations},
	{"invalid " + keys.AnnotationGCPWorkloadIdentityProvider + " annotation", causeAnnotations},
	{"failed to get service account", causeServiceAccount},
	// The TokenRequest: "failed to create kubernetes token for service account" / "for controller service account",
	// kustomize-controller's Vault login.
	{"failed to create kubernetes token for", causeTokenRequest},
	{"failed to issue Kubernetes token for Vault authentication", causeTokenRequest},
	// The controller's own identity: azure NewControllerToken, aws without AWS_REGION.
	{"missing environment variables for workload identity", causeControllerEnv},
	{"AWS_REGION environment variable is not set in the Flux controller", causeControllerEnv},
	// The exchange at the cloud (or the remote cluster, or Vault) failed.
	{"failed to create provider access token", causeExchange},
	{"failed to authenticate with Vault", causeExchange},
	{"failed to get access token for cluster", causeExchange},
	{"failed to acquire azure devops token", causeExchange},
	{"failed to create a eventhub using managed identity", causeExchange},
	{"failed to get artifact registry credentials", causeExchange},
	// A Secret: source-controller's "failed to get secret", kustomize-controller's decryption Secret.
	{"failed to get secret", causeSecret},
	{"cannot get sops decryption Secret", causeSecret},
	{"data from sops decryption Secret", causeSecret},
}

func markerIn(message string) *authMarker {
	for i := range markers {
		if strings.Contains(message, markers[i].phrase) {
			return &markers[i]
		}
	}
	return nil
}

// authFailure is a Flux object whose status says it could not authenticate.
type authFailure struct {
	o fluxauth.Object
	// cond is the failing condition; its message is read for markers, never printed.
	cond   metav1.Condition
	marker *authMarker
	// source is an ImageUpdateAutomation's GitRepository, whose identity it pushes with.
	source client.ObjectKey
	// subject is whose identity the object uses; nil when it uses none (a Secret, or nothing doctor can tell).
	subject *subject
}

// subject is the identity a failing object authenticates with.
type subject struct {
	// controller authenticates (its gate, its permissions, its own identity).
	controller string
	// namespace/name is the ServiceAccount whose identity is used: the object's, a lockdown default, or with self the
	// controller's own.
	namespace, name string
	self            bool
	// via says what chose the ServiceAccount, for messages ("spec.serviceAccountName", "--default-service-account").
	via      string
	lockdown fluxauth.Lockdown
	// provider is the cloud the object authenticates with: aws, azure, gcp, generic (a Kubernetes token) or "" when the
	// object does not say (SOPS: the cloud of each KMS key is in the encrypted files).
	provider string
	// missing says the kubeconfig ConfigMap the object names does not exist.
	missingConfigMap string
}

// resolveSubject finds whose identity a failing object uses, as its controller decides it.
func (d *diagnosis) resolveSubject(ctx context.Context, f *authFailure) error {
	o := f.o
	api, _ := fluxauth.APIOf(o.Kind)
	ctl := api.Controller
	if o.Kind == "ImageUpdateAutomation" {
		// image-automation-controller getAuthOpts: the GitRepository's provider and serviceAccountName, the
		// ServiceAccount looked up in the automation's own namespace.
		repo, err := d.gitRepository(ctx, f.source)
		if err != nil || repo == nil {
			return err
		}
		repo.Namespace = o.Namespace
		o = *repo
	}
	uses := fluxauth.Uses(o)
	kubeConfig := o.KubeConfigConfigMapRef != "" && (!o.Decryption || strings.Contains(f.cond.Message, "kube client") ||
		strings.Contains(f.cond.Message, "access token for cluster") || o.Kind == "HelmRelease")
	for _, u := range uses {
		s := &subject{controller: ctl, namespace: o.Namespace, provider: o.EffectiveProvider(), via: fluxauth.Path(u.Field)}
		switch {
		case u.Class == fluxauth.ObjectIdentity:
			s.name = o.ServiceAccountName
		case u.Class == fluxauth.KMSIdentity && !kubeConfig:
			s.name, s.provider = o.DecryptionServiceAccountName, ""
		case u.Class == fluxauth.ControllerIdentity && (!kubeConfig || !o.Decryption):
			if u.Row.Lockdown != "" {
				s.lockdown = u.Row.Lockdown
				s.name = d.lockdownValue(ctl, u.Row.Lockdown)
			}
			if u.Field == fluxauth.FieldNoDecryptionServiceAccount {
				s.provider = ""
			}
		case u.Class == fluxauth.ConfigMapIdentity && kubeConfig:
			provider, account, found, err := d.kubeConfigMap(ctx, o.Namespace, o.KubeConfigConfigMapRef)
			if err != nil {
				return err
			}
			if !found {
				s.missingConfigMap = o.KubeConfigConfigMapRef
			}
			s.provider, s.name, s.via = provider, account, "serviceAccountName of ConfigMap "+o.KubeConfigConfigMapRef
			if account == "" {
				s.lockdown, s.name = fluxauth.LockdownKubeConfig, d.lockdownValue(ctl, fluxauth.LockdownKubeConfig)
			}
		default:
			continue
		}
		if s.name == "" {
			s.self, s.lockdown, s.via = true, "", ctl+"'s own identity"
			s.namespace, s.name = d.controllerNamespace(ctl), ctl
		} else if s.lockdown != "" {
			s.via = string(s.lockdown)
		}
		f.subject = s
		return nil
	}
	return nil
}

// lockdownValue is the ServiceAccount a lockdown flag names in the running controller; where doctor did not find the
// controller, the policy's flux section says what it runs with.
func (d *diagnosis) lockdownValue(ctl string, l fluxauth.Lockdown) string {
	if r := d.controllerNamed(ctl); r != nil {
		if !r.takes(l) {
			return ""
		}
		return r.lockdown(l)
	}
	return fluxobjects.LockdownAccount(d.p, l)
}

// controllerNamespace is where a controller runs: its Deployment's namespace, else Flux's first namespace.
func (d *diagnosis) controllerNamespace(ctl string) string {
	if r := d.controllerNamed(ctl); r != nil {
		return r.namespace
	}
	return d.p.Spec.Flux.Namespaces[0]
}

// statusFindings reports every failing object with its likely cause.
func (d *diagnosis) statusFindings() {
	for _, f := range d.failures {
		problem := f.cond.Type + "=" + string(f.cond.Status) + " " + f.cond.Reason
		if f.marker != nil && f.marker.phrase != f.cond.Reason {
			problem += " (" + f.marker.phrase + ")"
		}
		identity, why, fix := d.diagnoseFailure(f)
		d.findings = append(d.findings, Finding{Check: CheckStatus, Namespace: f.o.Namespace,
			Name: f.o.Kind + "/" + f.o.Name, Identity: identity, Problem: problem + "; likely cause: " + why, Fix: fix})
	}
}

// diagnoseFailure returns the identity entry involved (if the policy maps one), the likely cause and its fix.
func (d *diagnosis) diagnoseFailure(f *authFailure) (identity, why, fix string) {
	s := f.subject
	api, _ := fluxauth.APIOf(f.o.Kind)
	ctl := api.Controller
	if s != nil {
		ctl = s.controller
	}
	r := d.controllerNamed(ctl)
	gateOff := r != nil && r.name != fluxOperator && !r.gate() ||
		r == nil && f.marker != nil && f.marker.cause == causeGate
	if s == nil {
		if gateOff && f.marker != nil && f.marker.cause == causeGate {
			return "", ctl + " runs without the " + gateObjectLevelWorkloadIdentity + " feature gate", d.gateFix(r, ctl)
		}
		return "", "it authenticates with a long-lived credential in a Secret (or nothing doctor can tell): the Secret " +
				"is missing, lacks a field, or the service refused it",
			"correct the Secret the object names, or replace it with workload identity: set spec.provider and " +
				"spec.serviceAccountName to a ServiceAccount the policy maps (flux-identity-webhook policy explain " +
				"shows the mandate's answer)"
	}
	if s.missingConfigMap != "" {
		return "", "its kubeconfig ConfigMap " + s.missingConfigMap + " does not exist",
			"create ConfigMap " + f.o.Namespace + "/" + s.missingConfigMap + " with the provider, cluster and " +
				"serviceAccountName keys Flux reads (meta.KubeConfigKey*)"
	}
	key := s.namespace + "/" + s.name
	sa, exists := d.wanted[key], d.wanted[key] != nil
	m, mapped := d.p.IdentityFor(s.namespace, s.name)
	if mapped {
		identity = m.Identity.Name
	}
	if !s.self {
		switch {
		case gateOff:
			return identity, ctl + " runs without the " + gateObjectLevelWorkloadIdentity + " feature gate, so it " +
				"does not resolve " + s.via, d.gateFix(r, ctl)
		case d.rbacRead && r != nil && r.name != fluxOperator && d.tokenPermissions(r.namespace, r.name).missing() != "":
			return identity, "ServiceAccount " + r.namespace + "/" + r.name + " may not " +
				d.tokenPermissions(r.namespace, r.name).missing() + " in every namespace", d.rbacFix(r)
		case d.saRead && !exists && s.lockdown != "":
			return identity, "the lockdown default ServiceAccount " + s.name + " (" + string(s.lockdown) + " of " + ctl +
					") does not exist in " + s.namespace,
				"kubectl -n " + s.namespace + " create serviceaccount " + s.name + mapHint(mapped, s)
		case d.saRead && !exists:
			return identity, "ServiceAccount " + key + " (" + s.via + ") does not exist",
				"kubectl -n " + s.namespace + " create serviceaccount " + s.name + mapHint(mapped, s)
		case s.provider == fluxauth.ProviderGeneric:
			// A generic kubeconfig sends the ServiceAccount's Kubernetes token itself: nothing to map.
			return identity, "the remote cluster refused the Kubernetes token of ServiceAccount " + key,
				"let the remote cluster trust this cluster's issuer for subject system:serviceaccount:" + s.namespace +
					":" + s.name + " and the ConfigMap's audiences"
		case !mapped && s.provider == "" && strings.Contains(f.cond.Message, "Vault"):
			return identity, "Vault refused the token of ServiceAccount " + key,
				"bind Vault role " + s.namespace + "_" + s.name + " to ServiceAccount " + key + " with the Vault " +
					"address as audience (kustomize-controller logs in with the role <namespace>_<name>)"
		case !mapped:
			return identity, "ServiceAccount " + key + " (" + s.via + ") is not mapped by the policy: it carries no " +
					"cloud identity",
				"map " + key + " to " + cloudOr(s.provider) + " identity in " + d.p.Source + ", then run doctor again for " +
					"the annotate command"
		case s.provider != "" && policy.Cloud(s.provider) != m.Cloud:
			return identity, "ServiceAccount " + key + " is mapped to " + string(m.Cloud) + " (identity " +
					m.Identity.Name + ") but the object authenticates with " + s.provider,
				"set the object's provider to " + string(m.Cloud) + ", or map " + key + " to " + cloudOr(s.provider) +
					" identity"
		}
		if f, bad := checkServiceAccountMetadata(sa.object(s.namespace, s.name), m); bad {
			return identity, "ServiceAccount " + key + " lacks its identity: " + f.Problem, f.Fix
		}
		if m.Cloud == policy.CloudAWS && m.Identity.AWS.Audience != "" && m.Identity.AWS.Audience != keys.AWSDefaultAudience {
			return identity, "identity " + m.Identity.Name + " trusts audience " + m.Identity.AWS.Audience +
					" but Flux asks for " + keys.AWSDefaultAudience + " (pkg/auth aws Provider.GetAudience)",
				"drop aws.audience from identity " + m.Identity.Name + " (and the aud condition of its trust policy), " +
					"or give Flux's objects an identity of their own"
		}
		if f.marker != nil && f.marker.cause == causeTokenRequest {
			// The API server refused the TokenRequest, and doctor could not read why (no controller, no RBAC read).
			return identity, ctl + " may not create a token of ServiceAccount " + key,
				"grant " + ctl + "'s ServiceAccount create on serviceaccounts/token and get on serviceaccounts in every " +
					"namespace (Flux's install does through ClusterRole crd-controller)"
		}
		return identity, "the cloud refused the token of ServiceAccount " + key + ": its trust does not match the " +
				"cluster's issuer, the subject system:serviceaccount:" + s.namespace + ":" + s.name + " or the audience",
			d.trustFix(s)
	}
	// The controller's own identity.
	borrow := "it uses " + ctl + "'s own identity"
	switch {
	case r != nil && d.credentialed[r.namespace+"/"+r.name]:
		return identity, borrow + ", and " + ctl + "'s long-lived credentials come before it",
			"remove them (see the flux finding on deployment/" + ctl + ")"
	case !mapped:
		return identity, borrow + ", and ServiceAccount " + key + " is not mapped by the policy",
			"name a ServiceAccount the policy maps in " + f.o.Namespace + " on the object, or map " + key + " in " +
				d.p.Source
	}
	if f, bad := checkServiceAccountMetadata(sa.object(s.namespace, s.name), m); bad && exists {
		return identity, borrow + ", and ServiceAccount " + key + " lacks it: " + f.Problem, f.Fix
	}
	if d.staleWorkloads[s.namespace+" deployment/"+ctl] {
		return identity, borrow + ", and " + ctl + "'s pods started before its ServiceAccount's identity annotation",
			restartCommand(s.namespace, "deployment/"+ctl, "")
	}
	if f.marker != nil && f.marker.cause == causeControllerEnv {
		return identity, borrow + ", and " + ctl + "'s pods lack the identity's environment",
			restartCommand(s.namespace, "deployment/"+ctl, "") + " (with injection: full the webhook injects it; " +
				"otherwise the cloud's webhook must be installed)"
	}
	return identity, "the cloud refused " + ctl + "'s own token: its trust does not match the cluster's issuer, " +
		"the subject system:serviceaccount:" + s.namespace + ":" + s.name + " or the audience", d.trustFix(s)
}

func cloudOr(provider string) string {
	if provider == "" {
		return "a cloud"
	}
	return "an " + provider
}

func mapHint(mapped bool, s *subject) string {
	if mapped {
		return " (the webhook gives it the identity the policy maps)"
	}
	return ", and map it to " + cloudOr(s.provider) + " identity in the policy"
}

// gateFix turns the gate on in a controller: on its Deployment, or on the FluxInstance that renders it.
func (d *diagnosis) gateFix(r *running, ctl string) string {
	switch {
	case r == nil:
		return "run " + ctl + " with --" + flagFeatureGates + "=" + gateObjectLevelWorkloadIdentity + "=true"
	case d.instanceOf(r) != nil:
		return d.instancePatchCommand(d.instanceOf(r), map[string]any{"objectLevelWorkloadIdentity": true})
	}
	return addArgCommand(r, "--"+flagFeatureGates+"="+gateObjectLevelWorkloadIdentity+"=true")
}

func (d *diagnosis) rbacFix(r *running) string {
	if fi := d.instanceOf(r); fi != nil {
		return d.instancePatchCommand(fi, map[string]any{"objectLevelWorkloadIdentity": true})
	}
	return tokenRBACCommand(r)
}

// trustFix points at the commands that show what the cloud must trust and whether it does.
func (d *diagnosis) trustFix(s *subject) string {
	return "compare the cloud's trust with flux-identity-webhook trust check --policy " + d.p.Source +
		` --issuer "$ISSUER" EXPORT... (trust render --policy ` + d.p.Source + ` --issuer "$ISSUER" --namespaces ` +
		s.namespace + " --service-accounts " + s.name + " prints what it must hold)"
}

// saFacts is what doctor keeps of a ServiceAccount a failing object's identity comes from.
type saFacts struct {
	annotations, labels map[string]string
}

func (s *saFacts) object(namespace, name string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = namespace, name
	if s != nil {
		sa.Annotations, sa.Labels = s.annotations, s.labels
	}
	return sa
}
