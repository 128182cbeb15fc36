package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func fakeBinaries(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		f := filepath.Join(dir, strings.ReplaceAll(p, "/", "-"))
		if err := os.WriteFile(f, []byte("#!/bin/false "+p+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		out[p] = f
	}
	return out
}

// The same binary, version and time give the same image digest; a different version gives another.
func TestImagesAreReproducible(t *testing.T) {
	bin := fakeBinaries(t)["linux/amd64"]
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	digest := func(version string) string {
		img, err := Image(bin, "amd64", version, "abc", at)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	a, b, c := digest("v1.0.0"), digest("v1.0.0"), digest("v1.0.1")
	if a != b {
		t.Errorf("two builds of the same inputs differ: %s, %s", a, b)
	}
	if a == c {
		t.Errorf("another version gives the same digest %s", a)
	}
}

// push copies the multi-platform index from the layout build wrote to a registry, where it reads back identical.
func TestPushCopiesEveryPlatform(t *testing.T) {
	out := t.TempDir()
	idx, err := Build(t.Context(), BuildOptions{
		Out: out, Repository: "example.com/fiw", Version: "v1.2.3+meta", Commit: "abc",
		Platforms: []string{"linux/amd64", "linux/arm64"}, Created: time.Unix(0, 0).UTC(), Binaries: fakeBinaries(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		if _, err := os.Stat(filepath.Join(out, "flux-identity-webhook-linux-"+arch+".tar")); err != nil {
			t.Errorf("no tarball for %s: %v", arch, err)
		}
	}

	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/fiw:v1.2.3-meta", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Push(t.Context(), filepath.Join(out, "oci"), ref)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("pushed index %s, built %s", got, want)
	}
	pulled, err := remote.Index(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull back: %v", err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Errorf("the registry serves %s, built %s", d, want)
	}
	m, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, desc := range m.Manifests {
		platforms = append(platforms, desc.Platform.String())
		if _, err := pulled.Image(desc.Digest); err != nil {
			t.Errorf("%s: image not in the registry: %v", desc.Platform, err)
		}
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

func TestBuildRefusesOtherOperatingSystems(t *testing.T) {
	_, err := Build(t.Context(), BuildOptions{Out: t.TempDir(), Repository: "example.com/fiw", Version: "v1",
		Platforms: []string{"windows/amd64"}, Binaries: fakeBinaries(t)})
	if err == nil || !strings.Contains(err.Error(), "want linux/ARCH") {
		t.Errorf("windows/amd64 was not refused: %v", err)
	}
}
