package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/policy"
)

// pidFile is where warden serve writes its process ID, inside data_dir: the
// one directory a gateway owns, so two gateways never share it. warden
// reload reads it to find the server to signal.
const pidFile = "warden.pid"

// eventReloadFailed is the audit event of a reload that kept the policy in
// force (an invalid file, a setting that needs a restart, or a store that
// could not record the new version).
const eventReloadFailed = "policy.reload_failed"

// reloadWait bounds how long warden reload waits for the server to say
// whether the new policy is in force.
const reloadWait = 15 * time.Second

// runReload checks the policy file like policy check and, when it is valid,
// sends SIGHUP to the warden serve whose data_dir it names, then waits for
// the audit event that says whether the server put it in force.
func runReload(e *env, args []string) error {
	fs := newFlags(e, "reload", "reload -c warden.yaml")
	cfgPath := fs.String("c", "warden.yaml", "policy file the running gateway was started with")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("reload takes no arguments (got %q)", pos[0])
	}
	cfg, err := policy.Load(*cfgPath)
	if err != nil {
		var list *policy.ErrorList
		if errors.As(err, &list) {
			for _, pe := range *list {
				fmt.Fprintln(e.stderr, pe.Error())
			}
			fmt.Fprintf(e.stderr, "warden: %s: %d error(s); the gateway was not signalled and keeps its policy\n", *cfgPath, len(*list))
			return errPolicyInvalid
		}
		return err
	}
	pid, err := readPIDFile(cfg.DataDir)
	if err != nil {
		return err
	}
	rd, err := openCfgReader(context.Background(), cfg, cfg.DataDir) // store.go: the store the gateway writes
	if err != nil {
		return err
	}
	defer rd.Close()
	var before int64
	if err := rd.DB().QueryRow(`SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&before); err != nil {
		return fmt.Errorf("read the audit log: %w", err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal warden serve (pid %d): %w", pid, err)
	}
	deadline := time.Now().Add(reloadWait)
	for time.Now().Before(deadline) {
		var typ, subject string
		err := rd.DB().QueryRow(`SELECT type, subject FROM audit_events WHERE seq > ? AND actor = 'warden'
			AND (type = ? OR type = ? AND json_extract(data, '$.use') = ?) ORDER BY seq LIMIT 1`,
			before, eventReloadFailed, evidence.EventPolicyLoaded, evidence.UseGateway).Scan(&typ, &subject)
		switch {
		case err == nil && typ == eventReloadFailed:
			return fmt.Errorf("the gateway (pid %d) refused the reload and keeps its policy; its log has the reasons", pid)
		case err == nil && subject == "policy:"+cfg.Version():
			fmt.Fprintf(e.stdout, "policy %s in force (warden serve pid %d)\n", cfg.Version()[:12], pid)
			return nil
		case err == nil:
			// The file changed between this check and the server's.
			fmt.Fprintf(e.stdout, "policy %s in force (warden serve pid %d); the file changed while reloading\n", strings.TrimPrefix(subject, "policy:")[:12], pid)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("signalled warden serve (pid %d), but it did not confirm the reload within %s; see its log", pid, reloadWait)
}

// writePIDFile writes the server's PID to DATA/warden.pid (mode 0600,
// through a temporary file and a rename, so a reader never sees half of
// it) and returns the function that removes it at exit, unless another
// server has replaced it meanwhile.
func writePIDFile(dataDir string) (remove func(), err error) {
	path := filepath.Join(dataDir, pidFile)
	me := strconv.Itoa(os.Getpid()) + "\n"
	tmp, err := os.CreateTemp(dataDir, ".warden.pid-*")
	if err != nil {
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	_, werr := tmp.WriteString(me)
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("write pid file: %w", err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && string(b) == me {
			os.Remove(path)
		}
	}, nil
}

// readPIDFile returns the PID of the warden serve that uses dataDir. A PID
// file left by a gateway that was killed may name a process that is gone,
// or whose number was reused by another program, which SIGHUP could kill:
// so the process must exist and be a "warden serve" (its command line, on
// Linux), or nothing is signalled.
func readPIDFile(dataDir string) (int, error) {
	path := filepath.Join(dataDir, pidFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no running gateway: %s is missing (is warden serve running with data_dir %s?)", path, dataDir)
	}
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s does not hold a process ID", path)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, fmt.Errorf("no running gateway: process %d named by %s is gone", pid, path)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 2 || !strings.Contains(filepath.Base(args[0]), "warden") || args[1] != "serve" {
			return 0, fmt.Errorf("process %d named by %s is not warden serve; not signalled", pid, path)
		}
	}
	return pid, nil
}

// reload reads the policy file again and puts it in force without ending
// the sessions it still entitles. The new policy is recorded as a policy
// version before it takes effect, so every session admitted under it names
// a stored policy. Anything wrong (an invalid file, a setting that only a
// restart can change, a store that cannot record it) keeps the policy in
// force, logs every reason (with file:line for the file's errors) and
// appends a policy.reload_failed event.
func (r *running) reload(ctx context.Context, path string) {
	cfg, err := policy.Load(path)
	if err == nil {
		err = restartOnly(r.cfg, cfg)
	}
	if err == nil {
		err = evidence.RecordPolicy(ctx, r.store, cfg, evidence.UseGateway, time.Time{})
	}
	if err != nil {
		r.reloadFailed(ctx, path, err)
		return
	}
	if cfg.Limits != r.cfg.Limits || cfg.Notify != r.cfg.Notify || cfg.Evidence != r.cfg.Evidence {
		r.log.Warn("limits, notify and evidence take effect at the next restart; the running gateway keeps those it started with")
	}
	r.pol.Store(cfg)
	ended := r.srv.ApplyPolicy(ctx, cfg)
	grants, err := r.jit.Deprovision(ctx)
	if err != nil {
		r.log.Error("grants the new policy no longer allows were not ended yet; the gateway refuses them meanwhile", "err", err)
	}
	r.log.Info("policy reloaded", "sha256", cfg.Version(), "sessions_ended", len(ended), "grants_ended", len(grants))
}

// reloadFailed logs why a reload kept the old policy, one line per
// problem, and records it in the audit chain.
func (r *running) reloadFailed(ctx context.Context, path string, err error) {
	var problems []string
	var list *policy.ErrorList
	if errors.As(err, &list) {
		for _, pe := range *list {
			problems = append(problems, pe.Error())
		}
	} else {
		problems = []string{err.Error()}
	}
	for _, p := range problems {
		r.log.Error("policy reload refused; the policy in force is kept", "error", p)
	}
	if aerr := r.store.Append(ctx, audit.Event{TS: time.Now(), Type: eventReloadFailed, Actor: "warden",
		Subject: "policy:" + r.pol.Load().Version(), Data: map[string]any{"path": path, "errors": problems}}); aerr != nil {
		r.log.Error("audit event not written", "type", eventReloadFailed, "err", aerr)
	}
}

// restartOnly refuses a reload that changes what the running process was
// built around: where it listens and keeps its data, its host key and its
// credential backend. Those need a restart; quietly ignoring them would
// leave the file saying something the gateway does not do.
func restartOnly(old, cur *policy.Config) error {
	for _, c := range []struct {
		key  string
		same bool
	}{
		{"listen", old.Listen == cur.Listen},
		{"data_dir", old.DataDir == cur.DataDir},
		{"host_key", old.HostKey == cur.HostKey},
		{"http_listen", old.HTTPListen == cur.HTTPListen},
		// The HTTP listener's certificate and the base URL of the links
		// and cookies it issues are set up at start; a reload that changed
		// them would be put in force while the listener went on as before.
		{"http_tls", sameTLS(old.HTTPTLS, cur.HTTPTLS)},
		{"http_public_url", old.HTTPPublicURL == cur.HTTPPublicURL},
		{"metrics_token_file", old.MetricsTokenFile == cur.MetricsTokenFile},
		{"credentials", old.Credentials == cur.Credentials},
		{"recordings", old.Recordings == cur.Recordings},
		{"node_id", old.NodeID == cur.NodeID},
		// Their secrets are read at start: a token or client secret
		// rotated by a reload would otherwise go on being accepted.
		{"identity.oidc", sameOIDC(old.Identity.OIDC, cur.Identity.OIDC)},
		{"identity.directories (their names and token files)", sameDirectories(old.Identity.Directories, cur.Identity.Directories)},
	} {
		if !c.same {
			return fmt.Errorf("%s: %s cannot change on reload; restart the gateway to change it", cur.Path, c.key)
		}
	}
	return nil
}

func sameTLS(a, b *policy.HTTPTLS) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func sameOIDC(a, b *policy.OIDC) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// sameDirectories compares the directories by name and token file; their
// tenants may change, as the users' merge reads them from the policy in
// force.
func sameDirectories(a, b []*policy.Directory) bool {
	if len(a) != len(b) {
		return false
	}
	tokens := make(map[string]string, len(a))
	for _, d := range a {
		tokens[d.Name] = d.TokenFile
	}
	for _, d := range b {
		if f, ok := tokens[d.Name]; !ok || f != d.TokenFile {
			return false
		}
	}
	return true
}
