package fluxauth

import (
	"slices"
	"testing"
)

func TestUses(t *testing.T) {
	type use struct {
		field string
		class Class
	}
	tests := map[string]struct {
		src  Object
		want []use
	}{
		"a public GitRepository uses nothing": {
			src: Object{Kind: git, Address: "https://github.com/fluxcd/flux2"},
		},
		"a token in a Git URL's user info is basic auth": {
			src:  Object{Kind: git, Address: "https://x-access-token:ghp_abc@github.com/org/repo"},
			want: []use{{FieldURLUserInfo, InlineCredential}},
		},
		"a user name alone in a generic Git URL is sent as basic auth too": {
			src:  Object{Kind: git, Address: "https://ghp_abc@github.com/org/repo"},
			want: []use{{FieldURLUserInfo, InlineCredential}},
		},
		"Azure DevOps' org@ user name is replaced by the azure provider's token": {
			src:  Object{Kind: git, Provider: ProviderAzure, ServiceAccountName: "sa", Address: "https://org@dev.azure.com/org/p/_git/r"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}, {FieldURLUserInfo, Ignored}},
		},
		"a password in the URL is a credential in the object even where Flux replaces it": {
			src:  Object{Kind: git, Provider: ProviderAzure, ServiceAccountName: "sa", Address: "https://org:pat@dev.azure.com/org/p/_git/r"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}, {FieldURLUserInfo, InlineCredential}},
		},
		"an ssh user name is not a credential, the key is": {
			src:  Object{Kind: git, Address: "ssh://git@github.com/org/repo", SecretRef: "deploy-key"},
			want: []use{{FieldSecretRef, StoredSecret}, {FieldURLUserInfo, Ignored}},
		},
		"a cloud provider does not make an ssh key harmless": {
			src: Object{Kind: git, Provider: ProviderAzure, Address: "ssh://git@ssh.dev.azure.com/v3/o/p/r", SecretRef: "key"},
			want: []use{{FieldSecretRef, StoredSecret}, {FieldNoServiceAccount, Ignored},
				{FieldURLUserInfo, Ignored}},
		},
		"with a cloud provider a Git secret only adds TLS keys": {
			src:  Object{Kind: git, Provider: ProviderAWS, Address: "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r", SecretRef: "ca"},
			want: []use{{FieldSecretRef, TLSMaterial}, {FieldNoServiceAccount, ControllerIdentity}},
		},
		"github's secret is a GitHub App key": {
			src:  Object{Kind: git, Provider: ProviderGitHub, Address: "https://github.com/org/repo", SecretRef: "app"},
			want: []use{{FieldSecretRef, AppKey}},
		},
		"an OCIRepository's pull secret wins over its provider": {
			src:  Object{Kind: oci, Provider: ProviderAWS, ServiceAccountName: "sa", SecretRef: "regcred"},
			want: []use{{FieldSecretRef, StoredSecret}, {FieldServiceAccountName, ObjectIdentity}},
		},
		"a Bucket's static keys win over its provider: no identity, the controller's included, is used": {
			src:  Object{Kind: bucket, Provider: ProviderAWS, SecretRef: "keys"},
			want: []use{{FieldSecretRef, StoredSecret}},
		},
		"an OCIRepository's pull secret keeps the provider from being asked": {
			src:  Object{Kind: oci, Provider: ProviderGCP, SecretRef: "regcred"},
			want: []use{{FieldSecretRef, StoredSecret}},
		},
		"a generic OCIRepository's ServiceAccount lends only its pull secrets": {
			src:  Object{Kind: oci, ServiceAccountName: "sa"},
			want: []use{{FieldServiceAccountName, PullSecrets}},
		},
		"an https HelmRepository ignores its provider but sends its URL's user info and tokens": {
			src: Object{Kind: helm, HelmType: HelmTypeDefault, Provider: ProviderAWS,
				Address: "https://user:pw@charts.example.com/?token=abc&page=2"},
			want: []use{{FieldProvider, Ignored}, {FieldURLUserInfo, InlineCredential},
				{FieldURLQuery, InlineCredential}},
		},
		"an oci HelmRepository with a cloud provider is the controller's identity, lockdown or not": {
			src:  Object{Kind: helm, HelmType: HelmTypeOCI, Provider: ProviderGCP, Address: "oci://europe-docker.pkg.dev/p/r"},
			want: []use{{FieldNoServiceAccount, ControllerIdentity}},
		},
		"a Bucket's LDAP login, its STS CA and its proxy": {
			src:  Object{Kind: bucket, STSProvider: "ldap", STSSecretRef: "ldap", STSCertSecretRef: "ca", ProxySecretRef: "p"},
			want: []use{{FieldProxySecretRef, ProxyLogin}, {FieldSTSSecretRef, StoredSecret}, {FieldSTSCertSecretRef, TLSMaterial}},
		},
		"an Azure Bucket's endpoint may carry a SAS": {
			src:  Object{Kind: bucket, Provider: ProviderAzure, ServiceAccountName: "sa", Address: "https://a.blob.core.windows.net/?sv=1&SIG=x"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}, {FieldEndpointQuery, InlineCredential}},
		},
		"an Azure Bucket's CA secret is fetched and never used": {
			src:  Object{Kind: bucket, Provider: ProviderAzure, CertSecretRef: "ca"},
			want: []use{{FieldCertSecretRef, Ignored}, {FieldNoServiceAccount, ControllerIdentity}},
		},
		"an ImageRepository with a cloud provider never reads its secret": {
			src:  Object{Kind: image, Provider: ProviderAzure, SecretRef: "regcred", ServiceAccountName: "sa"},
			want: []use{{FieldSecretRef, Ignored}, {FieldServiceAccountName, ObjectIdentity}},
		},
		"a provider the model does not know makes a secret a stored credential": {
			src:  Object{Kind: oci, Provider: "alibaba", SecretRef: "s", ServiceAccountName: "sa"},
			want: []use{{FieldSecretRef, StoredSecret}},
		},
		"an unknown provider's secret on a kind without a catch-all row is taken for a stored credential": {
			src:  Object{Kind: bucket, Provider: "alibaba", SecretRef: "s"},
			want: []use{{FieldSecretRef, StoredSecret}},
		},
		"a password in an S3 Bucket's endpoint is a credential in the object, although minio never sends it": {
			src:  Object{Kind: bucket, Address: "admin:hunter2@minio.example.com:9000"},
			want: []use{{FieldEndpointUserInfo, InlineCredential}},
		},
		"a password in an Azure Bucket's endpoint too": {
			src: Object{Kind: bucket, Provider: ProviderAzure, ServiceAccountName: "sa",
				Address: "https://acct:key@acct.blob.core.windows.net"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}, {FieldEndpointUserInfo, InlineCredential}},
		},
		"a user name alone in a Bucket's endpoint is never used": {
			src:  Object{Kind: bucket, Address: "admin@minio.example.com:9000"},
			want: []use{{FieldEndpointUserInfo, Ignored}},
		},
		"an https Helm URL's password= is sent with every request": {
			src:  Object{Kind: helm, HelmType: HelmTypeDefault, Address: "https://charts.example.com/?password=x"},
			want: []use{{FieldURLQuery, InlineCredential}},
		},
		"GitLab's job_token too": {
			src:  Object{Kind: helm, HelmType: HelmTypeDefault, Address: "https://gitlab.example.com/api/v4/projects/1/packages/helm/stable?job_token=x"},
			want: []use{{FieldURLQuery, InlineCredential}},
		},
		"an API key= too": {
			src:  Object{Kind: helm, HelmType: HelmTypeDefault, Address: "https://charts.example.com/?key=x"},
			want: []use{{FieldURLQuery, InlineCredential}},
		},
		"a token after a ';', which Flux sends as written and many servers split on": {
			src:  Object{Kind: helm, HelmType: HelmTypeDefault, Address: "https://charts.example.com/?page=1;token=x"},
			want: []use{{FieldURLQuery, InlineCredential}},
		},
		"a SAS signature after a ';' in an Azure Bucket's endpoint": {
			src: Object{Kind: bucket, Provider: ProviderAzure, ServiceAccountName: "sa",
				Address: "https://a.blob.core.windows.net/?sv=1;sig=x"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}, {FieldEndpointQuery, InlineCredential}},
		},
		"parameters that name no credential are not looked at": {
			src:  Object{Kind: helm, HelmType: HelmTypeDefault, Address: "https://charts.example.com/?page=2&monkey=1&keyword=a"},
			want: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []use
			for _, u := range Uses(tc.src) {
				got = append(got, use{u.Field, u.Class})
				if u.Row == nil {
					t.Errorf("use of %s has no row", u.Field)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("uses = %v\nwant   %v", got, tc.want)
			}
		})
	}
}

func TestUsesKeepWhatTheyUseForComparison(t *testing.T) {
	a := Uses(Object{Kind: git, Address: "https://a:1@h/r", SecretRef: "one"})
	b := Uses(Object{Kind: git, Address: "https://a:2@h/r", SecretRef: "one"})
	if a[0].Ref != b[0].Ref {
		t.Errorf("the same Secret compares unequal: %q %q", a[0].Ref, b[0].Ref)
	}
	if a[1].Ref == b[1].Ref {
		t.Error("two different passwords in the URL compare equal")
	}
}

func TestTargetCloud(t *testing.T) {
	tests := []struct {
		src  Object
		want string
	}{
		{Object{Kind: git, Address: "https://dev.azure.com/org/p/_git/r"}, ProviderAzure},
		{Object{Kind: git, Address: "https://org.visualstudio.com/p/_git/r"}, ProviderAzure},
		{Object{Kind: git, Address: "ssh://git@ssh.dev.azure.com/v3/org/p/r"}, ProviderAzure},
		{Object{Kind: git, Address: "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r"}, ProviderAWS},
		{Object{Kind: git, Address: "https://git-codecommit-fips.us-gov-west-1.amazonaws.com/v1/repos/r"}, ProviderAWS},
		{Object{Kind: git, Address: "https://git-codecommit.cn-north-1.amazonaws.com.cn/v1/repos/r"}, ProviderAWS},
		{Object{Kind: git, Address: "ssh://git-codecommit.eu-west-1.amazonaws.com/v1/repos/r"}, ""}, // https only
		{Object{Kind: git, Address: "https://github.com/org/r"}, ""},
		{Object{Kind: git, Address: "https://github.com/org/r", Provider: ProviderAzure}, ProviderAzure},
		{Object{Kind: oci, Address: "oci://111122223333.dkr.ecr.eu-west-1.amazonaws.com/app"}, ProviderAWS},
		{Object{Kind: oci, Address: "oci://public.ecr.aws/org/app"}, ProviderAWS},
		{Object{Kind: oci, Address: "oci://myreg.azurecr.io/app"}, ProviderAzure},
		{Object{Kind: oci, Address: "oci://myreg.azurecr.cn/app"}, ProviderAzure},
		{Object{Kind: oci, Address: "oci://europe-docker.pkg.dev/p/app"}, ProviderGCP},
		{Object{Kind: oci, Address: "oci://eu.gcr.io/p/app"}, ProviderGCP},
		{Object{Kind: oci, Address: "oci://ghcr.io/org/app"}, ""},
		{Object{Kind: image, Address: "myreg.azurecr.io/app"}, ProviderAzure},
		{Object{Kind: image, Address: "library/nginx"}, ""},
		{Object{Kind: helm, HelmType: HelmTypeOCI, Address: "oci://111122223333.dkr.ecr.us-east-1.amazonaws.com/charts"}, ProviderAWS},
		{Object{Kind: bucket, Address: "s3.amazonaws.com"}, ProviderAWS},
		{Object{Kind: bucket, Address: "s3.eu-west-1.amazonaws.com"}, ProviderAWS},
		{Object{Kind: bucket, Address: "s3.dualstack.eu-west-1.amazonaws.com:443"}, ProviderAWS},
		{Object{Kind: bucket, Address: "https://acct.blob.core.windows.net"}, ProviderAzure},
		{Object{Kind: bucket, Address: "https://acct.blob.core.usgovcloudapi.net"}, ProviderAzure},
		{Object{Kind: bucket, Address: "storage.googleapis.com"}, ProviderGCP},
		{Object{Kind: bucket, Address: "minio.local:9000"}, ""},
		{Object{Kind: bucket, Address: "minio.local:9000", Provider: ProviderGCP}, ProviderGCP}, // gcp ignores the endpoint
	}
	for _, tc := range tests {
		if got := TargetCloud(tc.src); got != tc.want {
			t.Errorf("TargetCloud(%s %q, provider %q) = %q, want %q", tc.src.Kind, tc.src.Address, tc.src.Provider,
				got, tc.want)
		}
	}
}

func TestModelRowsAreUniqueAndComplete(t *testing.T) {
	seen := map[rowKey]bool{}
	for _, r := range Model {
		k := rowKey{r.Kind, r.Variant, r.Provider, r.Field}
		if seen[k] {
			t.Errorf("two rows for %+v", k)
		}
		seen[k] = true
		if r.Reads == "" {
			t.Errorf("row %+v does not say what Flux reads", k)
		}
		// A row can produce a violation when a mandate refuses its class, or, whatever its class, when its field is the
		// user info of an address: a password written there is a credential in the object. Its message names the
		// row's short form ("spec.url carries a password").
		var violates bool
		switch r.Class {
		case StoredSecret, InlineCredential, AppKey, PullSecrets, SOPSKeys, ReceiverToken, BorrowedCredentials,
			BorrowedIdentity, NoAlternative:
			violates = true
		}
		if r.Field == FieldURLUserInfo || r.Field == FieldEndpointUserInfo {
			violates = true
		}
		if violates && r.Short == "" {
			t.Errorf("row %+v has no short form for messages", k)
		}
		if (r.Lockdown != "" && r.Class != ControllerIdentity) || (r.PullSecretsWin && r.Class != ObjectIdentity) {
			t.Errorf("row %+v sets a flag of another class", k)
		}
	}
}
