package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps is what the console reads and acts through. Store, DataDir and
// Policy are required; the others switch pages on when set.
type Deps struct {
	Store   *audit.Store
	DataDir string // recordings are relative to it
	// Recordings, when set (recordings.store s3), is where recordings are
	// read; nil: the files under DataDir.
	Recordings recstore.Store
	// Policy returns the policy in force (the gateway's merged policy,
	// directory users included). It is called on every request, so a
	// change reaches the next click.
	Policy func() *policy.Config
	// Commands runs the SSH command interface for a viewer (requests,
	// approve, deny, grants, exceptions, kill): the console decides
	// nothing the SSH interface would not.
	Commands Commands
	// Live watches and kills live sessions (live.go); nil: no live view.
	Live Live
	// LiveIDs returns the IDs of the gateway's live sessions (the
	// sessions list's "live only", the session page's live state); nil
	// means none are live. gateway.Server.LiveSessionIDs implements it.
	LiveIDs func() []string
	// Secure is true when the listener serves TLS: cookies get Secure
	// and the __Host- prefix.
	Secure bool
	// BaseURL returns the base of the links `ssh GATEWAY console` prints
	// for an SSH connection that reached the gateway at host
	// (web.Server.BaseURL); nil or "" means no link can be issued.
	BaseURL func(host string) string
	// SSHAddr returns the gateway's SSH address: the bound listener's
	// once it serves, else listen as configured (e.g. ":2222"). The
	// sign-in page names its port (and its host, when it names one) in
	// the `ssh ... console` it tells people to run. nil or "" leaves
	// PORT and GATEWAY as placeholders.
	SSHAddr func() string
	// SignOn answers which user a key is bound to by `ssh GATEWAY login`
	// (sso.Service); nil means only policy keys hold links. OIDC, when
	// set, is the console's own sign-in through the identity provider.
	SignOn SignOn
	OIDC   OIDC
	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader // nil means crypto/rand
}

// Commands runs one line of the SSH command interface (CONTRACT §3) as
// user, as if that user had typed `ssh gw ARGS...`, and returns what it
// printed on stdout. A refusal is an error whose text is the line the SSH
// user would have seen on stderr. gateway.Server implements it.
type Commands interface {
	RunCommand(ctx context.Context, user string, args []string) ([]byte, error)
}

// Console serves the console's pages. Create it with New and Mount it.
type Console struct {
	d     Deps
	log   *slog.Logger
	pages map[string]*template.Template
	auth  *authState // auth.go
}

// New returns a Console. It fails only when a template does not parse,
// which a test catches.
func New(d Deps) (*Console, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	c := &Console{d: d, log: d.Logger}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	c.auth = newAuthState(c)
	return c, nil
}

// Mux is where the console mounts its routes (web.Server satisfies it).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount adds the console's routes to m.
func (c *Console) Mount(m Mux) {
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	c.mountAuth(m)     // auth.go
	c.mountDecide(m)   // decide.go
	c.mountSessions(m) // sessions.go
	c.mountLive(m)     // live.go
	m.Handle("GET /{$}", c.viewer(func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		http.Redirect(w, r, "/sessions", http.StatusSeeOther)
	}))
}

// staticHandler serves the embedded files. They change only with the
// binary, so a browser may cache them for a day.
func staticHandler(fsys fs.FS) http.Handler {
	h := http.FileServer(http.FS(fsys))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		h.ServeHTTP(w, r)
	})
}

// parsePages builds one template set per page: the shared layout and
// partials (templates/layout*.html) plus templates/page_NAME.html, which
// defines "title" and "content". A page is rendered by its NAME.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/page_*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(path.Base(f), "page_"), ".html")
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", f, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// funcs are the helpers templates may call. html/template escapes what
// they return for its context; Clean also removes the terminal and bidi
// controls a session's data may carry (a host name, a command line).
var funcs = template.FuncMap{
	"clean": Clean,
	"since": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
}

// pageData is what the layout receives: the page's own data under Data.
type pageData struct {
	Viewer *Viewer
	Title  string
	Data   any
}

// render writes the page name with data and status. It renders into a
// buffer first so that a template error is a clean 500, never half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, v *Viewer, title string, data any) {
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("console: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", pageData{Viewer: v, Title: title, Data: data}); err != nil {
		c.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders the one-line error page with status; msg is shown to the
// person, so it must not carry internals.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, v *Viewer, status int, msg string) {
	c.render(w, status, "error", v, http.StatusText(status), msg)
}

// Clean makes s safe to show on a person's screen: C0 and C1 controls,
// DEL and the Unicode bidi controls become visible escapes (\x1b,
// \u202e), so a host name or command cannot reorder or hide text.
func Clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		case r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
			fmt.Fprintf(&b, "\\u%04x", r)
		case r == 0xfffd:
			b.WriteString("\\ufffd")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
