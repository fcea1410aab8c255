package cli

import (
	"context"
	"fmt"
	"strings"
)

const auditSynopsis = "audit verify [-c warden.yaml | --data DIR] [--anchor HASH]"

func runAudit(e *env, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: warden "+auditSynopsis)
			return nil
		}
		return usageError("usage: warden " + auditSynopsis)
	}
	fs := newFlags(e, "audit verify", auditSynopsis)
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data); alone, a SQLite store there")
	cfgPath := fs.String("c", "", "policy whose store (store.driver) and recordings section say what to verify (default: ./warden.yaml when present and --data is not given)")
	anchor := fs.String("anchor", "", "a chain head kept elsewhere (e.g. audit_chain_head of an evidence packet): fail unless the chain still holds it")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("audit verify takes no arguments (got %q)", pos[0])
	}
	recs, dir, err := cliRecordings(*cfgPath, *data)
	if err != nil {
		return err
	}
	r, _, err := openStoreReader(*cfgPath, *data) // store.go
	if err != nil {
		return err
	}
	defer r.Close()
	ctx := context.Background()
	if recs != nil {
		r.SetRecordings(recs)
	}
	rep, err := r.Verify(ctx, dir)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		// Problems quote stored text (paths, IDs): escaped like any listing.
		return fmt.Errorf("audit verify failed at %s (%d problem(s) in all)", q(rep.Problems[0].String()), len(rep.Problems))
	}
	anchored := ""
	if *anchor != "" {
		seq, err := r.AnchorSeq(ctx, strings.TrimSpace(*anchor))
		if err != nil {
			return err
		}
		anchored = fmt.Sprintf("; anchor found at seq %d", seq)
	}
	fmt.Fprintf(e.stdout, "ok: %d audit events chained; %d ended sessions, their %d command rows and %d recordings match the chain%s\n",
		rep.Events, rep.Sessions, rep.Commands, rep.Recordings, anchored)
	fmt.Fprintf(e.stdout, "ok: %d requests with their decisions and %d grants match the chain\n", rep.Requests, rep.Grants)
	if rep.Unsealed > 0 {
		fmt.Fprintf(e.stdout, "note: %d sessions ended before the chain sealed commands; their recordings were checked against the sessions table only\n", rep.Unsealed)
	}
	if len(rep.Live) > 0 {
		ids := make([]string, len(rep.Live))
		for i, id := range rep.Live {
			ids[i] = q(id)
		}
		fmt.Fprintf(e.stdout, "live: %d sessions not ended yet, covered once they end: %s\n", len(ids), strings.Join(ids, " "))
	}
	if rep.Head != "" {
		fmt.Fprintf(e.stdout, "head: seq %d %s (keep a copy elsewhere; compare with --anchor)\n", rep.HeadSeq, rep.Head)
	}
	return nil
}
