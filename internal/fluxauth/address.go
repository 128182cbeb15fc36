package fluxauth

import (
	fluxcdv1 "github.com/controlplaneio-fluxcd/flux-operator/api/v1"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// A query in an address Flux requests as written is sent with every request: source-controller's
// ChartRepository.DownloadIndex keeps an https Helm repository's query on index.yaml, and DownloadChart resolves each
// chart URL with Helm's repo.ResolveReferenceURL, which copies the repository's RawQuery onto it; an Azure Bucket's
// endpoint goes to the blob client as it is (azure NewClient; sasTokenFromSecret merges it into a SAS). Flux sends
// the raw query, so a server that splits parameters on ';' as well as '&' (Rack, many servlet containers) reads a
// token after a ';' too, although Go's url.Query drops such pairs. Which parameter carries a credential is the
// server's to say, so the name decides: a parameter is a credential when a word of its name (split at '-', '_', '.'
// and lower-to-upper case changes, compared case-insensitively) is one of credentialWords.
var credentialWords = map[string]bool{
	"token": true, "password": true, "passwd": true, "pwd": true, "secret": true, "key": true, "apikey": true,
	"sig": true, "signature": true, "credential": true, "credentials": true, "auth": true, "authorization": true,
}

// CredentialQueryParam says whether a query parameter of that name carries a credential: Azure SAS (sig), S3 and
// GCS pre-signed URLs (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature), GitLab
// (private_token, job_token), OAuth (access_token), API keys (key, api_key, apikey), passwords (password, passwd).
func CredentialQueryParam(name string) bool {
	for _, w := range nameWords(name) {
		if credentialWords[strings.ToLower(w)] {
			return true
		}
	}
	return false
}

// nameWords splits a parameter name at '-', '_', '.' and where a lower-case letter is followed by an upper-case one.
func nameWords(name string) []string {
	var words []string
	start := 0
	for i, r := range name {
		switch {
		case r == '-' || r == '_' || r == '.':
			words = append(words, name[start:i])
			start = i + 1
		case i > start && unicode.IsUpper(r) && unicode.IsLower(rune(name[i-1])):
			words = append(words, name[start:i])
			start = i
		}
	}
	return append(words, name[start:])
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
		if c, ok := userInfo(u, FieldURLUserInfo); ok {
			out = append(out, c)
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
		// An S3 endpoint is host[:port] (minio-go getEndpointURL puts the scheme in front), an Azure one a URL.
		address := s.Address
		if !strings.Contains(address, "://") {
			address = "s3://" + address
		}
		u, err := url.Parse(address)
		if err != nil {
			return nil
		}
		if c, ok := userInfo(u, FieldEndpointUserInfo); ok {
			out = append(out, c)
		}
		if q := credentialQuery(u); q != "" && Lookup(s.Kind, AnyVariant, s.EffectiveProvider(), FieldEndpointQuery) != nil {
			out = append(out, addressCredential{field: FieldEndpointQuery, ref: q})
		}
	}
	return out
}

// userInfo is the user info of an address as the field it is, when it holds a user name or a password.
func userInfo(u *url.URL, field string) (addressCredential, bool) {
	if u.User == nil {
		return addressCredential{}, false
	}
	_, hasPassword := u.User.Password()
	if u.User.Username() == "" && !hasPassword {
		return addressCredential{}, false
	}
	return addressCredential{field: field, ref: u.User.String(), password: hasPassword}, true
}

// credentialQuery returns the credential-carrying parameters of the URL's raw query, split at '&' and ';', joined,
// or "".
func credentialQuery(u *url.URL) string {
	var found []string
	for _, pair := range strings.FieldsFunc(u.RawQuery, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(pair, "=")
		if unescaped, err := url.QueryUnescape(name); err == nil {
			name = unescaped
		}
		if CredentialQueryParam(name) {
			found = append(found, pair)
		}
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
