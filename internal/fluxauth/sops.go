package fluxauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"slices"
	"unicode/utf16"

	"sigs.k8s.io/yaml"
)

// A SOPS decryption Secret holds its credentials where the Kustomization cannot show them, so they are judged on the
// Secret: kustomize-controller v1.9.6 Decryptor.ImportKeys (internal/decryptor/decryptor.go) reads, from the Secret
// that spec.decryption.secretRef names, every entry by its name: *.asc (PGP keys), *.agekey (age keys), and the
// fixed names sops.vault-token, sops.aws-kms, sops.azure-kv and sops.gcp-kms; anything else is ignored. The internal
// packages cannot be imported, so the parsing below mirrors theirs and cites it.

// The keys of a SOPS decryption Secret that hold a credential, whatever the Kustomization using it.
const (
	SOPSKeyAWSKMS     = "sops.aws-kms"
	SOPSKeyAzureKV    = "sops.azure-kv"
	SOPSKeyGCPKMS     = "sops.gcp-kms"
	SOPSKeyVaultToken = "sops.vault-token"
	// SOPSAgeKeySuffix and SOPSPGPKeySuffix end the names of private key entries (filepath.Ext in ImportKeys).
	SOPSAgeKeySuffix = ".agekey"
	SOPSPGPKeySuffix = ".asc"
)

// SOPSCredentialKeys are the fixed entry names ImportKeys reads a credential from: a Secret carrying one is a SOPS
// decryption Secret, and the webhook registration sends only such Secrets (policy/conditions).
var SOPSCredentialKeys = []string{SOPSKeyAWSKMS, SOPSKeyAzureKV, SOPSKeyGCPKMS, SOPSKeyVaultToken}

// The forms a SOPS credential entry parses as: the variants of the Secret's rows.
const (
	SOPSAWSStaticKeys          = "static keys"
	SOPSAzureClientSecret      = "client secret"
	SOPSAzureClientCertificate = "client certificate"
	SOPSAzureManagedIdentity   = "managed identity"
	SOPSGCPKey                 = "key"
	SOPSGCPExternalAccount     = "keyless external_account"
	// SOPSUnreadable is an entry Flux cannot parse; no row has it, so it is taken for a stored credential.
	SOPSUnreadable = "unreadable"
)

// SOPSField is the model's field for a Secret entry ImportKeys reads, "" for an entry it ignores.
func SOPSField(key string) string {
	switch key {
	case SOPSKeyAWSKMS:
		return FieldSOPSAWSKMS
	case SOPSKeyAzureKV:
		return FieldSOPSAzureKV
	case SOPSKeyGCPKMS:
		return FieldSOPSGCPKMS
	case SOPSKeyVaultToken:
		return FieldSOPSVaultToken
	}
	switch filepath.Ext(key) {
	case SOPSAgeKeySuffix:
		return FieldSOPSAgeKey
	case SOPSPGPKeySuffix:
		return FieldSOPSPGPKey
	}
	return ""
}

// SecretUses lists what kustomize-controller would make of each entry of a Secret used for decryption, in key order.
// The values are read only to classify them; a use's Ref is a digest, so an update can be compared without keeping a
// value.
func SecretUses(data map[string][]byte) []Use {
	keys := make([]string, 0, len(data))
	for k := range data {
		if SOPSField(k) != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var list []Use
	for _, k := range keys {
		field, value := SOPSField(k), data[k]
		r := Lookup(SecretKind, sopsVariant(field, value), AnyProvider, field)
		if r == nil {
			r = &unmodelled
		}
		sum := sha256.Sum256(value)
		list = append(list, Use{Field: field, Class: r.Class, Row: r, Ref: k + "\x00" + hex.EncodeToString(sum[:8])})
	}
	return list
}

// sopsVariant is what an entry's value parses as.
func sopsVariant(field string, value []byte) string {
	switch field {
	case FieldSOPSAWSKMS:
		// awskms.LoadStaticCredentialsFromYAML: aws_access_key_id, aws_secret_access_key and aws_session_token become a
		// static provider; nothing checks that they are set.
		return SOPSAWSStaticKeys
	case FieldSOPSAzureKV:
		return azureVariant(value)
	case FieldSOPSGCPKMS:
		return gcpVariant(value)
	}
	return AnyVariant
}

// aadConfig is azkv.AADConfig (internal/sops/azkv/config.go): the azure-kv entry's fields, YAML or JSON.
type aadConfig struct {
	TenantID          string `json:"tenantId,omitempty"`
	ClientID          string `json:"clientId,omitempty"`
	ClientSecret      string `json:"clientSecret,omitempty"`
	ClientCertificate string `json:"clientCertificate,omitempty"`
	AppID             string `json:"appId,omitempty"`
	Tenant            string `json:"tenant,omitempty"`
	Password          string `json:"password,omitempty"`
}

// azureVariant mirrors azkv.TokenCredentialFromAADConfig: a tenant and client ID with a client secret or a client
// certificate, or az CLI's tenant, appId and password, are a service principal's credential; a clientId otherwise is
// azidentity.NewManagedIdentityCredential, the managed identity of the node the controller runs on; anything else
// is refused by Flux ("invalid data: requires a 'clientId' field ...").
func azureVariant(value []byte) string {
	var c aadConfig
	if err := yaml.Unmarshal(utf16ToUTF8(value), &c); err != nil {
		return SOPSUnreadable
	}
	switch {
	case c.TenantID != "" && c.ClientID != "" && c.ClientSecret != "":
		return SOPSAzureClientSecret
	case c.TenantID != "" && c.ClientID != "" && c.ClientCertificate != "":
		return SOPSAzureClientCertificate
	case c.Tenant != "" && c.AppID != "" && c.Password != "":
		return SOPSAzureClientSecret
	case c.ClientID != "":
		return SOPSAzureManagedIdentity
	}
	return SOPSUnreadable
}

// utf16ToUTF8 mirrors azkv's decode (utfbom.Skip): a UTF-16 value with a byte order mark is read as UTF-16, a UTF-8
// byte order mark is dropped, anything else is taken as it is.
func utf16ToUTF8(b []byte) []byte {
	var order binary.ByteOrder
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xFE}):
		order = binary.LittleEndian
	case bytes.HasPrefix(b, []byte{0xFE, 0xFF}):
		order = binary.BigEndian
	default:
		return bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
	}
	u16 := make([]uint16, (len(b)-2)/2)
	for i := range u16 {
		u16[i] = order.Uint16(b[2+2*i:])
	}
	return []byte(string(utf16.Decode(u16)))
}

// gcpVariant mirrors what google.CredentialsFromJSON (golang.org/x/oauth2/google, which ImportKeys calls) makes of the
// entry: an external_account configuration without a client secret exchanges a token it reads from a file, a URL or
// a program the controller can reach (someone else's identity); every other type it accepts (service_account,
// authorized_user, external_account_authorized_user, impersonated_service_account, gdch_service_account, OAuth client
// files) carries a key, a refresh token or a client secret.
func gcpVariant(value []byte) string {
	var c struct {
		Type         string `json:"type"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(bytes.Trim(value, "\n"), &c); err != nil {
		return SOPSUnreadable
	}
	if c.Type == "external_account" && c.ClientSecret == "" {
		return SOPSGCPExternalAccount
	}
	return SOPSGCPKey
}
