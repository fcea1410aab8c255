package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/jit"
)

// More than one gateway on one store (issue 12, CONTRACT §8): the live
// controls reach the node that holds a session through the cluster bus
// (Options.Bus), a push, never a poll:
//   - kill: a node that does not hold a session asks on topic `kill`; the
//     holder ends it (end_reason killed) and the asker watches its row
//     close (cluster_kill.go);
//   - grant_ended: the node where a grant ended tells the others, which
//     end their sessions of that grant with the same cause;
//   - directory: the node that committed a directory change tells the
//     others, which reload the directory and end what it no longer allows.
//
// The bus is not trusted blindly: every payload is checked whole (size,
// strict JSON, ID shapes) before anything is done, and a message that
// fails is logged and dropped. A message can only ever end sessions,
// never admit one, so the worst a forged message could do is what a
// kill does; on PostgreSQL warden serve authenticates every message with a
// key of the nodes alone (cluster/sign.go: any role that may connect can
// NOTIFY, so the store's credentials are not what keeps others out). Messages may be lost while a node's bus is down: on resync
// each node reads the store again (grants that ended, the directory).

// Topics of the cluster bus (COMMON design; payloads below).
const (
	topicKill       = "kill"
	topicGrantEnded = "grant_ended"
	topicDirectory  = "directory"
)

// defaultNodeDeadAfter is Options.NodeDeadAfter's default: the age of
// heartbeat after which a node is taken for dead (serve's nodeDeadAfter).
const defaultNodeDeadAfter = 20 * time.Second

// killMsg asks the node holding Session to end it. Node is the sender.
type killMsg struct {
	Session string `json:"session"`
	Actor   string `json:"actor"`
	Reason  string `json:"reason"`
	Node    string `json:"node,omitempty"`
}

// grantEndedMsg tells that grant Grant ended, and why (jit.End*).
type grantEndedMsg struct {
	Grant     int64  `json:"grant"`
	EndReason string `json:"end_reason"`
	Node      string `json:"node,omitempty"`
}

// directoryMsg tells that node Node committed a directory change.
type directoryMsg struct {
	Node string `json:"node,omitempty"`
}

// nodeName is this node's name: Options.NodeID, else the store's node
// ID (the one its session rows carry), else "".
func nodeName(opt Options) string {
	if opt.NodeID != "" {
		return opt.NodeID
	}
	if n, ok := opt.Store.(interface{ NodeID() string }); ok {
		return n.NodeID()
	}
	return ""
}

// busName is this node's name on the bus: its node name, else a random
// one, so that a node always recognises its own messages (the bus
// delivers them to the sender too).
func busName(node string) string {
	if node != "" {
		return node
	}
	var b [8]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return "node"
	}
	return "node-" + hex.EncodeToString(b[:])
}

// joinCluster subscribes to the bus's topics for the life of Serve; the
// returned leave cancels them. Without a bus it does nothing.
func (s *Server) joinCluster() (leave func()) {
	bus := s.opt.Bus
	if bus == nil {
		return func() {}
	}
	s.resyncs.ctx, s.resyncs.stop = context.WithCancel(context.Background())
	s.resyncs.on.Store(true)
	cancels := []func(){
		bus.Subscribe(topicKill, s.onKill),
		bus.Subscribe(topicGrantEnded, s.onGrantEnded),
		bus.Subscribe(topicDirectory, s.onDirectory),
	}
	// A change committed by another node between this node's start-up
	// load and the subscriptions above was not heard: read it now.
	s.resyncOrRetry()
	// A bus has no way to take a resync back: after leave it does nothing.
	bus.OnResync(func() {
		if s.resyncs.on.Load() {
			s.resyncOrRetry()
		}
	})
	// The safety net: a message its sender could not publish (its own
	// connection cut while the listeners stayed up) triggers no resync
	// anywhere, so each node also reads the store every
	// clusterResyncEvery. The push stays the way things end within 2 s.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(clusterResyncEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				s.resyncOrRetry()
			}
		}
	}()
	return func() {
		s.resyncs.on.Store(false)
		s.resyncs.stop() // a resync waiting on a store that hangs gives up now
		close(stop)
		<-done
		for _, c := range cancels {
			c()
		}
		// A retry running now finishes before leave returns; one due
		// later sees on false and does nothing.
		s.resyncs.mu.Lock()
		s.resyncs.mu.Unlock()
	}
}

// resyncRetryEvery is how often a resync that could not read the store is
// tried again.
const resyncRetryEvery = 2 * time.Second

// clusterResyncEvery bounds how long a lost grant end or directory change
// goes unnoticed on a node whose bus never dropped (a var for tests).
var clusterResyncEvery = 30 * time.Second

// resyncState makes a failed resync fail closed: it is tried again until
// the store answers. A resync, or a directory message, whose read failed
// once was otherwise never repeated, and what it should have ended (a
// revoked grant's session, a leaver's key and sessions) went on on this
// node until the next message or a restart.
type resyncState struct {
	on      atomic.Bool // between joinCluster and its leave
	pending atomic.Bool // a retry is scheduled
	mu      sync.Mutex  // one resync at a time
	// ctx bounds the resyncs' reads; leave ends it, so that a store that
	// hangs does not hold the gateway's stop. Set before on.
	ctx  context.Context
	stop context.CancelFunc
}

func (r *resyncState) context() context.Context {
	if r.ctx == nil {
		return context.Background() // a resync outside joinCluster (tests)
	}
	return r.ctx
}

// resyncOrRetry resyncs now and, if the store did not answer, again every
// resyncRetryEvery until it does.
func (s *Server) resyncOrRetry() {
	if !s.resync() {
		s.retryResync()
	}
}

// retryResync schedules one resync after resyncRetryEvery, unless one is
// already scheduled or the node left the cluster.
func (s *Server) retryResync() {
	if !s.resyncs.on.Load() || !s.resyncs.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(resyncRetryEvery, func() {
		s.resyncs.pending.Store(false)
		if s.resyncs.on.Load() {
			s.resyncOrRetry()
		}
	})
}

// checkNode accepts an empty sender or a node_id's shape: the policy's
// (validNodeID), not the host-name rule validName, which refuses a leading
// '-' or '.' the policy takes; every message of such a node was dropped, so
// its grant ends and kills did not reach the other nodes.
func checkNode(n string) error {
	if n != "" && !validNodeID(n) {
		return fmt.Errorf("node %q is not a node name", truncate(n, 32))
	}
	return nil
}

// dropped logs a message that failed its checks; nothing of it was done.
func (s *Server) dropped(topic string, payload []byte, err error) {
	s.log.Warn("cluster message ignored", "topic", topic, "bytes", len(payload), "err", err)
}

// onKill ends the session a kill names if this node holds it; a kill for
// a session held elsewhere (or nowhere) is not this node's to act on.
func (s *Server) onKill(payload []byte) {
	var m killMsg
	err := decodeMsg(payload, &m)
	if err == nil {
		_, err = oneSessionID([]string{m.Session})
	}
	if err == nil {
		err = checkText("actor", m.Actor, 256)
	}
	if err == nil {
		err = checkKillReason(m.Reason, false)
	}
	if err == nil {
		err = checkNode(m.Node)
	}
	if err != nil {
		s.dropped(topicKill, payload, err)
		return
	}
	if s.live.cancelSession(m.Session, errKilled) {
		s.log.Info("session killed from another node", "session", m.Session, "actor", m.Actor, "node", m.Node)
	}
}

// onGrantEnded ends this node's sessions of a grant another node ended.
// The sender already did its own; a message is never published again
// from here, so nothing loops, and a second cancel of a session is a
// no-op (its first cause stays).
func (s *Server) onGrantEnded(payload []byte) {
	var m grantEndedMsg
	err := decodeMsg(payload, &m)
	if err == nil && m.Grant <= 0 {
		err = fmt.Errorf("grant %d", m.Grant)
	}
	if err == nil {
		err = checkEndReason(m.EndReason)
	}
	if err == nil {
		err = checkNode(m.Node)
	}
	if err != nil {
		s.dropped(topicGrantEnded, payload, err)
		return
	}
	if m.Node == s.busNode {
		return // ours: GrantEnded ended them already
	}
	if ids := s.live.cancelGrant(m.Grant, grantCause(m.EndReason)); len(ids) > 0 {
		s.log.Info("grant ended on another node; its sessions here closed", "grant", m.Grant, "end_reason", m.EndReason,
			"node", m.Node, "sessions", ids)
	}
}

// onDirectory reloads the directory after another node changed it.
func (s *Server) onDirectory(payload []byte) {
	var m directoryMsg
	err := decodeMsg(payload, &m)
	if err == nil {
		err = checkNode(m.Node)
	}
	if err != nil {
		s.dropped(topicDirectory, payload, err)
		return
	}
	if m.Node == s.busNode {
		return // ours: directoryChanged ran when we committed it
	}
	if !s.reloadDirectory() {
		s.retryResync() // the change must not be lost: read it again soon
	}
}

// reloadDirectory reads the directory again; Reload tells directoryChanged
// what changed (marked Reloaded), which ends the sessions it no longer
// allows here. It reports whether the store answered.
func (s *Server) reloadDirectory() bool {
	s.mu.Lock()
	d := s.dir
	s.mu.Unlock()
	if d == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(s.resyncs.context(), 30*time.Second)
	defer cancel()
	if _, err := d.Reload(ctx); err != nil {
		s.log.Error("directory not reloaded after a change on another node; tried again", "err", err)
		return false
	}
	return true
}

// resync runs after the bus (re)connected, when messages may have been
// lost: the directory is read again, and each live session of a grant is
// checked against the grant's row. It reports whether both reads
// succeeded; the caller tries again when not (resyncOrRetry).
func (s *Server) resync() bool {
	s.resyncs.mu.Lock()
	defer s.resyncs.mu.Unlock()
	dirOK := s.reloadDirectory()
	return s.resyncGrants() && dirOK
}

// grantLister is what resync needs of the workflow (*jit.Service).
type grantLister interface {
	ActiveGrants(ctx context.Context) ([]jit.Grant, error)
	AllGrants(ctx context.Context) ([]jit.Grant, error)
}

// resyncGrants ends the live sessions whose grant no longer gives access,
// with the cause its row records. It reports false when the grants could
// not be read.
func (s *Server) resyncGrants() bool {
	gl, ok := s.opt.JIT.(grantLister)
	if !ok {
		return true
	}
	held := map[int64]bool{}
	for _, ss := range s.live.snapshot() {
		if ss.grantID != 0 {
			held[ss.grantID] = true
		}
	}
	if len(held) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(s.resyncs.context(), 30*time.Second)
	defer cancel()
	active, err := gl.ActiveGrants(ctx)
	if err != nil {
		s.log.Error("resync: grants not read; tried again", "err", err)
		return false
	}
	for _, g := range active {
		delete(held, g.ID)
	}
	if len(held) == 0 {
		return true
	}
	all, err := gl.AllGrants(ctx)
	if err != nil {
		s.log.Error("resync: grants not read; tried again", "err", err)
		return false
	}
	reasons := map[int64]string{}
	for _, g := range all {
		reasons[g.ID] = g.EndReason
		if g.EndReason == "" && !g.ExpiresAt.After(s.now()) {
			reasons[g.ID] = jit.EndExpired
		}
	}
	for id := range held {
		ids := s.live.cancelGrant(id, grantCause(reasons[id]))
		s.log.Info("resync: sessions of a grant that ended closed", "grant", id, "end_reason", reasons[id], "sessions", ids)
	}
	return true
}

// publishGrantEnded tells the other nodes that grant g ended here.
func (s *Server) publishGrantEnded(g jit.Grant) {
	s.publish(topicGrantEnded, grantEndedMsg{Grant: g.ID, EndReason: g.EndReason, Node: s.busNode})
}

// publishDirectory tells the other nodes that this node committed a
// directory change.
func (s *Server) publishDirectory() {
	s.publish(topicDirectory, directoryMsg{Node: s.busNode})
}

// publish sends a message and logs a failure: the other nodes catch up on
// their next resync, and each still ends its sessions at their grant's
// deadline on its own.
func (s *Server) publish(topic string, m any) {
	if s.opt.Bus == nil {
		return
	}
	payload, err := json.Marshal(m)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.opt.Bus.Publish(ctx, topic, payload)
		cancel()
	}
	if err != nil {
		s.log.Error("cluster message not sent", "topic", topic, "err", err)
	}
}

// grantCause is the cancel cause for a grant's sessions by its end
// reason, on the node where it ended and on the others alike.
func grantCause(endReason string) error {
	if endReason == jit.EndExpired {
		return errGrantExpired
	}
	return errGrantRevoked
}

// checkEndReason accepts a grant end reason's shape: 1 to 32 of a-z and
// '_' (jit.End*, and any a later version adds: such a grant ended all
// the same, and its sessions end as revoked).
func checkEndReason(r string) error {
	if r == "" || len(r) > 32 {
		return fmt.Errorf("end reason %q", truncate(r, 32))
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return fmt.Errorf("end reason %q", truncate(r, 32))
		}
	}
	return nil
}

// checkText accepts a non-empty printable UTF-8 field of at most max
// bytes (a user name in a message, shown in logs and audit events).
func checkText(what, v string, max int) error {
	if v == "" || len(v) > max || !utf8.ValidString(v) {
		return fmt.Errorf("%s: empty, too long or not UTF-8", what)
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%s: a control or invisible character", what)
		}
	}
	return nil
}

// clusterStore is what the shared live registry needs of the store
// (*audit.Store): the open rows of the live nodes, one of them by ID, and
// one session's row.
type clusterStore interface {
	LiveSessions(ctx context.Context, deadAfter time.Duration, tenants []string) ([]audit.Session, error)
	OpenSession(ctx context.Context, id string, aliveSince time.Time) (audit.Session, error)
	Session(ctx context.Context, id string) (audit.Session, error)
}

// clustered returns the store as a clusterStore when this node has a bus
// and a store that can answer; otherwise the node is alone.
func (s *Server) clustered() (clusterStore, bool) {
	if s.opt.Bus == nil {
		return nil, false
	}
	cs, ok := s.opt.Store.(clusterStore)
	return cs, ok
}
