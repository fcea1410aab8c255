package console

import (
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
)

// The sessions list: a GET form of filters over audit.Reader.SearchSessions,
// one page at a time, newest first, with a Next link that carries the
// store's cursor. The viewer's oversight is the query's tenant scope,
// applied in SQL, so a filter can only narrow what they may see.

// endReasons offers the gateway's end reasons in the filter (datalist);
// any other text is accepted too.
var endReasons = []string{"exit", "signal", "client_disconnected", "host_disconnected", "host_unreachable",
	"host_key_mismatch", "credential_failed", "recording_failed", "refused", "grant_expired", "grant_revoked",
	"killed", "shutdown", "internal_error", "host_refused", "policy_changed", "deprovisioned", "interrupted"}

// listView is what page_sessions.html renders.
type listView struct {
	F          listForm
	Error      string // a bad filter or cursor, shown above the (empty) list
	NoScope    bool   // the viewer oversees no tenant
	Rows       []listRow
	NextURL    string
	FirstURL   string // set on pages after the first
	Tenants    []string
	EndReasons []string
}

// listForm is the filters as typed, echoed back into the form.
type listForm struct {
	User, Host, Tenant, Role, Since, Until, EndReason, Command, Output string
	Live                                                               bool
	After                                                              string
}

type listRow struct {
	audit.Session
	Live bool
}

const maxFilterLen = 1024

func (c *Console) sessionsList(w http.ResponseWriter, r *http.Request, v *Viewer) {
	qv := r.URL.Query()
	f := listForm{
		User: qv.Get("user"), Host: qv.Get("host"), Tenant: qv.Get("tenant"), Role: qv.Get("role"),
		Since: qv.Get("since"), Until: qv.Get("until"), EndReason: qv.Get("end_reason"),
		Command: qv.Get("command"), Output: qv.Get("output"), Live: qv.Get("live") == "1",
		After: qv.Get("after"),
	}
	view := listView{F: f, EndReasons: endReasons, Tenants: c.overseenTenants(v)}
	if v.Oversight.None() {
		view.NoScope = true
		c.render(w, http.StatusOK, "sessions", v, "Sessions", view)
		return
	}
	q, err := f.query()
	if err != nil {
		view.Error = err.Error()
		c.badSearch(w, r, v, view)
		return
	}
	if !v.Oversight.All {
		q.Tenants = append([]string{}, v.Oversight.Tenants...) // non-nil: this scope and no other
	}
	live := map[string]bool{}
	if c.d.LiveIDs != nil {
		for _, id := range c.d.LiveIDs() {
			live[id] = true
		}
	}
	if f.Live {
		q.IDs = make([]string, 0, len(live)) // non-nil: none live is an empty list
		for id := range live {
			q.IDs = append(q.IDs, id)
		}
	}
	page, err := c.d.Store.SearchSessions(r.Context(), q)
	if errors.Is(err, audit.ErrInvalid) {
		view.Error = strings.TrimPrefix(err.Error(), "audit: ")
		c.badSearch(w, r, v, view)
		return
	}
	if err != nil {
		c.log.Error("console: search sessions", "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "The sessions could not be listed; the error is in the gateway's log.")
		return
	}
	for _, s := range page.Sessions {
		view.Rows = append(view.Rows, listRow{Session: s, Live: s.EndedAt.IsZero() && live[s.ID]})
	}
	if page.Next != "" {
		view.NextURL = f.url(page.Next)
	}
	if f.After != "" {
		view.FirstURL = f.url("")
	}
	c.render(w, http.StatusOK, "sessions", v, "Sessions", view)
}

// query turns the form into a store query, or says in one line what is
// wrong with it.
func (f listForm) query() (audit.SessionQuery, error) {
	for _, s := range []string{f.User, f.Host, f.Tenant, f.Role, f.EndReason, f.Command, f.Output, f.Since, f.Until} {
		if len(s) > maxFilterLen {
			return audit.SessionQuery{}, errors.New("a filter is longer than 1024 bytes")
		}
	}
	q := audit.SessionQuery{
		User: strings.TrimSpace(f.User), Host: strings.TrimSpace(f.Host), Tenant: strings.TrimSpace(f.Tenant),
		Role: strings.TrimSpace(f.Role), EndReason: strings.TrimSpace(f.EndReason),
		CommandContains: f.Command, OutputContains: strings.TrimSpace(f.Output), After: f.After,
	}
	var err error
	if q.Since, err = parseDay(f.Since, false); err != nil {
		return q, errors.New("since: " + err.Error())
	}
	if q.Until, err = parseDay(f.Until, true); err != nil {
		return q, errors.New("until: " + err.Error())
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, errors.New("since must be before until")
	}
	return q, nil
}

// parseDay reads a date filter, in UTC: a day (2026-12-01), a minute
// (2026-12-01T14:30, what a datetime-local field sends) or RFC 3339. An
// until day means the end of that day, so "since D until D" is day D.
func parseDay(s string, until bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if until {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, errors.New("want a date like 2026-12-01 or a time like 2026-12-01T14:30")
}

// url is this list's address with the same filters and cursor after.
func (f listForm) url(after string) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("user", f.User)
	set("host", f.Host)
	set("tenant", f.Tenant)
	set("role", f.Role)
	set("since", f.Since)
	set("until", f.Until)
	set("end_reason", f.EndReason)
	set("command", f.Command)
	set("output", f.Output)
	if f.Live {
		q.Set("live", "1")
	}
	set("after", after)
	if len(q) == 0 {
		return "/sessions"
	}
	return "/sessions?" + q.Encode()
}

// overseenTenants are the tenant filter's choices: those v oversees.
func (c *Console) overseenTenants(v *Viewer) []string {
	if !v.Oversight.All {
		return v.Oversight.Tenants
	}
	var out []string
	for _, t := range c.d.Policy().Tenants {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}

// badSearch answers a search the list refuses (a bad date, a forged
// cursor, an oversized text) with a 400 that says why in one line, and
// audits it as every refusal is (console.refused, subject "sessions"): a
// run of forged cursors is someone probing the list's query.
func (c *Console) badSearch(w http.ResponseWriter, r *http.Request, v *Viewer, view listView) {
	why := view.Error
	if len(why) > 200 { // the chain keeps why, not a flood of input
		why = strings.ToValidUTF8(why[:200], "") + "..."
	}
	c.refuse(r.Context(), r, v, "sessions", "bad search: "+why)
	c.render(w, http.StatusBadRequest, "sessions", v, "Sessions", view)
}
