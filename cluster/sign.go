package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Messages on PostgreSQL are authenticated (Options.Key). PostgreSQL
// checks no privilege for NOTIFY or LISTEN: any role that may connect to
// the database (an auditors' SELECT-only role, or any role at all, since
// CREATE DATABASE grants CONNECT to PUBLIC) can publish on every channel
// and read every message. Without a key such a role could end any session
// on any node (kill), every session of a grant (grant_ended), or have a
// holder stream a live session to a topic it listens on (watch_open). So
// each message carries an HMAC-SHA256, keyed with a secret of the nodes
// alone, over its topic, a random nonce, its time and its payload; a node
// drops a message whose tag does not check, whose time is more than
// MaxSkew away from its clock, or that it has already taken (a listener
// replaying a captured message).
//
// The wire form of a message: "w1." BASE64URL(nonce[8] time_ms[8]) "."
// BASE64URL(tag[32]) "." PAYLOAD. What a listener reads is not hidden:
// payloads are not secret from a role that may connect (the rows it reads
// say as much), and a live view's frames are readable by it (see README).

// MaxSkew bounds how far a message's time may be from the receiver's
// clock; nodes keep their clocks on NTP (a node 20 s behind is taken for
// dead anyway).
const MaxSkew = time.Minute

// MinKeyLen is the shortest Options.Key accepted.
const MinKeyLen = 32

const sealPrefix = "w1."

// sealOverhead is what sealing adds to a payload: NOTIFY takes up to 7999
// bytes, and MaxPayload leaves room for it (checked at compile time).
const (
	sealOverhead = len(sealPrefix) + 22 + 1 + 43 + 1
	notifyMax    = 7999
	_            = uint(notifyMax - MaxPayload - sealOverhead)
)

var b64 = base64.RawURLEncoding

// errSeal is a message that failed authentication.
var errSeal = errors.New("cluster: message not authenticated")

// sealer signs and checks messages for one bus.
type sealer struct {
	key []byte
	now func() time.Time

	mu   sync.Mutex
	seen map[[32]byte]time.Time // tags taken, until their time + MaxSkew
	next time.Time              // next prune of seen
}

func newSealer(key []byte, now func() time.Time) (*sealer, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("cluster: key of %d bytes; at least %d", len(key), MinKeyLen)
	}
	if now == nil {
		now = time.Now
	}
	return &sealer{key: append([]byte(nil), key...), now: now, seen: map[[32]byte]time.Time{}}, nil
}

func (s *sealer) tag(topic string, head, payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("warden cluster message v1\x00"))
	m.Write([]byte(topic))
	m.Write([]byte{0})
	m.Write(head)
	m.Write(payload)
	return m.Sum(nil)
}

// seal returns the wire form of payload on topic.
func (s *sealer) seal(topic string, payload []byte) (string, error) {
	var head [16]byte
	if _, err := rand.Read(head[:8]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint64(head[8:], uint64(s.now().UnixMilli()))
	return sealPrefix + b64.EncodeToString(head[:]) + "." + b64.EncodeToString(s.tag(topic, head[:], payload)) + "." + string(payload), nil
}

// open checks a message received on topic and returns its payload.
func (s *sealer) open(topic, msg string) ([]byte, error) {
	rest, ok := strings.CutPrefix(msg, sealPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: not sealed", errSeal)
	}
	h, rest, ok1 := strings.Cut(rest, ".")
	t, payload, ok2 := strings.Cut(rest, ".")
	head, err1 := b64.DecodeString(h)
	tag, err2 := b64.DecodeString(t)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || len(head) != 16 || len(tag) != sha256.Size {
		return nil, fmt.Errorf("%w: malformed", errSeal)
	}
	if !hmac.Equal(tag, s.tag(topic, head, []byte(payload))) {
		return nil, fmt.Errorf("%w: bad tag", errSeal)
	}
	now := s.now()
	at := time.UnixMilli(int64(binary.BigEndian.Uint64(head[8:])))
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return nil, fmt.Errorf("%w: sent at %s, %s from this node's clock", errSeal, at.UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	var k [32]byte
	copy(k[:], tag)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.After(s.next) {
		for x, until := range s.seen {
			if now.After(until) {
				delete(s.seen, x)
			}
		}
		s.next = now.Add(MaxSkew / 4)
	}
	if _, dup := s.seen[k]; dup {
		return nil, fmt.Errorf("%w: replayed", errSeal)
	}
	// Kept until it could no longer pass the time check.
	s.seen[k] = at.Add(MaxSkew)
	return []byte(payload), nil
}
