package serviceaccounts

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/internal/admissiontest"
)

func TestServiceAccountMutation(t *testing.T) {
	p := admissiontest.FixturePolicy(t)
	tests := map[string]struct {
		namespace       string
		input           string
		wantAnnotations map[string]string // exact annotations after the patch
		wantLabels      map[string]string
		wantViolations  []string
		wantMode        policy.Mode
	}{
		"a mapped AWS ServiceAccount gets the expanded role and its identity name": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"source-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN:              "arn:aws:iam::111122223333:role/flux-flux-system.source-controller",
				keys.AnnotationAWSSTSRegionalEndpoints: "true",
				keys.AnnotationAWSTokenExpiration:      "3600",
				keys.AnnotationIdentity:                "aws-full",
			},
		},
		"a custom audience is written, and unrelated annotations and labels are kept": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"kustomize-controller","annotations":{"team":"a"},"labels":{"x":"y"}}}`,
			wantAnnotations: map[string]string{
				"team": "a", keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize",
				keys.AnnotationAWSAudience: "sts.example.com", keys.AnnotationIdentity: "aws-annotate",
			},
			wantLabels: map[string]string{"x": "y"},
		},
		"a spoofed role ARN on a mapped ServiceAccount is replaced": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"kustomize-controller","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::999999999999:role/admin"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize", keys.AnnotationAWSAudience: "sts.example.com",
				keys.AnnotationIdentity: "aws-annotate",
			},
		},
		"a mapped Azure ServiceAccount gets both IDs and the use label": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"helm-controller","labels":{}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000001",
				keys.AnnotationAzureTenantID: "00000000-0000-0000-0000-0000000000aa", keys.AnnotationIdentity: "azure-annotate",
			},
			wantLabels: map[string]string{keys.LabelAzureUse: "true"},
		},
		"an Azure token lifetime from the policy is written": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"image-reflector-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000002",
				keys.AnnotationAzureTenantID: "00000000-0000-0000-0000-0000000000aa", keys.AnnotationAzureTokenExpiration: "7200",
				keys.AnnotationIdentity: "azure-full",
			},
			wantLabels: map[string]string{keys.LabelAzureUse: "true"},
		},
		"a mapped GCP ServiceAccount gets the Google service account and the provider": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"image-automation-controller"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPServiceAccount: "flux-images@my-project.iam.gserviceaccount.com",
				keys.AnnotationGCPWorkloadIdentityProvider: "projects/123456789/locations/global/workloadIdentityPools/" +
					"flux-pool/providers/flux-prov",
				keys.AnnotationIdentity: "gcp-full",
			},
		},
		"a cloud key the identity does not grant is a violation in the namespace's mode": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"helm-controller","annotations":{"iam.gke.io/gcp-service-account":"x@y.iam.gserviceaccount.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPServiceAccount: "x@y.iam.gserviceaccount.com",
				keys.AnnotationAzureClientID:     "00000000-0000-0000-0000-000000000001",
				keys.AnnotationAzureTenantID:     "00000000-0000-0000-0000-0000000000aa", keys.AnnotationIdentity: "azure-annotate",
			},
			wantLabels:     map[string]string{keys.LabelAzureUse: "true"},
			wantViolations: []string{"[azure-annotate] annotation iam.gke.io/gcp-service-account is not granted by this identity: remove it (azure identity)"},
			wantMode:       policy.ModeEnforce,
		},
		"a GKE direct federation ServiceAccount gets no Google annotation, only its identity name": {
			namespace:       "direct",
			input:           `{"metadata":{"name":"gke-source","annotations":{"team":"a"}}}`,
			wantAnnotations: map[string]string{"team": "a", keys.AnnotationIdentity: "gcp-gke-direct"},
		},
		"a Google service account on a GKE direct federation ServiceAccount is a violation, and the key is left for the mode to answer": {
			namespace: "direct",
			input:     `{"metadata":{"name":"gke-source","annotations":{"iam.gke.io/gcp-service-account":"admin@my-project.iam.gserviceaccount.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPServiceAccount: "admin@my-project.iam.gserviceaccount.com", keys.AnnotationIdentity: "gcp-gke-direct",
			},
			wantViolations: []string{"[gcp-gke-direct] annotation iam.gke.io/gcp-service-account turns direct federation into impersonation: remove it"},
			wantMode:       policy.ModeEnforce,
		},
		"direct federation outside GKE writes Flux's provider annotation alone": {
			namespace: "direct",
			input:     `{"metadata":{"name":"wif-source"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationGCPWorkloadIdentityProvider: "projects/123456789/locations/global/workloadIdentityPools/" +
					"flux-pool/providers/flux-prov",
				keys.AnnotationIdentity: "gcp-direct-full",
			},
		},
		"an EKS Pod Identity ServiceAccount gets no role ARN, and keeps the annotations the EKS webhook reads for it": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"flux-operator"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSTokenExpiration: "3600", keys.AnnotationIdentity: "aws-pod-identity",
			},
		},
		"a role ARN on an EKS Pod Identity ServiceAccount is a violation: IRSA would win": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"flux-operator","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/flux-operator"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN:         "arn:aws:iam::111122223333:role/flux-operator",
				keys.AnnotationAWSTokenExpiration: "3600", keys.AnnotationIdentity: "aws-pod-identity",
			},
			wantViolations: []string{"[aws-pod-identity] annotation eks.amazonaws.com/role-arn would win over EKS Pod Identity (IRSA comes first): remove it"},
			wantMode:       policy.ModeEnforce,
		},
		"the default STS audience is not granted to an EKS Pod Identity ServiceAccount": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"flux-operator","annotations":{"eks.amazonaws.com/audience":"sts.amazonaws.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSAudience:        "sts.amazonaws.com",
				keys.AnnotationAWSTokenExpiration: "3600", keys.AnnotationIdentity: "aws-pod-identity",
			},
			wantViolations: []string{"[aws-pod-identity] annotation eks.amazonaws.com/audience is not granted by this identity: remove it (aws identity)"},
			wantMode:       policy.ModeEnforce,
		},
		"the default STS audience is tolerated on an AWS ServiceAccount": {
			namespace: "flux-system",
			input:     `{"metadata":{"name":"source-controller","annotations":{"eks.amazonaws.com/audience":"sts.amazonaws.com"}}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSAudience:             "sts.amazonaws.com",
				keys.AnnotationAWSRoleARN:              "arn:aws:iam::111122223333:role/flux-flux-system.source-controller",
				keys.AnnotationAWSSTSRegionalEndpoints: "true", keys.AnnotationAWSTokenExpiration: "3600",
				keys.AnnotationIdentity: "aws-full",
			},
		},
		"an unmapped ServiceAccount setting a role ARN in a policy namespace is a violation": {
			namespace:       "flux-system",
			input:           `{"metadata":{"name":"intruder","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::111122223333:role/kustomize"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/kustomize"},
			wantViolations:  []string{"[ownership] annotation eks.amazonaws.com/role-arn is reserved: remove it (no identity maps flux-system/intruder)"},
			wantMode:        policy.ModeEnforce,
		},
		"glob namespaces own in the mode of their entry (warn)": {
			namespace:       "team-b",
			input:           `{"metadata":{"name":"app","annotations":{"azure.workload.identity/client-id":"00000000-0000-0000-0000-000000000003"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAzureClientID: "00000000-0000-0000-0000-000000000003"},
			wantViolations:  []string{"[ownership] annotation azure.workload.identity/client-id is reserved: remove it (no identity maps team-b/app)"},
			wantMode:        policy.ModeWarn,
		},
		"a glob entry maps a tenant ServiceAccount with the namespace expanded": {
			namespace: "team-b",
			input:     `{"metadata":{"name":"flux-source"}}`,
			wantAnnotations: map[string]string{
				keys.AnnotationAWSRoleARN: "arn:aws:iam::111122223333:role/tenant-team-b", keys.AnnotationIdentity: "tenants",
			},
		},
		"a namespace named only by a mandate is owned in enforce mode": {
			namespace:       "sealed",
			input:           `{"metadata":{"name":"x","annotations":{"fluxidentity.dev/identity":"aws-full"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationIdentity: "aws-full"},
			wantViolations:  []string{"[ownership] annotation fluxidentity.dev/identity is reserved: remove it (no identity maps sealed/x)"},
			wantMode:        policy.ModeEnforce,
		},
		"namespaces the policy does not name are left alone": {
			namespace:       "elsewhere",
			input:           `{"metadata":{"name":"source-controller","annotations":{"eks.amazonaws.com/role-arn":"arn:aws:iam::999999999999:role/x"}}}`,
			wantAnnotations: map[string]string{keys.AnnotationAWSRoleARN: "arn:aws:iam::999999999999:role/x"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var sa View
			if err := json.Unmarshal([]byte(tc.input), &sa); err != nil {
				t.Fatal(err)
			}
			v := evaluate(p, tc.namespace, &sa)
			admissiontest.AssertOnlyAddAndReplace(t, v.Patch)
			var messages []string
			for _, vi := range v.Violations {
				messages = append(messages, vi.Message)
				if vi.Mode != tc.wantMode {
					t.Errorf("mode %s, want %s", vi.Mode, tc.wantMode)
				}
			}
			if !reflect.DeepEqual(messages, tc.wantViolations) {
				t.Errorf("violations %q, want %q", messages, tc.wantViolations)
			}
			out := admissiontest.ApplyPatch(t, []byte(tc.input), v.Patch)
			var got View
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metadata.Annotations, tc.wantAnnotations) {
				t.Errorf("annotations %v, want %v", got.Metadata.Annotations, tc.wantAnnotations)
			}
			if len(got.Metadata.Labels) != 0 || len(tc.wantLabels) != 0 {
				if !reflect.DeepEqual(got.Metadata.Labels, tc.wantLabels) {
					t.Errorf("labels %v, want %v", got.Metadata.Labels, tc.wantLabels)
				}
			}
			var again View
			_ = json.Unmarshal(out, &again)
			if v2 := evaluate(p, tc.namespace, &again); len(v2.Patch) != 0 {
				t.Errorf("second pass patched again: %v", v2.Patch)
			}
		})
	}
}
