package pods

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/webhook/patch"
	"github.com/fluxidentity/flux-identity-webhook/webhook/verdict"
)

// The webhook decodes only the fields it reads. Patches are computed against these views of the raw request, so
// fields outside them (including ones this k8s.io/api does not know) are never re-serialised and never lost.

// View is what the decisions read of a pod.
type View struct {
	Metadata *patch.Metadata `json:"metadata"`
	Spec     podSpecView     `json:"spec"`
}

type podSpecView struct {
	ServiceAccountName string `json:"serviceAccountName"`
	// ServiceAccount is the deprecated alias the API server still fills.
	ServiceAccount string `json:"serviceAccount"`
	// The lists are read only to inject a mapped pod, and most pods map to no identity: they stay raw (copied, not
	// parsed) until decodeLists fills the views below.
	RawVolumes        json.RawMessage `json:"volumes"`
	RawInitContainers json.RawMessage `json:"initContainers"`
	RawContainers     json.RawMessage `json:"containers"`
	Volumes           []volumeView    `json:"-"`
	InitContainers    []containerView `json:"-"`
	Containers        []containerView `json:"-"`
}

// decodeLists decodes the volumes and containers; a nil list means the field is absent (or null). listScanner reads
// them unless they hold something only encoding/json may decide (listscan.go).
func (s *podSpecView) decodeLists() error {
	var ok [3]bool
	s.Volumes, ok[0] = scanList(s.RawVolumes, (*listScanner).volume)
	s.InitContainers, ok[1] = scanList(s.RawInitContainers, (*listScanner).container)
	s.Containers, ok[2] = scanList(s.RawContainers, (*listScanner).container)
	if ok == [3]bool{true, true, true} {
		return nil
	}
	return s.decodeListsJSON()
}

// decodeListsJSON decodes the lists as the API server does (verdict.DecodeObject).
func (s *podSpecView) decodeListsJSON() error {
	s.Volumes, s.InitContainers, s.Containers = nil, nil, nil
	for _, l := range []struct {
		name string
		raw  json.RawMessage
		into any
	}{{"volumes", s.RawVolumes, &s.Volumes}, {"initContainers", s.RawInitContainers, &s.InitContainers},
		{"containers", s.RawContainers, &s.Containers}} {
		if len(l.raw) == 0 {
			continue
		}
		if err := verdict.DecodeObject(l.raw, l.into); err != nil {
			return &verdict.BadObject{Err: fmt.Errorf("decode spec.%s: %w", l.name, err)}
		}
	}
	return nil
}

// volumeView keeps a volume's name, what kind of source it is, and a projected source's token and downward API
// files: enough to tell whether a file a container reads through it is the token full injection promises.
type volumeView struct {
	Name string
	// Kind is the volume's source (projected, configMap, hostPath, ...): the first other key, for messages.
	Kind      string
	Projected *projectedView
}

func (v *volumeView) UnmarshalJSON(b []byte) error {
	var fields map[string]json.RawMessage
	if err := verdict.DecodeObject(b, &fields); err != nil {
		return err
	}
	for k, raw := range fields {
		switch {
		case k == "name":
			if err := verdict.DecodeObject(raw, &v.Name); err != nil {
				return err
			}
		case string(raw) == "null", k == "": // an empty key names no source (and would make Kind depend on map order)
		case v.Kind == "" || k < v.Kind:
			v.Kind = k
		}
	}
	if raw := fields["projected"]; raw != nil {
		return verdict.DecodeObject(raw, &v.Projected)
	}
	return nil
}

type projectedView struct {
	DefaultMode *int32           `json:"defaultMode"`
	Sources     []projectionView `json:"sources"`
}

// projectionView is one source of a projected volume; sources other than a token or downward API files read as
// neither.
type projectionView struct {
	ServiceAccountToken *tokenProjectionView `json:"serviceAccountToken"`
	DownwardAPI         *struct {
		Items []downwardAPIFileView `json:"items"`
	} `json:"downwardAPI"`
}

type tokenProjectionView struct {
	Audience          string `json:"audience"`
	ExpirationSeconds *int64 `json:"expirationSeconds"`
	Path              string `json:"path"`
}

type downwardAPIFileView struct {
	Path     string `json:"path"`
	FieldRef *struct {
		FieldPath string `json:"fieldPath"`
	} `json:"fieldRef"`
}

// containerView keeps a container's env vars (a value from a source reads as unknown) and its mounts: what injection
// and the token invariant read. A nil slice means the field is absent (or null).
type containerView struct {
	Name         string      `json:"name"`
	Env          []envView   `json:"env"`
	VolumeMounts []mountView `json:"volumeMounts"`
}

type envView struct {
	Name      string          `json:"name"`
	Value     string          `json:"value"`
	ValueFrom json.RawMessage `json:"valueFrom"`
}

type mountView struct {
	Name        string `json:"name"`
	MountPath   string `json:"mountPath"`
	ReadOnly    bool   `json:"readOnly"`
	SubPath     string `json:"subPath"`
	SubPathExpr string `json:"subPathExpr"`
}

func (s *podSpecView) serviceAccount() string {
	switch {
	case s.ServiceAccountName != "":
		return s.ServiceAccountName
	case s.ServiceAccount != "":
		return s.ServiceAccount
	}
	return "default"
}

func (c *containerView) hasEnv(name string) bool {
	for _, e := range c.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// envValue is what the container's process sees in name: the last entry wins, as the kubelet builds the environment
// (kubelet makeEnvironmentVariables). literal is false for a value from a source or one with a $(VAR) reference,
// which only the kubelet resolves.
func (c *containerView) envValue(name string) (value string, literal, ok bool) {
	for i := len(c.Env) - 1; i >= 0; i-- {
		if e := c.Env[i]; e.Name == name {
			return e.Value, e.ValueFrom == nil && !strings.Contains(e.Value, "$("), true
		}
	}
	return "", false, false
}

func (c *containerView) hasMountAt(p string) bool {
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == p {
			return true
		}
	}
	return false
}

// DeploymentView is what the decision reads of a Deployment.
type DeploymentView struct {
	Metadata *patch.Metadata `json:"metadata"`
	Spec     struct {
		Template struct {
			Metadata *patch.Metadata `json:"metadata"`
			Spec     podSpecView     `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}
