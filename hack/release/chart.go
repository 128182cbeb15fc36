package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The media types `helm push` writes (helm.sh/helm/v3 pkg/registry/constants.go ConfigMediaType,
// ChartLayerMediaType) and those Artifact Hub reads its repository metadata from in an OCI repository (the tag
// artifacthub.io; artifacthub.io/docs/topics/repositories/#oci-support).
const (
	HelmConfigMediaType        = "application/vnd.cncf.helm.config.v1+json"
	HelmChartLayerMediaType    = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	ArtifactHubConfigMediaType = "application/vnd.cncf.artifacthub.config.v1+yaml"
	ArtifactHubLayerMediaType  = "application/vnd.cncf.artifacthub.repository-metadata.layer.v1.yaml"
	ArtifactHubTag             = "artifacthub.io"
	ociManifestMediaType       = "application/vnd.oci.image.manifest.v1+json"
	chartName                  = "flux-identity-webhook"
	artifactHubImagesKey       = "artifacthub.io/images"
)

// ChartVersion is the chart's SemVer for a release version (no leading v).
func ChartVersion(version string) string { return strings.TrimPrefix(version, "v") }

// ChartArchive is the packaged chart's file name.
func ChartArchive(version string) string { return chartName + "-" + ChartVersion(version) + ".tgz" }

// packageChart packages the chart with helm (version, and appVersion as the image's tag, so the chart's default image
// is the release's), with the image pinned by digest in its artifacthub.io/images annotation; repacks the archive
// deterministically; and writes the chart OCI layout. It returns the chart manifest's digest.
func packageChart(ctx context.Context, root string, o Options, imageDigest string) (string, error) {
	work, err := os.MkdirTemp("", "release-chart-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(work) }()
	src := filepath.Join(work, chartName)
	if err := os.CopyFS(src, os.DirFS(filepath.Join(root, "charts", chartName))); err != nil {
		return "", err
	}
	if err := pinImage(filepath.Join(src, "Chart.yaml"), o.Repository, tagOf(o.Version), imageDigest); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, o.Helm, "package", src, "--version", ChartVersion(o.Version), "--app-version",
		tagOf(o.Version), "--destination", work)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm package: %w", err)
	}
	packaged, err := os.ReadFile(filepath.Join(work, ChartArchive(o.Version)))
	if err != nil {
		return "", err
	}
	archive, chartYAML, err := repack(packaged, o.Created)
	if err != nil {
		return "", fmt.Errorf("repack %s: %w", ChartArchive(o.Version), err)
	}
	if err := os.WriteFile(filepath.Join(o.Out, ChartArchive(o.Version)), archive, 0o644); err != nil {
		return "", err
	}
	repoMeta, err := os.ReadFile(filepath.Join(root, "charts", "artifacthub-repo.yml"))
	if err != nil {
		return "", err
	}
	return writeChartLayout(filepath.Join(o.Out, ChartLayout), o, archive, chartYAML, repoMeta)
}

// tagOf is hack/image's tag for a version ('+' is not allowed in tags).
func tagOf(version string) string { return strings.ReplaceAll(version, "+", "-") }

// pinImage points the image line of the artifacthub.io/images annotation at repository:tag@digest.
func pinImage(chartYAML, repository, tag, digest string) error {
	raw, err := os.ReadFile(chartYAML)
	if err != nil {
		return err
	}
	lines := strings.Split(string(raw), "\n")
	found := false
	for i, l := range lines {
		if prefix, _, ok := strings.Cut(l, "image: "+repository+":"); ok && strings.TrimSpace(prefix) == "" {
			lines[i], found = prefix+"image: "+repository+":"+tag+"@"+digest, true
		}
	}
	if !found {
		return fmt.Errorf("%s: no %q line with image: %s:TAG", chartYAML, artifactHubImagesKey, repository)
	}
	return os.WriteFile(chartYAML, []byte(strings.Join(lines, "\n")), 0o644)
}

// repack rewrites helm's archive with every entry's time at created and no owner (helm stamps time.Now:
// helm.sh/helm/v3 pkg/chartutil/save.go writeToTar), keeping helm's order, modes and gzip header mark; the gzip
// stream has no time or name. It returns the archive and the packaged Chart.yaml.
func repack(packaged []byte, created time.Time) ([]byte, []byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(packaged))
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, nil, err
	}
	zw.Extra, zw.Comment = zr.Extra, zr.Comment
	tr, tw := tar.NewReader(zr), tar.NewWriter(zw)
	var chartYAML []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, err
		}
		if h.Name == chartName+"/Chart.yaml" {
			chartYAML = data
		}
		if err := tw.WriteHeader(&tar.Header{Name: h.Name, Mode: h.Mode, Size: int64(len(data)), Typeflag: h.Typeflag,
			ModTime: created, Format: tar.FormatPAX}); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, nil, err
		}
	}
	if chartYAML == nil {
		return nil, nil, errors.New("no " + chartName + "/Chart.yaml in the archive")
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), chartYAML, nil
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ociLayout writes blobs into an OCI image layout directory.
type ociLayout string

func (l ociLayout) blob(mediaType string, data []byte) (descriptor, error) {
	sum := sha256.Sum256(data)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
	dir := filepath.Join(string(l), "blobs", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return d, err
	}
	return d, os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:])), data, 0o644)
}

func (l ociLayout) manifest(config, layer descriptor, annotations map[string]string) (descriptor, error) {
	b, err := json.Marshal(struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Config        descriptor        `json:"config"`
		Layers        []descriptor      `json:"layers"`
		Annotations   map[string]string `json:"annotations,omitempty"`
	}{2, ociManifestMediaType, config, []descriptor{layer}, annotations})
	if err != nil {
		return descriptor{}, err
	}
	return l.blob(ociManifestMediaType, b)
}

// writeChartLayout writes the chart as `helm push` would push it (config: Chart.yaml as JSON; one layer: the archive;
// the annotations helm derives from the chart) tagged with its version, and Artifact Hub's repository metadata tagged
// artifacthub.io, into an OCI image layout. It returns the chart manifest's digest.
func writeChartLayout(dir string, o Options, archive, chartYAML, repoMeta []byte) (string, error) {
	l := ociLayout(dir)
	var meta struct {
		Name, Version, Description string
	}
	if err := yaml.Unmarshal(chartYAML, &meta); err != nil {
		return "", fmt.Errorf("read the packaged Chart.yaml: %w", err)
	}
	configJSON, err := yaml.YAMLToJSON(chartYAML)
	if err != nil {
		return "", err
	}
	config, err := l.blob(HelmConfigMediaType, configJSON)
	if err != nil {
		return "", err
	}
	layer, err := l.blob(HelmChartLayerMediaType, archive)
	if err != nil {
		return "", err
	}
	chart, err := l.manifest(config, layer, map[string]string{
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
		"org.opencontainers.image.description": meta.Description,
		"org.opencontainers.image.title":       meta.Name,
		"org.opencontainers.image.version":     meta.Version,
	})
	if err != nil {
		return "", err
	}
	emptyConfig, err := l.blob(ArtifactHubConfigMediaType, nil)
	if err != nil {
		return "", err
	}
	repoLayer, err := l.blob(ArtifactHubLayerMediaType, repoMeta)
	if err != nil {
		return "", err
	}
	repoLayer.Annotations = map[string]string{"org.opencontainers.image.title": "artifacthub-repo.yml"}
	hub, err := l.manifest(emptyConfig, repoLayer, nil)
	if err != nil {
		return "", err
	}
	chart.Annotations = map[string]string{"org.opencontainers.image.ref.name": meta.Version}
	hub.Annotations = map[string]string{"org.opencontainers.image.ref.name": ArtifactHubTag}
	index, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []descriptor `json:"manifests"`
	}{2, "application/vnd.oci.image.index.v1+json", []descriptor{chart, hub}})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	return chart.Digest, nil
}

// filesOf lists the regular files directly in dir, by name.
func filesOf(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		} else if !e.IsDir() {
			return nil, fmt.Errorf("%s: %s is neither a file nor a directory", dir, e.Name())
		}
	}
	return names, nil
}
