package console

import (
	"net/http"
	"sort"
	"time"
)

// /requests: what `ssh gw requests --json` shows the viewer (their own
// requests and those of roles they approve, in tenants they may approve
// in), arranged for deciding: the pending ones they may decide, each with
// the requester's recent history among the requests the viewer sees
// anyway, then their own, then recent decisions with who made them.

// requestJSON is one entry of `requests --json` (jit.Request's form).
type requestJSON struct {
	ID        int64          `json:"id"`
	User      string         `json:"user"`
	Role      string         `json:"role"`
	Tenant    string         `json:"tenant"`
	Reason    string         `json:"reason"`
	Ticket    string         `json:"ticket"`
	Duration  string         `json:"duration"`
	State     string         `json:"state"`
	CreatedAt time.Time      `json:"created_at"`
	DecidedAt time.Time      `json:"decided_at"`
	Approvals []decisionJSON `json:"approvals"`
}

type decisionJSON struct {
	Approver string    `json:"approver"`
	Verdict  string    `json:"decision"`
	Comment  string    `json:"comment"`
	At       time.Time `json:"ts"`
}

// requestView is a request as the page shows it.
type requestView struct {
	requestJSON
	For       string // the duration, short
	Created   string
	Decided   string
	Decisions []decisionView
	// YouDecided is set when the viewer already gave their decision on a
	// request that still waits for another approver (break-glass).
	YouDecided bool
	History    []requestView // the requester's other visible requests, newest first
}

type decisionView struct {
	decisionJSON
	When string
}

type requestsData struct {
	Result  *outcome
	Decide  []requestView // pending, someone else's: approve or deny
	Waiting []requestView // pending, already decided by the viewer
	Mine    []requestView
	Decided []requestView // others' requests that were decided, newest first
}

// historyLen is how many earlier requests of a requester are shown.
const historyLen = 5

// decidedLen is how many past decisions the page lists.
const decidedLen = 25

func (c *Console) requestsPage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	c.showRequests(w, r, v, http.StatusOK, nil)
}

// showRequests renders /requests with status, and the outcome of the
// action that led here, if any.
func (c *Console) showRequests(w http.ResponseWriter, r *http.Request, v *Viewer, status int, res *outcome) {
	var all []requestJSON
	if err := c.runJSON(r.Context(), v, &all, "requests"); err != nil {
		if res != nil {
			// The action's own answer matters more than the listing.
			c.fail(w, r, v, status, res.Line)
			return
		}
		c.failCommand(w, r, v, err, "requests")
		return
	}
	c.render(w, status, "requests", v, "Requests", arrangeRequests(all, v.User, res))
}

// arrangeRequests sorts the viewer's visible requests into the page's
// sections. Every entry comes from the viewer's own listing, so the
// history shown beside a request is only what the viewer may see anyway.
func arrangeRequests(all []requestJSON, viewer string, res *outcome) requestsData {
	sort.SliceStable(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	byUser := map[string][]requestJSON{}
	for _, q := range all {
		byUser[q.User] = append(byUser[q.User], q)
	}
	d := requestsData{Result: res}
	for _, q := range all {
		rv := viewOf(q)
		switch {
		case q.User == viewer:
			d.Mine = append(d.Mine, rv)
		case q.State == "pending":
			for _, h := range byUser[q.User] {
				if h.ID != q.ID && len(rv.History) < historyLen {
					rv.History = append(rv.History, viewOf(h))
				}
			}
			for _, a := range q.Approvals {
				if a.Approver == viewer {
					rv.YouDecided = true
				}
			}
			if rv.YouDecided {
				d.Waiting = append(d.Waiting, rv)
			} else {
				d.Decide = append(d.Decide, rv)
			}
		case len(d.Decided) < decidedLen:
			d.Decided = append(d.Decided, rv)
		}
	}
	return d
}

func viewOf(q requestJSON) requestView {
	rv := requestView{requestJSON: q, For: q.Duration, Created: stamp(q.CreatedAt), Decided: stamp(q.DecidedAt)}
	if dur, err := time.ParseDuration(q.Duration); err == nil {
		rv.For = left(dur)
	}
	for _, a := range q.Approvals {
		rv.Decisions = append(rv.Decisions, decisionView{decisionJSON: a, When: stamp(a.At)})
	}
	return rv
}

// decideRequest runs `approve ID [--comment C]` or `deny ID --reason R` as
// the viewer and shows the requests page with the answer on top. The ID
// and text go to the command as they came; it validates them exactly as
// over SSH.
func (c *Console) decideRequest(verb string) func(w http.ResponseWriter, r *http.Request, v *Viewer) {
	return func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		args := []string{verb, r.PathValue("id")}
		if verb == "approve" {
			if cm := r.PostFormValue("comment"); cm != "" {
				args = append(args, "--comment", cm)
			}
		} else {
			args = append(args, "--reason", r.PostFormValue("reason"))
		}
		out, err := c.run(r.Context(), v, args...)
		if err != nil {
			status, msg := c.refusalStatus(err, verb)
			c.showRequests(w, r, v, status, &outcome{Line: msg})
			return
		}
		c.showRequests(w, r, v, http.StatusOK, &outcome{OK: true, Line: firstLine(string(out))})
	}
}
