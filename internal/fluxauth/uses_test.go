package fluxauth

import (
	"slices"
	"testing"
)

func TestUsesOfFluxObjectsBeyondSources(t *testing.T) {
	type use struct {
		field string
		class Class
	}
	tests := map[string]struct {
		obj  Object
		want []use
	}{
		"a Kustomization without decryption or kubeconfig uses nothing": {obj: Object{Kind: kustomize}},
		"decryption with a Secret and no ServiceAccount: keys, and the controller's identity for KMS": {
			obj:  Object{Kind: kustomize, Decryption: true, DecryptionSecretRef: "sops"},
			want: []use{{FieldDecryptionSecretRef, SOPSKeys}, {FieldNoDecryptionServiceAccount, ControllerIdentity}},
		},
		"decryption with its own ServiceAccount": {
			obj:  Object{Kind: kustomize, Decryption: true, DecryptionServiceAccountName: "sops"},
			want: []use{{FieldDecryptionServiceAccountName, KMSIdentity}},
		},
		"a kubeconfig Secret is a static credential, a ConfigMap the identity path, spec.serviceAccountName impersonation": {
			obj: Object{Kind: kustomize, KubeConfigSecretRef: "kc", KubeConfigConfigMapRef: "cm", ServiceAccountName: "sa"},
			want: []use{{FieldKubeConfigSecretRef, StoredSecret}, {FieldKubeConfigConfigMapRef, ConfigMapIdentity},
				{FieldServiceAccountName, Ignored}},
		},
		"a HelmRelease's kubeconfig Secret": {
			obj:  Object{Kind: release, KubeConfigSecretRef: "kc"},
			want: []use{{FieldKubeConfigSecretRef, StoredSecret}},
		},
		"an Azure DevOps Provider's token wins over its identity": {
			obj:  Object{Kind: provider, Type: "azuredevops", SecretRef: "pat"},
			want: []use{{FieldSecretRef, StoredSecret}},
		},
		"an Azure DevOps Provider without a ServiceAccount borrows notification-controller's identity": {
			obj:  Object{Kind: provider, Type: "azuredevops"},
			want: []use{{FieldNoServiceAccount, ControllerIdentity}},
		},
		"a Pub/Sub Provider with its own ServiceAccount": {
			obj:  Object{Kind: provider, Type: "googlepubsub", ServiceAccountName: "sa", Address: "project"},
			want: []use{{FieldServiceAccountName, ObjectIdentity}},
		},
		"an Event Hubs connection string in spec.address is a shared access key, and the identity is not asked": {
			obj: Object{Kind: provider, Type: "azureeventhub",
				Address: "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=abc"},
			want: []use{{FieldAddressSAS, InlineCredential}},
		},
		"a Slack token has no identity alternative": {
			obj:  Object{Kind: provider, Type: "slack", SecretRef: "webhook"},
			want: []use{{FieldSecretRef, NoAlternative}},
		},
		"a ServiceAccount on a type without identity is ignored": {
			obj:  Object{Kind: provider, Type: "slack", ServiceAccountName: "sa"},
			want: []use{{FieldServiceAccountName, Ignored}},
		},
		"a password in a Provider's address or proxy": {
			obj: Object{Kind: provider, Type: "generic", Address: "https://u:p@hooks.example.com/x",
				Proxy: "http://u:p@proxy:8080"},
			want: []use{{FieldAddressUserInfo, InlineCredential}, {FieldProxyUserInfo, InlineCredential}},
		},
		"a Receiver's token": {
			obj:  Object{Kind: receiver, Type: "github", SecretRef: "token"},
			want: []use{{FieldSecretRef, ReceiverToken}},
		},
		"a generic-oidc Receiver uses nothing": {obj: Object{Kind: receiver, Type: "generic-oidc"}},
		"an ImageUpdateAutomation pushing with another namespace's GitRepository borrows its credentials": {
			obj:  Object{Kind: automation, Namespace: "team-a", SourceRefNamespace: "flux-system"},
			want: []use{{FieldSourceRefNamespace, BorrowedCredentials}},
		},
		"an ImageUpdateAutomation naming its own namespace borrows nothing": {
			obj: Object{Kind: automation, Namespace: "team-a", SourceRefNamespace: "team-a"},
		},
		"an ECR input provider without a ServiceAccount borrows the operator's identity": {
			obj:  Object{Kind: inputs, Type: "ECRArtifactTag"},
			want: []use{{FieldNoServiceAccount, ControllerIdentity}},
		},
		"an Azure DevOps input provider's token wins over its ServiceAccount": {
			obj:  Object{Kind: inputs, Type: "AzureDevOpsPullRequest", SecretRef: "pat", ServiceAccountName: "sa"},
			want: []use{{FieldSecretRef, StoredSecret}, {FieldServiceAccountName, ObjectIdentity}},
		},
		"a GitHub input provider's token has no identity alternative": {
			obj:  Object{Kind: inputs, Type: "GitHubPullRequest", SecretRef: "token"},
			want: []use{{FieldSecretRef, NoAlternative}},
		},
		"an OCIArtifactTag input provider's ServiceAccount lends only its pull secrets": {
			obj:  Object{Kind: inputs, Type: "OCIArtifactTag", ServiceAccountName: "sa"},
			want: []use{{FieldServiceAccountName, PullSecrets}},
		},
		"an ExternalArtifact input provider's ServiceAccount is impersonated": {
			obj:  Object{Kind: inputs, Type: "ExternalArtifact", ServiceAccountName: "sa"},
			want: []use{{FieldServiceAccountName, Ignored}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []use
			for _, u := range Uses(tc.obj) {
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

func TestSecretUsesReadEntriesAsImportKeysDoes(t *testing.T) {
	tests := map[string]struct {
		key, value string
		field      string
		class      Class
	}{
		"static AWS keys": {"sops.aws-kms", "aws_access_key_id: AKIA\naws_secret_access_key: s\n", FieldSOPSAWSKMS, StoredSecret},
		"an empty AWS entry is still static keys to Flux":                  {"sops.aws-kms", "", FieldSOPSAWSKMS, StoredSecret},
		"an Azure client secret":                                           {"sops.azure-kv", "tenantId: t\nclientId: c\nclientSecret: s\n", FieldSOPSAzureKV, StoredSecret},
		"an Azure client certificate":                                      {"sops.azure-kv", `{"tenantId":"t","clientId":"c","clientCertificate":"-----BEGIN"}`, FieldSOPSAzureKV, StoredSecret},
		"az CLI's service principal file":                                  {"sops.azure-kv", `{"appId":"a","tenant":"t","password":"p"}`, FieldSOPSAzureKV, StoredSecret},
		"a clientId alone is the node's managed identity":                  {"sops.azure-kv", "clientId: c\n", FieldSOPSAzureKV, BorrowedIdentity},
		"a tenant and client without a secret is the managed identity too": {"sops.azure-kv", "tenantId: t\nclientId: c\n", FieldSOPSAzureKV, BorrowedIdentity},
		"a UTF-16 file from Windows is read as Flux reads it":              {"sops.azure-kv", utf16LE("clientId: c\n"), FieldSOPSAzureKV, BorrowedIdentity},
		"an Azure entry Flux refuses is taken for a credential":            {"sops.azure-kv", "foo: bar\n", FieldSOPSAzureKV, StoredSecret},
		"a Google service account key":                                     {"sops.gcp-kms", `{"type":"service_account","private_key":"k"}`, FieldSOPSGCPKMS, StoredSecret},
		"Google user credentials":                                          {"sops.gcp-kms", `{"type":"authorized_user","refresh_token":"r"}`, FieldSOPSGCPKMS, StoredSecret},
		"a keyless external_account is someone else's identity":            {"sops.gcp-kms", `{"type":"external_account","credential_source":{"file":"/var/run/t"}}`, FieldSOPSGCPKMS, BorrowedIdentity},
		"an external_account with a client secret holds a credential":      {"sops.gcp-kms", `{"type":"external_account","client_secret":"s"}`, FieldSOPSGCPKMS, StoredSecret},
		"a Vault token": {"sops.vault-token", "hvs.x", FieldSOPSVaultToken, StoredSecret},
		"an age key":    {"identity.agekey", "AGE-SECRET-KEY-1", FieldSOPSAgeKey, SOPSKeys},
		"a PGP key":     {"pgp.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----", FieldSOPSPGPKey, SOPSKeys},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			uses := SecretUses(map[string][]byte{tc.key: []byte(tc.value), "README": []byte("ignored")})
			if len(uses) != 1 || uses[0].Field != tc.field || uses[0].Class != tc.class {
				t.Fatalf("uses = %+v, want one %s %s", uses, tc.field, tc.class)
			}
			if slices.Contains([]string{uses[0].Ref}, tc.value) && tc.value != "" {
				t.Error("the use keeps the value itself")
			}
		})
	}
	a := SecretUses(map[string][]byte{"sops.vault-token": []byte("one")})
	b := SecretUses(map[string][]byte{"sops.vault-token": []byte("two")})
	if a[0].Ref == b[0].Ref {
		t.Error("two different values compare equal: an update bringing a new credential would pass as unchanged")
	}
}

func utf16LE(s string) string {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return string(b)
}
