package exceptions

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
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

// safe keeps a value on one table row and harmless to a terminal. Values are
// validated when stored, but the database file can be edited by anyone who
// can write it, so anything unprintable (or a tab, which would shift the
// columns) is shown quoted and escaped.
func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.QuoteToGraphic(s)
	}
	return s
}
