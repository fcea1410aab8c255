package scim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// Prefix is where the handler is mounted.
const Prefix = "/scim/v2"

// maxBody bounds a request body. 10,000 members in one PATCH, as Entra and
// Okta send them, take about half of it; a 1 MB body is refused.
const maxBody = 960_000

// Options configures the handler.
type Options struct {
	// Policy returns the YAML policy in force: identity.directories names
	// the directories and their token files.
	Policy func() *policy.Config
	// Store receives an audit event for every refused request from a
	// known directory; nil records none.
	Store *audit.Store
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves /scim/v2.
type Handler struct {
	dir    *identity.Directory
	opt    Options
	log    *slog.Logger
	tokens []token
	mux    *http.ServeMux
	unauth unauthorized
}

// unauthorized decides which refused (401) requests become audit events:
// the first from each source address in a minute. A client guessing tokens
// is on record without growing the chain by one event per guess; the rest
// go to the log.
type unauthorized struct {
	mu   sync.Mutex
	seen map[string]time.Time // source address -> its last recorded refusal
}

// first reports whether src's refusal at now is the first in a minute.
func (u *unauthorized) first(src string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil || len(u.seen) > 10000 {
		u.seen = map[string]time.Time{} // bounded memory: forget, and record again
	}
	if last, ok := u.seen[src]; ok && now.Sub(last) < time.Minute {
		return false
	}
	u.seen[src] = now
	return true
}

// token is one directory's bearer token, kept as its SHA-256 so that every
// comparison has the same length and takes the same time.
type token struct {
	directory string
	sum       [32]byte
}

// NewHandler reads every directory's token file and returns the handler.
// A directory whose token file is missing or empty is an error: a
// gateway must not start with a directory anyone can impersonate.
func NewHandler(dir *identity.Directory, opt Options) (*Handler, error) {
	if dir == nil || opt.Policy == nil {
		return nil, errors.New("scim: need a directory and a policy")
	}
	h := &Handler{dir: dir, opt: opt, log: opt.Logger, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.Default()
	}
	for _, d := range opt.Policy().Identity.Directories {
		b, err := os.ReadFile(d.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("scim: directory %s: token: %w", d.Name, err)
		}
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return nil, fmt.Errorf("scim: directory %s: token in %s is shorter than 16 characters", d.Name, d.TokenFile)
		}
		sum := sha256.Sum256([]byte(t))
		for _, o := range h.tokens {
			// Requests are told apart by their token alone: with one
			// token in two files, each directory's IdP could provision,
			// read and remove the other's people (another tenant's).
			if o.sum == sum {
				return nil, fmt.Errorf("scim: directories %s and %s have the same token; each directory needs its own", o.directory, d.Name)
			}
		}
		h.tokens = append(h.tokens, token{directory: d.Name, sum: sum})
	}
	h.routes()
	return h, nil
}

func (h *Handler) routes() {
	h.mux.HandleFunc("GET "+Prefix+"/ServiceProviderConfig", h.wrap(h.serviceProviderConfig))
	h.mux.HandleFunc("GET "+Prefix+"/Schemas", h.wrap(h.schemas))
	h.mux.HandleFunc("GET "+Prefix+"/ResourceTypes", h.wrap(h.resourceTypes))
	h.mux.HandleFunc("GET "+Prefix+"/Users", h.wrap(h.listUsers))
	h.mux.HandleFunc("POST "+Prefix+"/Users", h.wrap(h.createUser))
	h.mux.HandleFunc("GET "+Prefix+"/Users/{id}", h.wrap(h.getUser))
	h.mux.HandleFunc("PUT "+Prefix+"/Users/{id}", h.wrap(h.replaceUser))
	h.mux.HandleFunc("PATCH "+Prefix+"/Users/{id}", h.wrap(h.patchUser))
	h.mux.HandleFunc("DELETE "+Prefix+"/Users/{id}", h.wrap(h.deleteUser))
	h.mux.HandleFunc("GET "+Prefix+"/Groups", h.wrap(h.listGroups))
	h.mux.HandleFunc("POST "+Prefix+"/Groups", h.wrap(h.createGroup))
	h.mux.HandleFunc("GET "+Prefix+"/Groups/{id}", h.wrap(h.getGroup))
	h.mux.HandleFunc("PUT "+Prefix+"/Groups/{id}", h.wrap(h.replaceGroup))
	h.mux.HandleFunc("PATCH "+Prefix+"/Groups/{id}", h.wrap(h.patchGroup))
	h.mux.HandleFunc("DELETE "+Prefix+"/Groups/{id}", h.wrap(h.deleteGroup))
	h.mux.HandleFunc(Prefix+"/", h.wrap(func(*request) error { return errNotFound("no such endpoint") }))
}

// ServeHTTP authenticates the caller before anything else is looked at.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dir := h.authenticate(r)
	if dir == "" {
		h.log.Warn("scim: request refused: bad or missing bearer token", "client", r.RemoteAddr, "path", r.URL.Path)
		src, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			src = r.RemoteAddr
		}
		if h.opt.Store != nil && h.unauth.first(src, time.Now()) {
			ev := audit.Event{Type: "scim.unauthorized", Subject: "client:" + truncate(src, 64),
				Data: map[string]any{"method": r.Method, "path": truncate(r.URL.Path, 200)}}
			// WithoutCancel: net/http cancels r's context when the
			// client hangs up, and a refusal must be on record even
			// for a client that sent its guess and left.
			if err := h.opt.Store.Append(context.WithoutCancel(r.Context()), ev); err != nil {
				h.log.Error("scim: audit refused request", "err", err)
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden-scim"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Detail: "missing or unknown bearer token"})
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), dirKey{}, dir)))
}

// authenticate returns the directory whose token the request carries, or
// "". Every configured token is compared, in constant time, whether or
// not an earlier one matched, so timing tells nothing about which tokens
// exist or how much of one was guessed.
func (h *Handler) authenticate(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := ""
	for _, t := range h.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			found = t.directory
		}
	}
	return found
}

// dirKey carries the authenticated directory in the request's context.
type dirKey struct{}

// request is one authenticated call.
type request struct {
	w   http.ResponseWriter
	r   *http.Request
	dir string
}

// body reads and decodes the JSON body into v, refusing what is too
// large, not JSON, or followed by more data.
func (q *request) body(v any) error {
	b, err := io.ReadAll(io.LimitReader(q.r.Body, maxBody+1))
	if err != nil {
		return errSyntax("cannot read the request body")
	}
	if len(b) > maxBody {
		return &Error{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errSyntax("request body is not valid JSON: " + jsonProblem(err))
	}
	if dec.More() {
		return errSyntax("request body holds more than one JSON value")
	}
	return nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s has the wrong type", te.Field)
	}
	return "malformed"
}

func (q *request) write(status int, v any) error {
	q.w.Header().Set("Content-Type", "application/scim+json")
	q.w.WriteHeader(status)
	return json.NewEncoder(q.w).Encode(v)
}

// wrap turns a handler that returns an error into an http.HandlerFunc: a
// SCIM *Error goes to the client as is, an identity refusal becomes its
// status, anything else is a 500 whose cause stays in the log.
func (h *Handler) wrap(fn func(*request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dir, _ := r.Context().Value(dirKey{}).(string)
		if dir == "" { // not through ServeHTTP: never serve unauthenticated
			writeError(w, &Error{Status: http.StatusUnauthorized, Detail: "missing or unknown bearer token"})
			return
		}
		q := &request{w: w, r: r, dir: dir}
		err := fn(q)
		if err == nil {
			return
		}
		se := h.scimError(err)
		if se.Status >= 500 {
			h.log.Error("scim: request failed", "directory", q.dir, "method", r.Method, "path", r.URL.Path, "err", err)
		}
		h.refused(q, se)
		writeError(w, se)
	}
}

func (h *Handler) scimError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	var ie *identity.Error
	if errors.As(err, &ie) {
		switch {
		case errors.Is(err, identity.ErrNotFound):
			return errNotFound(ie.Msg)
		case errors.Is(err, identity.ErrConflict):
			return &Error{Status: http.StatusConflict, Type: "uniqueness", Detail: ie.Msg}
		default:
			return errValue(ie.Msg)
		}
	}
	return &Error{Status: http.StatusInternalServerError, Detail: "internal error; nothing was changed"}
}

// refused records a refused request in the audit chain, with the
// directory as actor: an IdP's failed provisioning is evidence too.
func (h *Handler) refused(q *request, se *Error) {
	if h.opt.Store == nil || se.Status >= 500 {
		return
	}
	ev := audit.Event{Type: "scim.refused", Actor: "scim:" + q.dir, Subject: q.r.Method + " " + truncate(q.r.URL.Path, 200),
		Data: map[string]any{"status": se.Status, "scim_type": se.Type, "detail": truncate(se.Detail, 300)}}
	// WithoutCancel, as for scim.unauthorized: the client may be gone.
	if err := h.opt.Store.Append(context.WithoutCancel(q.r.Context()), ev); err != nil {
		h.log.Error("scim: audit refused request", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Error is a SCIM error response (RFC 7644 §3.12).
type Error struct {
	Status int
	Type   string // scimType: invalidFilter, invalidSyntax, invalidValue, uniqueness, ...
	Detail string
}

func (e *Error) Error() string { return fmt.Sprintf("scim %d %s: %s", e.Status, e.Type, e.Detail) }

func writeError(w http.ResponseWriter, e *Error) {
	body := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  fmt.Sprint(e.Status),
		"detail":  "warden: " + e.Detail,
	}
	if e.Type != "" {
		body["scimType"] = e.Type
	}
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}

func errSyntax(msg string) *Error { return &Error{Status: 400, Type: "invalidSyntax", Detail: msg} }
func errValue(msg string) *Error  { return &Error{Status: 400, Type: "invalidValue", Detail: msg} }
func errFilter(msg string) *Error { return &Error{Status: 400, Type: "invalidFilter", Detail: msg} }
func errPath(msg string) *Error   { return &Error{Status: 400, Type: "invalidPath", Detail: msg} }
func errNotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Detail: msg}
}
