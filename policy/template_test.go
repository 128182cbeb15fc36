package policy

import (
	"fmt"
	"strings"
	"testing"
)

func TestDistinctTemplate(t *testing.T) {
	const (
		awsSeparate = "two ServiceAccounts could share a role%s: separate the names with '.', " +
			"e.g. {namespace}.{serviceAccount}"
		gcpID = "two ServiceAccounts could share an account%s; an id has no separator: " +
			"keep one placeholder in it or move one to the project"
		iamName = "IAM role names are unique whatever the path: the name after the last '/' must hold every placeholder"
	)
	tests := []struct {
		name  string
		cloud Cloud
		value string
		want  string // the whole message; empty when the template is accepted
	}{
		{"the issue's template is refused: a/b-c and a-b/c would share role/a-b-c", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}-{serviceAccount}", fmt.Sprintf(awsSeparate, " (a/b-c, a-b/c)")},
		{"placeholders with nothing between them are refused", CloudAWS,
			"arn:aws:iam::111122223333:role/{serviceAccount}{namespace}", fmt.Sprintf(awsSeparate, " (bc/a, c/ab)")},
		{"a literal a namespace can hold separates nothing", CloudAWS,
			"arn:aws:iam::111122223333:role/flux-{namespace}-x-{serviceAccount}",
			fmt.Sprintf(awsSeparate, " (a/b-x-c, a-x-b/c)")},
		{"an upper-case letter separates nothing: IAM role names ignore case", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}X{serviceAccount}", fmt.Sprintf(awsSeparate, " (a/bxc, axb/c)")},
		{"a '.' after the namespace separates: a namespace holds no '.'", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}.{serviceAccount}", ""},
		{"a '.' before the namespace separates too, read from the end", CloudAWS,
			"arn:aws:iam::111122223333:role/flux-{serviceAccount}.{namespace}", ""},
		{"'_' separates: neither name holds it", CloudAWS,
			"arn:aws:iam::111122223333:role/{serviceAccount}_{namespace}", ""},
		{"a path does not separate the names: IAM role names are unique whatever the path", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}/{serviceAccount}", iamName},
		{"a placeholder only in the path is shared by every role of that name", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}/flux", iamName},
		{"the name alone is held to the rule", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}/{serviceAccount}-{namespace}", fmt.Sprintf(awsSeparate, " (b-c/a, c/a-b)")},
		{"a path before a distinct name is fine", CloudAWS,
			"arn:aws:iam::111122223333:role/tenants/{namespace}.{serviceAccount}", ""},
		{"a repeated placeholder is refused when nothing fixes the lengths", CloudAWS,
			"arn:aws:iam::111122223333:role/{namespace}-{serviceAccount}-{namespace}", fmt.Sprintf(awsSeparate, "")},
		{"one placeholder never collides, however often it repeats", CloudAWS,
			"arn:aws:iam::111122223333:role/{serviceAccount}{serviceAccount}-{serviceAccount}", ""},
		{"a namespace-only role shared by the namespace's ServiceAccounts is a choice, not a collision", CloudAWS,
			"arn:aws:iam::111122223333:role/flux-{namespace}", ""},
		{"both names in a Google service account id are refused: no id character separates", CloudGCP,
			"{namespace}-{serviceAccount}@my-project.iam.gserviceaccount.com", fmt.Sprintf(gcpID, " (a/b-c, a-b/c)")},
		{"one placeholder in the id is accepted", CloudGCP,
			"flux-{namespace}@my-project.iam.gserviceaccount.com", ""},
		{"one placeholder moved to the project is accepted: '@' separates", CloudGCP,
			"flux-{serviceAccount}@{namespace}-prod.iam.gserviceaccount.com", ""},
		{"names that run together in the project are refused with a separator that works there", CloudGCP,
			"fluxcd@{namespace}-{serviceAccount}.iam.gserviceaccount.com",
			"two ServiceAccounts could share an account (a/b-c, a-b/c): separate the names with '.', " +
				"e.g. {namespace}.{serviceAccount}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cloud, field, column := "    aws:\n      roleARN: \""+tt.value+"\"", "identities[0].aws.roleARN", 16
			if tt.cloud == CloudGCP {
				cloud, field, column = "    gcp:\n      serviceAccount: \""+tt.value+"\"", "identities[0].gcp.serviceAccount", 23
			}
			_, err := Parse("policy.yaml", []byte(withHeader(nameFlux, nsFluxSystem, saSourceCtrl, cloud)), testNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			checkProblems(t, "policy.yaml", loadErrorProblems(t, err), []wantProblem{{8, column, field, tt.want}})
		})
	}
}

// TestTemplateRuleMatchesRendering checks the rule on every template of up to five tokens made of the two
// placeholders, '-' (a character both names hold), '.' (only a ServiceAccount name holds it) and '/' (neither does):
// it renders every namespace over {b, -} and ServiceAccount name over {b, -, .} of up to five characters and looks
// for two pairs, differing in a placeholder the template uses, with one output. An accepted template must have none,
// a refused one must have one, and a refused template with each placeholder once must give collisionExample a real
// collision.
//
// Names over these alphabets stand for all names: a collision between names over longer alphabets maps onto one here
// by replacing every character the template does not hold with 'b', which keeps outputs equal and lengths different.
// Names need not be DNS names here ("-", ".b"): the rule assumes only the alphabets, so it is checked on them.
func TestTemplateRuleMatchesRendering(t *testing.T) {
	const maxTokens, maxName = 5, 5
	tokens := []string{placeholderNamespace, placeholderServiceAccount, "-", ".", "/"}
	namespaces, serviceAccounts := allStrings("b-", maxName), allStrings("b-.", maxName)
	expand := (&compiledIdentity{templated: true}).expand // what the webhook writes
	seen := map[uint64]int{}
	var templates, accepted, refused, pairs int
	var walk func(tmpl []string)
	walk = func(tmpl []string) {
		if len(tmpl) > 0 {
			templates++
			value := strings.Join(tmpl, "")
			marked, trivial := templateMarks(value)
			ok := trivial || distinct(marked)
			usesNS, usesSA := Placeholders(value)
			nss, sas := []string{"b"}, []string{"b"}
			if usesNS {
				nss = namespaces
			}
			if usesSA {
				sas = serviceAccounts
			}
			clear(seen)
			collision := ""
		search:
			for i, ns := range nss {
				for j, sa := range sas {
					pairs++
					key := packRendering(tmpl, ns, sa)
					if k, dup := seen[key]; dup {
						ns2, sa2 := nss[k/len(sas)], sas[k%len(sas)]
						if expand(value, ns, sa) != expand(value, ns2, sa2) {
							t.Fatalf("%s: packRendering disagrees with expand on %s/%s and %s/%s", value, ns, sa, ns2, sa2)
						}
						collision = ns2 + "/" + sa2 + " and " + ns + "/" + sa + " render " + expand(value, ns, sa)
						break search
					}
					seen[key] = i*len(sas) + j
				}
			}
			switch {
			case ok && collision != "":
				t.Errorf("%s is accepted, yet %s", value, collision)
			case ok:
				accepted++
			case collision == "":
				t.Errorf("%s is refused, yet no two pairs of names up to %d characters render one value", value, maxName)
			default:
				refused++
			}
			if ns, sa, ns2, sa2, found := collisionExample(marked); !ok && found &&
				(ns == ns2 && sa == sa2 || expand(value, ns, sa) != expand(value, ns2, sa2)) {
				t.Errorf("%s: the example %s/%s, %s/%s is no collision", value, ns, sa, ns2, sa2)
			}
		}
		if len(tmpl) == maxTokens {
			return
		}
		for _, tok := range tokens {
			walk(append(tmpl, tok))
		}
	}
	walk(nil)
	t.Logf("%d templates, %d pairs rendered: %d accepted without a collision, %d refused with one", templates, pairs,
		accepted, refused)
}

// packRendering renders a template given as tokens and encodes the output (up to 29 characters over {b, -, ., /})
// as a number, one-to-one, so the search builds no strings.
func packRendering(tmpl []string, ns, sa string) uint64 {
	var k uint64
	n := 0
	for _, tok := range tmpl {
		switch tok {
		case placeholderNamespace:
			tok = ns
		case placeholderServiceAccount:
			tok = sa
		}
		for i := range len(tok) {
			k = k<<2 | uint64(strings.IndexByte("b-./", tok[i]))
			n++
		}
	}
	return k | uint64(n)<<58
}

// allStrings lists every non-empty string over alphabet of up to n characters.
func allStrings(alphabet string, n int) []string {
	out := []string{""}
	for start := 0; n > 0; n-- {
		end := len(out)
		for _, s := range out[start:end] {
			for _, c := range alphabet {
				out = append(out, s+string(c))
			}
		}
		start = end
	}
	return out[1:]
}
