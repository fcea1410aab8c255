package cli

import (
	"context"
	"fmt"

	"github.com/warden-gw/warden/audit"
)

func runAudit(e *env, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: warden audit verify [--data DIR]")
			return nil
		}
		return usageError("usage: warden audit verify [--data DIR]")
	}
	fs := newFlags(e, "audit verify", "audit verify [--data DIR]")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("audit verify takes no arguments (got %q)", pos[0])
	}
	dir, err := dataDir(*data)
	if err != nil {
		return err
	}
	rep, err := audit.Verify(context.Background(), dir)
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		p := rep.Problems[0]
		where := p.File
		if where == "" {
			where = fmt.Sprintf("event seq %d", p.Seq)
		}
		return fmt.Errorf("audit verify failed at %s: %s (%d problem(s) in all)", where, p.Msg, len(rep.Problems))
	}
	fmt.Fprintf(e.stdout, "ok: %d audit events chained, %d recordings match their SHA-256\n", rep.Events, rep.Recordings)
	return nil
}
