package fluxobjects

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fluxidentity/flux-identity-webhook/internal/fluxauth"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the credential table in README.md from the model")

// mandateSays is what a mandate makes of each class of use, as Evaluate decides it.
var mandateSays = map[fluxauth.Class]string{
	fluxauth.Ignored:             "—",
	fluxauth.StoredSecret:        "refused (an exception excuses it)",
	fluxauth.InlineCredential:    "refused (an exception excuses it)",
	fluxauth.PullSecrets:         "refused (an exception excuses it)",
	fluxauth.AppKey:              "refused unless `allowProviders: [github]`",
	fluxauth.TLSMaterial:         "refused with `cover: [tlsClientKeys]`",
	fluxauth.ProxyLogin:          "refused with `cover: [proxyCredentials]`",
	fluxauth.ObjectIdentity:      "the ServiceAccount must be mapped to this cloud",
	fluxauth.ControllerIdentity:  "refused outside `flux.namespaces` unless `allowControllerIdentity`",
	fluxauth.SOPSKeys:            "refused with `cover: [sopsPrivateKeys]`",
	fluxauth.ReceiverToken:       "refused with `cover: [receiverTokens]`",
	fluxauth.BorrowedCredentials: "refused (an exception excuses it)",
	fluxauth.BorrowedIdentity:    "refused; nothing excuses it",
	fluxauth.KMSIdentity:         "a warning unless the ServiceAccount is mapped (a Vault role needs no cloud identity)",
	fluxauth.ConfigMapIdentity:   "admitted; `doctor` and `audit` check the ConfigMap's ServiceAccount",
	fluxauth.NoAlternative:       "admitted; `audit` lists it",
}

// lockdownSays is the policy field that declares a controller's lockdown flag.
var lockdownSays = map[fluxauth.Lockdown]string{
	fluxauth.LockdownServiceAccount: "; with `flux.defaultServiceAccount` that ServiceAccount must be mapped",
	fluxauth.LockdownDecryption:     "; with `flux.defaultDecryptionServiceAccount` that ServiceAccount is checked instead",
}

// credentialTable renders fluxauth.Model as the README's table.
func credentialTable() string {
	var b strings.Builder
	b.WriteString("| kind | variant | provider | field | what Flux does | a mandate |\n|---|---|---|---|---|---|\n")
	any := func(s string) string {
		if s == fluxauth.AnyProvider {
			return "any"
		}
		return s
	}
	for _, r := range fluxauth.Model {
		says := mandateSays[r.Class]
		switch {
		case r.Class == fluxauth.ControllerIdentity && r.Lockdown != "":
			says += lockdownSays[r.Lockdown]
		case r.Class == fluxauth.ObjectIdentity && r.PullSecretsWin:
			says += ", without imagePullSecrets"
		}
		b.WriteString("| " + strings.Join([]string{r.Kind, any(r.Variant), any(r.Provider), "`" + r.Field + "`",
			r.Reads, says}, " | ") + " |\n")
	}
	return b.String()
}

const (
	tableBegin = "<!-- credential-model:begin (generated from internal/fluxauth/model.go: go test ./webhook/fluxobjects -run TestREADME -update-readme) -->\n"
	tableEnd   = "<!-- credential-model:end -->"
)

// TestREADMECredentialTableMatchesTheModel keeps the README's credential table equal to the code's.
func TestREADMECredentialTableMatchesTheModel(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	begin, end := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %q ... %q block", strings.TrimSpace(tableBegin), tableEnd)
	}
	want := credentialTable()
	got := readme[begin+len(tableBegin) : end]
	if got == want {
		return
	}
	if *updateREADME {
		if err := os.WriteFile(path, []byte(readme[:begin+len(tableBegin)]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's credential table differs from fluxauth.Model; run go test ./webhook/fluxobjects -run TestREADME -update-readme\nwant:\n%s", want)
}
