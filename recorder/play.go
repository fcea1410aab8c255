package recorder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// maxCastLine bounds one line of a cast file read for playback, so a
// corrupt or hostile file cannot make the player buffer without limit.
const maxCastLine = 16 << 20

// PlayOptions control Play.
type PlayOptions struct {
	// Speed divides every delay; values <= 0 mean 1.
	Speed float64
	// IdleLimit caps each pause (before Speed applies); zero means no cap.
	IdleLimit time.Duration
	// Sleep waits between events; nil means time.Sleep. Tests inject it.
	Sleep func(time.Duration)
}

// ReadHeader parses the first line of an asciicast v2 stream.
func ReadHeader(line []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return Header{}, fmt.Errorf("recorder: cast header: %w", err)
	}
	if h.Version != 2 {
		return Header{}, fmt.Errorf("recorder: cast version %d, want 2", h.Version)
	}
	return h, nil
}

// Event is one asciicast v2 event: seconds since start, its code ("o",
// "i", "r", …) and its data.
type Event struct {
	Time float64
	Code string
	Data string
}

// ParseEvent parses one event line `[time, "code", "data"]`.
func ParseEvent(line []byte) (Event, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Event{}, fmt.Errorf("recorder: cast event: %w", err)
	}
	if len(raw) != 3 {
		return Event{}, fmt.Errorf("recorder: cast event has %d fields, want 3", len(raw))
	}
	var ev Event
	if err := json.Unmarshal(raw[0], &ev.Time); err != nil || ev.Time < 0 {
		return Event{}, errors.New("recorder: cast event time is not a non-negative number")
	}
	if err := json.Unmarshal(raw[1], &ev.Code); err != nil {
		return Event{}, errors.New("recorder: cast event code is not a string")
	}
	if err := json.Unmarshal(raw[2], &ev.Data); err != nil {
		return Event{}, errors.New("recorder: cast event data is not a string")
	}
	return ev, nil
}

// Play writes the output events of the cast read from r to w in real time
// (scaled by Speed, pauses capped by IdleLimit). It returns the header.
// The output passes through a [ViewFilter], one for the whole cast so that a
// sequence split across events is still seen whole: the recorded host chose
// those bytes, and replaying them must not write the viewer's clipboard,
// retitle its window or make its terminal answer.
func Play(w io.Writer, r io.Reader, opt PlayOptions) (Header, error) {
	w = NewViewFilter(w)
	if opt.Speed <= 0 {
		opt.Speed = 1
	}
	if opt.Sleep == nil {
		opt.Sleep = time.Sleep
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxCastLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return Header{}, fmt.Errorf("recorder: read cast: %w", err)
		}
		return Header{}, errors.New("recorder: empty cast file")
	}
	h, err := ReadHeader(sc.Bytes())
	if err != nil {
		return Header{}, err
	}
	prev, lineNo := 0.0, 1
	for sc.Scan() {
		lineNo++
		if len(sc.Bytes()) == 0 {
			continue
		}
		ev, err := ParseEvent(sc.Bytes())
		if err != nil {
			return h, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if ev.Code != "o" {
			continue
		}
		gap := time.Duration((ev.Time - prev) * float64(time.Second))
		prev = ev.Time
		if opt.IdleLimit > 0 && gap > opt.IdleLimit {
			gap = opt.IdleLimit
		}
		if gap > 0 {
			opt.Sleep(time.Duration(float64(gap) / opt.Speed))
		}
		if _, err := io.WriteString(w, ev.Data); err != nil {
			return h, err
		}
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("recorder: read cast: %w", err)
	}
	return h, nil
}
