package fluxcompat

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/fluxcd/pkg/auth"
	"github.com/fluxcd/pkg/auth/aws"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/fluxidentity/flux-identity-webhook/internal/doctor"
	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// doctor recognises an authentication failure by the errors github.com/fluxcd/pkg/auth returns (in a condition whose
// reason the controller chose, so the error text is all doctor has), and reads the controllers' flags by the names
// pkg/auth gives them. Both are held here to pkg/auth itself (v0.54.3's code): its GetAccessToken makes each error, on a fake
// cluster, as a controller would meet it.

var doctorScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(fluxauth.AddToScheme(s))
	return s
}()

const doctorPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: compat
flux:
  defaultServiceAccount: %s
identities:
  - name: controllers
    namespaces: [flux-system]
    serviceAccounts: [source-controller]
    aws:
      roleARN: arn:aws:iam::111122223333:role/flux
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-tenant, bare]
    aws:
      roleARN: arn:aws:iam::111122223333:role/tenant
`

// refusingSTS is AWS STS refusing every web identity, as it does a token whose issuer or subject its trust policy
// does not name.
type refusingSTS struct{ aws.Implementation }

func (refusingSTS) AssumeRoleWithWebIdentity(context.Context, *sts.AssumeRoleWithWebIdentityInput, sts.Options) (
	*sts.AssumeRoleWithWebIdentityOutput, error,
) {
	return nil, errors.New("operation error STS: AssumeRoleWithWebIdentity, https response error StatusCode: 403, " +
		"api error AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity")
}

func annotatedSA(ns, name, role string) *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if role != "" {
		sa.Annotations = map[string]string{"fluxidentity.dev/identity": "tenants", "eks.amazonaws.com/role-arn": role}
	}
	return sa
}

func TestDoctorRecognisesPkgAuthErrors(t *testing.T) {
	cluster := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-c"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}},
		annotatedSA("team-a", "flux-tenant", "arn:aws:iam::111122223333:role/tenant"),
		annotatedSA("team-a", "bare", ""),
		func() *corev1.ServiceAccount {
			sa := annotatedSA("flux-system", "source-controller", "arn:aws:iam::111122223333:role/flux")
			sa.Annotations["fluxidentity.dev/identity"] = "controllers"
			return sa
		}(),
	}
	forbidden := interceptor.Funcs{SubResourceCreate: func(context.Context, client.Client, string, client.Object,
		client.Object, ...client.SubResourceCreateOption,
	) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "flux-tenant",
			errors.New("RBAC: access denied"))
	}}
	tests := map[string]struct {
		namespace, serviceAccount, defaultSA string
		prepare                              func(t *testing.T)
		tokens                               *interceptor.Funcs
		opts                                 []auth.Option
		wantPhrase, wantCause                string
	}{
		"the gate off": {
			namespace: "team-a", serviceAccount: "flux-tenant",
			prepare:    func(*testing.T) { auth.DisableObjectLevelWorkloadIdentity() },
			wantPhrase: "ObjectLevelWorkloadIdentity feature gate", wantCause: "source-controller runs without the ObjectLevelWorkloadIdentity feature gate",
		},
		"a lockdown default ServiceAccount missing": {
			namespace: "team-c", defaultSA: "flux-tenant",
			wantPhrase: "the specified default service account does not exist",
			wantCause:  "the lockdown default ServiceAccount flux-tenant (--default-service-account of source-controller) does not exist in team-c",
		},
		"a ServiceAccount missing": {
			namespace: "team-a", serviceAccount: "ghost",
			wantPhrase: "failed to get service account", wantCause: "ServiceAccount team-a/ghost (spec.serviceAccountName) does not exist",
		},
		"a ServiceAccount without its role": {
			namespace: "team-a", serviceAccount: "bare",
			wantPhrase: "failed to get provider identity from service account",
			wantCause:  "ServiceAccount team-a/bare lacks its identity: annotation eks.amazonaws.com/role-arn is missing",
		},
		"a TokenRequest the API server refuses": {
			namespace: "team-a", serviceAccount: "flux-tenant", tokens: &forbidden,
			wantPhrase: "failed to create kubernetes token for", wantCause: "source-controller may not create a token of ServiceAccount team-a/flux-tenant",
		},
		"a token the cloud refuses": {
			namespace: "team-a", serviceAccount: "flux-tenant", opts: []auth.Option{auth.WithSTSRegion("eu-west-1")},
			wantPhrase: "failed to create provider access token", wantCause: "the cloud refused the token of ServiceAccount team-a/flux-tenant",
		},
		"the controller's own identity without its environment": {
			namespace: "team-a",
			prepare: func(t *testing.T) {
				t.Setenv("AWS_REGION", "")
				if err := os.Unsetenv("AWS_REGION"); err != nil {
					t.Fatal(err)
				}
			},
			wantPhrase: "AWS_REGION environment variable is not set in the Flux controller",
			wantCause:  "it uses source-controller's own identity, and source-controller's pods lack the identity's environment",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			auth.EnableObjectLevelWorkloadIdentity()
			auth.SetDefaultServiceAccount(tc.defaultSA)
			t.Cleanup(func() { auth.SetDefaultServiceAccount(""); auth.EnableObjectLevelWorkloadIdentity() })
			if tc.prepare != nil {
				tc.prepare(t)
			}
			builder := fake.NewClientBuilder().WithScheme(doctorScheme).WithObjects(cluster...)
			if tc.tokens != nil {
				builder = builder.WithInterceptorFuncs(*tc.tokens)
			}
			opts := append([]auth.Option{auth.WithClient(builder.Build()), auth.WithServiceAccountNamespace(tc.namespace)},
				tc.opts...)
			if tc.serviceAccount != "" {
				opts = append(opts, auth.WithServiceAccountName(tc.serviceAccount))
			}
			_, err := auth.GetAccessToken(t.Context(), aws.Provider{Implementation: refusingSTS{}}, opts...)
			if err == nil {
				t.Fatal("pkg/auth returned no error")
			}
			// source-controller's wrapping (AuthenticationFailed there, a reason of its own in other controllers: the
			// reason here is one doctor does not know, so only the error text can tell).
			repo := &sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: "app"},
				Spec: sourcev1.OCIRepositorySpec{URL: "oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",
					Provider: "aws", ServiceAccountName: tc.serviceAccount}}
			repo.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse,
				Reason: "ReconciliationFailed", Message: "failed to configure authentication options: " + err.Error()}}
			p, perr := policy.Parse("compat.yaml", []byte(strings.Replace(doctorPolicy, "%s", quoted(tc.defaultSA), 1)),
				time.Now())
			if perr != nil {
				t.Fatal(perr)
			}
			r, derr := doctor.Diagnose(t.Context(), &kubelist.Lister{Reader: pagingfake.New(doctorScheme,
				append(cluster, repo)...)}, p, time.Now())
			if derr != nil {
				t.Fatal(derr)
			}
			var status []doctor.Finding
			for _, f := range r.Findings {
				if f.Check == doctor.CheckStatus {
					status = append(status, f)
				}
			}
			if len(status) != 1 {
				t.Fatalf("pkg/auth's %q: %d status findings, want 1: %+v", err, len(status), r.Findings)
			}
			if !strings.Contains(status[0].Problem, "("+tc.wantPhrase+")") ||
				!strings.Contains(status[0].Problem, "likely cause: "+tc.wantCause) {
				t.Errorf("pkg/auth's %q:\nproblem %q\nwant the error %q recognised, cause %q", err, status[0].Problem,
					tc.wantPhrase, tc.wantCause)
			}
		})
	}
}

func quoted(s string) string { return `"` + s + `"` }

// TestDoctorReadsFlagsByPkgAuthNames runs source-controller with the lockdown as pkg/auth names its flag and gate: a
// doctor spelling them otherwise would find it not locked down.
func TestDoctorReadsFlagsByPkgAuthNames(t *testing.T) {
	p, err := policy.Parse("compat.yaml", []byte(strings.Replace(doctorPolicy, "%s", "flux-tenant", 1)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--" + auth.ControllerFlagDefaultServiceAccount + "=flux-tenant",
			"--feature-gates=" + auth.FeatureGateObjectLevelWorkloadIdentity + "=true"}, 0},
		{[]string{"--" + auth.ControllerFlagDefaultServiceAccount + "=flux-tenant"}, 1},                           // the gate
		{[]string{"--feature-gates=" + auth.FeatureGateObjectLevelWorkloadIdentity + "=true"}, 1},                 // the lockdown
		{[]string{"--" + auth.ControllerFlagDefaultKubeConfigServiceAccount + "=flux-tenant"}, 2},                 // neither: source-controller does not take that flag
		{[]string{"--" + auth.ControllerFlagDefaultDecryptionServiceAccount + "=x", "--feature-gates=A=true"}, 2}, // neither
	} {
		dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "source-controller"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "manager", Args: tc.args}}}}}}
		// The token permission, as Flux's install grants it, so that only the flags can be wrong.
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"get"}},
			{APIGroups: []string{""}, Resources: []string{"serviceaccounts/token"}, Verbs: []string{"create"}}}}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "crd-controller"},
			RoleRef:  rbacv1.RoleRef{Kind: "ClusterRole", Name: "crd-controller"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "flux-system", Name: "source-controller"}}}
		r, err := doctor.Diagnose(t.Context(), &kubelist.Lister{Reader: pagingfake.New(doctorScheme,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}, dep, role, binding)}, p, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var flux []string
		for _, f := range r.Findings {
			if f.Check == doctor.CheckFlux {
				flux = append(flux, f.Problem)
			}
		}
		if len(flux) != tc.want {
			t.Errorf("%q: %d flux findings, want %d: %q", tc.args, len(flux), tc.want, flux)
		}
	}
}
