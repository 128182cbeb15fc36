package keys

// Long-lived cloud credentials a process takes from its environment: what Flux's controllers must not carry, since the
// clouds' SDKs prefer them to workload identity. Flux's pkg/auth builds a controller's own credentials with each
// cloud's default chain (notes on pkg/auth v0.54.x NewControllerToken): aws-sdk-go-v2 config LoadDefaultConfig reads
// static keys (and their old names) and the shared credentials file before the web identity token; azidentity's
// EnvironmentCredential (a client secret, a certificate, a user's password) comes before WorkloadIdentityCredential;
// google.DefaultTokenSource reads GOOGLE_APPLICATION_CREDENTIALS, a key file unless it is an external_account
// configuration; kustomize-controller's SOPS key service falls back to VAULT_TOKEN (and ~/.vault-token).
const (
	EnvAWSAccessKeyID           = "AWS_ACCESS_KEY_ID"
	EnvAWSAccessKey             = "AWS_ACCESS_KEY" // the SDK's older name of AWS_ACCESS_KEY_ID
	EnvAWSSecretAccessKey       = "AWS_SECRET_ACCESS_KEY"
	EnvAWSSecretKey             = "AWS_SECRET_KEY" // the SDK's older name of AWS_SECRET_ACCESS_KEY
	EnvAWSSessionToken          = "AWS_SESSION_TOKEN"
	EnvAWSSharedCredentialsFile = "AWS_SHARED_CREDENTIALS_FILE"
	// EnvAWSConfigFile may hold keys too (aws_access_key_id in a profile); it counts where it points into a Secret.
	EnvAWSConfigFile = "AWS_CONFIG_FILE"

	EnvAzureClientSecret          = "AZURE_CLIENT_SECRET"
	EnvAzureClientCertificatePath = "AZURE_CLIENT_CERTIFICATE_PATH"
	EnvAzurePassword              = "AZURE_PASSWORD"

	EnvVaultToken = "VAULT_TOKEN"
)

// StaticCredentialEnv are the variables whose mere presence gives a process a long-lived credential.
var StaticCredentialEnv = []string{
	EnvAWSAccessKeyID, EnvAWSAccessKey, EnvAWSSecretAccessKey, EnvAWSSecretKey, EnvAWSSessionToken,
	EnvAWSSharedCredentialsFile, EnvAzureClientSecret, EnvAzureClientCertificatePath, EnvAzurePassword, EnvVaultToken,
}

// CredentialFileEnv are the variables naming a file that holds a long-lived credential when it comes from a Secret:
// GOOGLE_APPLICATION_CREDENTIALS is a service account key there (the webhook's external_account configuration comes
// from the downward API, GCPMountPath), AWS_CONFIG_FILE a profile with keys.
var CredentialFileEnv = []string{EnvGoogleApplicationCredentials, EnvAWSConfigFile}

// CredentialDirs are where the SDKs look for credential files by default, under the process's home directory: the
// AWS shared credentials, gcloud's application default credentials, the Vault token file, the Azure CLI's profile.
var CredentialDirs = []string{"/.aws", "/.config/gcloud", "/.vault-token", "/.azure"}
