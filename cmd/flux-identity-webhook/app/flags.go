package app

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagSection is a named group of flags; --help prints one section per group so a long flag list stays readable.
type flagSection struct {
	title string
	flags *pflag.FlagSet
}

// addSections adds every section's flags to cmd and replaces its usage template so they print grouped.
func addSections(cmd *cobra.Command, sections ...flagSection) {
	for _, s := range sections {
		cmd.Flags().AddFlagSet(s.flags)
	}
	cmd.SetUsageFunc(func(c *cobra.Command) error {
		var b strings.Builder
		fmt.Fprintf(&b, "Usage:\n  %s\n", c.UseLine())
		if c.Example != "" {
			fmt.Fprintf(&b, "\nExamples:\n%s\n", c.Example)
		}
		for _, s := range sections {
			fmt.Fprintf(&b, "\n%s flags:\n%s", s.title, s.flags.FlagUsagesWrapped(110))
		}
		fmt.Fprintf(&b, "\nGlobal flags:\n  -h, --help   help for %s\n", c.Name())
		_, err := fmt.Fprint(c.OutOrStderr(), b.String())
		return err
	})
}
