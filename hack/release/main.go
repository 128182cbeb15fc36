// Command release builds every artifact of a release into one directory, from the module proxy alone:
//
//	go run ./hack/release build --out bin/release --key cosign.key --version v0.1.0 --commit SHA
//	go run ./hack/release keygen --out DIR        # an unencrypted ECDSA P-256 key pair, for tests and first setups
//
// build writes
//   - flux-identity-webhook-{linux,darwin}-{amd64,arm64}: the CLI (CGO_ENABLED=0, -trimpath, -buildvcs=false, the
//     version and commit linked in, GOAMD64/GOARM64 fixed), so a build depends on the sources and the toolchain only;
//   - flux-identity-webhook-image-linux-{amd64,arm64}.tar and image-oci/: the image, built by hack/image from the two
//     linux binaries above (its index digest is the image's identity);
//   - flux-identity-webhook-VERSION.tgz and chart-oci/: the chart as `helm package` makes it, repacked with every
//     timestamp at SOURCE_DATE_EPOCH, and the same archive as an OCI artifact (the media types `helm push` writes),
//     next to charts/artifacthub-repo.yml under the tag artifacthub.io, where Artifact Hub reads it;
//   - *.cdx.json: a CycloneDX SBOM per binary (the modules debug/buildinfo records: what `go version -m` prints) and
//     one for the image;
//   - provenance.intoto.json: an in-toto Statement with an SLSA v1 provenance predicate naming every artifact;
//   - SHA256SUMS over every file above, and SHA256SUMS.sig, image.sig, chart.sig: ECDSA P-256 / SHA-256 signatures,
//     base64 ASN.1 as cosign writes them, over the checksums and over the cosign "simple signing" payloads
//     (image.payload.json, chart.payload.json) naming the image's and the chart's digests; cosign.pub is the key to
//     verify them with (`cosign verify-blob --key cosign.pub --signature SHA256SUMS.sig SHA256SUMS`).
//
// Every timestamp is SOURCE_DATE_EPOCH and the signatures are deterministic (RFC 6979), so two builds of one commit
// with one key are byte for byte the same; test/release holds a build to all of this.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names of the artifacts, for the test that reads them back.
const (
	Binary          = "flux-identity-webhook"
	ChecksumsFile   = "SHA256SUMS"
	SignatureSuffix = ".sig"
	PublicKeyFile   = "cosign.pub"
	ProvenanceFile  = "provenance.intoto.json"
	ImagePayload    = "image.payload.json"
	ChartPayload    = "chart.payload.json"
	ImageLayout     = "image-oci"
	ChartLayout     = "chart-oci"
	versionPackage  = "github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
	modulePath      = "github.com/fluxidentity/flux-identity-webhook"
)

// Platforms of the CLI; the image takes the linux ones.
var Platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: release build|keygen [flags]")
	}
	switch args[0] {
	case "build":
		return runBuild(ctx, args[1:], stdout)
	case "keygen":
		fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
		out := fs.String("out", "", "directory for cosign.key and cosign.pub")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("keygen: --out is required")
		}
		return keygen(*out)
	}
	return fmt.Errorf("unknown command %q: want build or keygen", args[0])
}

// Options say what to build.
type Options struct {
	Out, Key, Version, Commit string
	Repository                string // the image's repository
	ChartRepository           string // the OCI repository the chart is pushed to
	Helm                      string
	Created                   time.Time
}

func runBuild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Out, "out", "bin/release", "output directory (emptied first)")
	fs.StringVar(&o.Key, "key", "", "PEM ECDSA P-256 private key (PKCS#8 or SEC 1, unencrypted) to sign with (required)")
	fs.StringVar(&o.Version, "version", "", "release version, v-prefixed SemVer (required)")
	fs.StringVar(&o.Commit, "commit", "", "the commit built (required)")
	fs.StringVar(&o.Repository, "repository", "ghcr.io/fluxidentity/flux-identity-webhook", "image repository")
	fs.StringVar(&o.ChartRepository, "chart-repository", "ghcr.io/fluxidentity/charts/flux-identity-webhook",
		"OCI repository of the chart")
	fs.StringVar(&o.Helm, "helm", "bin/helm", "helm binary (make helm)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Key == "" || o.Version == "" || o.Commit == "" {
		return errors.New("build: --key, --version and --commit are required")
	}
	if !strings.HasPrefix(o.Version, "v") {
		return fmt.Errorf("build: --version %q: want a v-prefixed SemVer", o.Version)
	}
	sde := os.Getenv("SOURCE_DATE_EPOCH")
	if sde == "" {
		return errors.New("build: set SOURCE_DATE_EPOCH (the commit's time: git log -1 --format=%ct)")
	}
	sec, err := strconv.ParseInt(sde, 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
	}
	o.Created = time.Unix(sec, 0).UTC()
	return Build(ctx, o, stdout)
}

// Build writes the release into o.Out.
func Build(ctx context.Context, o Options, stdout io.Writer) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	key, err := loadKey(o.Key)
	if err != nil {
		return err
	}
	if o.Helm, err = filepath.Abs(o.Helm); err != nil {
		return err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	var subjects []subject
	for _, p := range Platforms {
		bin := filepath.Join(o.Out, binaryName(p))
		if err := compile(ctx, root, p, o.Version, o.Commit, bin); err != nil {
			return err
		}
		if err := writeBinarySBOM(o, bin, p); err != nil {
			return err
		}
	}
	image, err := buildImage(ctx, root, o)
	if err != nil {
		return err
	}
	subjects = append(subjects, subject{Name: o.Repository, Digest: image})
	chart, err := packageChart(ctx, root, o, image)
	if err != nil {
		return err
	}
	subjects = append(subjects, subject{Name: o.ChartRepository, Digest: chart})
	for _, p := range []struct {
		file, repository, digest string
	}{{ImagePayload, o.Repository, image}, {ChartPayload, o.ChartRepository, chart}} {
		if err := os.WriteFile(filepath.Join(o.Out, p.file), simpleSigningPayload(p.repository, p.digest), 0o644); err != nil {
			return err
		}
	}
	if err := writeProvenance(o, root, subjects); err != nil {
		return err
	}
	if err := writeChecksums(o.Out); err != nil {
		return err
	}
	for _, f := range []string{ChecksumsFile, ImagePayload, ChartPayload} {
		if err := signFile(key, filepath.Join(o.Out, f), filepath.Join(o.Out, strings.TrimSuffix(f, ".payload.json")+SignatureSuffix)); err != nil {
			return err
		}
	}
	if err := writePublicKey(key, filepath.Join(o.Out, PublicKeyFile)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "release %s in %s\n  image %s@%s\n  chart %s@%s\n", o.Version, o.Out, o.Repository,
		image, o.ChartRepository, chart)
	return err
}

// binaryName is the CLI's file name for os/arch.
func binaryName(platform string) string {
	return Binary + "-" + strings.ReplaceAll(platform, "/", "-")
}

// compile builds the CLI for platform exactly as hack/image does, with every input that could differ between two
// machines pinned: no cgo, no paths (-trimpath), no VCS stamp (-buildvcs=false: the commit is linked in instead),
// the architecture levels fixed, GOFLAGS ignored.
func compile(ctx context.Context, root, platform, version, commit, out string) error {
	goos, goarch, _ := strings.Cut(platform, "/")
	ldflags := fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s", versionPackage, version, versionPackage, commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-ldflags", ldflags,
		"-o", out, "./cmd/flux-identity-webhook")
	cmd.Dir = root
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOFLAGS=") }),
		"CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s: %w", platform, err)
	}
	return nil
}

// buildImage runs hack/image on the linux binaries and moves its output into the release: the tarballs renamed
// flux-identity-webhook-image-linux-ARCH.tar, the layout as image-oci/. It returns the index digest.
func buildImage(ctx context.Context, root string, o Options) (string, error) {
	work := filepath.Join(o.Out, ".image")
	var bins []string
	var linux []string
	for _, p := range Platforms {
		if strings.HasPrefix(p, "linux/") {
			abs, err := filepath.Abs(filepath.Join(o.Out, binaryName(p)))
			if err != nil {
				return "", err
			}
			bins, linux = append(bins, p+"="+abs), append(linux, p)
		}
	}
	absWork, err := filepath.Abs(work)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./hack/image", "build", "--out", absWork, "--repository", o.Repository,
		"--version", o.Version, "--commit", o.Commit, "--platforms", strings.Join(linux, ","),
		"--created", o.Created.Format(time.RFC3339), "--binaries", strings.Join(bins, ","))
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/image build: %w", err)
	}
	digest, ok := strings.CutPrefix(strings.SplitN(string(out), "\n", 2)[0], "index ")
	if !ok {
		return "", fmt.Errorf("hack/image build printed %q, want the index digest first", out)
	}
	for _, p := range linux {
		arch := strings.TrimPrefix(p, "linux/")
		if err := os.Rename(filepath.Join(work, Binary+"-linux-"+arch+".tar"),
			filepath.Join(o.Out, Binary+"-image-linux-"+arch+".tar")); err != nil {
			return "", err
		}
	}
	if err := os.Rename(filepath.Join(work, "oci"), filepath.Join(o.Out, ImageLayout)); err != nil {
		return "", err
	}
	if err := os.RemoveAll(work); err != nil {
		return "", err
	}
	if err := writeImageSBOM(o, digest); err != nil {
		return "", err
	}
	return digest, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no " + modulePath + " go.mod above the working directory")
		}
		dir = parent
	}
}
