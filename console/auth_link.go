package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// One-time sign-in links (CONTRACT §7). `ssh GATEWAY console` asks
// IssueLink for a link bound to the SSH identity of that connection: the
// user and the fingerprint of the key it authenticated with. The link is
// https?://BASE/signin/link?token=T, T 256 random bits; console_links keeps
// only SHA-256(T). It works once, within linkTTL.
//
// Opening it is two steps, for two threats:
//
//   - Link scanners and previews (mail filters, chat unfurlers) fetch
//     links before the person does. GET only shows a confirm page and
//     changes nothing; only its POST spends the link.
//   - Login CSRF: an attacker who runs `ssh gw console` themselves could
//     send the victim their own link, or post it from a hostile page, so
//     that the victim works in a console signed in as the attacker. The
//     confirm page names the account and key, and warns to continue only
//     after running the command oneself; and the POST must carry a value
//     derived from a SameSite=Strict cookie that the confirm page set in
//     this browser, so a form posted from another site (which the browser
//     sends without that cookie, or which cannot know its value) is
//     refused without spending the link.
//
// Spending is atomic in the store's single writer: of two browsers racing
// with one link, one signs in and the other is refused as a replay. At that
// moment the link's user must still be in the policy in force and the key
// still theirs (in the policy, or bound to them by `ssh gw login`): a
// leaver's or a replaced key's link is dead. Every refusal (unknown,
// modified, replayed, expired, leaver, foreign form) is an audit event,
// and the person sees one and the same answer for all of them, so a
// guessed token learns nothing about which tokens exist.

const (
	linkTTL      = 5 * time.Minute
	linkPath     = "/signin/link"
	linkCookie   = "warden_link"
	hostLinkCk   = "__Host-warden_link"
	maxFormBytes = 4 << 10
	// linkRefusedMsg is the one answer to every refused link.
	linkRefusedMsg = "This sign-in link is not valid: it is unknown, already used or expired, or your access has changed. " +
		"A link works once, for 5 minutes. Run ssh -p PORT GATEWAY console again for a new one."
)

// ErrNoConsole is IssueLink's error when the HTTP listener does not run.
var ErrNoConsole = errors.New("console: the HTTP listener is not running")

// IssueLink stores a one-time sign-in link for user, bound to the key with
// SHA-256 fingerprint fp that authenticated the SSH connection from
// clientAddr, and returns its URL and expiry. localHost is the address the
// SSH client reached the gateway at (see web.Server.BaseURL). The gateway
// calls it for `ssh GATEWAY console`; the URL is a secret the caller
// prints only to that connection and never logs.
func (c *Console) IssueLink(ctx context.Context, user, fp, clientAddr, localHost string) (string, time.Time, error) {
	base := ""
	if c.d.BaseURL != nil {
		base = c.d.BaseURL(localHost)
	}
	if base == "" {
		return "", time.Time{}, ErrNoConsole
	}
	tok, err := c.randToken(32)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("console: random: %w", err)
	}
	now := c.d.Now().UTC()
	expires := now.Add(linkTTL)
	created, err1 := audit.Time(now)
	until, err2 := audit.Time(expires)
	if err := errors.Join(err1, err2); err != nil {
		return "", time.Time{}, err
	}
	err = c.d.Store.Update(ctx, func(tx *audit.Tx) error {
		// RETURNING, not LastInsertId: the PostgreSQL store's driver has none.
		var id int64
		if err := tx.QueryRow(`INSERT INTO console_links (token_sha256, user, fingerprint, client_addr, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, tokenHash(tok), user, fp, clientAddr, created, until).Scan(&id); err != nil {
			return fmt.Errorf("console: store link: %w", err)
		}
		return tx.Append(audit.Event{TS: now, Type: EventLinkIssued, Actor: user, Subject: fp, Data: map[string]any{
			"link": id, "expires_at": until, "client_addr": clientAddr}})
	})
	if err != nil {
		return "", time.Time{}, err
	}
	return base + linkPath + "?token=" + url.QueryEscape(tok), expires, nil
}

// link is one row of console_links.
type link struct {
	id                   int64
	user, fp, clientAddr string
	created, expires     time.Time
	used                 bool
}

// validToken reports whether tok has the form of a link token (32 bytes
// base64url); anything else is refused as unknown without a lookup.
func validToken(tok string) bool {
	if len(tok) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(tok)
	return err == nil
}

const linkCols = `id, user, fingerprint, COALESCE(client_addr, ''), created_at, expires_at, used_at IS NOT NULL`

func scanLink(row interface{ Scan(...any) error }) (*link, error) {
	var l link
	var created, expires string
	if err := row.Scan(&l.id, &l.user, &l.fp, &l.clientAddr, &created, &expires, &l.used); err != nil {
		return nil, err
	}
	var err error
	if l.created, err = audit.ParseTime(created); err != nil {
		return nil, err
	}
	if l.expires, err = audit.ParseTime(expires); err != nil {
		return nil, err
	}
	return &l, nil
}

// linkByHash reads a link from the read pool; nil when there is none.
func (c *Console) linkByHash(ctx context.Context, hash string) (*link, error) {
	l, err := scanLink(c.d.Store.DB().QueryRowContext(ctx, `SELECT `+linkCols+` FROM console_links WHERE token_sha256 = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return l, err
}

// whyRefused says why l may not sign in now, or "" when it may. Reasons
// go to the audit log, never to the page.
func (c *Console) whyRefused(ctx context.Context, l *link, now time.Time) string {
	switch {
	case l == nil:
		return "unknown link"
	case l.used:
		return "link already used (replay)"
	case !now.Before(l.expires):
		return "link expired"
	case !c.keyStillHeld(ctx, l.user, l.fp):
		return "the link's user or key is no longer in the policy"
	}
	return ""
}

// keyStillHeld reports whether user is in the policy in force and the key
// fp still names them: one of their policy keys, or bound to them by
// single sign-on now.
func (c *Console) keyStillHeld(ctx context.Context, user, fp string) bool {
	u := c.d.Policy().User(user)
	if u == nil {
		return false
	}
	for _, k := range u.Keys {
		if gossh.FingerprintSHA256(k) == fp {
			return true
		}
	}
	if c.d.SignOn != nil {
		if name, ok := c.d.SignOn.BoundUser(ctx, fp); ok && name == user {
			return true
		}
	}
	return false
}

// linkCookieName is the confirm step's cookie (see the file comment).
func (c *Console) linkCookieName() (name, path string) {
	if c.d.Secure {
		return hostLinkCk, "/"
	}
	return linkCookie, linkPath
}

// confirmFor ties the confirm form to this browser's confirm cookie and to
// the link: HMAC-SHA256 keyed by the cookie over the link's token hash.
func confirmFor(cookie, hash string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("warden-link-confirm\x00" + hash))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// linkPage is GET /signin/link: the confirm page, or the refusal. It
// changes no state but the browser's confirm cookie.
func (c *Console) linkPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	ctx := r.Context()
	var l *link
	hash := ""
	if validToken(tok) {
		hash = tokenHash(tok)
		var err error
		if l, err = c.linkByHash(ctx, hash); err != nil {
			c.log.Error("console: read link", "err", err)
			c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not read the sign-in link. Try again in a minute.")
			return
		}
	}
	if why := c.whyRefused(ctx, l, c.d.Now().UTC()); why != "" {
		c.refuseLink(ctx, r, l, why, "page")
		c.fail(w, r, nil, http.StatusForbidden, linkRefusedMsg)
		return
	}
	name, path := c.linkCookieName()
	ck := ""
	if old, err := r.Cookie(name); err == nil && len(old.Value) == 43 {
		ck = old.Value
	} else {
		var err error
		if ck, err = c.randToken(32); err != nil {
			c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not start the sign-in.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: name, Value: ck, Path: path, HttpOnly: true, Secure: c.d.Secure, SameSite: http.SameSiteStrictMode})
	}
	c.render(w, http.StatusOK, "signin_link", nil, "Sign in", map[string]any{
		"Token": tok, "Confirm": confirmFor(ck, hash), "User": l.user, "Fingerprint": l.fp, "ClientAddr": l.clientAddr,
		"Created": l.created.UTC().Format(time.RFC3339), "Expires": l.expires.UTC().Format(time.RFC3339),
	})
}

// linkRedeem is POST /signin/link: it spends the link and starts the
// browser session, or refuses.
func (c *Console) linkRedeem(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		// A refusal like every other refused link: on the record, within
		// the sign-in refusal budget. Nothing is spent: no link was read.
		c.refuseLink(r.Context(), r, nil, "unreadable or oversized form", "confirm")
		c.fail(w, r, nil, http.StatusBadRequest, "The form could not be read.")
		return
	}
	// WithoutCancel: net/http cancels r's context when the client hangs
	// up, and the redeem below (a refusal's event, or the spending of
	// the link) must not be undone by a client that posts and leaves.
	ctx := context.WithoutCancel(r.Context())
	tok := r.PostForm.Get("token")
	if !validToken(tok) {
		c.refuseLink(ctx, r, nil, "unknown link", "confirm")
		c.fail(w, r, nil, http.StatusForbidden, linkRefusedMsg)
		return
	}
	hash := tokenHash(tok)
	name, _ := c.linkCookieName()
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("confirm")), []byte(confirmFor(ck.Value, hash))) != 1 {
		// Not from our confirm page in this browser: a cross-site form
		// (login CSRF) or a stale page. The link stays unspent.
		l, _ := c.linkByHash(ctx, hash)
		c.refuseLink(ctx, r, l, "confirm form not from this browser's sign-in page", "confirm")
		c.fail(w, r, nil, http.StatusForbidden, "This form was not sent from Warden's sign-in page in this browser. Open the link again.")
		return
	}
	// The identity check reads the policy and the sign-in bindings; a
	// link's user and key never change, so it is done before the write
	// and the write decides only unused and unexpired, atomically.
	l, err := c.linkByHash(ctx, hash)
	if err != nil {
		c.log.Error("console: read link", "err", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not read the sign-in link. Try again in a minute.")
		return
	}
	holds := l != nil && c.keyStillHeld(ctx, l.user, l.fp)
	stok, sid, err := c.sessionTokens()
	if err != nil {
		c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not start the sign-in.")
		return
	}
	now := c.d.Now().UTC()
	ua := cleanAgent(r.UserAgent())
	var refusedWhy string
	var refusedLink *link
	err = c.d.Store.Update(ctx, func(tx *audit.Tx) error {
		refusedWhy, refusedLink = "", nil
		cur, err := scanLink(tx.QueryRow(`SELECT `+linkCols+` FROM console_links WHERE token_sha256 = ?`, hash))
		if errors.Is(err, sql.ErrNoRows) {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
		why := ""
		switch {
		case cur == nil:
			why = "unknown link"
		case cur.used:
			why = "link already used (replay)"
		case !now.Before(cur.expires):
			why = "link expired"
		case !holds:
			why = "the link's user or key is no longer in the policy"
		}
		ts, err := audit.Time(now)
		if err != nil {
			return err
		}
		if cur != nil && !cur.used {
			// Spent by this attempt whatever its outcome, so that a
			// leaver's link cannot come back to life if the key does.
			if _, err := tx.Exec(`UPDATE console_links SET used_at = ? WHERE id = ? AND used_at IS NULL`, ts, cur.id); err != nil {
				return err
			}
		}
		if why != "" {
			refusedWhy, refusedLink = why, cur
			if !c.auth.refusals.allow(now) {
				return nil // counted; see refusalBudget
			}
			e := refusalEvent(now, r, cur, why, "confirm")
			if n := c.auth.refusals.takeSuppressed(); n > 0 {
				e.Data["suppressed_before"] = n
			}
			return tx.Append(e)
		}
		return c.insertSession(tx, sessionStart{user: cur.user, method: MethodLink, clientAddr: r.RemoteAddr, userAgent: ua,
			linkID: cur.id, fingerprint: cur.fp}, stok, sid, now)
	})
	if err != nil {
		c.log.Error("console: redeem link", "err", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not complete the sign-in. Try again in a minute.")
		return
	}
	if refusedWhy != "" {
		c.log.Info("console sign-in refused", "reason", refusedWhy, "user", userOf(refusedLink), "client_addr", r.RemoteAddr)
		c.fail(w, r, nil, http.StatusForbidden, linkRefusedMsg)
		return
	}
	c.log.Info("console sign-in", "user", l.user, "method", MethodLink, "session", sid, "client_addr", r.RemoteAddr)
	c.setSessionCookie(w, stok)
	lname, lpath := c.linkCookieName()
	http.SetCookie(w, &http.Cookie{Name: lname, Value: "", Path: lpath, MaxAge: -1, HttpOnly: true, Secure: c.d.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func userOf(l *link) string {
	if l == nil {
		return ""
	}
	return l.user
}

// refusalEvent is the audit event of a refused link. It names the link by
// its row (never by its token) when the link exists.
func refusalEvent(now time.Time, r *http.Request, l *link, why, step string) audit.Event {
	e := audit.Event{TS: now, Type: EventSignInRefused, Data: map[string]any{
		"method": MethodLink, "reason": why, "step": step, "client_addr": r.RemoteAddr, "user_agent": cleanAgent(r.UserAgent())}}
	if l != nil {
		e.Actor, e.Subject = l.user, l.fp
		e.Data["link"] = l.id
	}
	return e
}

// refuseLink records a refused link outside the redeem transaction.
func (c *Console) refuseLink(ctx context.Context, r *http.Request, l *link, why, step string) {
	c.log.Info("console sign-in refused", "reason", why, "user", userOf(l), "client_addr", r.RemoteAddr)
	now := c.d.Now().UTC()
	if !c.auth.refusals.allow(now) {
		return // counted; the next allowed event says how many were left out
	}
	e := refusalEvent(now, r, l, why, step)
	if n := c.auth.refusals.takeSuppressed(); n > 0 {
		e.Data["suppressed_before"] = n
	}
	if err := c.d.Store.Append(context.WithoutCancel(ctx), e); err != nil {
		c.log.Error("console: audit event not written", "type", e.Type, "err", err)
	}
}

// cleanAgent is the User-Agent as stored and shown: cleaned of controls
// and cut to 200 bytes.
func cleanAgent(ua string) string {
	ua = Clean(ua)
	if len(ua) > 200 {
		ua = strings.ToValidUTF8(ua[:200], "")
	}
	return ua
}
