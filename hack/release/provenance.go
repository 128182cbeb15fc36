package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// subject is an artifact the provenance describes: a file of the release by name, or a pushed artifact by its
// repository and manifest digest.
type subject struct {
	Name   string `json:"name"`
	Digest string `json:"-"`
}

// The in-toto Statement v1 (github.com/in-toto/attestation spec/v1/statement.md) and SLSA v1 provenance
// predicate (slsa.dev/spec/v1.0/provenance) fields this release fills in.
type (
	Statement struct {
		Type          string          `json:"_type"`
		Subject       []ResourceDesc  `json:"subject"`
		PredicateType string          `json:"predicateType"`
		Predicate     ProvenanceSLSA1 `json:"predicate"`
	}
	ResourceDesc struct {
		Name   string            `json:"name,omitempty"`
		URI    string            `json:"uri,omitempty"`
		Digest map[string]string `json:"digest"`
	}
	ProvenanceSLSA1 struct {
		BuildDefinition BuildDefinition `json:"buildDefinition"`
		RunDetails      RunDetails      `json:"runDetails"`
	}
	BuildDefinition struct {
		BuildType            string         `json:"buildType"`
		ExternalParameters   map[string]any `json:"externalParameters"`
		InternalParameters   map[string]any `json:"internalParameters"`
		ResolvedDependencies []ResourceDesc `json:"resolvedDependencies"`
	}
	RunDetails struct {
		Builder  Builder        `json:"builder"`
		Metadata *BuildMetadata `json:"metadata,omitempty"`
	}
	Builder struct {
		ID string `json:"id"`
	}
	BuildMetadata struct {
		InvocationID string `json:"invocationId,omitempty"`
	}
)

// The provenance's types and identities.
const (
	StatementType       = "https://in-toto.io/Statement/v1"
	SLSAProvenanceV1    = "https://slsa.dev/provenance/v1"
	BuildType           = "https://" + modulePath + "/hack/release@v1"
	BuilderID           = "https://" + modulePath + "/Makefile#release"
	SourceRepositoryURI = "git+https://" + modulePath
)

// writeProvenance writes the in-toto statement: every file of the release so far, and the image and chart by
// digest, as subjects; the version, commit and repositories as external parameters; the toolchain and the compiler
// settings as internal ones; the source commit and the go.sum hash of every module of the binaries as resolved
// dependencies. It names no time and no machine, so a rebuild writes the same bytes.
func writeProvenance(o Options, root string, pushed []subject) error {
	files, err := filesOf(o.Out)
	if err != nil {
		return err
	}
	var subjects []ResourceDesc
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(o.Out, f))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		subjects = append(subjects, ResourceDesc{Name: f, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
	}
	for _, p := range pushed {
		algo, hexDigest, _ := strings.Cut(p.Digest, ":")
		subjects = append(subjects, ResourceDesc{Name: p.Name, Digest: map[string]string{algo: hexDigest}})
	}
	deps := []ResourceDesc{{URI: SourceRepositoryURI + "@" + o.Commit, Digest: map[string]string{"gitCommit": o.Commit}}}
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(sums), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasSuffix(f[1], "/go.mod") {
			continue
		}
		// in-toto's dirHash is golang.org/x/mod/sumdb/dirhash's Hash1, hex-encoded; go.sum holds it as "h1:" base64.
		h1, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "h1:"))
		if err != nil {
			return fmt.Errorf("go.sum %s %s: %w", f[0], f[1], err)
		}
		deps = append(deps, ResourceDesc{URI: purl(f[0], f[1], ""), Digest: map[string]string{"dirHash": hex.EncodeToString(h1)}})
	}
	slices.SortStableFunc(deps[1:], func(a, b ResourceDesc) int { return strings.Compare(a.URI, b.URI) })
	st := Statement{
		Type: StatementType, Subject: subjects, PredicateType: SLSAProvenanceV1,
		Predicate: ProvenanceSLSA1{
			BuildDefinition: BuildDefinition{
				BuildType: BuildType,
				ExternalParameters: map[string]any{
					"version": o.Version, "commit": o.Commit, "repository": o.Repository,
					"chartRepository": o.ChartRepository, "platforms": Platforms,
					"sourceDateEpoch": fmt.Sprint(o.Created.Unix()),
				},
				InternalParameters: map[string]any{
					"goVersion": runtime.Version(),
					"goFlags":   []string{"-trimpath", "-buildvcs=false", "-mod=readonly"},
					"env":       []string{"CGO_ENABLED=0", "GOAMD64=v1", "GOARM64=v8.0"},
				},
				ResolvedDependencies: deps,
			},
			RunDetails: RunDetails{Builder: Builder{ID: BuilderID}},
		},
	}
	return writeJSON(filepath.Join(o.Out, ProvenanceFile), st)
}

// writeChecksums writes SHA256SUMS: "HEX  NAME" for every file of the release, sorted by name, in the format
// `sha256sum -c` reads.
func writeChecksums(dir string) error {
	files, err := filesOf(dir)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range files {
		if f == ChecksumsFile {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), f)
	}
	return os.WriteFile(filepath.Join(dir, ChecksumsFile), []byte(b.String()), 0o644)
}
