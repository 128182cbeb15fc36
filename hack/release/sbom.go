package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A CycloneDX 1.6 document (cyclonedx.org/docs/1.6/json), the part of it this release fills in.
type (
	BOM struct {
		BOMFormat    string       `json:"bomFormat"`
		SpecVersion  string       `json:"specVersion"`
		SerialNumber string       `json:"serialNumber"`
		Version      int          `json:"version"`
		Metadata     Metadata     `json:"metadata"`
		Components   []Component  `json:"components"`
		Dependencies []Dependency `json:"dependencies"`
	}
	Metadata struct {
		Timestamp string    `json:"timestamp"`
		Tools     Tools     `json:"tools"`
		Component Component `json:"component"`
	}
	Tools struct {
		Components []Component `json:"components"`
	}
	Component struct {
		BOMRef     string      `json:"bom-ref,omitempty"`
		Type       string      `json:"type"`
		Name       string      `json:"name"`
		Version    string      `json:"version,omitempty"`
		PURL       string      `json:"purl,omitempty"`
		Hashes     []Hash      `json:"hashes,omitempty"`
		Properties []Property  `json:"properties,omitempty"`
		Components []Component `json:"components,omitempty"`
	}
	Hash struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	}
	Property struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	Dependency struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	}
)

// SBOMName is the SBOM file of an artifact.
func SBOMName(artifact string) string { return artifact + ".cdx.json" }

// ImageSBOM is the image's SBOM file.
const ImageSBOM = Binary + "-image.cdx.json"

// modules are the components of a binary: every module its build info records (what `go version -m` lists as dep,
// the replacement where a module is replaced), with the go.sum hash as a property.
func modules(info *buildinfo.BuildInfo) []Component {
	var out []Component
	for _, m := range info.Deps {
		mod := m
		if m.Replace != nil {
			mod = m.Replace
		}
		c := Component{BOMRef: purl(mod.Path, mod.Version, ""), Type: "library", Name: mod.Path, Version: mod.Version,
			PURL: purl(mod.Path, mod.Version, "")}
		if mod.Sum != "" {
			c.Properties = append(c.Properties, Property{"go:module:sum", mod.Sum})
		}
		if m.Replace != nil {
			c.Properties = append(c.Properties, Property{"go:module:replaces", m.Path + "@" + m.Version})
		}
		out = append(out, c)
	}
	return out
}

// purl is a Go module's package URL (github.com/package-url/purl-spec, type golang).
func purl(path, version, qualifiers string) string {
	p := "pkg:golang/" + path
	if version != "" {
		p += "@" + version
	}
	if qualifiers != "" {
		p += "?" + qualifiers
	}
	return p
}

// application describes a binary: the main module at the release's version, its SHA-256, the toolchain and the build
// settings it records; and its modules.
func application(o Options, path, platform string) (Component, []Component, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return Component{}, nil, fmt.Errorf("read the build info of %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Component{}, nil, err
	}
	sum := sha256.Sum256(data)
	goos, goarch, _ := strings.Cut(platform, "/")
	c := Component{BOMRef: purl(info.Main.Path, o.Version, "goos="+goos+"&goarch="+goarch), Type: "application",
		Name: info.Main.Path, Version: o.Version, PURL: purl(info.Main.Path, o.Version, "goos="+goos+"&goarch="+goarch),
		Hashes:     []Hash{{"SHA-256", hex.EncodeToString(sum[:])}},
		Properties: []Property{{"go:version", info.GoVersion}, {"go:package", info.Path}}}
	for _, s := range info.Settings {
		c.Properties = append(c.Properties, Property{"go:build:" + s.Key, s.Value})
	}
	return c, modules(info), nil
}

// newBOM is a BOM about subject holding components, stamped with the release's time and an ID derived from its
// content, so that a rebuild writes the same document.
func newBOM(o Options, subject Component, components []Component) BOM {
	refs := make([]string, 0, len(components))
	for _, c := range components {
		refs = append(refs, c.BOMRef)
	}
	id := sha256.Sum256([]byte(subject.BOMRef + "\x00" + strings.Join(refs, "\x00")))
	// A name-based UUID (version 5 layout, SHA-256 truncated) of the subject and its components.
	id[6], id[8] = id[6]&0x0f|0x50, id[8]&0x3f|0x80
	h := hex.EncodeToString(id[:16])
	return BOM{
		BOMFormat: "CycloneDX", SpecVersion: "1.6", Version: 1,
		SerialNumber: "urn:uuid:" + h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32],
		Metadata: Metadata{Timestamp: o.Created.Format(time.RFC3339),
			Tools:     Tools{Components: []Component{{Type: "application", Name: modulePath + "/hack/release"}}},
			Component: subject},
		Components:   components,
		Dependencies: []Dependency{{Ref: subject.BOMRef, DependsOn: refs}},
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeBinarySBOM writes the SBOM of one CLI binary next to it.
func writeBinarySBOM(o Options, path, platform string) error {
	app, mods, err := application(o, path, platform)
	if err != nil {
		return err
	}
	return writeJSON(SBOMName(path), newBOM(o, app, mods))
}

// writeImageSBOM writes the image's SBOM: the image by its index digest, holding each platform's binary (at
// hack/image's path, with its modules) and the user database layer's files.
func writeImageSBOM(o Options, indexDigest string) error {
	var binaries []Component
	for _, p := range Platforms {
		if !strings.HasPrefix(p, "linux/") {
			continue
		}
		app, mods, err := application(o, filepath.Join(o.Out, binaryName(p)), p)
		if err != nil {
			return err
		}
		app.Properties = append(app.Properties, Property{"oci:image:path", "/" + Binary})
		app.Components = mods
		binaries = append(binaries, app)
	}
	files := []Component{
		{BOMRef: "file:/etc/passwd", Type: "file", Name: "/etc/passwd"},
		{BOMRef: "file:/etc/group", Type: "file", Name: "/etc/group"},
	}
	name := o.Repository[strings.LastIndex(o.Repository, "/")+1:]
	image := Component{
		BOMRef: "pkg:oci/" + name + "@" + strings.ReplaceAll(indexDigest, ":", "%3A") + "?repository_url=" + o.Repository,
		Type:   "container", Name: o.Repository, Version: indexDigest,
		PURL: "pkg:oci/" + name + "@" + strings.ReplaceAll(indexDigest, ":", "%3A") + "?repository_url=" + o.Repository,
	}
	return writeJSON(filepath.Join(o.Out, ImageSBOM), newBOM(o, image, slices.Concat(binaries, files)))
}
