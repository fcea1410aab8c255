package evidence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

// Schedules that RunMonthly accepts (the evidence.schedule policy key).
const (
	ScheduleMonthly = "monthly"
	ScheduleOff     = "off"
)

// Notification types that RunMonthly sends.
const (
	EventPacket       = "evidence.packet"        // a packet was written; lists its overdue items
	EventPacketFailed = "evidence.packet_failed" // a packet could not be written
)

// Event is one notification. Text is one Slack-compatible message; Fields
// carry the same facts for machines.
type Event struct {
	Type   string
	Text   string
	Fields map[string]any
}

// Notifier delivers notifications; the gateway adapts its webhook to it.
// Notify should not block for long: RunMonthly waits for it.
type Notifier interface {
	Notify(ctx context.Context, ev Event) error
}

// ScheduleOptions configures RunMonthly.
type ScheduleOptions struct {
	// Schedule is ScheduleMonthly to run, or "" or ScheduleOff to return
	// at once; anything else is an error.
	Schedule   string
	DataDir    string
	Policy     *policy.Config // its tenants get packets; it judges them
	StaleAfter time.Duration  // 0 means DefaultStaleAfter
	Notifier   Notifier       // nil sends nothing
	Keys       *Keys          // the tenants' signing keys; nil means DATA/evidence_ed25519
	// Store, when set, records each packet written as an audit event
	// (type evidence.packet, with the manifest's SHA-256), anchoring the
	// packet in the hash chain.
	Store *audit.Store
	// Backend is the store's database, which the packets are built from
	// (config store.driver); the zero value is DATA/warden.db. A gateway
	// on PostgreSQL must pass it: otherwise the packets would be built
	// from a SQLite file left in the data directory, or fail.
	Backend audit.Backend
	// Recordings is where recordings are read (recordings.store); nil
	// means the files under DataDir.
	Recordings recstore.Store
	// Now and After are the clock and timer; nil means time.Now and
	// time.After. Tests pass a fake pair.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Logf reports failures; nil discards them (they are also notified).
	Logf func(format string, args ...any)
}

// RunMonthly writes, on the 1st of every month at 00:00 UTC, the previous
// month's packet for every tenant of the policy into
// DATA/evidence/TENANT/YYYY-MM, and notifies each tenant's overdue items.
// At start it first writes any of last month's packets that are missing, so
// a gateway that was down on the 1st catches up; a packet already on disk
// is never rewritten nor notified again. It returns nil when ctx ends, and
// an error only for a schedule it does not know.
func RunMonthly(ctx context.Context, opt ScheduleOptions) error {
	switch opt.Schedule {
	case "", ScheduleOff:
		return nil
	case ScheduleMonthly:
	default:
		return fmt.Errorf("evidence: unknown schedule %q (want %s or %s)", opt.Schedule, ScheduleMonthly, ScheduleOff)
	}
	if opt.Policy == nil || opt.DataDir == "" {
		return errors.New("evidence: schedule: need a policy and a data directory")
	}
	now, after := opt.Now, opt.After
	if now == nil {
		now = time.Now
	}
	if after == nil {
		after = time.After
	}
	for {
		t := now()
		writeMonth(ctx, opt, monthStart(t).AddDate(0, -1, 0), now)
		// Wake at the next 1st. A timer that fires early (a clock
		// stepped back) only repeats the month above, which is on disk.
		wait := monthStart(t).AddDate(0, 1, 0).Sub(t)
		select {
		case <-ctx.Done():
			return nil
		case <-after(wait):
		}
	}
}

// PacketDir is where RunMonthly puts a tenant's packet for month.
func PacketDir(dataDir, tenant string, month time.Time) string {
	return filepath.Join(dataDir, "evidence", tenant, month.Format("2006-01"))
}

// anchored reports whether the store's chain already holds the
// evidence.packet event of tenant's month. The leader of a cluster
// changes (a restart, a node lost), and the new one does not have the
// packets on its disk: without this it wrote and anchored the month again
// and notified it again. A store that cannot say is taken for "no": the
// packet is built (a repeat is better than a month without one).
func anchored(ctx context.Context, st *audit.Store, tenant string, month time.Time) bool {
	if st == nil {
		return false
	}
	var one int
	err := st.DB().QueryRowContext(ctx, `SELECT 1 FROM audit_events WHERE type = ? AND subject = ? LIMIT 1`,
		EventPacket, tenant+"/"+month.Format("2006-01")).Scan(&one)
	return err == nil
}

// writeMonth writes month's missing packets, one tenant at a time.
func writeMonth(ctx context.Context, opt ScheduleOptions, month time.Time, now func() time.Time) {
	for _, tenant := range opt.Policy.Tenants {
		if ctx.Err() != nil {
			return
		}
		dir := PacketDir(opt.DataDir, tenant.Name, month)
		if _, err := os.Stat(filepath.Join(dir, ManifestName)); err == nil {
			continue // written before a restart
		}
		if anchored(ctx, opt.Store, tenant.Name, month) {
			continue // written by another node of the cluster, which led then
		}
		pk, err := Build(ctx, Options{DataDir: opt.DataDir, Backend: opt.Backend, Tenant: tenant.Name, Month: month, Out: dir,
			Policy: opt.Policy, StaleAfter: opt.StaleAfter, Now: now, Keys: opt.Keys, Recordings: opt.Recordings})
		if err != nil {
			opt.logf("evidence: %s %s: %v", tenant.Name, month.Format("2006-01"), err)
			opt.notify(ctx, Event{Type: EventPacketFailed,
				Text:   fmt.Sprintf("Evidence packet for %s, %s could not be written: %v", tenant.Name, month.Format("2006-01"), err),
				Fields: map[string]any{"tenant": tenant.Name, "month": month.Format("2006-01"), "error": err.Error()}})
			continue
		}
		m, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			opt.logf("evidence: %s: %v", dir, err)
			continue
		}
		sum := sha256.Sum256(m)
		manifestSum := hex.EncodeToString(sum[:])
		if opt.Store != nil {
			if err := opt.Store.Append(ctx, audit.Event{Type: EventPacket, Actor: "warden",
				Subject: tenant.Name + "/" + month.Format("2006-01"),
				Data:    map[string]any{"manifest_sha256": manifestSum, "overdue": len(pk.Summary.Overdue), "dir": dir}}); err != nil {
				opt.logf("evidence: record packet %s: %v", dir, err)
			}
		}
		opt.notify(ctx, packetEvent(pk, manifestSum))
	}
}

// maxNotifiedItems bounds the items spelled out in the message text; the
// fields and the packet hold all of them.
const maxNotifiedItems = 10

func packetEvent(pk *Packet, manifestSum string) Event {
	s := pk.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "Evidence packet for %s, %s written to %s: %d overdue item(s)", s.Tenant, s.Month,
		slackEscape(pk.Dir), len(s.Overdue))
	for i, o := range s.Overdue {
		if i == maxNotifiedItems {
			fmt.Fprintf(&b, "\n… and %d more (summary.json)", len(s.Overdue)-i)
			break
		}
		fmt.Fprintf(&b, "\n• %s: %s: %s", o.Kind, slackEscape(display(o.Subject, 60)), slackEscape(display(o.Detail, 120)))
	}
	return Event{Type: EventPacket, Text: b.String(), Fields: map[string]any{
		"tenant": s.Tenant, "month": s.Month, "dir": pk.Dir, "manifest_sha256": manifestSum,
		"evidence_key": s.EvidenceKey, "overdue": s.Overdue, "overdue_by_kind": s.OverdueByKind,
	}}
}

// slackEscape neutralises the characters Slack's mrkdwn gives meaning to:
// an overdue item quotes text typed by users (a rotation error, a path),
// and "<!channel>" in it must not page everyone.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

func (o ScheduleOptions) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

func (o ScheduleOptions) notify(ctx context.Context, ev Event) {
	if o.Notifier == nil {
		return
	}
	if err := o.Notifier.Notify(ctx, ev); err != nil {
		o.logf("evidence: notify %s: %v", ev.Type, err)
	}
}
