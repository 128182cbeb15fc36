package trust

import (
	"strings"

	"github.com/fluxidentity/flux-identity-webhook/policy"
)

// Shared is a role or Google service account that a template gives to ServiceAccounts which differ in a name the
// template uses: a fixed value in another entry that equals one the template renders, or two templates that meet. The
// load-time check keeps one template from colliding with itself; it cannot know which names exist. A template that
// uses {namespace} alone shares its identity among a namespace's ServiceAccounts on purpose: that is not reported.
type Shared struct {
	Cloud policy.Cloud `json:"cloud"`
	// Target is the role ARN or Google service account.
	Target string `json:"target"`
	// Holders are every ServiceAccount the policy gives it, in the order of the pairs.
	Holders []Holder `json:"holders"`
}

// Holder is one ServiceAccount given a shared identity, and the identity entry that gives it.
type Holder struct {
	ServiceAccount string `json:"serviceAccount"` // NS/SA
	Identity       string `json:"identity"`
	// Templated is true when the entry's value holds placeholders.
	Templated bool `json:"templated,omitempty"`
}

// Message says what is shared and what to do about it.
func (s Shared) Message() string {
	what, fix := "role ", "roles"
	if s.Cloud == policy.CloudGCP {
		what, fix = "Google service account ", "Google service accounts"
	}
	holders := make([]string, len(s.Holders))
	for i, h := range s.Holders {
		holders[i] = h.ServiceAccount + " (identity " + h.Identity + ")"
		if h.Templated {
			holders[i] = h.ServiceAccount + " (identity " + h.Identity + ", templated)"
		}
	}
	last := len(holders) - 1
	return what + s.Target + " is shared by " + strings.Join(holders[:last], ", ") + " and " + holders[last] +
		": give them separate " + fix
}

// shared lists the identities of pairs that a template shares, in the order they first appear. IAM role names ignore
// case, so role ARNs are compared in lower case.
func shared(pairs []Pair) []Shared {
	var (
		order  []string
		groups = map[string][]Pair{}
	)
	for _, p := range pairs {
		target, _ := targetOf(p)
		if target == "" {
			continue
		}
		key := target
		if p.Match.Cloud == policy.CloudAWS {
			key = strings.ToLower(target)
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], p)
	}
	var out []Shared
	for _, key := range order {
		g := groups[key]
		if !templateShares(g) {
			continue
		}
		s := Shared{Cloud: g[0].Match.Cloud}
		s.Target, _ = targetOf(g[0])
		for _, p := range g {
			ns, sa := placeholders(p)
			s.Holders = append(s.Holders, Holder{ServiceAccount: p.String(), Identity: p.Match.Identity.Name,
				Templated: ns || sa})
		}
		out = append(out, s)
	}
	return out
}

// templateShares reports whether some pair of g got its identity through a template and another pair of g differs
// from it in a name that template uses.
func templateShares(g []Pair) bool {
	for _, p := range g {
		ns, sa := placeholders(p)
		for _, q := range g {
			if ns && p.Namespace != q.Namespace || sa && p.ServiceAccount != q.ServiceAccount {
				return true
			}
		}
	}
	return false
}

// placeholders reports which placeholders the value of a pair's identity entry uses.
func placeholders(p Pair) (namespace, serviceAccount bool) {
	_, template := targetOf(p)
	return policy.Placeholders(template)
}

// targetOf returns the expanded value of a pair's AWS or GCP identity and the value as the policy writes it; both are
// empty for Azure, whose client IDs are not templated.
func targetOf(p Pair) (target, template string) {
	switch p.Match.Cloud {
	case policy.CloudAWS:
		return p.Match.RoleARN, p.Match.Identity.AWS.RoleARN
	case policy.CloudGCP:
		return p.Match.GCPServiceAccount, p.Match.Identity.GCP.ServiceAccount
	}
	return "", ""
}
