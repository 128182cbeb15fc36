package doctor

import (
	"context"
	"encoding/json"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/fluxidentity/flux-identity-webhook/internal/kubelist"
	"github.com/fluxidentity/flux-identity-webhook/policy/trust"
)

// Object-level identity needs two permissions of a controller's ServiceAccount in every tenant namespace: get
// serviceaccounts (pkg/auth getServiceAccountAndProviderInfo reads the ServiceAccount's annotations) and create
// serviceaccounts/token (its TokenRequest). Flux's install grants both through ClusterRole crd-controller; Flux
// Operator drops the token rule when objectLevelWorkloadIdentity is false. doctor reads the ClusterRoles and
// ClusterRoleBindings (namespaced RoleBindings cannot grant a right in every namespace, and are not read) and decides
// them as the API server's RBAC authorizer does: k8s.io/kubernetes pkg/registry/rbac/validation appliesTo for subjects,
// pkg/apis/rbac/v1 evaluation_helpers.go VerbMatches, APIGroupMatches, ResourceMatches for rules, a rule restricted to
// resourceNames granting nothing for ServiceAccounts it does not name.

// grants says which of the two permissions a ServiceAccount holds cluster-wide.
type grants struct{ token, get bool }

// missing names what the ServiceAccount may not do; "" when it holds both.
func (g grants) missing() string {
	switch {
	case !g.token && !g.get:
		return "create serviceaccounts/token nor get serviceaccounts"
	case !g.token:
		return "create serviceaccounts/token"
	case !g.get:
		return "get serviceaccounts"
	}
	return ""
}

func (g grants) or(o grants) grants { return grants{token: g.token || o.token, get: g.get || o.get} }

// readRBAC reads every ClusterRole and ClusterRoleBinding, keeping only what they grant Flux's controllers. Without
// the right to list them it says so and the permission check is skipped.
func (d *diagnosis) readRBAC(ctx context.Context) error {
	roles := map[string]grants{}
	err := kubelist.Pages(ctx, d.l, "clusterroles", func() *rbacv1.ClusterRoleList { return &rbacv1.ClusterRoleList{} },
		func(list *rbacv1.ClusterRoleList) error {
			for i := range list.Items {
				if g := rulesGrant(list.Items[i].Rules); g.token || g.get {
					roles[list.Items[i].Name] = g
				}
			}
			return nil
		})
	if err == nil {
		err = kubelist.Pages(ctx, d.l, "clusterrolebindings",
			func() *rbacv1.ClusterRoleBindingList { return &rbacv1.ClusterRoleBindingList{} },
			func(list *rbacv1.ClusterRoleBindingList) error {
				for i := range list.Items {
					b := &list.Items[i]
					g, ok := roles[b.RoleRef.Name]
					if b.RoleRef.Kind != "ClusterRole" || !ok {
						continue
					}
					for _, r := range d.controllers {
						if bindsServiceAccount(b.Subjects, r.namespace, r.name) {
							key := r.namespace + "/" + r.name
							d.rbac[key] = d.rbac[key].or(g)
						}
					}
				}
				return nil
			})
	}
	if apierrors.IsForbidden(err) {
		d.notes = append(d.notes, "no permission to list clusterroles and clusterrolebindings: the serviceaccounts/token "+
			"permission object-level identity needs was not checked")
		return nil
	}
	d.rbacRead = err == nil
	return err
}

// tokenPermissions is what the ClusterRoleBindings grant a controller's ServiceAccount.
func (d *diagnosis) tokenPermissions(namespace, name string) grants {
	return d.rbac[namespace+"/"+name]
}

// rulesGrant says which of the two permissions rules grant for any ServiceAccount (pkg/apis/rbac/v1 RuleAllows).
func rulesGrant(rules []rbacv1.PolicyRule) grants {
	var g grants
	for _, r := range rules {
		if len(r.ResourceNames) > 0 || !matches(r.APIGroups, "") {
			continue
		}
		g.token = g.token || matches(r.Verbs, "create") && resourceMatches(r.Resources, "serviceaccounts", "token")
		g.get = g.get || matches(r.Verbs, "get") && resourceMatches(r.Resources, "serviceaccounts", "")
	}
	return g
}

// matches is VerbMatches and APIGroupMatches: the value itself or "*".
func matches(values []string, v string) bool {
	return slices.Contains(values, rbacv1.ResourceAll) || slices.Contains(values, v)
}

// resourceMatches is ResourceMatches: "*", resource[/subresource], or "*/subresource" for a subresource.
func resourceMatches(resources []string, resource, subresource string) bool {
	combined := resource
	if subresource != "" {
		combined += "/" + subresource
	}
	for _, r := range resources {
		if r == rbacv1.ResourceAll || r == combined || subresource != "" && r == "*/"+subresource {
			return true
		}
	}
	return false
}

// bindsServiceAccount is appliesToUser for a ServiceAccount's user: the ServiceAccount subject itself, its user name,
// or a group every ServiceAccount of its namespace (or of the cluster, or every authenticated user) belongs to.
func bindsServiceAccount(subjects []rbacv1.Subject, namespace, name string) bool {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			if s.Name == name && s.Namespace == namespace {
				return true
			}
		case rbacv1.UserKind:
			if s.Name == "system:serviceaccount:"+namespace+":"+name {
				return true
			}
		case rbacv1.GroupKind:
			switch s.Name {
			case "system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated":
				return true
			}
		}
	}
	return false
}

// tokenRBACCommand grants a controller's ServiceAccount both permissions through a ClusterRole of its own, applied so
// that running it twice changes nothing.
func tokenRBACCommand(r *running) string {
	role := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": "flux-object-level-identity"},
		"rules": []map[string]any{
			{"apiGroups": []string{""}, "resources": []string{"serviceaccounts"}, "verbs": []string{"get"}},
			{"apiGroups": []string{""}, "resources": []string{"serviceaccounts/token"}, "verbs": []string{"create"}},
		}}
	raw, err := json.Marshal(role)
	if err != nil {
		panic(err) // strings always marshal
	}
	return "echo " + trust.ShellQuote(string(raw)) + " | kubectl apply -f - && kubectl create clusterrolebinding " +
		"flux-object-level-identity-" + r.name + " --clusterrole=flux-object-level-identity --serviceaccount=" +
		r.namespace + ":" + r.name + " (Flux's install grants both through ClusterRole crd-controller)"
}
