package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at link time by scripts/build.sh:
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=0123abc" ./cmd/sluice
//
// Left empty, they fall back to what the Go toolchain stamped into the binary.
var (
	version string
	commit  string
)

// buildVersion identifies the running binary.
type buildVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, git commit and Go version of this binary",
		Example: "  sluice version\n  sluice version --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := resolveBuild(version, commit, debug.ReadBuildInfo)
			// version takes its own --json (it has no client flags), and
			// encodes compactly: one line, easy to grep in CI logs.
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(b)
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "sluice version %s (commit %s, %s %s)\n",
				b.Version, b.Commit, b.GoVersion, b.Platform)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as a JSON object")
	return cmd
}

// resolveBuild prefers the link-time values, then the build info the Go
// toolchain records (a module version from `go install pkg@version`, the VCS
// revision from a build in a checkout), then "dev" and "unknown".
func resolveBuild(ldVersion, ldCommit string, readBuildInfo func() (*debug.BuildInfo, bool)) buildVersion {
	b := buildVersion{
		Version:   ldVersion,
		Commit:    ldCommit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if info, ok := readBuildInfo(); ok && info != nil {
		// "(devel)" is what the toolchain records for a build from a
		// checkout; it says nothing a user could report.
		if b.Version == "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		if b.Commit == "" {
			b.Commit = vcsCommit(info)
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

// vcsCommit returns the revision stamped by the go command, marked -dirty
// when the work tree had uncommitted changes.
func vcsCommit(info *debug.BuildInfo) string {
	var revision string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision != "" && modified {
		revision += "-dirty"
	}
	return revision
}
