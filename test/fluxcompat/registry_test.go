package fluxcompat

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/auth/aws"
	"github.com/fluxcd/pkg/auth/azure"
	"github.com/fluxcd/pkg/auth/gcp"
	"github.com/fluxcd/pkg/git"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

// registryHosts generates registry hosts around the patterns Flux's providers accept: real ECR, ACR, Artifact
// Registry and GCR shapes in every partition and suffix, and near misses (wrong label, extra suffix, a port,
// upper case).
func registryHosts(r *rand.Rand, n int) []string {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	digits := func(k int) string {
		var b strings.Builder
		for range k {
			b.WriteByte(byte('0' + r.IntN(10)))
		}
		return b.String()
	}
	label := func() string {
		return pick("eu-west-1", "us-east-1", "cn-north-1", "us-gov-west-1", "me-central-1", "x", "eu_west", "-bad")
	}
	shapes := []func() string{
		func() string {
			return digits(pick2(r, 12, 11, 13)) + "." + pick("dkr.ecr", "dkr-ecr", "dkr.ecr-fips", "dkr.ecrx", "ecr") + "." +
				label() + "." + pick("amazonaws.com", "amazonaws.com.cn", "amazonaws.eu", "on.aws",
				"on.amazonwebservices.com.cn", "sc2s.sgov.gov", "c2s.ic.gov", "cloud.adc-e.uk", "csp.hci.ic.gov",
				"amazonaws.com.evil.io", "amazonaws.co")
		},
		func() string { return pick("public.ecr.aws", "ecr-public.aws.com", "public.ecr.aws.example.com") },
		func() string {
			return pick("myreg", "a", "team-registry", "") + "." + pick("azurecr.io", "azurecr.cn", "azurecr.de",
				"azurecr.us", "azurecr.io.evil.com", "azurecr.net")
		},
		func() string { return pick("evilazurecr.io", "azurecr.io") },
		func() string {
			return pick("", "eu.", "us.", "asia.", "mirror.") + pick("gcr.io", "gcr.io.example.com", "gcr.com")
		},
		func() string {
			return pick("europe", "us-central1", "asia-east1", "") + pick("-docker.pkg.dev", "-docker.pkg.dev.evil",
				"-npm.pkg.dev", ".pkg.dev")
		},
		func() string { return pick("docker.s3nsregistry.fr", "s3nsregistry.fr") },
		func() string { return pick("ghcr.io", "registry.example.com", "localhost", "quay.io", "docker.io") },
	}
	hosts := make([]string, n)
	for i := range hosts {
		h := shapes[r.IntN(len(shapes))]()
		switch r.IntN(10) {
		case 0:
			h += ":" + pick("443", "5000")
		case 1:
			h = strings.ToUpper(h[:1]) + h[1:]
		}
		hosts[i] = h
	}
	return hosts
}

func pick2(r *rand.Rand, xs ...int) int { return xs[r.IntN(len(xs))] }

// fluxCloudOfRegistry asks each of Flux's providers whether it authenticates to the repository
// (pkg/auth ParseArtifactRepository, which GetArtifactRegistryCredentials calls first): the cloud whose provider
// accepts it, "" when none does.
func fluxCloudOfRegistry(repository string) string {
	var found []string
	if _, err := (aws.Provider{}).ParseArtifactRepository(repository); err == nil {
		found = append(found, fluxauth.ProviderAWS)
	}
	if _, err := (azure.Provider{}).ParseArtifactRepository(repository); err == nil {
		found = append(found, fluxauth.ProviderAzure)
	}
	if _, err := (gcp.Provider{}).ParseArtifactRepository(repository); err == nil {
		found = append(found, fluxauth.ProviderGCP)
	}
	if len(found) > 1 {
		panic(fmt.Sprintf("%s is accepted by %v", repository, found))
	}
	if len(found) == 0 {
		return ""
	}
	return found[0]
}

// TestRegistryCloudAgreesWithFluxsProviders compares, on generated registry hosts, the cloud the webhook's fixes
// point an OCI source at with the provider Flux would accept for it: OCIRepository (soci.OIDCAuth trims oci:// and
// hands the rest to the provider), an oci HelmRepository, and an ImageRepository's image.
func TestRegistryCloudAgreesWithFluxsProviders(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 29))
	counts := map[string]int{}
	for _, host := range registryHosts(r, 5000) {
		repository := host + "/org/app"
		want := fluxCloudOfRegistry(repository)
		counts[want]++
		for _, s := range []fluxauth.Object{
			{Kind: "OCIRepository", Address: "oci://" + repository},
			{Kind: "HelmRepository", HelmType: fluxauth.HelmTypeOCI, Address: "oci://" + repository},
			{Kind: "ImageRepository", Address: repository},
		} {
			if got := fluxauth.TargetCloud(s); got != want {
				t.Errorf("%s %q: webhook says %q, Flux's providers accept %q", s.Kind, s.Address, got, want)
			}
		}
	}
	for _, cloud := range []string{"", fluxauth.ProviderAWS, fluxauth.ProviderAzure, fluxauth.ProviderGCP} {
		if counts[cloud] < 100 {
			t.Errorf("only %d generated hosts for cloud %q: the generator proves too little", counts[cloud], cloud)
		}
	}
	t.Logf("hosts per cloud Flux accepts: %v", counts)
}

// TestCodeCommitAgreesWithFlux compares the webhook's reading of a Git URL as CodeCommit with Flux's aws provider
// (ParseGitRepository, which GetGitCredentials calls for provider aws).
func TestCodeCommitAgreesWithFlux(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	agreed := map[bool]int{}
	for range 3000 {
		raw := pick("https", "http", "ssh", "HTTPS") + "://" + pick("", "user@", "u:p@") +
			pick("git-codecommit.", "git-codecommit-fips.", "codecommit.", "git-codecommitx.") +
			pick("eu-west-1.", "us-gov-west-1.", "cn-north-1.", "") + pick("amazonaws.com", "amazonaws.com.cn",
			"amazonaws.com.evil.io", "example.com") + pick("", ":443") + "/v1/repos/" + pick("app", "a/b")
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, fluxErr := (aws.Provider{}).ParseGitRepository(u)
		want := ""
		if fluxErr == nil {
			want = fluxauth.ProviderAWS
		}
		got := fluxauth.TargetCloud(fluxauth.Object{Kind: "GitRepository", Address: raw})
		if got != want {
			t.Errorf("%q: webhook says %q, Flux's aws provider %v", raw, got, fluxErr)
		}
		agreed[want != ""]++
	}
	if agreed[true] < 100 || agreed[false] < 100 {
		t.Errorf("generated URLs: %v; too few on one side", agreed)
	}
}

// TestGitURLUserInfoAgreesWithFlux compares, on generated https Git URLs, whether the webhook finds a credential in
// the URL with whether Flux authenticates with one: pkg/git NewAuthOptions with no Secret, then pkg/git/gogit
// transportAuth's rule (basic auth when user name or password is set). With provider generic they must agree
// exactly; over ssh Flux never sends the URL's password, and the webhook refuses one anyway (a credential written in
// the object), so there it may only be stricter.
func TestGitURLUserInfoAgreesWithFlux(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 13))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	seen := map[string]int{}
	for range 5000 {
		scheme := pick("https", "http", "ssh")
		userinfo := pick("", "", "git@", "x-access-token:ghp_abc@", "org@", ":pw@", "@", "user:@", "u%40x:p%3Ab@",
			"token@")
		raw := scheme + "://" + userinfo + pick("github.com", "dev.azure.com", "gitlab.example.com:8443") + "/org/repo"
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		opts, err := git.NewAuthOptions(*u, nil)
		if scheme == "ssh" {
			// NewAuthOptions refuses ssh without a Secret (no identity): Flux sends nothing from the URL.
			if uses := urlCredential(raw); uses && !hasPassword(u) {
				t.Errorf("%q: the webhook refuses an ssh user name", raw)
			}
			seen["ssh"]++
			continue
		}
		if err != nil {
			// "password requires username": Flux refuses the object, nothing is sent.
			seen["refused by Flux"]++
			continue
		}
		fluxSends := opts.Username != "" || opts.Password != ""
		if got := urlCredential(raw); got != fluxSends {
			t.Errorf("%q: webhook finds a credential %v, Flux sends one %v (user %q)", raw, got, fluxSends, opts.Username)
		}
		seen[fmt.Sprint("sends ", fluxSends)]++
	}
	if seen["sends true"] < 500 || seen["sends false"] < 500 {
		t.Errorf("generated URLs: %v; too few on one side", seen)
	}
	t.Logf("generated URLs: %v", seen)
}

func urlCredential(address string) bool {
	for _, u := range fluxauth.Uses(fluxauth.Object{Kind: "GitRepository", Address: address}) {
		if u.Field == fluxauth.FieldURLUserInfo && u.Class == fluxauth.InlineCredential {
			return true
		}
	}
	return false
}

func hasPassword(u *url.URL) bool {
	if u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}
