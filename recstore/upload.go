package recstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/recorder"
)

// DefaultInterval is how often a live recording's new bytes are uploaded:
// the object store is at most this far behind the session.
const DefaultInterval = 10 * time.Second

// maxSegment bounds one segment, and so the memory one upload holds.
const maxSegment = 8 << 20

// Audit event types the uploader reports through Options.Events.
const (
	// EventUploadFailed: a recording could not be uploaded; the session
	// goes on spooling locally and the upload is retried. Once per session.
	EventUploadFailed = "recording.upload_failed"
	// EventGap: at start, a spool left by a killed gateway was uploaded;
	// the event says how many bytes the store lacked at the kill.
	EventGap = "recording.gap"
)

// Options configures an Uploader.
type Options struct {
	// Interval between uploads of a live recording and between retries;
	// zero means DefaultInterval. Tests shorten it.
	Interval time.Duration
	// Log receives operational logs; nil means slog.Default().
	Log *slog.Logger
	// Events appends an audit event (actor "warden"); nil appends none.
	Events func(ctx context.Context, typ, subject string, data map[string]any) error
}

// Uploader moves spools to an S3 store (see the package documentation).
type Uploader struct {
	s3  *S3
	opt Options
	log *slog.Logger

	ctx    context.Context // cancelled by Close: every goroutine stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine
	final  sync.WaitGroup // finishing goroutines only

	reportTo atomic.Pointer[ReportFunc] // set by ReportTo; nil: Events
}

// ReportFunc takes an audit event (actor "warden") and never fails from its
// caller's view: it holds what the database cannot take yet.
type ReportFunc func(ctx context.Context, typ, subject string, data map[string]any)

// ReportTo sends the events that only report something (EventUploadFailed,
// EventGap) to fn from now on, instead of Options.Events: the gateway
// holds audit events while the database is away and appends them once it
// is back, where Events would fail and the event be lost, logged only. The
// events after which the uploader removes or sets aside a spool
// (EventTailRecovered, EventConflict) still go to Events and wait for its
// success: their failure keeps the spool, and the next start reports it
// again, which outlives a restart as a hold in memory does not.
func (u *Uploader) ReportTo(fn ReportFunc) { u.reportTo.Store(&fn) }

// report appends an event that only reports something: through ReportTo's
// function if set, else Events, logging a failure.
func (u *Uploader) report(ctx context.Context, typ, subject string, data map[string]any) {
	if fn := u.reportTo.Load(); fn != nil {
		(*fn)(ctx, typ, subject, data)
		return
	}
	if u.opt.Events == nil {
		return
	}
	if err := u.opt.Events(ctx, typ, subject, data); err != nil {
		u.log.Error("audit event not written", "type", typ, "err", err)
	}
}

// NewUploader returns an Uploader for s.
func NewUploader(s *S3, opt Options) *Uploader {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Uploader{s3: s, opt: opt, log: opt.Log, ctx: ctx, cancel: cancel}
}

// Interval is the upload interval in force.
func (u *Uploader) Interval() time.Duration { return u.opt.Interval }

// Store is the object store uploaded to.
func (u *Uploader) Store() *S3 { return u.s3 }

// Close waits up to grace for recordings being finished, then stops every
// upload. What is not done stays in the spool for the next start's Recover.
func (u *Uploader) Close(grace time.Duration) {
	done := make(chan struct{})
	go func() { u.final.Wait(); close(done) }()
	t := time.NewTimer(grace)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	u.cancel()
	u.wg.Wait()
}

// Upload is one followed recording.
type Upload struct {
	u        *Uploader
	rel, key string
	id       string
	done     int64 // spool bytes stored as segments; owned by the follow goroutine
	failed   atomic.Bool
	stop     chan struct{}
	stopped  chan struct{}
	finished atomic.Bool
}

// Follow starts uploading the spool rel (a recording the recorder has just
// created) every interval until Finish.
func (u *Uploader) Follow(rel string) (*Upload, error) {
	key, err := Key(u.s3.prefix, rel)
	if err != nil {
		return nil, err
	}
	_, id, _ := parseRel(rel)
	up := &Upload{u: u, rel: rel, key: key, id: id, stop: make(chan struct{}), stopped: make(chan struct{})}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer close(up.stopped)
		t := time.NewTicker(u.opt.Interval)
		defer t.Stop()
		for {
			select {
			case <-up.stop:
				return
			case <-u.ctx.Done():
				return
			case <-t.C:
				if err := up.push(u.ctx); err != nil {
					up.fail(err)
				}
			}
		}
	}()
	return up, nil
}

// push uploads the spool's new whole lines as segments.
func (up *Upload) push(ctx context.Context) error {
	f, err := recorder.OpenRecording(up.u.s3.dataDir, up.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	for up.done < fi.Size() {
		n := min(fi.Size()-up.done, maxSegment)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, up.done); err != nil {
			return fmt.Errorf("recstore: read spool %s: %w", up.rel, err)
		}
		// A segment ends at a newline so that the segments, concatenated,
		// are whole asciicast lines; a line longer than a segment is cut.
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			buf = buf[:i+1]
		} else if n < maxSegment {
			return nil
		}
		k := partKey(up.key, up.done)
		if _, err := up.u.s3.client.PutObject(ctx, up.u.s3.bucket, k, bytes.NewReader(buf), int64(len(buf)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"}); err != nil {
			return fmt.Errorf("recstore: upload segment %s: %w", k, err)
		}
		up.done += int64(len(buf))
	}
	return nil
}

// fail logs an upload failure and reports it once per recording.
func (up *Upload) fail(err error) {
	if up.failed.Swap(true) {
		up.u.log.Debug("recording upload failed again; retrying", "session", up.id, "err", err)
		return
	}
	up.u.log.Error("recording upload failed; the local spool keeps the recording and the upload is retried", "session", up.id, "err", err)
	data := map[string]any{"session_id": up.id, "cause": err.Error(), "stored_bytes": up.done}
	up.u.report(context.WithoutCancel(up.u.ctx), EventUploadFailed, up.id, data)
}

// Finish stops following and stores the finished recording in the
// background: one object, checked against sha, the SHA-256 sealed in the
// session's session.end ("" when the session was not sealed: the rest of
// the spool is uploaded as segments and the spool is kept for the next
// start's Recover). It returns at once; failures are retried every
// interval until Close.
func (up *Upload) Finish(sha string) {
	if up.finished.Swap(true) {
		return
	}
	close(up.stop)
	u := up.u
	u.wg.Add(1)
	u.final.Add(1)
	go func() {
		defer u.wg.Done()
		defer u.final.Done()
		<-up.stopped // the follow goroutine owns up.done until it returns
		for {
			var err error
			if sha == "" {
				// Not sealed (the session row could not be ended: the
				// database is away, or a survivor already reaped the
				// session from the segments). No final object, which
				// would stand for a digest nobody sealed: the rest of the
				// spool goes up as segments, and the spool stays for the
				// next start's Recover, which knows the seal.
				if err = up.push(u.ctx); err == nil {
					return
				}
			} else {
				err = u.finalize(u.ctx, up.rel, up.key, sha)
			}
			if err == nil {
				return
			}
			if errors.Is(err, errNotReplaced) {
				// Retrying cannot help; the next start's Recover sorts
				// the spool out against the seal.
				up.fail(err)
				u.log.Warn("recording not stored: another copy is the final object; spool kept for the next start", "session", up.id, "err", err)
				return
			}
			up.fail(err)
			t := time.NewTimer(u.opt.Interval)
			select {
			case <-u.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
}

// finalize stores the spool rel as the object key, reads it back and
// compares its SHA-256 with sha, then deletes the segments and, only when
// sha is the sealed digest, the spool.
func (u *Uploader) finalize(ctx context.Context, rel, key, sha string) error {
	f, err := recorder.OpenRecording(u.s3.dataDir, rel)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	want := sha
	if want == "" {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("recstore: hash spool %s: %w", rel, err)
		}
		want = hex.EncodeToString(h.Sum(nil))
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	// The final object is written once and never replaced: one already
	// there is either this recording (a retry after a lost answer) or the
	// one a survivor sealed from the segments while this node was cut off
	// (audit.ReapDeadNodes); the spool then stays for Recover, which
	// stores what the seal lacks as the tail.
	there, _, err := u.s3.exists(ctx, key)
	if err != nil {
		return err
	}
	if !there {
		if err := u.s3.putNew(ctx, key, io.LimitReader(f, fi.Size()), fi.Size(), "application/x-asciicast"); err != nil {
			return err
		}
	}
	if err := u.verify(ctx, key, want); err != nil {
		if errors.Is(err, ErrDigestMismatch) {
			return fmt.Errorf("%w: %w", errNotReplaced, err)
		}
		return err
	}
	parts, err := u.s3.parts(ctx, key)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := u.s3.client.RemoveObject(ctx, u.s3.bucket, p.key, removeOpts); err != nil {
			return fmt.Errorf("recstore: remove segment %s: %w", p.key, err)
		}
	}
	if sha == "" {
		return nil
	}
	// Last, and only now: the object store holds the sealed recording.
	f.Close()
	if err := removeSpool(u.s3.dataDir, rel); err != nil {
		return err
	}
	return nil
}

// ErrDigestMismatch is matched by the error of an upload whose stored
// object does not hash to the sealed digest.
var ErrDigestMismatch = errors.New("recstore: stored object does not match the sealed SHA-256")

// errNotReplaced marks a final object that is there with other bytes.
var errNotReplaced = errors.New("recstore: a different final object is stored; not replaced")

// verify reads key back and compares its SHA-256 with want.
func (u *Uploader) verify(ctx context.Context, key, want string) error {
	obj, _, err := u.s3.get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return fmt.Errorf("recstore: read back %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s is %s, sealed %s", ErrDigestMismatch, key, got, want)
	}
	return nil
}

// removeSpool deletes the spool rel inside the data directory (an os.Root:
// no link or ".." can make it delete anything else).
func removeSpool(dataDir, rel string) error {
	if err := recorder.CheckRelPath(rel); err != nil {
		return err
	}
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return fmt.Errorf("recstore: open data directory: %w", err)
	}
	defer root.Close()
	if err := root.Remove(filepath.FromSlash(rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("recstore: remove spool %s: %w", rel, err)
	}
	return nil
}

var removeOpts = minio.RemoveObjectOptions{}
