package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// builtImage is the built image's platform for this machine: its configuration and its entrypoint binary, taken out
// of the layer.
type builtImage struct {
	config  v1.Config
	digest  v1.Hash
	binary  string
	version string
	commit  string
}

func loadImage(p paths, dir string) (*builtImage, error) {
	lp, err := layout.FromPath(filepath.Join(p.image, "oci"))
	if err != nil {
		return nil, err
	}
	outer, err := lp.ImageIndex()
	if err != nil {
		return nil, err
	}
	om, err := outer.IndexManifest()
	if err != nil || len(om.Manifests) != 1 {
		return nil, fmt.Errorf("%s: want one image index (%w)", p.image, err)
	}
	idx, err := outer.ImageIndex(om.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(m.Manifests, func(d v1.Descriptor) bool {
		return d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH
	})
	if i < 0 {
		return nil, fmt.Errorf("the image has no linux/%s manifest", runtime.GOARCH)
	}
	img, err := idx.Image(m.Manifests[i].Digest)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	b := &builtImage{config: cf.Config, digest: m.Manifests[i].Digest,
		version: cf.Config.Labels["org.opencontainers.image.version"],
		commit:  cf.Config.Labels["org.opencontainers.image.revision"]}
	want := strings.TrimPrefix(cf.Config.Entrypoint[0], "/")
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			if h.Name == want {
				b.binary = filepath.Join(dir, filepath.Base(want))
				f, err := os.OpenFile(b.binary, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
				if err != nil {
					return nil, err
				}
				_, err = io.Copy(f, tr)
				if err := errors.Join(err, f.Close()); err != nil {
					return nil, err
				}
			}
		}
		_ = rc.Close()
	}
	if b.binary == "" {
		return nil, fmt.Errorf("the image's layers hold no %s", want)
	}
	return b, nil
}

// pod runs one replica of a Deployment the way a kubelet would, as far as this suite needs: the container's command
// and arguments (the image's entrypoint), its environment, the ConfigMap and Secret volumes written atomically at
// their mount paths (a directory per volume; ..data swapped on every change, as the kubelet does), the pod's user,
// group and fsGroup, and readiness from the container's probe. The Service reaches it through an EndpointSlice that
// the suite maintains in place of the EndpointSlice controller.
type pod struct {
	c          *cluster
	image      *builtImage
	namespace  string
	deployment *appsv1.Deployment
	root       string
	proc       *process
	args       []string
	mounts     map[string]string // mount path -> directory on this machine
	volumes    []*volume
	stopSync   context.CancelFunc
	synced     sync.WaitGroup
}

type volume struct {
	name, dir    string
	namespace    string
	kind, source string // ConfigMap or Secret, its name
	mode         os.FileMode
	gid          int // fsGroup, -1 for none
	mu           sync.Mutex
	version      string // resourceVersion written
	generation   int
}

// endpointSliceManager marks endpoint slices this suite writes; the controller manager's EndpointSlice controller
// (not running here anyway) would leave them alone.
const endpointSliceManager = "e2e.fluxidentity.dev"

// startPod starts the replica of namespace/name, waits for its readiness probe and publishes it in the Service's
// EndpointSlice.
func startPod(ctx context.Context, c *cluster, image *builtImage, namespace, name, root string) (*pod, error) {
	var d appsv1.Deployment
	if err := c.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d); err != nil {
		return nil, err
	}
	p := &pod{c: c, image: image, namespace: namespace, deployment: &d, root: root, mounts: map[string]string{}}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, fmt.Errorf("deployment %s has %d containers; this emulation runs one", name, len(spec.Containers))
	}
	ctr := spec.Containers[0]
	fsGroup := -1
	if spec.SecurityContext != nil && spec.SecurityContext.FSGroup != nil {
		fsGroup = int(*spec.SecurityContext.FSGroup)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	for _, m := range ctr.VolumeMounts {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return nil, fmt.Errorf("mount %s names no volume", m.Name)
		}
		v := &volume{name: m.Name, dir: filepath.Join(root, m.Name), namespace: namespace, gid: fsGroup}
		switch src := spec.Volumes[i]; {
		case src.ConfigMap != nil:
			v.kind, v.source, v.mode = "ConfigMap", src.ConfigMap.Name, 0o644
			if src.ConfigMap.DefaultMode != nil {
				v.mode = os.FileMode(*src.ConfigMap.DefaultMode)
			}
		case src.Secret != nil:
			v.kind, v.source, v.mode = "Secret", src.Secret.SecretName, 0o644
			if src.Secret.DefaultMode != nil {
				v.mode = os.FileMode(*src.Secret.DefaultMode)
			}
		default:
			return nil, fmt.Errorf("volume %s: only ConfigMap and Secret volumes are emulated", m.Name)
		}
		if m.SubPath != "" {
			return nil, fmt.Errorf("volume %s: subPath is not emulated", m.Name)
		}
		if err := v.sync(ctx, c); err != nil {
			return nil, err
		}
		p.volumes = append(p.volumes, v)
		p.mounts[m.MountPath] = v.dir
	}
	command, args := ctr.Command, ctr.Args
	if len(command) == 0 {
		command = image.config.Entrypoint
		if len(args) == 0 {
			args = image.config.Cmd
		}
	}
	if command[0] != image.config.Entrypoint[0] {
		return nil, fmt.Errorf("the container runs %s, not the image's entrypoint", command[0])
	}
	for _, a := range append(slices.Clone(command[1:]), args...) {
		p.args = append(p.args, p.rewrite(a))
	}
	env, err := containerEnv(ctr, namespace)
	if err != nil {
		return nil, err
	}
	uid, gid, err := runAs(spec.SecurityContext, ctr.SecurityContext, image.config.User)
	if err != nil {
		return nil, err
	}
	workdir := image.config.WorkingDir
	if workdir == "" {
		workdir = "/"
	}
	p.proc, err = startProcess(image.binary, p.args, env,
		filepath.Join(c.paths.artifacts, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano())), func(cmd *exec.Cmd) {
			cmd.Dir = workdir
			cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
			if fsGroup >= 0 {
				cred.Groups = []uint32{uint32(fsGroup)}
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		})
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, ctr); err != nil {
		_, _ = p.proc.stop(5 * time.Second)
		return nil, fmt.Errorf("%w\n%s", err, p.proc.out.String())
	}
	if err := p.publish(ctx, true); err != nil {
		return nil, err
	}
	syncCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stopSync = cancel
	p.synced.Add(1)
	go p.syncVolumes(syncCtx)
	return p, nil
}

// rewrite points an argument that names a path under a mount at the volume's directory.
func (p *pod) rewrite(arg string) string {
	for _, mount := range slices.Sorted(maps.Keys(p.mounts)) {
		for _, sep := range []string{"=", ""} {
			prefix, rest, ok := strings.Cut(arg, sep+mount)
			if !ok || (sep == "" && prefix != "") || (rest != "" && !strings.HasPrefix(rest, "/")) {
				continue
			}
			return prefix + sep + p.mounts[mount] + rest
		}
	}
	return arg
}

// containerEnv resolves the container's environment: literal values, the namespace, and resource limits in bytes.
func containerEnv(ctr corev1.Container, namespace string) ([]string, error) {
	var env []string
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env = append(env, e.Name+"="+namespace)
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			limit := ctr.Resources.Limits.Memory()
			if limit.IsZero() {
				return nil, fmt.Errorf("env %s reads limits.memory, which the container does not set", e.Name)
			}
			env = append(env, e.Name+"="+strconv.FormatInt(limit.Value(), 10))
		default:
			return nil, fmt.Errorf("env %s: its source is not emulated", e.Name)
		}
	}
	return env, nil
}

// runAs is the user and group the container runs as: its securityContext, else the pod's, else the image's USER.
func runAs(pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext, imageUser string) (uid, gid int64, err error) {
	u, g, _ := strings.Cut(imageUser, ":")
	if uid, err = strconv.ParseInt(u, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("image user %q is not numeric", imageUser)
	}
	gid = uid
	if g != "" {
		if gid, err = strconv.ParseInt(g, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("image group %q is not numeric", imageUser)
		}
	}
	if pod != nil && pod.RunAsUser != nil {
		uid = *pod.RunAsUser
	}
	if pod != nil && pod.RunAsGroup != nil {
		gid = *pod.RunAsGroup
	}
	if ctr != nil && ctr.RunAsUser != nil {
		uid = *ctr.RunAsUser
	}
	if ctr != nil && ctr.RunAsGroup != nil {
		gid = *ctr.RunAsGroup
	}
	nonRoot := (pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot) || (ctr != nil && ctr.RunAsNonRoot != nil && *ctr.RunAsNonRoot)
	if nonRoot && uid == 0 {
		return 0, 0, errors.New("runAsNonRoot, but the container would run as root")
	}
	return uid, gid, nil
}

// containerPort resolves a probe's or Service's target port against the container's named ports.
func containerPort(ctr corev1.Container, port intstr.IntOrString) (int32, error) {
	if port.Type == intstr.Int {
		return port.IntVal, nil
	}
	for _, cp := range ctr.Ports {
		if cp.Name == port.StrVal {
			return cp.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("the container has no port named %s", port.StrVal)
}

// waitReady polls the container's readiness probe, as the kubelet does, until it passes.
func (p *pod) waitReady(ctx context.Context, ctr corev1.Container) error {
	probe := ctr.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		return errors.New("the container has no HTTP readiness probe")
	}
	port, err := containerPort(ctr, probe.HTTPGet.Port)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s:%d%s", webhookIP, port, probe.HTTPGet.Path)
	return poll(ctx, time.Minute, func() (bool, error) {
		if !p.proc.running() {
			return false, fmt.Errorf("the webhook exited: %w", p.proc.err)
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// publish writes the Service's EndpointSlice with this replica, ready or not.
func (p *pod) publish(ctx context.Context, ready bool) error {
	ctr := p.deployment.Spec.Template.Spec.Containers[0]
	var svcs corev1.ServiceList
	if err := p.c.client.List(ctx, &svcs, client.InNamespace(p.namespace)); err != nil {
		return err
	}
	sel := p.deployment.Spec.Template.Labels
	for _, svc := range svcs.Items {
		if len(svc.Spec.Selector) == 0 || !subset(svc.Spec.Selector, sel) {
			continue
		}
		slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-e2e", Namespace: p.namespace}}
		_, err := controllerutil.CreateOrUpdate(ctx, p.c.client, slice, func() error {
			slice.Labels = map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   endpointSliceManager,
			}
			// Owned by its Service, as the EndpointSlice controller's are: the garbage collector removes it with the
			// release.
			slice.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name,
				UID: svc.UID, Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}
			slice.AddressType = discoveryv1.AddressTypeIPv4
			slice.Endpoints = []discoveryv1.Endpoint{{
				Addresses:  []string{webhookIP},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			}}
			slice.Ports = nil
			for _, sp := range svc.Spec.Ports {
				port, err := containerPort(ctr, sp.TargetPort)
				if err != nil {
					return err
				}
				slice.Ports = append(slice.Ports, discoveryv1.EndpointPort{Name: ptr(sp.Name), Port: ptr(port), Protocol: ptr(sp.Protocol)})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("EndpointSlice for Service %s: %w", svc.Name, err)
		}
	}
	return nil
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// stop terminates the replica as the kubelet does (out of the endpoints, then SIGTERM, then the grace period) and
// returns its exit code.
func (p *pod) stop(ctx context.Context) (int, error) {
	p.stopSync()
	p.synced.Wait()
	err := p.publish(ctx, false)
	if apierrors.IsNotFound(err) {
		err = nil
	}
	grace := 30 * time.Second
	if s := p.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	code, stopErr := p.proc.stop(grace)
	return code, errors.Join(err, stopErr)
}

// syncVolumes refreshes the volumes from the API server, as the kubelet's sync loop does (it takes up to a minute in
// a cluster; here half a second).
func (p *pod) syncVolumes(ctx context.Context) {
	defer p.synced.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, v := range p.volumes {
				_ = v.sync(ctx, p.c)
			}
		}
	}
}

// sync writes the volume's current content if it changed: a new timestamped directory, ..data swapped onto it by a
// rename, one symlink per key, the old directory removed (the kubelet's atomic writer).
func (v *volume) sync(ctx context.Context, c *cluster) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	var data map[string][]byte
	var rv string
	switch v.kind {
	case "ConfigMap":
		var cm corev1.ConfigMap
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: v.namespace, Name: v.source}, &cm); err != nil {
			return err
		}
		data, rv = map[string][]byte{}, cm.ResourceVersion
		for k, s := range cm.Data {
			data[k] = []byte(s)
		}
	case "Secret":
		var s corev1.Secret
		if err := c.client.Get(ctx, client.ObjectKey{Namespace: v.namespace, Name: v.source}, &s); err != nil {
			return err
		}
		data, rv = s.Data, s.ResourceVersion
	}
	if rv == v.version {
		return nil
	}
	if err := os.MkdirAll(v.dir, 0o755); err != nil {
		return err
	}
	v.generation++
	tsName := fmt.Sprintf("..%s.%d", time.Now().UTC().Format("2006_01_02_15_04_05"), v.generation)
	ts := filepath.Join(v.dir, tsName)
	if err := os.Mkdir(ts, 0o755); err != nil {
		return err
	}
	for k, b := range data {
		f := filepath.Join(ts, k)
		if err := os.WriteFile(f, b, v.mode); err != nil {
			return err
		}
		if err := os.Chmod(f, v.mode); err != nil {
			return err
		}
		if v.gid >= 0 {
			if err := os.Chown(f, 0, v.gid); err != nil {
				return err
			}
		}
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmp := filepath.Join(v.dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(tsName, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		return err
	}
	for k := range data {
		link := filepath.Join(v.dir, k)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
			return err
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(v.dir, old))
	}
	v.version = rv
	return nil
}

func ptr[T any](v T) *T { return &v }
