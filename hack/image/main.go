// Command image builds the flux-identity-webhook container image without a Docker engine, and pushes it.
//
//	go run ./hack/image build --out bin/image --version v0.1.0 --commit SHA
//	go run ./hack/image push --from bin/image/oci --to ghcr.io/ORG/flux-identity-webhook:v0.1.0
//
// The image is what the Dockerfile builds, assembled from layers instead of run steps: a static binary
// (CGO_ENABLED=0, -trimpath, stamped with version and commit) at /flux-identity-webhook, an /etc/passwd and /etc/group
// naming the non-root user 65532 (distroless's "nonroot", the chart's runAsUser), that user, the Dockerfile's
// entrypoint, arguments, ports and labels, one manifest per platform under an OCI image index. Nothing is pulled:
// there is no base image. Every timestamp is --created (SOURCE_DATE_EPOCH by default), so the same sources and
// toolchain give the same digests. test/image reads the result back and holds it to the Dockerfile and the chart.
//
// build writes OUT/oci (an OCI image layout holding the multi-platform index) and OUT/<name>-linux-<arch>.tar (one
// `docker load`-able tarball per platform). push copies the layout's index, every platform, to a registry with the
// credentials of ~/.docker/config.json (or a credential helper).
package main

import (
	"archive/tar"
	"bytes"
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

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the Dockerfile declares; test/image holds the built image and the Dockerfile to the same values.
const (
	BinaryPath = "/flux-identity-webhook"
	User       = "65532:65532"
	UID, GID   = 65532, 65532
	UserName   = "nonroot"
	// versionPackage holds the link-time version variables (cmd/flux-identity-webhook/app/version.go).
	versionPackage = "github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app"
)

var (
	Cmd          = []string{"serve", "--policy=/etc/flux-identity-webhook/policy.yaml", "--cert-dir=/tls"}
	ExposedPorts = []string{"9443/tcp", "8080/tcp", "8081/tcp"}
	Labels       = map[string]string{
		"org.opencontainers.image.title":       "flux-identity-webhook",
		"org.opencontainers.image.description": "Cloud workload identity for Flux CD from one policy file",
		"org.opencontainers.image.source":      "https://github.com/fluxidentity/flux-identity-webhook",
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
)

// Labels the build adds from its inputs.
const (
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelCreated  = "org.opencontainers.image.created"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: image build|push [flags]")
	}
	switch args[0] {
	case "build":
		return runBuild(ctx, args[1:], stdout)
	case "push":
		return runPush(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown command %q: want build or push", args[0])
}

// BuildOptions say what to build.
type BuildOptions struct {
	Out        string
	Repository string
	Version    string
	Commit     string
	Platforms  []string // os/arch
	Created    time.Time
	// Binaries maps a platform to a prebuilt binary; missing platforms are built from ./cmd/flux-identity-webhook.
	Binaries map[string]string
}

func runBuild(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	o := BuildOptions{}
	var platforms, created, binaries string
	fs.StringVar(&o.Out, "out", "bin/image", "output directory")
	fs.StringVar(&o.Repository, "repository", "ghcr.io/fluxidentity/flux-identity-webhook", "repository the tarballs are tagged with")
	fs.StringVar(&o.Version, "version", "dev", "version stamped into the binary and the labels")
	fs.StringVar(&o.Commit, "commit", "unknown", "commit stamped into the binary and the labels")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	fs.StringVar(&created, "created", "", "RFC 3339 creation time of every file and the image (default: $SOURCE_DATE_EPOCH, else 0)")
	fs.StringVar(&binaries, "binaries", "", "comma-separated os/arch=PATH of prebuilt binaries (make release); the others are built")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Platforms = strings.Split(platforms, ",")
	if binaries != "" {
		o.Binaries = map[string]string{}
		for _, kv := range strings.Split(binaries, ",") {
			platform, path, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--binaries: %q is not os/arch=PATH", kv)
			}
			o.Binaries[platform] = path
		}
	}
	var err error
	if o.Created, err = creationTime(created); err != nil {
		return err
	}
	idx, err := Build(ctx, o)
	if err != nil {
		return err
	}
	return describe(stdout, idx)
}

func creationTime(flagValue string) (time.Time, error) {
	if flagValue != "" {
		return time.Parse(time.RFC3339, flagValue)
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// Build compiles the binary for every platform and writes the image layout and tarballs under o.Out.
func Build(ctx context.Context, o BuildOptions) (v1.ImageIndex, error) {
	tag, err := name.NewTag(o.Repository + ":" + tagOf(o.Version))
	if err != nil {
		return nil, fmt.Errorf("image reference: %w", err)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, platform := range o.Platforms {
		osName, arch, ok := strings.Cut(platform, "/")
		if !ok || osName != "linux" {
			return nil, fmt.Errorf("platform %q: want linux/ARCH", platform)
		}
		bin := o.Binaries[platform]
		if bin == "" {
			bin = filepath.Join(o.Out, "bin", "linux-"+arch, "flux-identity-webhook")
			if err := compile(ctx, arch, o.Version, o.Commit, bin); err != nil {
				return nil, err
			}
		}
		img, err := Image(bin, arch, o.Version, o.Commit, o.Created)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", platform, err)
		}
		tarPath := filepath.Join(o.Out, fmt.Sprintf("flux-identity-webhook-linux-%s.tar", arch))
		if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
			return nil, fmt.Errorf("write %s: %w", tarPath, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}
	idx = mutate.Annotations(idx, map[string]string{LabelVersion: o.Version, LabelRevision: o.Commit}).(v1.ImageIndex)
	// The layout's index.json names the multi-platform index by digest, tagged with the version, as buildx's OCI
	// export does: `skopeo copy oci:bin/image/oci:TAG docker://...` and `crane push` read it as one artifact.
	dir := filepath.Join(o.Out, "oci")
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tagOf(o.Version),
	})); err != nil {
		return nil, fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return idx, nil
}

// tagOf turns a version into a valid tag ('+' is not allowed in tags).
func tagOf(version string) string { return strings.ReplaceAll(version, "+", "-") }

// compile builds the static binary for linux/arch, stamped like the Makefile's.
func compile(ctx context.Context, arch, version, commit, out string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	ldflags := fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s", versionPackage, version, versionPackage, commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out,
		"./cmd/flux-identity-webhook")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w", arch, err)
	}
	return nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Image assembles one platform's image from the binary: a layer with the user database, a layer with the binary,
// and the Dockerfile's configuration.
func Image(binary, arch, version, commit string, created time.Time) (v1.Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	base, err := tarLayer(created, []file{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", UserName, UID, GID, UserName, UserName))},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", UserName, GID))},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/" + UserName + "/", mode: 0o700, dir: true, uid: UID, gid: GID},
	})
	if err != nil {
		return nil, err
	}
	app, err := tarLayer(created, []file{{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, data: data}})
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelVersion: version, LabelRevision: commit, LabelCreated: created.Format(time.RFC3339)}
	for k, v := range Labels {
		labels[k] = v
	}
	ports := map[string]struct{}{}
	for _, p := range ExposedPorts {
		ports[p] = struct{}{}
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Config: v1.Config{
			User:         User,
			Entrypoint:   []string{BinaryPath},
			Cmd:          slices.Clone(Cmd),
			ExposedPorts: ports,
			Labels:       labels,
			WorkingDir:   "/",
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "users: root, " + UserName + " (" + User + ")", Comment: "flux-identity-webhook hack/image"}},
		mutate.Addendum{Layer: app, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: created}, CreatedBy: "COPY flux-identity-webhook " + BinaryPath, Comment: "flux-identity-webhook hack/image"}},
	)
	if err != nil {
		return nil, err
	}
	return mutate.CreatedAt(img, v1.Time{Time: created})
}

type file struct {
	name     string
	mode     int64
	data     []byte
	dir      bool
	uid, gid int
}

// tarLayer writes the files into a gzip-compressed layer with fixed owners and times, so equal inputs give equal
// digests.
func tarLayer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: created, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
}

// describe prints the index digest and, per platform, the manifest digest and compressed size.
func describe(w io.Writer, idx v1.ImageIndex) error {
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "index %s\n", d); err != nil {
		return err
	}
	for _, desc := range m.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		var size int64
		for _, l := range layers {
			s, err := l.Size()
			if err != nil {
				return err
			}
			size += s
		}
		if _, err := fmt.Fprintf(w, "  %s/%s %s (%.1f MiB compressed)\n", desc.Platform.OS, desc.Platform.Architecture,
			desc.Digest, float64(size)/(1<<20)); err != nil {
			return err
		}
	}
	return nil
}

func runPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	from := fs.String("from", "bin/image/oci", "OCI image layout written by build")
	to := fs.String("to", "", "destination reference, e.g. ghcr.io/ORG/flux-identity-webhook:v0.1.0")
	insecure := fs.Bool("insecure", false, "allow a plain-HTTP registry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("push: --to is required")
	}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(*to, opts...)
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	digest, err := Push(ctx, *from, ref)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s@%s\n", ref.Context().Name(), digest)
	return err
}

// Push writes the layout's image index, with every platform, to ref and returns the index digest.
func Push(ctx context.Context, layoutDir string, ref name.Reference) (v1.Hash, error) {
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read %s: %w", layoutDir, err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	// build stores the multi-platform index as the layout's only manifest; push that index, not the layout's own.
	m, err := outer.IndexManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return v1.Hash{}, fmt.Errorf("%s holds %d manifests; want the one image index build writes", layoutDir, len(m.Manifests))
	}
	idx, err := outer.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}
