package app

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Stamped at link time by the Makefile, the image build and the Dockerfile:
//
//	-ldflags "-X github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app.version=v0.1.0
//	          -X github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app.commit=<sha>"
//
// Unstamped builds fall back to what the Go toolchain recorded (the module version of a `go install ...@v0.1.0`,
// the VCS revision of a build inside a clone).
var (
	version string
	commit  string
)

// BuildInfo says which build is running.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Build returns the running binary's build information.
func Build() BuildInfo {
	b := BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if b.Commit == "" {
			var modified bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					b.Commit = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if b.Commit != "" && modified {
				b.Commit += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// String is the text `version` and `--version` print: one line per field, each ending its line.
func (b BuildInfo) String() string {
	return fmt.Sprintf("flux-identity-webhook %s\ncommit: %s\ngo: %s %s\n", b.Version, b.Commit, b.GoVersion, b.Platform)
}

var buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "fluxidentity_build_info",
	Help: "The running build: 1 for its version, commit and Go version.",
}, []string{"version", "commit", "goversion"})

func init() {
	metrics.Registry.MustRegister(buildInfo)
}

// announceBuild logs the build and exposes it as fluxidentity_build_info; the server calls it first thing.
func announceBuild(log logr.Logger) {
	b := Build()
	buildInfo.Reset()
	buildInfo.WithLabelValues(b.Version, b.Commit, b.GoVersion).Set(1)
	log.Info("flux-identity-webhook", "version", b.Version, "commit", b.Commit, "go", b.GoVersion,
		"platform", b.Platform)
}

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeVersion(cmd.OutOrStdout(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "Output format: text or json.")
	return cmd
}

func writeVersion(w io.Writer, output string) error {
	b := Build()
	switch output {
	case "text":
		_, err := io.WriteString(w, b.String())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	return fmt.Errorf("--output must be text or json, got %q", output)
}
