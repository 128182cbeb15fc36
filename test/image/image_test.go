// Package image reads back the container image `make image` built (bin/image) and holds it to the Dockerfile, which
// users with Docker build from, and to the chart, which runs it: user, entrypoint, arguments, ports, labels, a static
// binary per platform. It also runs the amd64 binary taken out of its layer.
package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/fluxidentity/flux-identity-webhook/test/harness"
)

// maxCompressedBytes bounds what a node pulls per platform; the image holds one static binary.
const maxCompressedBytes = 40 << 20

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// imageDir is $FIW_IMAGE_DIR or bin/image. A missing image fails: `make test` builds it first.
func imageDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FIW_IMAGE_DIR")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin", "image")
	}
	if _, err := os.Stat(filepath.Join(dir, "oci", "index.json")); err != nil {
		t.Fatalf("no image in %s (%v): run `make image` first", dir, err)
	}
	return dir
}

// platformImages reads the multi-platform index from the OCI layout.
func platformImages(t *testing.T) (map[string]v1.Image, v1.ImageIndex) {
	t.Helper()
	lp, err := layout.FromPath(filepath.Join(imageDir(t), "oci"))
	if err != nil {
		t.Fatal(err)
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	om, err := outer.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(om.Manifests) != 1 || !om.Manifests[0].MediaType.IsIndex() {
		t.Fatalf("the layout holds %d manifests; want one multi-platform index", len(om.Manifests))
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]v1.Image{}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		out[d.Platform.String()] = img
	}
	return out, idx
}

// dockerfile is the final stage of the Dockerfile: its instructions, continuation lines joined.
type dockerfile struct {
	user, entrypoint, cmd string
	expose                []string
	labels                map[string]string
	copies                []string // sources of COPY in the build stage
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var instructions []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		instructions = append(instructions, cur.String())
		cur.Reset()
	}
	var d dockerfile
	stage := 0
	labelRE := regexp.MustCompile(`([\w.-]+)="([^"]*)"`)
	for _, in := range instructions {
		verb, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(verb) {
		case "FROM":
			stage++
			d.labels = map[string]string{}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "CMD":
			d.cmd = rest
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "LABEL":
			for _, m := range labelRE.FindAllStringSubmatch(rest, -1) {
				d.labels[m[1]] = m[2]
			}
		case "COPY":
			if stage == 1 && !strings.Contains(rest, "--from") {
				f := strings.Fields(rest)
				d.copies = append(d.copies, f[:len(f)-1]...)
			}
		}
	}
	if stage != 2 {
		t.Fatalf("the Dockerfile has %d stages; this test reads a build stage and a final one", stage)
	}
	return d
}

func jsonArray(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("%q is not an exec-form JSON array: %v", s, err)
	}
	return out
}

func TestImageHasBothPlatforms(t *testing.T) {
	images, idx := platformImages(t)
	if got := slices.Sorted(maps.Keys(images)); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("platforms %v, want linux/amd64 and linux/arm64", got)
	}
	d, _ := idx.Digest()
	for p, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS+"/"+cf.Architecture != p {
			t.Errorf("%s: the config says %s/%s", p, cf.OS, cf.Architecture)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		var size int64
		for _, l := range layers {
			s, _ := l.Size()
			size += s
		}
		t.Logf("%s: %.1f MiB compressed (index %s)", p, float64(size)/(1<<20), d)
		if size > maxCompressedBytes {
			t.Errorf("%s: %d bytes compressed, over the %d bound", p, size, maxCompressedBytes)
		}
	}
}

// The image's configuration is the Dockerfile's final stage, the labels it adds are stamped, and the chart runs it
// as the user the image declares, on the ports it exposes, with the paths its default arguments name.
func TestImageConfigMatchesDockerfileAndChart(t *testing.T) {
	images, _ := platformImages(t)
	df := readDockerfile(t)
	dep := chartDeployment(t)
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	for p, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cfg := cf.Config
		if cfg.User != df.user {
			t.Errorf("%s: user %q, Dockerfile USER %q", p, cfg.User, df.user)
		}
		if want := jsonArray(t, df.entrypoint); !slices.Equal(cfg.Entrypoint, want) {
			t.Errorf("%s: entrypoint %v, Dockerfile %v", p, cfg.Entrypoint, want)
		}
		if want := jsonArray(t, df.cmd); !slices.Equal(cfg.Cmd, want) {
			t.Errorf("%s: cmd %v, Dockerfile %v", p, cfg.Cmd, want)
		}
		var exposed []string
		for port := range cfg.ExposedPorts {
			exposed = append(exposed, strings.TrimSuffix(port, "/tcp"))
		}
		slices.Sort(exposed)
		wantPorts := slices.Sorted(slices.Values(df.expose))
		if !slices.Equal(exposed, wantPorts) {
			t.Errorf("%s: exposed %v, Dockerfile EXPOSE %v", p, exposed, wantPorts)
		}
		for k, v := range df.labels {
			if strings.Contains(v, "$") {
				if cfg.Labels[k] == "" || strings.Contains(cfg.Labels[k], "$") {
					t.Errorf("%s: label %s = %q, want it stamped (Dockerfile %q)", p, k, cfg.Labels[k], v)
				}
				continue
			}
			if cfg.Labels[k] != v {
				t.Errorf("%s: label %s = %q, Dockerfile %q", p, k, cfg.Labels[k], v)
			}
		}
		if len(cfg.Volumes) != 0 {
			t.Errorf("%s: volumes %v: the chart mounts only the policy and the certificate", p, cfg.Volumes)
		}

		// The chart's pod: the image's user and group, non-root, read-only root, the image's ports.
		uid, gid, ok := strings.Cut(cfg.User, ":")
		psc := pod.SecurityContext
		if !ok || psc == nil || psc.RunAsUser == nil || strconv.FormatInt(*psc.RunAsUser, 10) != uid ||
			psc.RunAsGroup == nil || strconv.FormatInt(*psc.RunAsGroup, 10) != gid || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: the chart's pod securityContext %+v does not run as the image's user %s", p, psc, cfg.User)
		}
		if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("the chart's container does not run with a read-only root filesystem")
		}
		var chartPorts []string
		for _, cp := range c.Ports {
			chartPorts = append(chartPorts, strconv.Itoa(int(cp.ContainerPort)))
		}
		slices.Sort(chartPorts)
		if !slices.Equal(chartPorts, exposed) {
			t.Errorf("%s: the chart's container ports %v, the image exposes %v", p, chartPorts, exposed)
		}
		// The chart replaces the arguments, not the entrypoint, and reads the same paths the image's defaults name.
		if len(c.Command) != 0 {
			t.Errorf("the chart overrides the entrypoint with %v", c.Command)
		}
		for _, arg := range cfg.Cmd {
			if !slices.Contains(c.Args, arg) {
				t.Errorf("%s: the chart's args %v lack the image default %s (a path the image and the chart disagree on)", p, c.Args, arg)
			}
		}
	}
}

// Every package the binary is built from is in the Dockerfile's build context: nobody can run `docker build` here, so
// a new top-level directory would otherwise break it silently.
func TestDockerfileCopiesEveryPackageOfTheBinary(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./cmd/flux-identity-webhook")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/fluxidentity/flux-identity-webhook/"
	dirs := map[string]bool{}
	for _, pkg := range strings.Fields(string(out)) {
		if rest, ok := strings.CutPrefix(pkg, module); ok {
			dirs[strings.SplitN(rest, "/", 2)[0]+"/"] = true
		}
	}
	if len(dirs) < 3 {
		t.Fatalf("found only %v: the check would prove nothing", dirs)
	}
	copies := readDockerfile(t).copies
	ignore, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := strings.Fields(string(ignore))
	for dir := range dirs {
		if !slices.Contains(copies, dir) {
			t.Errorf("the Dockerfile does not COPY %s, which the binary imports (it copies %v)", dir, copies)
		}
		if !slices.Contains(allowed, "!"+dir) {
			t.Errorf(".dockerignore keeps %s, which the binary imports, out of the build context", dir)
		}
	}
}

// layerFiles reads every file of an image's layers: headers by path, contents of regular files.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	headers, contents := map[string]*tar.Header{}, map[string][]byte{}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			p := "/" + strings.TrimSuffix(h.Name, "/")
			headers[p] = h
			if h.Typeflag == tar.TypeReg {
				b, err := io.ReadAll(tr)
				if err != nil {
					t.Fatal(err)
				}
				contents[p] = b
			}
		}
		_ = rc.Close()
	}
	return headers, contents
}

// Each platform's binary is a static executable for that platform at the entrypoint; the user exists; nothing in
// the image is setuid or writable by anyone but root.
func TestImageFilesystem(t *testing.T) {
	images, _ := platformImages(t)
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	for p, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		headers, contents := layerFiles(t, img)
		bin := cf.Config.Entrypoint[0]
		h, ok := headers[bin]
		if !ok {
			t.Fatalf("%s: no %s in the layers", p, bin)
		}
		if h.Mode&0o111 == 0 || h.Uid != 0 {
			t.Errorf("%s: %s mode %o owner %d, want executable and root-owned", p, bin, h.Mode, h.Uid)
		}
		f, err := elf.NewFile(bytes.NewReader(contents[bin]))
		if err != nil {
			t.Fatalf("%s: %s is not ELF: %v", p, bin, err)
		}
		if f.Machine != machines[p] {
			t.Errorf("%s: binary for %s", p, f.Machine)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: the binary is dynamically linked (%s); distroless static has no libc", p, prog.Type)
			}
		}
		uid, _, _ := strings.Cut(cf.Config.User, ":")
		if !regexp.MustCompile(`(?m)^[a-z]+:x:` + uid + `:`).Match(contents["/etc/passwd"]) {
			t.Errorf("%s: /etc/passwd has no user %s:\n%s", p, uid, contents["/etc/passwd"])
		}
		for path, h := range headers {
			if h.Mode&(04000|02000) != 0 {
				t.Errorf("%s: %s is setuid/setgid", p, path)
			}
			if h.Typeflag != tar.TypeDir && h.Mode&0o022 != 0 {
				t.Errorf("%s: %s is writable by group or others (%o)", p, path, h.Mode)
			}
		}
	}
}

// The binary for this machine (amd64 here), taken out of its layer, runs as the image's user and reports the
// version the labels carry.
func TestBinaryRunsFromItsLayer(t *testing.T) {
	images, _ := platformImages(t)
	img, ok := images["linux/"+runtime.GOARCH]
	if !ok {
		t.Fatalf("the image has no linux/%s platform to run here", runtime.GOARCH)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	_, contents := layerFiles(t, img)
	// A directory every user can enter, so the binary can run as the image's user; nothing in it is writable by it.
	dir, err := os.MkdirTemp("", "fiw-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "flux-identity-webhook")
	if err := os.WriteFile(bin, contents[cf.Config.Entrypoint[0]], 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := strings.Cut(cf.Config.User, ":")
	runAs := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = []string{} // nothing from this machine: no HOME, no TMPDIR
		if os.Geteuid() == 0 {
			u, _ := strconv.ParseUint(uid, 10, 32)
			g, _ := strconv.ParseUint(gid, 10, 32)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u), Gid: uint32(g)}}
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	version := runAs("version")
	want := fmt.Sprintf("flux-identity-webhook %s\ncommit: %s\n", cf.Config.Labels["org.opencontainers.image.version"],
		cf.Config.Labels["org.opencontainers.image.revision"])
	if !strings.HasPrefix(version, want) || !strings.Contains(version, "linux/"+runtime.GOARCH) {
		t.Errorf("version printed %q, want it to start with %q (the image's labels)", version, want)
	}
	help := runAs("serve", "--help")
	for _, flag := range []string{"--policy", "--cert-dir", "--port", "--metrics-bind-address", "Serving flags:"} {
		if !strings.Contains(help, flag) {
			t.Errorf("serve --help lacks %s:\n%s", flag, help)
		}
	}
}

// chartDeployment renders the chart with its defaults and returns its Deployment.
func chartDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(repoRoot(t), "bin", "helm")
	}
	home := t.TempDir()
	cmd := exec.Command(helm, "template", "flux-identity-webhook", filepath.Join(repoRoot(t), "charts", "flux-identity-webhook"),
		"--namespace", "flux-identity-system", "--show-only", "templates/deployment.yaml")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template (run `make helm` first): %v", err)
	}
	var d appsv1.Deployment
	if err := utilyaml.UnmarshalStrict(out, &d); err != nil {
		t.Fatalf("decode the chart's Deployment: %v", err)
	}
	return &d
}
