package fluxauth

import (
	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	"net/url"
	"regexp"
	"strings"
)

// CredentialQueryParams are query parameters that carry a token in URLs Flux requests as written (an https Helm
// repository's URL, an Azure Bucket's endpoint): Azure SAS signatures, S3 and GCS pre-signed URLs, and the token
// parameters of common artifact servers. Matched case-insensitively. A heuristic: a query parameter outside this list
// is not looked at.
var CredentialQueryParams = []string{
	"sig",                                                         // Azure SAS
	"x-amz-signature", "x-amz-credential", "x-amz-security-token", // S3 pre-signed
	"x-goog-signature", "x-goog-credential", // GCS signed URL
	"token", "access_token", "private_token", "api_key", "apikey",
}

// addressCredential is a credential written in a source's address.
type addressCredential struct {
	field, ref string
	// password is set for user info holding a password.
	password bool
}

// addressCredentials finds user info and token parameters in a source's address, where the model says Flux reads
// that part of the address (a password is reported wherever it is written).
func addressCredentials(s Object) []addressCredential {
	var out []addressCredential
	switch s.Kind {
	case git, oci, helm:
		u, err := url.Parse(s.Address)
		if err != nil {
			return nil // Flux stalls on an address it cannot parse: nothing is sent
		}
		if u.User != nil {
			_, hasPassword := u.User.Password()
			if u.User.Username() != "" || hasPassword {
				out = append(out, addressCredential{field: FieldURLUserInfo, ref: u.User.String(), password: hasPassword})
			}
		}
		if q := credentialQuery(u); q != "" && Lookup(s.Kind, VariantOf(s), s.EffectiveProvider(), FieldURLQuery) != nil {
			out = append(out, addressCredential{field: FieldURLQuery, ref: q})
		}
	case inputs:
		if u, err := url.Parse(s.Address); err == nil && u.User != nil {
			out = append(out, addressCredential{field: FieldURLUserInfo, ref: u.User.String(), password: true})
		}
	case provider:
		// A notification Provider posts to spec.address as written (or to the Secret's address, which wins); Azure
		// Event Hubs takes an address holding SharedAccessKey for a connection string (NewAzureEventHub).
		if strings.Contains(s.Address, "SharedAccessKey") {
			out = append(out, addressCredential{field: FieldAddressSAS, ref: s.Address})
		} else if u, err := url.Parse(s.Address); err == nil && u.User != nil {
			out = append(out, addressCredential{field: FieldAddressUserInfo, ref: u.User.String(), password: true})
		}
		if u, err := url.Parse(s.Proxy); err == nil && u.User != nil {
			_, hasPassword := u.User.Password()
			out = append(out, addressCredential{field: FieldProxyUserInfo, ref: u.User.String(), password: hasPassword})
		}
	case bucket:
		if !strings.Contains(s.Address, "://") {
			return nil // an S3 endpoint is host[:port]
		}
		u, err := url.Parse(s.Address)
		if err != nil {
			return nil
		}
		if q := credentialQuery(u); q != "" && Lookup(s.Kind, AnyVariant, s.EffectiveProvider(), FieldEndpointQuery) != nil {
			out = append(out, addressCredential{field: FieldEndpointQuery, ref: q})
		}
	}
	return out
}

// credentialQuery returns the values of the URL's credential-carrying query parameters, joined, or "".
func credentialQuery(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	var found []string
	for k, vs := range u.Query() {
		for _, p := range CredentialQueryParams {
			if strings.EqualFold(k, p) {
				found = append(found, k+"="+strings.Join(vs, ","))
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	return strings.Join(found, "&")
}

// scheme is the lower-cased scheme of an address, or "".
func scheme(address string) string {
	s, _, ok := strings.Cut(address, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}

// Registry host patterns, as Flux's providers accept them (pkg/auth v0.54.3 ParseArtifactRepository of aws, azure
// and gcp): a cloud provider authenticates only to these hosts, so they tell which cloud an OCI source targets.
var (
	// aws registryPattern: ECR in every partition, FIPS and dual-stack; plus the public ECR hosts.
	ecrHost       = regexp.MustCompile(`^([0-9]{12})\.dkr[.-]ecr(?:-fips)?\.([a-zA-Z0-9][a-zA-Z0-9_-]{0,99})\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$`)
	publicECR     = []string{"public.ecr.aws", "ecr-public.aws.com"}
	acrHost       = regexp.MustCompile(`^.+\.(azurecr\.io|azurecr\.cn|azurecr\.de|azurecr\.us)$`)
	googleRegHost = regexp.MustCompile(`^(((.+\.)?gcr\.io)|(.+-docker\.pkg\.dev)|(docker\.s3nsregistry\.fr))$`)
	// Bucket endpoints: S3 (regional, dual-stack, FIPS, China), Azure Blob storage in the public and sovereign clouds,
	// and Google Cloud Storage's XML API.
	s3Host   = regexp.MustCompile(`^(.+\.)?s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?$`)
	blobHost = regexp.MustCompile(`^[a-z0-9]+\.blob\.core\.(windows\.net|usgovcloudapi\.net|chinacloudapi\.cn)$`)
)

// TargetCloud says whose workload identity can reach the source: "aws", "azure" or "gcp" when its address names a
// cloud service (CodeCommit, Azure DevOps, ECR, ACR, Artifact Registry, S3, Blob storage, Cloud Storage), else the
// cloud spec.provider selects, else "".
func TargetCloud(s Object) string {
	if c := cloudOfAddress(s); c != "" {
		return c
	}
	switch p := s.EffectiveProvider(); p {
	case ProviderAWS, ProviderAzure, ProviderGCP:
		return p
	}
	return ""
}

func cloudOfAddress(s Object) string {
	switch s.Kind {
	case git:
		u, err := url.Parse(s.Address)
		if err != nil {
			return ""
		}
		return gitCloud(u)
	case oci, helm, image:
		return registryCloud(RegistryHost(s.Address))
	case inputs:
		if s.Type == fluxcdv1.InputProviderOCIArtifactTag {
			return registryCloud(RegistryHost(s.Address))
		}
		return "" // the type names the cloud (EffectiveProvider)
	case provider:
		return "" // the type names the cloud (EffectiveProvider)
	case bucket:
		if s.EffectiveProvider() == ProviderGCP {
			return ProviderGCP // the gcp client never reads spec.endpoint (gcp NewClient)
		}
		host := s.Address
		if strings.Contains(host, "://") {
			if u, err := url.Parse(host); err == nil {
				host = u.Host
			}
		}
		host, _, _ = strings.Cut(strings.ToLower(host), ":")
		switch {
		case s3Host.MatchString(host):
			return ProviderAWS
		case blobHost.MatchString(host):
			return ProviderAzure
		case host == "storage.googleapis.com":
			return ProviderGCP
		}
	}
	return ""
}

// gitCloud recognises CodeCommit (pkg/auth aws getRegionFromCodeCommitURL: https only) and Azure DevOps.
func gitCloud(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	labels := strings.Split(host, ".")
	switch {
	case strings.EqualFold(u.Scheme, "https") && len(labels) >= 4 &&
		(strings.HasPrefix(host, "git-codecommit.") || strings.HasPrefix(host, "git-codecommit-fips.")) &&
		(strings.HasSuffix(host, ".amazonaws.com") || strings.HasSuffix(host, ".amazonaws.com.cn")):
		return ProviderAWS
	case host == "dev.azure.com" || host == "ssh.dev.azure.com" || strings.HasSuffix(host, ".visualstudio.com"):
		return ProviderAzure
	}
	return ""
}

// RegistryHost is the registry of an OCI address (oci://host/repo, host/repo:tag, an ImageRepository's image), as
// pkg/auth GetRegistryFromArtifactRepository reads it; Docker Hub for a name without a host.
func RegistryHost(address string) string {
	a := strings.TrimPrefix(address, "oci://")
	host, _, hasPath := strings.Cut(a, "/")
	if hasPath && !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "index.docker.io" // go-containerregistry's default registry for "library/nginx"
	}
	return host
}

// registryCloud matches the whole host, port included, as Flux's providers do.
func registryCloud(h string) string {
	switch {
	case ecrHost.MatchString(h) || h == publicECR[0] || h == publicECR[1]:
		return ProviderAWS
	case acrHost.MatchString(h):
		return ProviderAzure
	case googleRegHost.MatchString(h):
		return ProviderGCP
	}
	return ""
}
