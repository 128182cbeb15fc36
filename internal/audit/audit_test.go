package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist/pagingfake"
	"github.com/fluxidentity/flux-identity-webhook/policy"
	"github.com/fluxidentity/flux-identity-webhook/webhook/fluxobjects"
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(fluxauth.AddToScheme(s))
	return s
}()

var now = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

const auditPolicy = `apiVersion: fluxidentity.dev/v1alpha1
kind: IdentityPolicy
metadata:
  name: audit
identities:
  - name: tenants
    namespaces: ["team-*"]
    serviceAccounts: [flux-source]
    azure:
      clientID: 00000000-0000-0000-0000-000000000001
      tenantID: 00000000-0000-0000-0000-0000000000aa
mandates:
  - name: no-static-credentials
    namespaces: ["team-*"]
  - name: quiet
    namespaces: [team-quiet]
    kinds: [Bucket]
    mode: off
exceptions:
  - namespace: team-a
    kind: GitRepository
    name: legacy-*
    reason: migration
    expires: "2999-12-31"
`

func loadPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("audit.yaml", []byte(auditPolicy), now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func secret(name string) *meta.LocalObjectReference { return &meta.LocalObjectReference{Name: name} }

func git(ns, name string, mutate func(*sourcev1.GitRepositorySpec)) *sourcev1.GitRepository {
	r := &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sourcev1.GitRepositorySpec{URL: "https://github.com/org/" + name}}
	if mutate != nil {
		mutate(&r.Spec)
	}
	return r
}

// cluster holds one source of every kind, some violating, in two mandated namespaces and one that is not.
func cluster() []client.Object {
	deleting := git("team-a", "going", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("pat") })
	deleting.DeletionTimestamp, deleting.Finalizers = &metav1.Time{Time: now}, []string{"finalizers.fluxcd.io"}
	return []client.Object{
		git("team-a", "static", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("pat") }),
		git("team-a", "public", nil),
		git("team-a", "legacy-monorepo", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("pat") }),
		git("team-a", "identity", func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "flux-source"
		}),
		git("team-b", "unmapped", func(s *sourcev1.GitRepositorySpec) {
			s.Provider, s.ServiceAccountName = sourcev1.GitProviderAzure, "ci-bot"
		}),
		git("elsewhere", "static", func(s *sourcev1.GitRepositorySpec) { s.SecretRef = secret("pat") }),
		deleting,
		&sourcev1.OCIRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "regcred"},
			Spec: sourcev1.OCIRepositorySpec{URL: "oci://ghcr.io/org/app", SecretRef: secret("regcred")}},
		&sourcev1.HelmRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "charts"},
			Spec: sourcev1.HelmRepositorySpec{URL: "https://charts.example.com", SecretRef: secret("basic")}},
		&sourcev1.Bucket{ObjectMeta: metav1.ObjectMeta{Namespace: "team-quiet", Name: "b"},
			Spec: sourcev1.BucketSpec{BucketName: "b", Endpoint: "minio.example.com", SecretRef: secret("minio")}},
		&imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "app"},
			Spec: imagev1.ImageRepositorySpec{Image: "ghcr.io/org/app", SecretRef: secret("regcred")}},
	}
}

func rows(res Result) []string {
	var out []string
	for _, f := range res.Findings {
		for _, v := range f.Violations {
			out = append(out, strings.Join([]string{f.Namespace, f.Kind, f.Name, v.Mandate, v.Field}, " "))
		}
	}
	return out
}

func TestRun(t *testing.T) {
	p := loadPolicy(t)
	t.Run("read in pages of two, every violating source is found once, decided as admission decides it", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster()...)
		res, err := Run(t.Context(), &kubelist.Lister{Reader: c, PageSize: 2}, p, now)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{
			"team-a GitRepository static no-static-credentials spec.secretRef",
			"team-a HelmRepository charts no-static-credentials spec.secretRef",
			"team-b GitRepository unmapped no-static-credentials spec.serviceAccountName",
			"team-b ImageRepository app no-static-credentials spec.secretRef",
			"team-b OCIRepository regcred no-static-credentials spec.secretRef",
			"team-quiet Bucket b no-static-credentials spec.secretRef",
			"team-quiet Bucket b quiet spec.secretRef",
		}
		if got := rows(res); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// 10 sources evaluated: the one being deleted is not.
		if res.Checked != 10 || res.SkippedKinds != nil || res.Incomplete != "" {
			t.Errorf("checked %d, skipped %v, incomplete %q", res.Checked, res.SkippedKinds, res.Incomplete)
		}
		paged := 0
		for _, call := range c.Calls() {
			if call.Limit != 2 {
				t.Errorf("list %+v not paged by 2", call)
			}
			if call.Continue != "" {
				paged++
			}
		}
		if paged < 3 { // 7 GitRepositories alone take four pages
			t.Errorf("only %d follow-up pages requested: %+v", paged, c.Calls())
		}
	})
	t.Run("a kind the cluster does not serve is skipped and named", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster()...)
		c.Fail = func(call pagingfake.Call) error {
			if call.Kind == imagev1.ImageRepositoryKind {
				return &apimeta.NoKindMatchError{GroupKind: schema.GroupKind{Group: fluxauth.ImageGroup, Kind: call.Kind}}
			}
			return nil
		}
		res, err := Run(t.Context(), &kubelist.Lister{Reader: c}, p, now)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.SkippedKinds) != "[ImageRepository]" || res.Checked != 9 {
			t.Errorf("skipped %v, checked %d", res.SkippedKinds, res.Checked)
		}
	})
	t.Run("an error part-way keeps the findings read before it and says the result is incomplete", func(t *testing.T) {
		c := pagingfake.New(scheme, cluster()...)
		cut := errors.New("context deadline exceeded")
		c.Fail = func(call pagingfake.Call) error {
			if call.Kind == sourcev1.HelmRepositoryKind {
				return cut
			}
			return nil
		}
		res, err := Run(t.Context(), &kubelist.Lister{Reader: c, PageSize: 3}, p, now)
		if !errors.Is(err, cut) {
			t.Fatalf("err = %v", err)
		}
		if got := rows(res); len(got) != 3 || !strings.Contains(res.Incomplete, "list HelmRepository: context deadline exceeded") {
			t.Errorf("findings %q, incomplete %q: want the GitRepository and OCIRepository findings", got, res.Incomplete)
		}
	})
}

func TestEveryKindListsAsItsListType(t *testing.T) {
	for _, a := range fluxauth.APIs {
		gvk, err := apiutil.GVKForObject(a.NewList(), scheme)
		if err != nil || gvk.Kind != a.Kind+"List" {
			t.Errorf("%s lists as %v (%v)", a.Kind, gvk, err)
		}
	}
}

var fixture = Result{
	Checked: 3,
	Findings: []Finding{
		{Kind: "GitRepository", Namespace: "team-a", Name: "app", Violations: []fluxobjects.Violation{{
			Mandate: "no-static-git-credentials", Mode: policy.ModeEnforce, Field: "spec.secretRef",
			Message: "[no-static-git-credentials] spec.secretRef: remove it, set spec.provider: azure (identity tenants)",
		}}},
		{Kind: "Bucket", Namespace: "quiet", Name: "b", Violations: []fluxobjects.Violation{{
			Mandate: "quiet", Mode: policy.ModeOff, Field: "spec.secretRef", Message: "[quiet] spec.secretRef: remove it",
		}}},
	},
}

func TestBlockingIgnoresOffMandates(t *testing.T) {
	if got := fixture.Blocking(); got != 1 {
		t.Errorf("Blocking = %d, want 1 (the off mandate's violation does not count)", got)
	}
}

func TestWrite(t *testing.T) {
	t.Run("the table has one row per violation with mandate, mode, field and message", func(t *testing.T) {
		var out bytes.Buffer
		if err := WriteTable(&out, fixture); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAMESPACE") {
			t.Fatalf("want a header and two rows, got:\n%s", out.String())
		}
		for _, want := range []string{"team-a", "GitRepository", "app", "enforce", "spec.secretRef",
			"set spec.provider: azure (identity tenants)"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("row %q lacks %q", lines[1], want)
			}
		}
	})
	t.Run("json round-trips the findings with lower-case keys", func(t *testing.T) {
		var out bytes.Buffer
		if err := WriteJSON(&out, fixture); err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out.String())
		}
		if back.Checked != 3 || len(back.Findings) != 2 || back.Findings[0].Violations[0].Mandate != "no-static-git-credentials" {
			t.Errorf("round trip lost data: %+v", back)
		}
		if !strings.Contains(out.String(), `"message": "[no-static-git-credentials] spec.secretRef:`) ||
			strings.Contains(out.String(), `"incomplete"`) {
			t.Errorf("json keys are not the documented ones:\n%s", out.String())
		}
	})
	t.Run("no findings says how many sources were checked, and json still gives an empty list", func(t *testing.T) {
		var table, js bytes.Buffer
		if err := WriteTable(&table, Result{Checked: 7}); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, Result{Checked: 7}); err != nil {
			t.Fatal(err)
		}
		if table.String() != "No violations in 7 Flux sources.\n" || !strings.Contains(js.String(), `"findings": []`) {
			t.Errorf("table %q, json %q", table.String(), js.String())
		}
	})
	t.Run("an incomplete result says so before its rows, in both formats", func(t *testing.T) {
		partial := fixture
		partial.Incomplete = "list Bucket: context deadline exceeded"
		var table, js bytes.Buffer
		if err := WriteTable(&table, partial); err != nil {
			t.Fatal(err)
		}
		if err := WriteJSON(&js, partial); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(table.String(), "incomplete: list Bucket: context deadline exceeded; 3 Flux sources checked") ||
			!strings.Contains(js.String(), `"incomplete": "list Bucket: context deadline exceeded"`) {
			t.Errorf("table:\n%s\njson:\n%s", table.String(), js.String())
		}
	})
}
