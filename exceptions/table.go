package exceptions

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/recorder"
)

// WriteTable prints list as the aligned table of "warden exceptions" and of
// the SSH command "exceptions". The EXPIRED column says "EXPIRED" for every
// open entry whose expiry has passed, so an expired entry cannot be
// overlooked in any listing.
func WriteTable(w io.Writer, list []Exception) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTENANT\tOWNER\tEXPIRES\tEXPIRED\tSTATUS\tREASON\tCONTROLS")
	for _, e := range list {
		expired := "-"
		if e.Expired {
			expired = "EXPIRED"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, safe(e.Tenant), safe(e.Owner),
			e.ExpiresAt.UTC().Format(time.RFC3339), expired, e.Status(), safe(e.Reason), safe(e.Controls))
	}
	return tw.Flush()
}

// safe keeps a value on one table row and harmless to a terminal: it is
// recorder.Quote, the one escaping of values shown to people (C0, C1, bytes
// that are not UTF-8, bidi controls). Values are validated when stored, but
// the database file can be edited by anyone who can write it.
func safe(s string) string { return recorder.Quote(s) }
