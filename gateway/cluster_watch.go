package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/cluster"
	dirs "github.com/warden-gw/warden/identity"
)

// A live view of a session that another node holds (issue 12, CONTRACT
// §8): `ssh gw watch ID` and the console's live view on node B, for a
// session whose channel runs through node A, stream over the cluster bus.
//
// The protocol (every payload JSON, at most cluster.MaxPayload bytes):
//
//   - the viewer's node publishes watch_open {"watch": W, "session": ID,
//     "viewer": USER, "node": VIEWER_NODE}, W being 16 random bytes in
//     lowercase base32 (cluster_watch_view.go);
//   - the node that holds ID in its live registry (every other node ignores
//     the message) attaches a watcher and publishes on topic watch_W the
//     frames {"seq": N, "out": base64, "cols": C, "rows": R, "dropped": K,
//     "end": REASON}: seq 0 at once (the terminal's size: the viewer's
//     answer that the holder heard it), then output coalesced for up to
//     coalesce and split to fit a message, an empty frame when idle for
//     keep (so the viewer knows the holder is alive), and a last frame with
//     end;
//   - the viewer publishes watch_keep {"watch": W} every keep, and
//     watch_close {"watch": W} when it leaves; the holder stops after
//     expire without a keep.
//
// Who may watch is decided on the viewer's node, against the session's row
// in the store and the viewer's oversight under the policy, as for a local
// watch; the holder does not decide it again. That is sound because the
// bus is in-process for a node alone, and on PostgreSQL warden serve's
// messages carry an HMAC keyed from the host key (cluster/sign.go): only
// Warden's nodes can publish. (NOTIFY itself needs no privilege: without
// the key any role that may connect could open a stream and LISTEN to it.) The holder still checks the
// message's shape and that it holds the session, bounds how many streams it
// runs, and stops a stream nobody keeps alive, so a lost viewer costs
// nothing for long.
//
// The watched session never waits for a remote viewer: the holder's
// watcher drops frames when its stream falls behind (as locally), and the
// stream spends at most budget bytes a second of output on the bus, dropping
// the rest and counting it; the viewer shows those counts, and the gaps in
// seq (messages lost on the way), as dropped frames.

// watchTiming are the remote view's clocks and bounds; tests shorten them.
type watchTiming struct {
	Now      func() time.Time // for keep-alive expiry and the byte budget
	Keep     time.Duration    // viewer's keep-alive, holder's idle frame: 5s
	Expire   time.Duration    // silence that ends a stream, either side: 15s
	Tick     time.Duration    // how often expiry is looked at: 1s
	Coalesce time.Duration    // output gathered into one frame: 50ms
	Open     time.Duration    // how long a viewer waits for seq 0: 5s
	Budget   int              // output bytes a second per stream: 256 KiB
}

func defaultWatchTiming() *watchTiming {
	return &watchTiming{Now: time.Now, Keep: 5 * time.Second, Expire: 15 * time.Second, Tick: time.Second,
		Coalesce: 50 * time.Millisecond, Open: 5 * time.Second, Budget: 256 << 10}
}

const (
	// maxFrameOut is the most output in one frame: base64 makes it 6400
	// bytes, which leaves room for the rest of the JSON under
	// cluster.MaxPayload (7000).
	maxFrameOut = 4800
	// maxRemoteStreams bounds the streams one holder runs at once.
	maxRemoteStreams = 256
	// liveNodeWithin is how fresh a node's heartbeat must be for its open
	// sessions to be live (the serve command's nodeDeadAfter: a node
	// beats every 5s and is reaped after 20s of silence).
	liveNodeWithin = 20 * time.Second
	// maxEndReason bounds a frame's end reason, which the viewer sees.
	maxEndReason = 128
)

// Topics of the remote view.
const (
	topicWatchOpen  = "watch_open"
	topicWatchKeep  = "watch_keep"
	topicWatchClose = "watch_close"
)

// framesTopic is the topic a viewer node receives its remote views' frames
// on: one per node, not one per view. A topic per view would leave a
// handler behind in the listening connection for every view ever opened
// (pgxlisten cannot forget one), each LISTENed again after every
// reconnection, which would delay the resync that matters. Frames carry
// their watch ID, and the viewer node routes them (remoteViews).
func framesTopic(node string) string {
	sum := sha256.Sum256([]byte(node))
	return "watch_f_" + hex.EncodeToString(sum[:8])
}

type watchOpenMsg struct {
	Watch   string `json:"watch"`
	Session string `json:"session"`
	Viewer  string `json:"viewer"`
	Node    string `json:"node"`
}

type watchCtlMsg struct {
	Watch string `json:"watch"`
}

type watchFrameMsg struct {
	Watch   string `json:"watch"`
	Seq     int64  `json:"seq"`
	Out     []byte `json:"out,omitempty"` // base64 in JSON
	Cols    int    `json:"cols"`
	Rows    int    `json:"rows"`
	Dropped int64  `json:"dropped,omitempty"`
	End     string `json:"end,omitempty"`
}

// decodeMsg decodes one bus payload strictly: one JSON object of known
// fields and nothing after it.
func decodeMsg(p []byte, v any) error {
	if len(p) > cluster.MaxPayload {
		return cluster.ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// watchIDEncoding writes watch IDs: lowercase base32, no padding, so that
// IDs are plain a-z and 2-7.
var watchIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newWatchID returns 16 bytes from crypto/rand: the frames' topic is
// unguessable, and two views never share one.
func newWatchID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return watchIDEncoding.EncodeToString(b), nil
}

func validWatchID(id string) bool {
	if len(id) != 26 {
		return false
	}
	_, err := watchIDEncoding.DecodeString(id)
	return err == nil
}

// validNodeID is policy's node_id shape: 1 to 63 of a-z, 0-9, '.', '_', '-'.
func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// clusterWatch is a node's side of remote views: the streams it runs as
// the holder of sessions.
type clusterWatch struct {
	s      *Server
	timing atomic.Pointer[watchTiming]

	mu      sync.Mutex
	streams map[string]*remoteStream // by watch ID; nil until serve
	wg      sync.WaitGroup           // the streams' goroutines

	// The viewer's side: this node's remote views by watch ID, fed by one
	// subscription to framesTopic(this node), made at the first view.
	vmu         sync.Mutex
	views       map[string]*remoteView
	framesOnce  sync.Once
	unsubFrames func()
}

// remoteStream is one remote viewer's stream on the holder.
type remoteStream struct {
	id, session, viewer, node string
	keep                      atomic.Int64 // Now of the last keep-alive, in ns
	closed                    chan struct{}
	closeOnce                 sync.Once
}

func (st *remoteStream) close() { st.closeOnce.Do(func() { close(st.closed) }) }

func newClusterWatch(s *Server) *clusterWatch {
	w := &clusterWatch{s: s}
	w.timing.Store(defaultWatchTiming())
	return w
}

func (w *clusterWatch) t() *watchTiming { return w.timing.Load() }

// serve answers remote views of this node's sessions until the returned
// stop is called; stop ends the streams and waits for them. Without a bus
// it does nothing.
func (w *clusterWatch) serve(ctx context.Context) (stop func()) {
	bus := w.s.opt.Bus
	if bus == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.streams = map[string]*remoteStream{}
	w.mu.Unlock()
	subs := []func(){
		bus.Subscribe(topicWatchOpen, func(p []byte) { w.open(ctx, p) }),
		bus.Subscribe(topicWatchKeep, func(p []byte) {
			if st := w.stream(p); st != nil {
				st.keep.Store(w.t().Now().UnixNano())
			}
		}),
		bus.Subscribe(topicWatchClose, func(p []byte) {
			if st := w.stream(p); st != nil {
				st.close()
			}
		}),
	}
	return func() {
		for _, unsub := range subs {
			unsub()
		}
		w.framesOnce.Do(func() {}) // no view may subscribe from now on
		if w.unsubFrames != nil {
			w.unsubFrames()
		}
		cancel()
		w.wg.Wait()
	}
}

// stream returns the stream a watch_keep or watch_close names, or nil.
func (w *clusterWatch) stream(p []byte) *remoteStream {
	var m watchCtlMsg
	if decodeMsg(p, &m) != nil || !validWatchID(m.Watch) {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.streams[m.Watch]
}

// open handles a watch_open on the bus's delivery goroutine: it must not
// block, so the stream runs in a goroutine of its own.
func (w *clusterWatch) open(ctx context.Context, p []byte) {
	var m watchOpenMsg
	if err := decodeMsg(p, &m); err != nil {
		w.s.log.Warn("remote watch: bad watch_open", "err", err)
		return
	}
	if !validWatchID(m.Watch) || len(m.Session) != 26 || !validName(m.Session) || dirs.CheckUserName(m.Viewer) != "" || !validNodeID(m.Node) {
		w.s.log.Warn("remote watch: bad watch_open", "watch", truncate(m.Watch, 32), "session", truncate(m.Session, 32))
		return
	}
	ss := w.s.live.get(m.Session)
	if ss == nil {
		return // another node's, or nobody's: the viewer hears nothing and says so
	}
	st := &remoteStream{id: m.Watch, session: m.Session, viewer: m.Viewer, node: m.Node, closed: make(chan struct{})}
	st.keep.Store(w.t().Now().UnixNano())
	w.mu.Lock()
	if w.streams == nil || len(w.streams) >= maxRemoteStreams || w.streams[m.Watch] != nil || ctx.Err() != nil {
		w.mu.Unlock()
		w.s.log.Warn("remote watch refused: too many streams, or a watch ID reused", "watch", m.Watch, "session", m.Session)
		return
	}
	w.streams[m.Watch] = st
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.streams, st.id)
			w.mu.Unlock()
		}()
		w.run(ctx, ss, st)
	}()
}

// publisher sends one stream's frames in order, numbering them; a frame
// that could not be sent still takes its number, so the viewer counts it
// as lost.
type publisher struct {
	w     *clusterWatch
	topic string
	watch string
	seq   int64
	cols  int
	rows  int
	drop  int64 // frames dropped since the last frame sent
	sent  time.Time
}

func (p *publisher) send(ctx context.Context, out []byte, end string) {
	f := watchFrameMsg{Watch: p.watch, Seq: p.seq, Out: out, Cols: p.cols, Rows: p.rows, Dropped: p.drop, End: end}
	p.seq++
	payload, err := json.Marshal(f)
	if err == nil && len(payload) > cluster.MaxPayload {
		err = cluster.ErrTooLarge
	}
	if err == nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err = p.w.s.opt.Bus.Publish(pctx, p.topic, payload)
		cancel()
	}
	if err != nil {
		p.w.s.log.Warn("remote watch: frame not sent", "topic", p.topic, "err", err)
		return // its seq is skipped: the viewer counts it as lost
	}
	p.drop = 0
	p.sent = p.w.t().Now()
}

// budget is a token bucket of output bytes, refilled at rate a second up to
// one second's worth.
type budget struct {
	rate   int
	tokens float64
	last   time.Time
}

func (b *budget) take(n int, now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * float64(b.rate)
	}
	b.last = now
	if b.tokens > float64(b.rate) {
		b.tokens = float64(b.rate)
	}
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// run streams ss's output to one remote viewer until the session ends, the
// viewer leaves or goes silent, or the node stops.
func (w *clusterWatch) run(ctx context.Context, ss *session, st *remoteStream) {
	t := w.t()
	ss.mu.Lock()
	rec := ss.rec
	ss.mu.Unlock()
	p := &publisher{w: w, topic: framesTopic(st.node), watch: st.id}
	if rec == nil {
		p.cols, p.rows = 80, 24
		p.send(ctx, nil, "not started")
		return
	}
	wt := rec.watch()
	defer rec.unwatch(wt)
	p.cols, p.rows = rec.termSize()
	w.s.log.Info("remote watch started", "session", st.session, "viewer", st.viewer, "viewer_node", st.node, "watch", st.id)
	end := "viewer left"
	defer func() {
		w.s.log.Info("remote watch ended", "session", st.session, "viewer", st.viewer, "viewer_node", st.node, "watch", st.id, "reason", end)
	}()
	p.send(ctx, nil, "")

	bud := &budget{rate: t.Budget, tokens: float64(t.Budget)}
	var pending []byte
	// flush sends the pending output in frames of maxFrameOut, all of it,
	// or only the whole frames (the remainder waits for the timer).
	flush := func(all bool) {
		off := 0
		for len(pending)-off >= maxFrameOut || all && off < len(pending) {
			n := min(len(pending)-off, maxFrameOut)
			p.drop += wt.dropped.Swap(0)
			if bud.take(n, t.Now()) {
				p.send(ctx, pending[off:off+n], "")
			} else {
				p.drop++ // over the budget: the viewer is told, the session is not slowed
			}
			off += n
		}
		pending = append(pending[:0], pending[off:]...)
	}
	coalesce := time.NewTimer(t.Coalesce)
	coalesce.Stop()
	tick := time.NewTicker(t.Tick)
	defer tick.Stop()
	defer coalesce.Stop()
	for {
		select {
		case f, ok := <-wt.ch:
			if !ok {
				flush(true)
				end = "session ended"
				p.send(ctx, nil, end)
				return
			}
			if f.Output == nil { // a resize: the output before it first
				flush(true)
				p.cols, p.rows = f.Cols, f.Rows
				p.send(ctx, nil, "")
				continue
			}
			if len(pending) == 0 {
				coalesce.Reset(t.Coalesce)
			}
			pending = append(pending, f.Output...)
			flush(false)
		case <-coalesce.C:
			flush(true)
		case <-tick.C:
			now := t.Now()
			if now.Sub(time.Unix(0, st.keep.Load())) > t.Expire {
				end = "viewer stopped answering"
				p.send(ctx, nil, end)
				return
			}
			if w.s.live.get(ss.id) == nil && rec.watching(wt) {
				// The session ended as the view began (see pumpFeed).
				end = "session ended"
				p.send(ctx, nil, end)
				return
			}
			if len(pending) == 0 && (now.Sub(p.sent) >= t.Keep || wt.dropped.Load() > 0) {
				p.drop += wt.dropped.Swap(0)
				p.send(ctx, nil, "") // alive, and what was lost
			}
		case <-st.closed:
			return
		case <-ctx.Done():
			end = "gateway stopping"
			p.send(ctx, nil, end)
			return
		}
	}
}

// errNoCluster is a remote view that could not reach the cluster.
var errNoCluster = errors.New("the gateway holding the session did not answer")

// count is how many streams this node runs as a holder.
func (w *clusterWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.streams)
}
