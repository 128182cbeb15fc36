package doctor

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteText prints the report for reading: notes, one table row per finding, then one fix line per finding, naming
// the object it fixes, in the same order. (The fix is per finding even where two read alike: a mandate's message is
// the same for a thousand GitRepositories, but each of them must be edited.)
func WriteText(w io.Writer, r Report) error {
	for _, n := range r.Notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return err
		}
	}
	if r.Incomplete != "" {
		if _, err := fmt.Fprintln(w, "incomplete: "+r.Incomplete+"; what follows is what was found until then"); err != nil {
			return err
		}
	}
	if len(r.Findings) == 0 {
		msg := "No problems found."
		if r.Incomplete != "" {
			msg = "No problems found in what was read."
		}
		_, err := fmt.Fprintln(w, msg)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "CHECK\tOBJECT\tIDENTITY\tPROBLEM")
	for _, f := range r.Findings {
		_, _ = fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\n", f.Check, f.Namespace, f.Name, f.Identity, f.Problem)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w, "\nTo fix:"); err != nil {
		return err
	}
	for _, f := range r.Findings {
		if _, err := fmt.Fprintf(w, "  %s/%s: %s\n", f.Namespace, f.Name, f.Fix); err != nil {
			return err
		}
	}
	return nil
}
