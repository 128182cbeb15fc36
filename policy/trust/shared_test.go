package trust

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

func TestShared(t *testing.T) {
	const head = "apiVersion: fluxidentity.dev/v1alpha1\nkind: IdentityPolicy\nidentities:\n"
	entry := func(name, namespaces, serviceAccounts, cloud string) string {
		return "  - name: " + name + "\n    namespaces: " + namespaces + "\n    serviceAccounts: " + serviceAccounts +
			"\n    " + cloud + "\n"
	}
	role := func(name string) string { return `aws: {roleARN: "arn:aws:iam::111122223333:role/` + name + `"}` }
	gsa := func(id string) string { return `gcp: {serviceAccount: "` + id + `@proj-prod.iam.gserviceaccount.com"}` }
	tests := map[string]struct {
		entries []string
		want    []string // Message of each finding
	}{
		"a fixed role equal to one the template renders for another tenant is shared": {
			entries: []string{
				entry("tenants", `["team-*"]`, "[flux]", role("{namespace}.{serviceAccount}")),
				entry("legacy", "[legacy]", "[flux]", role("team-a.flux")),
			},
			want: []string{"role arn:aws:iam::111122223333:role/team-a.flux is shared by team-a/flux (identity tenants, " +
				"templated) and legacy/flux (identity legacy): give them separate roles"},
		},
		"two templates that meet share a role": {
			entries: []string{
				entry("by-namespace", "[a]", "[x]", role("{namespace}")),
				entry("by-name", "[b]", "[a]", role("{serviceAccount}")),
			},
			want: []string{"role arn:aws:iam::111122223333:role/a is shared by a/x (identity by-namespace, templated) and " +
				"b/a (identity by-name, templated): give them separate roles"},
		},
		"role names that differ in case only are one IAM role": {
			entries: []string{
				entry("tenants", `["team-*"]`, "[flux]", role("{namespace}")),
				entry("legacy", "[legacy]", "[flux]", role("Team-A")),
			},
			want: []string{"role arn:aws:iam::111122223333:role/team-a is shared by team-a/flux (identity tenants, " +
				"templated) and legacy/flux (identity legacy): give them separate roles"},
		},
		"a Google service account a template renders and a fixed entry names is shared": {
			entries: []string{
				entry("tenants", `["team-*"]`, "[flux]", gsa("flux-{namespace}")),
				entry("legacy", "[legacy]", "[flux]", gsa("flux-team-a")),
			},
			want: []string{"Google service account flux-team-a@proj-prod.iam.gserviceaccount.com is shared by team-a/flux " +
				"(identity tenants, templated) and legacy/flux (identity legacy): give them separate Google service accounts"},
		},
		"a namespace's role shared by its ServiceAccounts, also through a fixed entry, is a choice": {
			entries: []string{
				entry("controllers", "[flux-system]", "[source-controller, kustomize-controller]", role("flux/{namespace}")),
				entry("helm", "[flux-system]", "[helm-controller]", role("flux/flux-system")),
			},
		},
		"two fixed entries on one role are a choice": {
			entries: []string{
				entry("a", "[a]", "[flux]", role("shared")),
				entry("b", "[b]", "[flux]", role("shared")),
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			data := []byte(head + strings.Join(tc.entries, ""))
			p, err := policy.Parse("policy.yaml", data, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			if err != nil {
				t.Fatal(err)
			}
			pairs, _ := Pairs(p, Names{Namespaces: []string{"team-a", "team-b"}})
			r, err := Render(pairs, nil, nil, Options{Issuer: testIssuer})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range r.Shared {
				got = append(got, s.Message())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("shared:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}
