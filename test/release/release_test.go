package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	provenancev1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"
	"google.golang.org/protobuf/encoding/protojson"
)

// The release under test: RELEASE_DIR built by `make release`, RELEASE_PUBLIC_KEY the public half of the key it was
// given, RELEASE_KEY that key (for the rebuild), HELM the project's helm. A missing one fails: a skipped
// verification would pass every broken release.
func env(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set: run `make release-verify`", key)
	}
	return v
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checksums parses SHA256SUMS into name → hex digest.
func checksums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(read(t, filepath.Join(dir, "SHA256SUMS"))))
	for sc.Scan() {
		digest, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(digest) != 64 {
			t.Fatalf("SHA256SUMS line %q", sc.Text())
		}
		sums[file] = digest
	}
	return sums
}

// topFiles are the regular files directly in dir.
func topFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	return out
}

var platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

func binaryOf(platform string) string {
	return "flux-identity-webhook-" + strings.ReplaceAll(platform, "/", "-")
}

func TestChecksumsCoverEveryArtifact(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	sums := checksums(t, dir)
	for _, f := range topFiles(t, dir) {
		want, listed := sums[f]
		switch {
		case f == "SHA256SUMS" || strings.HasSuffix(f, ".sig") || f == "cosign.pub":
			if listed {
				t.Errorf("%s is listed in SHA256SUMS, which it is made from", f)
			}
		case !listed:
			t.Errorf("%s is not in SHA256SUMS", f)
		case sha256Hex(read(t, filepath.Join(dir, f))) != want:
			t.Errorf("%s does not match its checksum", f)
		}
	}
	for f := range sums {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("SHA256SUMS lists %s: %v", f, err)
		}
	}
	for _, p := range platforms {
		for _, f := range []string{binaryOf(p), binaryOf(p) + ".cdx.json"} {
			if _, ok := sums[f]; !ok {
				t.Errorf("no %s in the release", f)
			}
		}
	}
	for _, f := range []string{"flux-identity-webhook-image-linux-amd64.tar", "flux-identity-webhook-image-linux-arm64.tar",
		"flux-identity-webhook-image.cdx.json", "provenance.intoto.json", "image.payload.json", "chart.payload.json"} {
		if _, ok := sums[f]; !ok {
			t.Errorf("no %s in the release", f)
		}
	}
}

// verifier loads a PEM public key with sigstore's loader, as `cosign verify --key` does.
func verifier(t *testing.T, pemBytes []byte) signature.Verifier {
	t.Helper()
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// indexDigest is the digest of the image index the release's image layout holds.
func indexDigest(t *testing.T, dir string) string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "image-oci"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("image layout: %v, %d manifests", err, len(m.Manifests))
	}
	return m.Manifests[0].Digest.String()
}

// chartManifest is the chart layout's manifest tagged with the chart's version, and the layout.
func chartManifest(t *testing.T, dir, tag string) (v1.Descriptor, layout.Path) {
	t.Helper()
	p, err := layout.FromPath(filepath.Join(dir, "chart-oci"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Annotations["org.opencontainers.image.ref.name"] == tag {
			return d, p
		}
	}
	t.Fatalf("no manifest tagged %s in chart-oci", tag)
	return v1.Descriptor{}, p
}

func TestSignaturesVerifyWithThePublicKeyOnly(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	pubPEM := read(t, env(t, "RELEASE_PUBLIC_KEY"))
	if !bytes.Equal(read(t, filepath.Join(dir, "cosign.pub")), pubPEM) {
		t.Error("the release's cosign.pub is not the public half of the key it was given")
	}
	good := verifier(t, pubPEM)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := cryptoutils.MarshalPublicKeyToPEM(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	bad := verifier(t, otherPEM)
	prov := provenance(t, dir)
	params := prov.GetBuildDefinition().GetExternalParameters().AsMap()
	for _, tc := range []struct{ signed, sig, reference, digest string }{
		{signed: "SHA256SUMS", sig: "SHA256SUMS.sig"},
		{signed: "image.payload.json", sig: "image.sig", reference: params["repository"].(string), digest: indexDigest(t, dir)},
		{signed: "chart.payload.json", sig: "chart.sig", reference: params["chartRepository"].(string)},
	} {
		t.Run(tc.sig, func(t *testing.T) {
			msg := read(t, filepath.Join(dir, tc.signed))
			sig, err := base64.StdEncoding.DecodeString(string(read(t, filepath.Join(dir, tc.sig))))
			if err != nil {
				t.Fatalf("%s is not base64: %v", tc.sig, err)
			}
			if err := good.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
				t.Errorf("does not verify with the release key: %v", err)
			}
			if err := bad.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err == nil {
				t.Error("verifies with another key")
			}
			tampered := append(slices.Clone(msg), ' ')
			if err := good.VerifySignature(bytes.NewReader(sig), bytes.NewReader(tampered)); err == nil {
				t.Error("verifies a changed message")
			}
			if tc.reference == "" {
				return
			}
			var p payload.SimpleContainerImage
			if err := json.Unmarshal(msg, &p); err != nil {
				t.Fatal(err)
			}
			digest := tc.digest
			if digest == "" {
				d, _ := chartManifest(t, dir, strings.TrimPrefix(params["version"].(string), "v"))
				digest = d.Digest.String()
			}
			if p.Critical.Type != payload.CosignSignatureType || p.Critical.Identity.DockerReference != tc.reference ||
				p.Critical.Image.DockerManifestDigest != digest {
				t.Errorf("payload %+v, want %s@%s", p.Critical, tc.reference, digest)
			}
		})
	}
}

// goVersionM is what `go version -m` says about a binary: its modules as path@version (the replacement where one
// is replaced).
func goVersionM(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", bin, err)
	}
	var mods []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "dep":
			mods = append(mods, f[1]+"@"+f[2])
		case len(f) >= 3 && f[0] == "=>":
			mods[len(mods)-1] = f[1] + "@" + f[2]
		}
	}
	if len(mods) < 20 {
		t.Fatalf("go version -m lists %d modules:\n%s", len(mods), out)
	}
	slices.Sort(mods)
	return mods
}

func decodeBOM(t *testing.T, path string) cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(read(t, path)), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if bom.BOMFormat != "CycloneDX" || bom.SpecVersion != cdx.SpecVersion1_6 || bom.Metadata == nil ||
		bom.Metadata.Component == nil || bom.Components == nil {
		t.Fatalf("%s: not a CycloneDX 1.6 BOM about a component", path)
	}
	return bom
}

func libraries(cs []cdx.Component) []string {
	var out []string
	for _, c := range cs {
		if c.Type == cdx.ComponentTypeLibrary {
			out = append(out, c.Name+"@"+c.Version)
			if c.PackageURL != "pkg:golang/"+c.Name+"@"+c.Version {
				out = append(out, "bad purl "+c.PackageURL)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestSBOMsListTheModulesOfGoVersionM(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	for _, p := range platforms {
		t.Run(p, func(t *testing.T) {
			bin := filepath.Join(dir, binaryOf(p))
			bom := decodeBOM(t, bin+".cdx.json")
			want := goVersionM(t, bin)
			if got := libraries(*bom.Components); !slices.Equal(got, want) {
				t.Errorf("SBOM components\n got %v\nwant %v", got, want)
			}
			main := bom.Metadata.Component
			if main.Type != cdx.ComponentTypeApplication || main.Hashes == nil || len(*main.Hashes) != 1 ||
				(*main.Hashes)[0].Value != sha256Hex(read(t, bin)) {
				t.Errorf("the SBOM's subject %+v is not this binary", main)
			}
		})
	}
	t.Run("image", func(t *testing.T) {
		bom := decodeBOM(t, filepath.Join(dir, "flux-identity-webhook-image.cdx.json"))
		if m := bom.Metadata.Component; m.Type != cdx.ComponentTypeContainer || m.Version != indexDigest(t, dir) {
			t.Errorf("the image SBOM's subject %+v is not the image index", m)
		}
		apps := 0
		for _, c := range *bom.Components {
			if c.Type != cdx.ComponentTypeApplication {
				continue
			}
			apps++
			arch := ""
			for _, prop := range *c.Properties {
				if prop.Name == "go:build:GOARCH" {
					arch = prop.Value
				}
			}
			bin := filepath.Join(dir, "flux-identity-webhook-linux-"+arch)
			if c.Hashes == nil || (*c.Hashes)[0].Value != sha256Hex(read(t, bin)) {
				t.Errorf("the image's %s binary is not the release's", arch)
			}
			if got, want := libraries(*c.Components), goVersionM(t, bin); !slices.Equal(got, want) {
				t.Errorf("linux/%s modules\n got %v\nwant %v", arch, got, want)
			}
		}
		if apps != 2 {
			t.Errorf("%d binaries in the image SBOM, want 2", apps)
		}
	})
}

// provenance reads the statement with in-toto's own types, strictly (an unknown field is an error), validates it and
// its SLSA v1 predicate with their Validate methods, and returns the predicate.
func provenance(t *testing.T, dir string) *provenancev1.Provenance {
	t.Helper()
	var st intotov1.Statement
	if err := protojson.Unmarshal(read(t, filepath.Join(dir, "provenance.intoto.json")), &st); err != nil {
		t.Fatalf("provenance: %v", err)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("provenance statement: %v", err)
	}
	if st.GetPredicateType() != "https://slsa.dev/provenance/v1" {
		t.Fatalf("predicate type %q", st.GetPredicateType())
	}
	raw, err := protojson.Marshal(st.GetPredicate())
	if err != nil {
		t.Fatal(err)
	}
	var p provenancev1.Provenance
	if err := protojson.Unmarshal(raw, &p); err != nil {
		t.Fatalf("SLSA predicate: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("SLSA predicate: %v", err)
	}
	return &p
}

func TestProvenanceNamesEveryArtifact(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	var st intotov1.Statement
	if err := protojson.Unmarshal(read(t, filepath.Join(dir, "provenance.intoto.json")), &st); err != nil {
		t.Fatal(err)
	}
	p := provenance(t, dir)
	subjects := map[string]string{}
	for _, s := range st.GetSubject() {
		subjects[s.GetName()] = s.GetDigest()["sha256"]
	}
	for f, digest := range checksums(t, dir) {
		if f != "provenance.intoto.json" && subjects[f] != digest {
			t.Errorf("subject %s: %q, SHA256SUMS says %s", f, subjects[f], digest)
		}
	}
	params := p.GetBuildDefinition().GetExternalParameters().AsMap()
	version := params["version"].(string)
	chart, _ := chartManifest(t, dir, strings.TrimPrefix(version, "v"))
	if subjects[params["repository"].(string)] != strings.TrimPrefix(indexDigest(t, dir), "sha256:") ||
		subjects[params["chartRepository"].(string)] != chart.Digest.Hex {
		t.Errorf("the image and chart are not subjects by digest: %v", subjects)
	}
	deps := p.GetBuildDefinition().GetResolvedDependencies()
	if len(deps) == 0 || deps[0].GetDigest()["gitCommit"] != params["commit"] {
		t.Errorf("first resolved dependency %v is not the commit %v", deps[0], params["commit"])
	}
	if p.GetRunDetails().GetBuilder().GetId() == "" {
		t.Error("no builder id")
	}
}

func TestImageHoldsTheReleasedBinaries(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	idx, err := layout.ImageIndexFromPath(filepath.Join(dir, "image-oci"))
	if err != nil {
		t.Fatal(err)
	}
	inner, err := idx.ImageIndex(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(indexDigest(t, dir), "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := inner.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range m.Manifests {
		arch := desc.Platform.Architecture
		img, err := inner.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fileInImage(t, img, "flux-identity-webhook"), read(t, filepath.Join(dir, "flux-identity-webhook-linux-"+arch)); !bytes.Equal(got, want) {
			t.Errorf("linux/%s: the image's binary (%d bytes) is not the released one (%d bytes)", arch, len(got), len(want))
		}
		tb, err := tarball.ImageFromPath(filepath.Join(dir, "flux-identity-webhook-image-linux-"+arch+".tar"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// A docker-load tarball carries the image's config and uncompressed layers, not its OCI manifest: the same
		// config (which names every layer's diff ID) is the same image.
		got, err1 := tb.ConfigName()
		want, err2 := img.ConfigName()
		if err := errors.Join(err1, err2); err != nil || got != want {
			t.Errorf("linux/%s: the tarball's image config %s is not the index's %s (%v)", arch, got, want, err)
		}
	}
}

// fileInImage reads a file of the image's flattened filesystem (go-containerregistry's mutate.Extract).
func fileInImage(t *testing.T, img v1.Image, path string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for h, err := tr.Next(); !errors.Is(err, io.EOF); h, err = tr.Next() {
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no %s in the image", path)
	return nil
}

func TestChartIsPullableAndPinned(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	helm := env(t, "HELM")
	prov := provenance(t, dir)
	params := prov.GetBuildDefinition().GetExternalParameters().AsMap()
	version := strings.TrimPrefix(params["version"].(string), "v")
	archive := read(t, filepath.Join(dir, "flux-identity-webhook-"+version+".tgz"))
	t.Run("every entry of the archive is dated SOURCE_DATE_EPOCH", func(t *testing.T) {
		zr, err := gzip.NewReader(bytes.NewReader(archive))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		want := params["sourceDateEpoch"].(string)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.ModTime.Unix(); strconv.FormatInt(got, 10) != want {
				t.Errorf("%s dated %d, want %s", h.Name, got, want)
			}
		}
	})
	t.Run("helm pulls from a registry the chart pushed from the layout, byte for byte", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		desc, p := chartManifest(t, dir, version)
		img, err := p.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host+"/charts/flux-identity-webhook:"+version, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		cmd := exec.CommandContext(t.Context(), helm, "pull", "oci://"+host+"/charts/flux-identity-webhook",
			"--version", version, "--plain-http", "--destination", out)
		cmd.Env = append(os.Environ(), "HELM_REGISTRY_CONFIG="+filepath.Join(out, "registry.json"),
			"HELM_CACHE_HOME="+filepath.Join(out, "cache"), "HELM_CONFIG_HOME="+filepath.Join(out, "config"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("helm pull: %v\n%s", err, b)
		}
		if pulled := read(t, filepath.Join(out, "flux-identity-webhook-"+version+".tgz")); !bytes.Equal(pulled, archive) {
			t.Error("helm pulled another archive than the release's")
		}
	})
	t.Run("the packaged chart renders the release's image and names it by digest for Artifact Hub", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "chart.tgz")
		if err := os.WriteFile(f, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), helm, "template", "x", f, "--kube-version", "1.37.2").CombinedOutput()
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, out)
		}
		image := params["repository"].(string) + ":" + params["version"].(string)
		if !strings.Contains(string(out), "image: "+image+"\n") {
			t.Errorf("the chart does not run %s", image)
		}
		show, err := exec.CommandContext(t.Context(), helm, "show", "chart", f).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(show), "image: "+image+"@"+indexDigest(t, dir)) {
			t.Errorf("artifacthub.io/images does not pin %s@%s:\n%s", image, indexDigest(t, dir), show)
		}
	})
	t.Run("Artifact Hub's repository metadata is in the layout under its tag", func(t *testing.T) {
		desc, p := chartManifest(t, dir, "artifacthub.io")
		img, err := p.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil || m.Config.MediaType != "application/vnd.cncf.artifacthub.config.v1+yaml" || len(m.Layers) != 1 ||
			m.Layers[0].MediaType != "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml" {
			t.Fatalf("manifest %+v (%v)", m, err)
		}
	})
}

// TestRebuildIsIdentical builds the release again from what its provenance says (version, commit, repositories,
// SOURCE_DATE_EPOCH), with the same key, and compares every file byte for byte: binaries, image layouts and
// tarballs, chart, SBOMs, provenance, checksums and signatures.
func TestRebuildIsIdentical(t *testing.T) {
	dir := env(t, "RELEASE_DIR")
	key := env(t, "RELEASE_KEY")
	helm := env(t, "HELM")
	params := provenance(t, dir).GetBuildDefinition().GetExternalParameters().AsMap()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "release")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/release", "build", "--out", out, "--key", key,
		"--version", params["version"].(string), "--commit", params["commit"].(string),
		"--repository", params["repository"].(string), "--chart-repository", params["chartRepository"].(string),
		"--helm", helm)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+params["sourceDateEpoch"].(string))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, b)
	}
	t.Logf("rebuilt in %s", time.Since(start).Round(time.Second))
	first, second := tree(t, dir), tree(t, out)
	for f, sum := range first {
		if second[f] != sum {
			t.Errorf("%s differs between the two builds", f)
		}
	}
	for f := range second {
		if _, ok := first[f]; !ok {
			t.Errorf("%s only in the rebuild", f)
		}
	}
	if len(first) < 20 {
		t.Errorf("only %d files compared", len(first))
	}
}

// tree maps every file under dir, by relative path, to its SHA-256.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		out[rel] = sha256Hex(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
