package webhook

import (
	"encoding/json"
	"fmt"
)

// The webhook decodes only the fields it reads. Patches are computed against these views of the raw request, so
// fields outside them (including ones this k8s.io/api does not know) are never re-serialised and never lost.

// objectMeta is the part of metadata the webhook reads. A nil map means the field is absent (or null).
type objectMeta struct {
	Name         string            `json:"name"`
	GenerateName string            `json:"generateName"`
	Namespace    string            `json:"namespace"`
	Annotations  map[string]string `json:"annotations"`
	Labels       map[string]string `json:"labels"`
}

// noMetadata stands in for an absent metadata object (the API server always sends one; other callers may not).
var noMetadata objectMeta

// metaOf returns m, or an empty objectMeta when the object has no metadata.
func metaOf(m *objectMeta) *objectMeta {
	if m == nil {
		return &noMetadata
	}
	return m
}

type serviceAccountView struct {
	Metadata *objectMeta `json:"metadata"`
	// ImagePullSecrets are counted, not read: Flux's OCI sources naming the ServiceAccount use them.
	ImagePullSecrets []struct{} `json:"imagePullSecrets"`
}

type podView struct {
	Metadata *objectMeta `json:"metadata"`
	Spec     podSpecView `json:"spec"`
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

// decodeLists decodes the volumes and containers; a nil list means the field is absent (or null).
func (s *podSpecView) decodeLists() error {
	for _, l := range []struct {
		name string
		raw  json.RawMessage
		into any
	}{{"volumes", s.RawVolumes, &s.Volumes}, {"initContainers", s.RawInitContainers, &s.InitContainers},
		{"containers", s.RawContainers, &s.Containers}} {
		if len(l.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(l.raw, l.into); err != nil {
			return &badObject{fmt.Errorf("decode spec.%s: %w", l.name, err)}
		}
	}
	return nil
}

type volumeView struct {
	Name string `json:"name"`
}

// containerView keeps env var names and mount paths only: that is all injection reads, and decoding nothing else
// keeps the hot path's allocations down. A nil slice means the field is absent (or null).
type containerView struct {
	Name         string          `json:"name"`
	Env          []envName       `json:"env"`
	VolumeMounts []mountPathView `json:"volumeMounts"`
}

type envName struct {
	Name string `json:"name"`
}

type mountPathView struct {
	MountPath string `json:"mountPath"`
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

func (c *containerView) hasMountAt(path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

type deploymentView struct {
	Metadata *objectMeta `json:"metadata"`
	Spec     struct {
		Template struct {
			Metadata *objectMeta `json:"metadata"`
			Spec     podSpecView `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}
