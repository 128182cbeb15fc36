package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/fluxidentity/flux-identity-webhook/internal/keys"
	"github.com/fluxidentity/flux-identity-webhook/internal/routes"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook"
)

// ExplainOptions configure `policy explain`.
type ExplainOptions struct {
	PolicyFile string
	Manifests  []string
	Namespace  string
	Mode       string
	Output     string
}

// Validate checks the options.
func (o *ExplainOptions) Validate() error {
	var errs []error
	if o.PolicyFile == "" {
		errs = append(errs, errors.New("--policy is required"))
	}
	if len(o.Manifests) == 0 {
		errs = append(errs, errors.New("-f is required (a manifest file, or - for stdin)"))
	}
	if o.Output != "text" && o.Output != "json" {
		errs = append(errs, fmt.Errorf("-o must be text or json, got %q", o.Output))
	}
	if o.Mode != string(policy.ModeEnforce) && o.Mode != string(policy.ModeWarn) {
		errs = append(errs, fmt.Errorf("--mode must be enforce or warn, got %q", o.Mode))
	}
	return errors.Join(errs...)
}

func newExplainCommand() *cobra.Command {
	o := ExplainOptions{Namespace: "default", Mode: string(policy.ModeEnforce), Output: "text"}
	cmd := &cobra.Command{
		Use:   "explain --policy FILE -f MANIFEST.yaml",
		Short: "Show what the webhook would answer for each object of a manifest",
		Long: `Run every object of a (multi-document) manifest through the same admission handlers the server uses, as a
CREATE, and print the decision, the policy entry that applied and the resulting patch or messages. The exit code is 1
when any object would be denied, so it doubles as a check for GitOps repositories.`,
		Example: `  flux-identity-webhook policy explain --policy policy.yaml -f clusters/prod/flux-system/gotk-components.yaml
  kustomize build . | flux-identity-webhook policy explain --policy policy.yaml -f - -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runExplain(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.PolicyFile, "policy", o.PolicyFile, "Policy file.")
	fs.StringArrayVarP(&o.Manifests, "filename", "f", nil, "Manifest file (repeatable); - reads stdin.")
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "Namespace of objects that do not name one.")
	fs.StringVar(&o.Mode, "mode", o.Mode, "Server mode to assume: enforce or warn.")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text or json.")
	return cmd
}

// Explanation is the answer for one object.
type Explanation struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Decision is one of the server's decisions (webhook.Decision*), or not-handled when no webhook handles the kind.
	Decision string                `json:"decision"`
	Identity string                `json:"identity,omitempty"`
	Patch    []jsonpatch.Operation `json:"patch,omitempty"`
	Warnings []string              `json:"warnings,omitempty"`
	Message  string                `json:"message,omitempty"`
}

// DecisionNotHandled is explain's decision for a kind no webhook handles.
const DecisionNotHandled = "not-handled"

func runExplain(ctx context.Context, o ExplainOptions, stdin io.Reader, stdout io.Writer) error {
	p, err := policy.Load(o.PolicyFile)
	if err != nil {
		return err
	}
	front := webhook.NewServer(webhook.Options{Policy: webhook.Fixed{Policy: p}, Mode: policy.Mode(o.Mode)})
	var out []Explanation
	for _, file := range o.Manifests {
		docs, err := readManifest(file, stdin)
		if err != nil {
			return err
		}
		for i, doc := range docs {
			e, err := explainObject(ctx, front, doc, o.Namespace)
			if err != nil {
				return fmt.Errorf("%s: document %d: %w", file, i+1, err)
			}
			out = append(out, e)
		}
	}
	if o.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printExplanations(stdout, out)
	}
	for _, e := range out {
		if e.Decision == webhook.DecisionDenied {
			return &exitError{code: 1, err: errors.New("")}
		}
	}
	return nil
}

func readManifest(file string, stdin io.Reader) ([][]byte, error) {
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	var docs [][]byte
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || isOnlyComments(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") && t != "---" {
			return false
		}
	}
	return true
}

// explainObject answers one object as a CREATE, through the server's own HTTP front: what explain shows is what the
// server would answer.
func explainObject(ctx context.Context, front *webhook.Server, doc []byte, defaultNS string) (Explanation, error) {
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return Explanation{}, err
	}
	var obj struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Explanation{}, err
	}
	ns := obj.Metadata.Namespace
	if ns == "" {
		ns = defaultNS
	}
	e := Explanation{Kind: obj.Kind, Namespace: ns, Name: obj.Metadata.Name}
	if e.Name == "" {
		e.Name = obj.Metadata.GenerateName
	}
	h, ok := routes.ForKind(obj.Kind)
	if !ok {
		e.Decision = DecisionNotHandled
		return e, nil
	}
	group, version, _ := strings.Cut(obj.APIVersion, "/")
	if version == "" {
		group, version = "", group
	}
	resp, err := front.AnswerRequest(ctx, h.Path, admissionv1.AdmissionRequest{
		UID:       types.UID("explain"),
		Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: obj.Kind},
		Resource:  metav1.GroupVersionResource{Group: h.Group, Version: h.Version, Resource: h.Resource},
		Namespace: ns,
		Name:      obj.Metadata.Name,
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: raw},
	})
	if err != nil {
		return Explanation{}, err
	}
	e.Identity = resp.AuditAnnotations[keys.AuditIdentity]
	e.Decision = resp.AuditAnnotations[keys.AuditDecision]
	e.Warnings = resp.Warnings
	if len(resp.Patch) > 0 {
		if err := json.Unmarshal(resp.Patch, &e.Patch); err != nil {
			return Explanation{}, fmt.Errorf("decode patch: %w", err)
		}
	}
	if !resp.Allowed && resp.Result != nil {
		e.Message = resp.Result.Message
		if e.Decision == "" { // refused by the front itself: the manifest is not what the handler reads
			e.Decision = webhook.DecisionErrored
		}
	}
	return e, nil
}

func printExplanations(w io.Writer, es []Explanation) {
	for _, e := range es {
		_, _ = fmt.Fprintf(w, "%s %s/%s: %s", e.Kind, e.Namespace, e.Name, e.Decision)
		if e.Identity != "" {
			_, _ = fmt.Fprintf(w, " (identity %s)", e.Identity)
		}
		_, _ = fmt.Fprintln(w)
		if e.Message != "" {
			for _, m := range strings.Split(e.Message, "; ") {
				_, _ = fmt.Fprintf(w, "  ✗ %s\n", m)
			}
		}
		for _, m := range e.Warnings {
			_, _ = fmt.Fprintf(w, "  ! %s\n", m)
		}
		for _, op := range e.Patch {
			v, _ := json.Marshal(op.Value)
			_, _ = fmt.Fprintf(w, "  %s %s %s\n", op.Operation, op.Path, v)
		}
	}
}
