package policy

import (
	"slices"
	"strings"
	"testing"
)

// Lines 4-6 of the documents below, an identity before its cloud.
var (
	nameFlux      = "  - name: flux"
	nsFluxSystem  = "    namespaces: [flux-system]"
	saSourceCtrl  = "    serviceAccounts: [source-controller]"
	awsFlowFlux   = `    aws: {roleARN: "arn:aws:iam::111122223333:role/flux"}`
	validRoleLine = "      roleARN: arn:aws:iam::111122223333:role/flux"
	azureClientID = "      clientID: 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10"
	azureTenantID = "      tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47"
	mandateHeader = []string{"apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "mandates:"}
)

// withHeader prefixes lines with header, so that the first line given is line 4.
func withHeader(lines ...string) string { return doc(append(slices.Clone(header), lines...)...) }

// withMandateHeader prefixes lines with a mandates header, so that the first line given is line 4.
func withMandateHeader(lines ...string) string {
	return doc(append(slices.Clone(mandateHeader), lines...)...)
}

// exceptionDoc is a mandate (lines 3-5) and one exception (lines 6-11) whose fields can be replaced: namespace at
// 7:16, kind 8:11, name 9:11, reason 10:13, expires 11:14; a field left empty is dropped, so that it is missing.
func exceptionDoc(namespace, kind, name, reason, expires string) string {
	lines := []string{
		"apiVersion: fluxidentity.dev/v1alpha1",
		"kind: IdentityPolicy",
		"mandates:",
		"  - name: no-static",
		"    namespaces: [team-a]",
		"exceptions:",
	}
	first := "  - "
	for _, kv := range [][2]string{{"namespace", namespace}, {"kind", kind}, {"name", name}, {"reason", reason},
		{"expires", expires}} {
		if kv[1] == "" {
			continue
		}
		lines = append(lines, first+kv[0]+": "+kv[1])
		first = "    "
	}
	return doc(lines...)
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantProblem
	}{
		// Decoding: the shape of the file.
		{
			name: "unknown field under aws is rejected at its key with a case-insensitive hint",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleArn: arn:aws:iam::111122223333:role/flux"),
			want: []wantProblem{{8, 7, "identities[0].aws.roleArn", `unknown field "roleArn" (did you mean "roleARN"?)`}},
		},
		{
			name: "one IAM role name under two paths in one account is rejected at the second",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux,
				"  - name: tenants", "    namespaces: [team-a]", "    serviceAccounts: [flux-source]",
				`    aws: {roleARN: "arn:aws:iam::111122223333:role/teams/Flux"}`),
			want: []wantProblem{{11, 20, "identities[1].aws.roleARN", `"arn:aws:iam::111122223333:role/teams/Flux" and ` +
				`"arn:aws:iam::111122223333:role/flux" (identities[0].aws.roleARN) name one IAM role under two paths: ` +
				`role names are unique in an account whatever the path, so one of them does not exist`}},
		},
		{
			name: "unknown top-level field is rejected at its key",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "spec:", "  identities: []"),
			want: []wantProblem{{3, 1, "spec", `unknown field "spec"`}},
		},
		{
			name: "unknown field in an exception is rejected at its key",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", `"2030-01-01"`) + "    owner: alice\n",
			want: []wantProblem{{12, 5, "exceptions[0].owner", `unknown field "owner"`}},
		},
		{
			name: "duplicate key is reported at its second occurrence",
			yaml: withHeader(nameFlux, "    name: flux-2", nsFluxSystem, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 5, "identities[0].name", `field "name" is set twice`}},
		},
		{
			name: "duplicate top-level key is reported at its second occurrence",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "kind: IdentityPolicy"),
			want: []wantProblem{{8, 1, "kind", `field "kind" is set twice`}},
		},
		{
			name: "a string where a list belongs is rejected",
			yaml: withHeader(nameFlux, "    namespaces: flux-system", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 17, "identities[0].namespaces", `expected a list, got string "flux-system"`}},
		},
		{
			name: "a number where a string belongs is rejected",
			yaml: withHeader("  - name: 42", nsFluxSystem, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 11, "identities[0].name", "expected a string, got number 42"}},
		},
		{
			name: "a boolean where a string belongs is rejected",
			yaml: withHeader(nameFlux, "    namespaces: [true]", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 18, "identities[0].namespaces[0]", "expected a string, got boolean true"}},
		},
		{
			name: "a list where a number belongs is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: [3600]"),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds", "expected a whole number, got a list"}},
		},
		{
			name: "a quoted number is a string, not a number",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				`      tokenExpirationSeconds: "3600"`),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds",
				`expected a whole number, got string "3600"`}},
		},
		{
			name: "a fraction is not a whole number",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: 3600.5"),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds",
				"expected a whole number, got number 3600.5"}},
		},
		{
			name: "a number too large for 64 bits is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: 99999999999999999999"),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds", "99999999999999999999"}},
		},
		{
			name: "yes is a string, not a boolean (YAML 1.2)",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      stsRegionalEndpoints: yes"),
			want: []wantProblem{{9, 29, "identities[0].aws.stsRegionalEndpoints", `expected true or false, got string "yes"`}},
		},
		{
			name: "a list where an object belongs is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws: [roleARN]"),
			want: []wantProblem{{7, 10, "identities[0].aws", "expected an object, got a list"}},
		},
		{
			name: "an object where the identities list belongs is rejected",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "identities: {name: flux}"),
			want: []wantProblem{{3, 13, "identities", "expected a list, got an object"}},
		},
		{
			name: "a document that is not an object is rejected",
			yaml: doc("- apiVersion: fluxidentity.dev/v1alpha1", "- kind: IdentityPolicy"),
			want: []wantProblem{{1, 1, "", "expected an object, got a list"}},
		},
		{
			name: "a key that is not a plain name is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    ? [mode]", "    : warn"),
			want: []wantProblem{{4, 5, "identities[0]", "keys must be plain names (line 8)"}},
		},
		{
			name: "an empty file is rejected",
			yaml: "",
			want: []wantProblem{{1, 1, "", "the file is empty: expected an IdentityPolicy document"}},
		},
		{
			name: "a file of comments only is empty",
			yaml: doc("# policy goes here", ""),
			want: []wantProblem{{1, 1, "", "the file is empty"}},
		},
		{
			name: "a second YAML document is rejected where it starts",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "---", "kind: IdentityPolicy"),
			want: []wantProblem{{8, 1, "", "a policy file holds exactly one YAML document"}},
		},
		{
			name: "a syntax error in a second YAML document is reported",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "---", "kind: ["),
			want: []wantProblem{{9, 1, "", "invalid YAML: did not find expected node content"}},
		},
		{
			name: "a tab in the indentation is a syntax error on its line",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "\tmode: warn"),
			want: []wantProblem{{8, 1, "", "invalid YAML: found character that cannot start any token"}},
		},
		{
			name: "a tab before a top-level key is a syntax error on its line",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "\tkind: IdentityPolicy"),
			want: []wantProblem{{2, 1, "", "invalid YAML: found a tab character that violates indentation"}},
		},
		{
			name: "an unterminated quote is a syntax error",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				`      roleARN: "arn:aws:iam::111122223333:role/flux`),
			want: []wantProblem{{8, 1, "", "invalid YAML: found unexpected end of stream"}},
		},
		{
			name: "a mapping value where none is allowed is a syntax error",
			yaml: withHeader("  - name: flux: controllers", nsFluxSystem, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 1, "", "invalid YAML: mapping values are not allowed in this context"}},
		},
		{
			name: "decoding problems are all reported, in document order",
			yaml: withHeader(nameFlux, "    namespace: [flux-system]", "    serviceAccounts: source-controller", "    aws:",
				validRoleLine, "      roleARN: arn:aws:iam::111122223333:role/other"),
			want: []wantProblem{
				{5, 5, "identities[0].namespace", `unknown field "namespace"`},
				{6, 22, "identities[0].serviceAccounts", `expected a list, got string "source-controller"`},
				{9, 7, "identities[0].aws.roleARN", `field "roleARN" is set twice`},
			},
		},

		// Validation: the document.
		{
			name: "apiVersion must be the v1alpha1 group version",
			yaml: doc(append([]string{"apiVersion: fluxidentity.dev/v1", "kind: IdentityPolicy", "identities:"},
				entry("flux", "[flux-system]", "[source-controller]")...)...),
			want: []wantProblem{{1, 13, "apiVersion", `must be "fluxidentity.dev/v1alpha1", got "fluxidentity.dev/v1"`}},
		},
		{
			name: "a missing apiVersion is reported at the top of the document",
			yaml: doc(append([]string{"kind: IdentityPolicy", "identities:"},
				entry("flux", "[flux-system]", "[source-controller]")...)...),
			want: []wantProblem{{1, 1, "apiVersion", `must be "fluxidentity.dev/v1alpha1", got ""`}},
		},
		{
			name: "kind must be IdentityPolicy",
			yaml: doc(append([]string{"apiVersion: fluxidentity.dev/v1alpha1", "kind: Policy", "identities:"},
				entry("flux", "[flux-system]", "[source-controller]")...)...),
			want: []wantProblem{{2, 7, "kind", `must be "IdentityPolicy", got "Policy"`}},
		},
		{
			name: "a policy with neither identities nor mandates is rejected",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "metadata: {name: platform}"),
			want: []wantProblem{{1, 1, "identities", "the policy has neither identities nor mandates"}},
		},
		{
			name: "an empty identities list without mandates is rejected where it stands",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "identities: []", "mandates: []"),
			want: []wantProblem{{3, 13, "identities", "the policy has neither identities nor mandates"}},
		},

		// Validation: identities.
		{
			name: "identity name must be a DNS label",
			yaml: withHeader("  - name: Flux_Controllers", nsFluxSystem, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 11, "identities[0].name", `"Flux_Controllers" must be a DNS label`}},
		},
		{
			name: "identity name longer than 63 characters is rejected",
			yaml: withHeader("  - name: "+strings.Repeat("a", 64), nsFluxSystem, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 11, "identities[0].name", "must be a DNS label"}},
		},
		{
			name: "identity name is required and reported where the entry starts",
			yaml: withHeader("  - namespaces: [flux-system]", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 5, "identities[0].name", "is required"}},
		},
		{
			name: "identity names are unique",
			yaml: entries(entry("flux", "[flux-system]", "[source-controller]"), entry("flux", "[team-a]", "[flux]")),
			want: []wantProblem{{8, 11, "identities[1].name", `identity name "flux" is already used by identities[0]`}},
		},
		{
			name: "mandate names are unique",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "  - name: no-static", "    namespaces: [team-a]"),
			want: []wantProblem{{6, 11, "mandates[1].name", `mandate name "no-static" is already used by mandates[0]`}},
		},
		{
			name: "mandate name must be a DNS label",
			yaml: withMandateHeader("  - name: No Static", nsFluxSystem),
			want: []wantProblem{{4, 11, "mandates[0].name", `"No Static" must be a DNS label`}},
		},
		{
			name: "identity without namespaces is rejected",
			yaml: withHeader(nameFlux, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{4, 5, "identities[0].namespaces", "list at least one namespace"}},
		},
		{
			name: "identity with an empty namespaces list is rejected where the list stands",
			yaml: withHeader(nameFlux, "    namespaces: []", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 17, "identities[0].namespaces", "list at least one namespace"}},
		},
		{
			name: "identity without serviceAccounts is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, awsFlowFlux),
			want: []wantProblem{{4, 5, "identities[0].serviceAccounts", "list at least one ServiceAccount"}},
		},
		{
			name: "namespace pattern with characters outside names and globs is rejected",
			yaml: withHeader(nameFlux, `    namespaces: [flux-system, "team_[a]"]`, saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 31, "identities[0].namespaces[1]",
				`"team_[a]" is not a namespace name or glob (allowed: a-z, 0-9, '-', '*', '?'; at most 63)`}},
		},
		{
			name: "namespace pattern longer than 63 characters is rejected",
			yaml: withHeader(nameFlux, "    namespaces: ["+strings.Repeat("n", 64)+"]", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 18, "identities[0].namespaces[0]", "is not a namespace name or glob"}},
		},
		{
			name: "namespace with a dot is rejected (namespaces are DNS labels)",
			yaml: withHeader(nameFlux, "    namespaces: [flux.system]", saSourceCtrl, awsFlowFlux),
			want: []wantProblem{{5, 18, "identities[0].namespaces[0]", "is not a namespace name or glob"}},
		},
		{
			name: "upper-case ServiceAccount name is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, "    serviceAccounts: [Source-Controller]", awsFlowFlux),
			want: []wantProblem{{6, 23, "identities[0].serviceAccounts[0]",
				`"Source-Controller" is not a ServiceAccount name or glob`}},
		},
		{
			name: "empty ServiceAccount pattern is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, `    serviceAccounts: [""]`, awsFlowFlux),
			want: []wantProblem{{6, 23, "identities[0].serviceAccounts[0]", `"" is not a ServiceAccount name or glob`}},
		},
		{
			name: "identity without a cloud is rejected where the entry starts",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl),
			want: []wantProblem{{4, 5, "identities[0]", "set exactly one of aws, azure or gcp (found 0)"}},
		},
		{
			name: "identity with an empty cloud key has no cloud",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:"),
			want: []wantProblem{{4, 5, "identities[0]", "set exactly one of aws, azure or gcp (found 0)"}},
		},
		{
			name: "identity with two clouds is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux,
				"    gcp: {serviceAccount: flux-source@my-project.iam.gserviceaccount.com}"),
			want: []wantProblem{{4, 5, "identities[0]", "set exactly one of aws, azure or gcp (found 2)"}},
		},

		// Validation: AWS.
		{
			name: "role ARN with an unknown partition is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws-mars:iam::111122223333:role/flux"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN", "is not an IAM role ARN"}},
		},
		{
			name: "role ARN with an 11-digit account is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::11112222333:role/flux"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN",
				`"arn:aws:iam::11112222333:role/flux" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`}},
		},
		{
			name: "role ARN with an empty path segment is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:role/flux//source"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN", "is not an IAM role ARN"}},
		},
		{
			name: "role ARN ending in a slash is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:role/flux/"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN", "is not an IAM role ARN"}},
		},
		{
			name: "user ARN is not a role ARN",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:user/flux"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN", "is not an IAM role ARN"}},
		},
		{
			name: "role ARN is required",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws: {region: eu-west-1}"),
			want: []wantProblem{{7, 10, "identities[0].aws.roleARN", "is required"}},
		},
		{
			name: "misspelt placeholder in a role ARN is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:role/flux-{namspace}"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN",
				`unknown placeholder in "arn:aws:iam::111122223333:role/flux-{namspace}": ` +
					"only {namespace} and {serviceAccount}"}},
		},
		{
			name: "unbalanced brace in a role ARN is an unknown placeholder",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:role/flux-{namespace"),
			want: []wantProblem{{8, 16, "identities[0].aws.roleARN", "unknown placeholder"}},
		},
		{
			name: "audience with spaces is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				`      audience: "sts amazonaws com"`),
			want: []wantProblem{{9, 17, "identities[0].aws.audience", "must be a non-empty audience without spaces"}},
		},
		{
			name: "region that is not an AWS region is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, "      region: europe"),
			want: []wantProblem{{9, 15, "identities[0].aws.region", `"europe" is not an AWS region`}},
		},
		{
			name: "AWS token lifetime under 600 seconds is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: 599"),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds", "must be at least 600 seconds, got 599"}},
		},
		{
			name: "AWS token lifetime beyond the projected volume's bound is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: 4294967297"),
			want: []wantProblem{{9, 31, "identities[0].aws.tokenExpirationSeconds",
				"must be 600..4294967296 seconds, got 4294967297"}},
		},

		// Validation: Azure.
		{
			name: "Azure identity without client and tenant IDs is rejected twice",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure: {tokenExpirationSeconds: 3600}"),
			want: []wantProblem{
				{7, 12, "identities[0].azure.clientID", "is required (Flux object-level identity needs both IDs)"},
				{7, 12, "identities[0].azure.tenantID", "is required"},
			},
		},
		{
			name: "Azure identity without a tenant ID is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID),
			want: []wantProblem{{8, 7, "identities[0].azure.tenantID", "is required"}},
		},
		{
			name: "Azure client ID that is not a UUID is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", "      clientID: not-a-uuid", azureTenantID),
			want: []wantProblem{{8, 17, "identities[0].azure.clientID", `"not-a-uuid" is not a UUID`}},
		},
		{
			name: "Azure tenant ID with a missing group is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID,
				"      tenantID: 72f988bf-86f1-41af-2d7cd011db47"),
			want: []wantProblem{{9, 17, "identities[0].azure.tenantID", "is not a UUID"}},
		},
		{
			name: "Azure token lifetime under an hour is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      tokenExpirationSeconds: 3599"),
			want: []wantProblem{{10, 31, "identities[0].azure.tokenExpirationSeconds", "must be 3600..86400 seconds"}},
		},
		{
			name: "Azure token lifetime over a day is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      tokenExpirationSeconds: 86401"),
			want: []wantProblem{{10, 31, "identities[0].azure.tokenExpirationSeconds", "got 86401"}},
		},
		{
			name: "an Azure cloud the Azure webhook does not know is rejected with the known names",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      cloud: AzureGermanCloud"),
			want: []wantProblem{{10, 14, "identities[0].azure.cloud", `unknown Azure cloud "AzureGermanCloud" ` +
				"(known: AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud)"}},
		},
		{
			name: "an Azure cloud in the az CLI's spelling is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      cloud: AzureUSGovernment"),
			want: []wantProblem{{10, 14, "identities[0].azure.cloud", `unknown Azure cloud "AzureUSGovernment"`}},
		},

		// Validation: GCP.
		{
			name: "GCP service account outside iam.gserviceaccount.com is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux@my-project.example.com"),
			want: []wantProblem{{8, 23, "identities[0].gcp.serviceAccount",
				`"flux@my-project.example.com" is not a Google service account`}},
		},
		{
			name: "GCP service account without a project is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@iam.gserviceaccount.com"),
			want: []wantProblem{{8, 23, "identities[0].gcp.serviceAccount", "is not a Google service account"}},
		},
		{
			name: "a GCP entry names a Google service account or a principal for direct federation",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp: {}"),
			want: []wantProblem{{7, 10, "identities[0].gcp", "set serviceAccount (impersonation), workloadPool and projectNumber"}},
		},
		{
			name: "misspelt placeholder in a GCP service account is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-{serviceaccount}@my-project.iam.gserviceaccount.com"),
			want: []wantProblem{{8, 23, "identities[0].gcp.serviceAccount", "unknown placeholder"}},
		},
		{
			name: "workload identity provider with a project name instead of a number is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@my-project.iam.gserviceaccount.com",
				"      workloadIdentityProvider: projects/my-project/locations/global/workloadIdentityPools/pool/providers/prov"),
			want: []wantProblem{{9, 33, "identities[0].gcp.workloadIdentityProvider",
				"must be projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER"}},
		},
		{
			name: "workload identity provider without its providers segment is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@my-project.iam.gserviceaccount.com",
				"      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/pool"),
			want: []wantProblem{{9, 33, "identities[0].gcp.workloadIdentityProvider", "must be projects/NUMBER/"}},
		},

		// Validation: injection and mode.
		{
			name: "full injection of a GKE identity without a workload identity provider is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@my-project.iam.gserviceaccount.com", "    injection: full"),
			want: []wantProblem{{9, 16, "identities[0].injection", "full injection of a gcp identity needs gcp.workloadIdentityProvider"}},
		},
		{
			name: "unknown injection is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    injection: sidecar"),
			want: []wantProblem{{8, 16, "identities[0].injection", `must be annotate or full, got "sidecar"`}},
		},
		{
			name: "unknown identity mode is rejected",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    mode: audit"),
			want: []wantProblem{{8, 11, "identities[0].mode", `must be enforce, warn or off, got "audit"`}},
		},
		{
			name: "modes are case-sensitive",
			yaml: withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    mode: Enforce"),
			want: []wantProblem{{8, 11, "identities[0].mode", `got "Enforce"`}},
		},

		// Validation: mandates.
		{
			name: "unknown mandate mode is rejected",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    mode: deny"),
			want: []wantProblem{{6, 11, "mandates[0].mode", `must be enforce, warn or off, got "deny"`}},
		},
		{
			name: "unknown mandate kind is rejected at its list item",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    kinds: [GitRepository, Alert]"),
			want: []wantProblem{{6, 28, "mandates[0].kinds[1]", `unknown kind "Alert" (known: GitRepository,`}},
		},
		{
			name: "kinds are case-sensitive",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    kinds: [gitrepository]"),
			want: []wantProblem{{6, 13, "mandates[0].kinds[0]", `unknown kind "gitrepository"`}},
		},
		{
			name: "unknown allowed provider is rejected at its list item",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    allowProviders: [github, gitlab]"),
			want: []wantProblem{{6, 30, "mandates[0].allowProviders[1]",
				`unknown secret-based scheme "gitlab" (only github, a GitHub App, can be allowed)`}},
		},
		{
			name: "a cloud provider cannot excuse a secret: Flux reads static keys from it",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    allowProviders: [aws, github, gcp]"),
			want: []wantProblem{
				{6, 22, "mandates[0].allowProviders[0]", `"aws" cannot excuse a secret: Flux reads static keys`},
				{6, 35, "mandates[0].allowProviders[2]", `"gcp" cannot excuse a secret`},
			},
		},
		{
			name: "generic cannot be allowed either: it is a plain secret",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    allowProviders: [generic]"),
			want: []wantProblem{{6, 22, "mandates[0].allowProviders[0]", `use an exception for anything else`}},
		},
		{
			name: "unknown cover value is rejected at its list item",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    cover: [tlsClientKeys, verifyKeys]"),
			want: []wantProblem{{6, 28, "mandates[0].cover[1]",
				`unknown value "verifyKeys" (known: tlsClientKeys, proxyCredentials, sopsPrivateKeys, receiverTokens)`}},
		},
		{
			name: "allowControllerIdentity is a boolean",
			yaml: withMandateHeader("  - name: no-static", nsFluxSystem, "    allowControllerIdentity: yes please"),
			want: []wantProblem{{6, 30, "mandates[0].allowControllerIdentity", "expected true or false"}},
		},

		// Validation: flux.
		{
			name: "Flux namespaces are exact names",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "flux:",
				"  namespaces: [flux-*]", "mandates:", "  - name: no-static", "    namespaces: [team-a]"),
			want: []wantProblem{{4, 16, "flux.namespaces[0]", `must be a namespace name (no globs), got "flux-*"`}},
		},
		{
			name: "Flux's default ServiceAccount is a name, not a glob",
			yaml: doc("apiVersion: fluxidentity.dev/v1alpha1", "kind: IdentityPolicy", "flux:",
				"  defaultServiceAccount: \"flux-*\"", "mandates:", "  - name: no-static", "    namespaces: [team-a]"),
			want: []wantProblem{{4, 26, "flux.defaultServiceAccount", `must be a ServiceAccount name, got "flux-*"`}},
		},
		{
			name: "mandate without namespaces is rejected",
			yaml: withMandateHeader("  - name: no-static", "    kinds: [GitRepository]"),
			want: []wantProblem{{4, 5, "mandates[0].namespaces", "list at least one namespace"}},
		},
		{
			name: "mandate namespace with bad characters is rejected",
			yaml: withMandateHeader("  - name: no-static", "    namespaces: [Team-A]"),
			want: []wantProblem{{5, 18, "mandates[0].namespaces[0]", `"Team-A" is not a namespace name or glob`}},
		},
		{
			name: "mandate name is required",
			yaml: withMandateHeader("  - namespaces: [team-a]"),
			want: []wantProblem{{4, 5, "mandates[0].name", "is required"}},
		},

		// Validation: exceptions.
		{
			name: "exception namespace must be a namespace name, not a glob",
			yaml: exceptionDoc(`"team-*"`, "GitRepository", "legacy", "PLAT-1", `"2030-01-01"`),
			want: []wantProblem{{7, 16, "exceptions[0].namespace", `must be a namespace name, got "team-*"`}},
		},
		{
			name: "exception namespace is required",
			yaml: exceptionDoc("", "GitRepository", "legacy", "PLAT-1", `"2030-01-01"`),
			want: []wantProblem{{7, 5, "exceptions[0].namespace", `must be a namespace name, got ""`}},
		},
		{
			name: "exception kind must be a kind a mandate can cover",
			yaml: exceptionDoc("team-a", "Alert", "legacy", "PLAT-1", `"2030-01-01"`),
			want: []wantProblem{{8, 11, "exceptions[0].kind", `unknown kind "Alert"`}},
		},
		{
			name: "exception name is required",
			yaml: exceptionDoc("team-a", "GitRepository", "", "PLAT-1", `"2030-01-01"`),
			want: []wantProblem{{7, 5, "exceptions[0].name", `must be an object name or a glob, got ""`}},
		},
		{
			name: "exception name with spaces is rejected",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy repo", "PLAT-1", `"2030-01-01"`),
			want: []wantProblem{{9, 11, "exceptions[0].name", `must be an object name or a glob, got "legacy repo"`}},
		},
		{
			name: "exception reason is required",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "", `"2030-01-01"`),
			want: []wantProblem{{7, 5, "exceptions[0].reason", "is required: say why and link the ticket"}},
		},
		{
			name: "blank exception reason is rejected",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", `"   "`, `"2030-01-01"`),
			want: []wantProblem{{10, 13, "exceptions[0].reason", "is required"}},
		},
		{
			name: "exception expiry is required",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", ""),
			want: []wantProblem{{7, 5, "exceptions[0].expires", `must be a date YYYY-MM-DD, got ""`}},
		},
		{
			name: "exception expiry in another date format is rejected",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", "31/01/2027"),
			want: []wantProblem{{11, 14, "exceptions[0].expires", `must be a date YYYY-MM-DD, got "31/01/2027"`}},
		},
		{
			name: "exception expiry with a time of day is rejected",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", "2027-01-31T00:00:00Z"),
			want: []wantProblem{{11, 14, "exceptions[0].expires", "must be a date YYYY-MM-DD"}},
		},
		{
			name: "exception expiry on a day that does not exist is rejected",
			yaml: exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", `"2027-02-30"`),
			want: []wantProblem{{11, 14, "exceptions[0].expires", "must be a date YYYY-MM-DD"}},
		},

		// Several problems.
		{
			name: "validation problems are all reported, in document order",
			yaml: doc(
				"apiVersion: fluxidentity.dev/v1",
				"kind: IdentityPolicy",
				"mandates:",
				"  - name: no-static",
				"    namespaces: [flux-system]",
				"    mode: deny",
				"identities:",
				"  - name: Flux",
				"    namespaces: [flux-system]",
				"    serviceAccounts: [source-controller]",
				"    aws:",
				"      roleARN: arn:aws:iam::1111:role/flux",
				"      tokenExpirationSeconds: 60",
				"exceptions:",
				"  - namespace: flux-system",
				"    kind: Alert",
				"    name: legacy",
				"    reason: PLAT-1",
				`    expires: "2030-01-01"`,
			),
			want: []wantProblem{
				{1, 13, "apiVersion", "must be"},
				{6, 11, "mandates[0].mode", "must be enforce, warn or off"},
				{8, 11, "identities[0].name", "must be a DNS label"},
				{12, 16, "identities[0].aws.roleARN", "is not an IAM role ARN"},
				{13, 31, "identities[0].aws.tokenExpirationSeconds", "got 60"},
				{16, 11, "exceptions[0].kind", "unknown kind"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("policy.yaml", []byte(tt.yaml), testNow)
			checkProblems(t, "policy.yaml", loadErrorProblems(t, err), tt.want)
		})
	}
}

func TestUnknownFieldWithoutNearMatchHasNoHint(t *testing.T) {
	yaml := withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    roles: [admin]")
	_, err := Parse("policy.yaml", []byte(yaml), testNow)
	problems := loadErrorProblems(t, err)
	if len(problems) != 1 || problems[0].Message != `unknown field "roles"` {
		t.Errorf("got %v, want exactly: unknown field \"roles\"", problems)
	}
}

func TestLoadErrorNamesFileLineAndField(t *testing.T) {
	_, err := Parse("/etc/flux-identity/policy.yaml", []byte(withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
		"      roleArn: arn:aws:iam::111122223333:role/flux")), testNow)
	want := "/etc/flux-identity/policy.yaml:8:7: identities[0].aws.roleArn: " +
		`unknown field "roleArn" (did you mean "roleARN"?)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"role ARN with a path is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws:iam::111122223333:role/platform/flux/source-controller")},
		{"role ARN in the China partition is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws-cn:iam::111122223333:role/flux")},
		{"role ARN in GovCloud with both placeholders is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:",
				"      roleARN: arn:aws-us-gov:iam::111122223333:role/tenants/{namespace}.{serviceAccount}")},
		{"AWS token lifetime of exactly 2^32 seconds, the API server's bound, is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine,
				"      tokenExpirationSeconds: 4294967296")},
		{"every Azure cloud the Azure webhook knows is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      cloud: AzureChinaCloud",
				"  - name: gov", nsFluxSystem, "    serviceAccounts: [helm-controller]", "    azure:", azureClientID,
				azureTenantID, "      cloud: AzureUSGovernmentCloud",
				"  - name: public", nsFluxSystem, "    serviceAccounts: [kustomize-controller]", "    azure:",
				azureClientID, azureTenantID, "      cloud: AzurePublicCloud")},
		{"AWS token lifetime of exactly 600 seconds is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, "      tokenExpirationSeconds: 600")},
		{"AWS options are accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    aws:", validRoleLine, "      audience: sts.amazonaws.com",
				"      stsRegionalEndpoints: false", "      region: us-gov-west-1")},
		{"Azure token lifetime of exactly an hour is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      tokenExpirationSeconds: 3600")},
		{"Azure token lifetime of exactly a day is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:", azureClientID, azureTenantID,
				"      tokenExpirationSeconds: 86400")},
		{"upper-case UUIDs are accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    azure:",
				"      clientID: 6A1C5E8E-0A4F-4F39-9D2B-1B8D3F6C2A10", azureTenantID)},
		{"GCP identity with a workload identity provider is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: flux-source@my-project.iam.gserviceaccount.com",
				"      workloadIdentityProvider: projects/123456789/locations/global/workloadIdentityPools/pool/providers/prov")},
		{"GCP service account templated on both names is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				`      serviceAccount: "flux-{serviceAccount}@{namespace}-prod.iam.gserviceaccount.com"`)},
		{"GCP service account templated on the ServiceAccount alone is accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, "    gcp:",
				"      serviceAccount: \"{serviceAccount}@my-project.iam.gserviceaccount.com\"")},
		{"a policy of mandates only is accepted",
			withMandateHeader("  - name: no-static", nsFluxSystem)},
		{"an identity and a mandate may share a name",
			doc(append(append(slices.Clone(header), entry("flux", "[flux-system]", "[source-controller]")...),
				"mandates:", "  - name: flux", "    namespaces: [flux-system]")...)},
		{"explicit nulls are like absent optional fields",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux, "    mode: ~", "    injection: null")},
		{"anchors and aliases are followed",
			withHeader(nameFlux, "    namespaces: &flux [flux-system]", saSourceCtrl, awsFlowFlux,
				"  - name: flux-gcp", "    namespaces: *flux", "    serviceAccounts: [notification-controller]",
				"    gcp: {serviceAccount: flux-source@my-project.iam.gserviceaccount.com}")},
		{"unquoted exception expiry date is accepted",
			exceptionDoc("team-a", "GitRepository", "legacy-*", "PLAT-1", "2027-01-31")},
		{"exception for any kind of source object is accepted",
			exceptionDoc("team-a", "ImageRepository", `"*"`, "PLAT-1", "2030-01-01")},
		{"metadata is optional",
			entries(entry("flux", "[flux-system]", "[source-controller]"))},
		{"a leading document marker is fine",
			"---\n" + entries(entry("flux", "[flux-system]", "[source-controller]"))},
		{"one role shared by two entries, and one role name in two accounts, are accepted",
			withHeader(nameFlux, nsFluxSystem, saSourceCtrl, awsFlowFlux,
				"  - name: flux-helm", nsFluxSystem, "    serviceAccounts: [helm-controller]",
				`    aws: {roleARN: "arn:aws:iam::111122223333:role/FLUX"}`,
				"  - name: flux-other-account", nsFluxSystem, "    serviceAccounts: [kustomize-controller]",
				`    aws: {roleARN: "arn:aws:iam::444455556666:role/teams/flux"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, tt.yaml)
			if len(p.Warnings) != 0 {
				t.Errorf("unexpected warnings: %v", p.Warnings)
			}
		})
	}
}

func TestDefaultsAreFilledIn(t *testing.T) {
	p := mustParse(t, doc(
		"apiVersion: fluxidentity.dev/v1alpha1",
		"kind: IdentityPolicy",
		"metadata: {name: platform}",
		"identities:",
		"  - name: flux",
		"    namespaces: [flux-system]",
		"    serviceAccounts: [source-controller]",
		`    aws: {roleARN: "arn:aws:iam::111122223333:role/flux"}`,
		"  - name: tenants",
		"    namespaces: [team-*]",
		"    serviceAccounts: [flux]",
		"    injection: full",
		"    mode: warn",
		"    azure: {clientID: 6a1c5e8e-0a4f-4f39-9d2b-1b8d3f6c2a10, tenantID: 72f988bf-86f1-41af-91ab-2d7cd011db47}",
		"mandates:",
		"  - name: no-static",
		"    namespaces: [flux-system]",
		"  - name: no-static-git",
		"    namespaces: [flux-system]",
		"    mode: off",
		"    kinds: [GitRepository]",
	))
	if p.Name != "platform" {
		t.Errorf("Name = %q, want platform", p.Name)
	}
	flux, tenants := p.Spec.Identities[0], p.Spec.Identities[1]
	if flux.Injection != InjectionAnnotate || flux.Mode != ModeEnforce {
		t.Errorf("identity defaults: injection %q mode %q, want annotate and enforce", flux.Injection, flux.Mode)
	}
	if flux.AWS.Audience != "sts.amazonaws.com" {
		t.Errorf("audience default = %q, want sts.amazonaws.com", flux.AWS.Audience)
	}
	if flux.AWS.STSRegionalEndpoints != nil || flux.AWS.TokenExpirationSeconds != nil {
		t.Errorf("optional AWS fields were filled in: %+v", flux.AWS)
	}
	if tenants.Azure.Cloud != "AzurePublicCloud" {
		t.Errorf("azure cloud default = %q, want AzurePublicCloud", tenants.Azure.Cloud)
	}
	if tenants.Injection != InjectionFull || tenants.Mode != ModeWarn {
		t.Errorf("explicit values: injection %q mode %q, want full and warn", tenants.Injection, tenants.Mode)
	}
	all, git := p.Spec.Mandates[0], p.Spec.Mandates[1]
	if all.Mode != ModeEnforce || !slices.Equal(all.Kinds, Kinds) {
		t.Errorf("mandate defaults: mode %q kinds %v, want enforce and %v", all.Mode, all.Kinds, Kinds)
	}
	if git.Mode != ModeOff || !slices.Equal(git.Kinds, []string{"GitRepository"}) {
		t.Errorf("explicit mandate: mode %q kinds %v", git.Mode, git.Kinds)
	}
	if !slices.Equal(p.Spec.Flux.Namespaces, []string{DefaultFluxNamespace}) || !p.FluxNamespace("flux-system") ||
		p.FluxNamespace("team-a") {
		t.Errorf("flux namespaces = %v, want the default [flux-system]", p.Spec.Flux.Namespaces)
	}
	if len(all.Cover) != 0 || all.AllowControllerIdentity || len(all.AllowProviders) != 0 {
		t.Errorf("mandate opt-ins were filled in: %+v", all)
	}
	all.Kinds[0] = "changed"
	if Kinds[0] == "changed" {
		t.Error("a mandate's default kinds share storage with Kinds")
	}
}

func TestAllowingGitHubWhereNoGitRepositoryIsCoveredWarns(t *testing.T) {
	p := mustParse(t, withMandateHeader("  - name: registries", nsFluxSystem, "    kinds: [OCIRepository]",
		"    allowProviders: [github]"))
	checkProblems(t, "policy.yaml", p.Warnings, []wantProblem{{7, 22, "mandates[0].allowProviders[0]",
		"github excuses GitRepository secrets only, and this mandate does not cover GitRepository"}})
}

func TestExceptionExpiryWarnings(t *testing.T) {
	// testNow is 2026-06-15 12:00 UTC.
	tests := []struct {
		name    string
		expires string
		want    []wantProblem
	}{
		{"exception that expired yesterday loads with a warning", `"2026-06-14"`,
			[]wantProblem{{11, 14, "exceptions[0].expires",
				"exception for team-a/GitRepository legacy expired on 2026-06-14 and no longer applies"}}},
		{"exception that expired years ago loads with a warning", "2020-01-01",
			[]wantProblem{{11, 14, "exceptions[0].expires", "expired on 2020-01-01"}}},
		{"exception expiring today warns that it expires", `"2026-06-15"`,
			[]wantProblem{{11, 14, "exceptions[0].expires", "exception for team-a/GitRepository legacy expires on 2026-06-15"}}},
		{"exception expiring within 14 days warns", `"2026-06-28"`,
			[]wantProblem{{11, 14, "exceptions[0].expires", "expires on 2026-06-28"}}},
		{"exception expiring in 15 days does not warn", `"2026-06-29"`, nil},
		{"exception expiring in 2030 does not warn", `"2030-12-31"`, nil},
		{"unquoted expiry date within 14 days warns like a quoted one", "2026-06-20",
			[]wantProblem{{11, 14, "exceptions[0].expires", "expires on 2026-06-20"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, exceptionDoc("team-a", "GitRepository", "legacy", "PLAT-1", tt.expires))
			checkProblems(t, "policy.yaml", p.Warnings, tt.want)
		})
	}
}

func TestAmbiguity(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantProblem // nil: the policy loads
	}{
		{
			name: "the same exact pair in two entries is ambiguous",
			yaml: entries(entry("a", "[flux-system]", "[source-controller, helm-controller]"),
				entry("b", "[flux-system]", "[helm-controller]")),
			want: []wantProblem{{9, 18, "identities[1].namespaces[0]",
				`identities "a" and "b" both match namespace "flux-system" / ServiceAccount "helm-controller" ` +
					"at the same specificity; make one of them more specific"}},
		},
		{
			name: "an exact namespace with overlapping ServiceAccount globs is ambiguous",
			yaml: entries(entry("a", "[flux-system]", `["*-controller"]`), entry("b", "[flux-system]", `["source-*"]`)),
			want: []wantProblem{{9, 18, "identities[1].namespaces[0]",
				`namespace "flux-system" / ServiceAccount "*-controller ∩ source-*"`}},
		},
		{
			name: "overlapping namespace globs with the same exact ServiceAccount are ambiguous",
			yaml: entries(entry("a", `["team-*"]`, "[flux]"), entry("b", `["*-a"]`, "[flux]")),
			want: []wantProblem{{9, 18, "identities[1].namespaces[0]", `namespace "team-* ∩ *-a" / ServiceAccount "flux"`}},
		},
		{
			name: "overlapping globs on both sides are ambiguous",
			yaml: entries(entry("a", `["team-*"]`, `["flux-*"]`), entry("b", `["team-a?"]`, `["*-source"]`)),
			want: []wantProblem{{9, 18, "identities[1].namespaces[0]",
				`namespace "team-* ∩ team-a?" / ServiceAccount "flux-* ∩ *-source"`}},
		},
		{
			name: "the conflict is reported at the later entry's overlapping namespace",
			yaml: entries(entry("a", `["team-*"]`, "[flux]"), entry("b", `[apps, "team-*"]`, "[flux]")),
			want: []wantProblem{{9, 24, "identities[1].namespaces[1]", `namespace "team-*" / ServiceAccount "flux"`}},
		},
		{
			name: "every later duplicate of an exact pair is reported",
			yaml: entries(entry("a", "[flux-system]", "[source-controller]"),
				entry("b", "[flux-system]", "[source-controller]"),
				entry("c", "[flux-system]", "[source-controller]")),
			want: []wantProblem{
				{9, 18, "identities[1].namespaces[0]", `identities "a" and "b"`},
				{13, 18, "identities[2].namespaces[0]", `identities "a" and "c"`},
			},
		},
		{
			name: "a pair of entries is reported once however many of their patterns overlap",
			yaml: entries(entry("a", "[flux-system, team-a]", "[source-controller, helm-controller]"),
				entry("b", "[flux-system, team-a]", "[source-controller, helm-controller]")),
			want: []wantProblem{{9, 18, "identities[1].namespaces[0]", `identities "a" and "b"`}},
		},
		{
			name: "three overlapping glob entries are reported pairwise",
			yaml: entries(entry("a", `["team-*"]`, `["*"]`), entry("b", `["*-a"]`, `["flux*"]`),
				entry("c", `["*"]`, `["*-source"]`)),
			want: []wantProblem{
				{9, 18, "identities[1].namespaces[0]", `identities "a" and "b"`},
				{13, 18, "identities[2].namespaces[0]", `identities "a" and "c"`},
				{13, 18, "identities[2].namespaces[0]", `identities "b" and "c"`},
			},
		},
		{
			name: "entries at different specificity ranks do not conflict",
			yaml: entries(entry("a", "[flux-system]", "[source-controller]"), entry("b", "[flux-system]", `["*"]`),
				entry("c", `["flux-*"]`, "[source-controller]"), entry("d", `["*"]`, `["*"]`)),
		},
		{
			name: "non-intersecting namespace globs with the same ServiceAccount do not conflict",
			yaml: entries(entry("a", `["team-a-*"]`, "[flux]"), entry("b", `["team-b-*"]`, "[flux]")),
		},
		{
			name: "namespace globs that overlap with disjoint ServiceAccount globs do not conflict",
			yaml: entries(entry("a", `["team-*"]`, `["flux-*"]`), entry("b", `["*-a"]`, `["helm-*"]`)),
		},
		{
			name: "an exact namespace with disjoint ServiceAccount globs does not conflict",
			yaml: entries(entry("a", "[flux-system]", `["source-*"]`), entry("b", "[flux-system]", `["helm-*"]`)),
		},
		{
			name: "glob namespaces with different exact ServiceAccounts do not conflict",
			yaml: entries(entry("a", `["team-*"]`, "[flux-source]"), entry("b", `["team-*"]`, "[flux-helm]")),
		},
		{
			name: "globs that need a different length do not conflict",
			yaml: entries(entry("a", `["team-?"]`, "[flux]"), entry("b", `["team-??"]`, "[flux]")),
		},
		{
			name: "one entry may list overlapping patterns itself",
			yaml: entries(entry("a", "[flux-system, flux-system, flux-*]", `[source-controller, "source-*", "*"]`)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("policy.yaml", []byte(tt.yaml), testNow)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if p == nil {
					t.Fatal("Parse returned no policy")
				}
				return
			}
			checkProblems(t, "policy.yaml", loadErrorProblems(t, err), tt.want)
		})
	}
}
