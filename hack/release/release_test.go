package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helmLike writes a chart archive the way helm does: entry times "now", a gzip header with helm's mark.
func helmLike(t *testing.T, now time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Comment, zw.ModTime = "Helm", now
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, data string }{{"flux-identity-webhook/Chart.yaml", "name: x\n"}, {"flux-identity-webhook/values.yaml", "a: 1\n"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: now}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRepack(t *testing.T) {
	created := time.Unix(1_700_000_000, 0).UTC()
	a, chartA, err := repack(helmLike(t, time.Unix(1_800_000_000, 0)), created)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := repack(helmLike(t, time.Unix(1_800_000_999, 0)), created)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("archives packaged at different times repack to the same bytes", func(t *testing.T) {
		if !bytes.Equal(a, b) {
			t.Error("repacked archives differ")
		}
	})
	t.Run("every entry is dated created, helm's gzip mark stays, the Chart.yaml comes back", func(t *testing.T) {
		zr, err := gzip.NewReader(bytes.NewReader(a))
		if err != nil {
			t.Fatal(err)
		}
		if zr.Comment != "Helm" || !zr.ModTime.IsZero() || zr.Name != "" {
			t.Errorf("gzip header %+v", zr.Header)
		}
		tr := tar.NewReader(zr)
		n := 0
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			n++
			if !h.ModTime.Equal(created) || h.Uid != 0 || h.Uname != "" {
				t.Errorf("%s: %v uid %d %q", h.Name, h.ModTime, h.Uid, h.Uname)
			}
		}
		if n != 2 || string(chartA) != "name: x\n" {
			t.Errorf("%d entries, Chart.yaml %q", n, chartA)
		}
	})
}

func TestPinImage(t *testing.T) {
	f := filepath.Join(t.TempDir(), "Chart.yaml")
	chart := "annotations:\n  artifacthub.io/images: |\n    - name: x\n      image: ghcr.io/o/x:v0.1.0\n  other: ghcr.io/o/x:v0.1.0\n"
	if err := os.WriteFile(f, []byte(chart), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pinImage(f, "ghcr.io/o/x", "v0.2.0", "sha256:abc"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(f)
	want := strings.Replace(chart, "image: ghcr.io/o/x:v0.1.0", "image: ghcr.io/o/x:v0.2.0@sha256:abc", 1)
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if err := pinImage(f, "ghcr.io/o/other", "v1", "sha256:abc"); err == nil {
		t.Error("a Chart.yaml without the repository's image line is accepted")
	}
}

func TestSignFileIsDeterministicAndVerifies(t *testing.T) {
	dir := t.TempDir()
	if err := keygen(dir); err != nil {
		t.Fatal(err)
	}
	key, err := loadKey(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	msg := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(msg, []byte("abc  file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for i := range 2 {
		out := filepath.Join(dir, "sig"+string(rune('0'+i)))
		if err := signFile(key, msg, out); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(out)
		sigs = append(sigs, string(b))
	}
	if sigs[0] != sigs[1] {
		t.Error("two signatures of one file differ")
	}
	der, err := base64.StdEncoding.DecodeString(sigs[0])
	digest := sha256.Sum256([]byte("abc  file\n"))
	if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest[:], der) {
		t.Errorf("the signature does not verify (%v)", err)
	}
	if _, err := loadKey(filepath.Join(dir, "cosign.pub")); err == nil {
		t.Error("a public key is accepted as the signing key")
	}
}

func TestSimpleSigningPayload(t *testing.T) {
	var p map[string]any
	if err := json.Unmarshal(simpleSigningPayload("ghcr.io/o/x", "sha256:abc"), &p); err != nil {
		t.Fatal(err)
	}
	c := p["critical"].(map[string]any)
	if c["type"] != "cosign container image signature" || c["identity"].(map[string]any)["docker-reference"] != "ghcr.io/o/x" ||
		c["image"].(map[string]any)["docker-manifest-digest"] != "sha256:abc" || p["optional"] != nil {
		t.Errorf("payload %v", p)
	}
}
