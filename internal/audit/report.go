package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteJSON prints the result as one indented JSON document; findings is [] rather than null when there are none.
func WriteJSON(w io.Writer, res Result) error {
	if res.Findings == nil {
		res.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// WriteTable prints one row per violation: namespace, kind, name, mandate, mode, field and the message, which holds
// the fix.
func WriteTable(w io.Writer, res Result) error {
	if res.Incomplete != "" {
		if _, err := fmt.Fprintf(w, "incomplete: %s; %d Flux sources checked until then.\n", res.Incomplete,
			res.Checked); err != nil {
			return err
		}
	}
	if len(res.Findings) == 0 {
		_, err := fmt.Fprintf(w, "No violations in %d Flux sources.\n", res.Checked)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAMESPACE\tKIND\tNAME\tMANDATE\tMODE\tFIELD\tMESSAGE")
	for _, f := range res.Findings {
		for _, v := range f.Violations {
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Namespace, f.Kind, f.Name, v.Mandate, v.Mode,
				v.Field, v.Message)
		}
	}
	return tw.Flush()
}
