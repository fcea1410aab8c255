package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestConcurrentAppendsFormOneContiguousChain(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	const writers, each = 50, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.Append(ctx, Event{Type: "test.concurrent", Actor: "writer", Data: map[string]any{"w": w, "i": i}})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	ev, err := s.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != writers*each {
		t.Fatalf("%d events, want %d", len(ev), writers*each)
	}
	seen := map[string]bool{}
	prev := genesisHash
	for i, e := range ev {
		if e.Seq != int64(i+1) || e.PrevHash != prev {
			t.Fatalf("event %d: seq %d prev %s, want seq %d prev %s", i, e.Seq, e.PrevHash, i+1, prev)
		}
		prev = e.Hash
		seen[string(e.Data["w"].(json.Number))+"/"+string(e.Data["i"].(json.Number))] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct events, want %d", len(seen), writers*each)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, dir)
	if err != nil || len(rep.Problems) != 0 || rep.Events != writers*each || rep.Head != prev {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestAppendHashMatchesDocumentedEncoding(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	ts := time.Date(2026, 11, 29, 8, 0, 0, 500, time.UTC) // 500ns: truncated to µs
	in := Event{TS: ts, Type: "auth.failed", Actor: "ev\"il\\\n", Subject: "web01",
		Data: map[string]any{"z": 1, "a": map[string]any{"y": "<b>", "b": []int{2, 1}}}}
	if err := s.Append(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, Event{TS: ts, Type: "second"}); err != nil {
		t.Fatal(err)
	}

	// Spelled out independently of the code, as doc.go tells a verifier.
	const data1 = `{"a":{"b":[2,1],"y":"<b>"},"z":1}`
	canon1 := `{"seq":1,"ts":"2026-11-29T08:00:00.000000Z","type":"auth.failed","actor":"ev\"il\\\u000a","subject":"web01","data":` + data1 + `}`
	sum1 := sha256.Sum256(append(make([]byte, 32), canon1...))
	canon2 := `{"seq":2,"ts":"2026-11-29T08:00:00.000000Z","type":"second","actor":"","subject":"","data":{}}`
	sum2 := sha256.Sum256(append(sum1[:], canon2...))

	var data, prev1, hash1, prev2, hash2 string
	if err := s.DB().QueryRow(`SELECT a.data, a.prev_hash, a.hash, b.prev_hash, b.hash
		FROM audit_events a, audit_events b WHERE a.seq = 1 AND b.seq = 2`).Scan(&data, &prev1, &hash1, &prev2, &hash2); err != nil {
		t.Fatal(err)
	}
	if data != data1 {
		t.Errorf("stored data %s, want %s", data, data1)
	}
	if prev1 != strings.Repeat("0", 64) || hash1 != hex.EncodeToString(sum1[:]) {
		t.Errorf("event 1: prev %s hash %s, want zeros and %x", prev1, hash1, sum1)
	}
	if prev2 != hash1 || hash2 != hex.EncodeToString(sum2[:]) {
		t.Errorf("event 2: prev %s hash %s, want %s and %x", prev2, hash2, hash1, sum2)
	}
}

func TestAppendDefaultsAndRefusals(t *testing.T) {
	s, err := Open(context.Background(), t.TempDir(), Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	if err := s.Append(ctx, Event{Type: "x", Actor: "bad\xffutf8"}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Events(ctx, 0, 0)
	if err != nil || len(ev) != 1 {
		t.Fatalf("Events = %v, %v", ev, err)
	}
	if e := ev[0]; !e.TS.Equal(t0) || e.Actor != "bad\uFFFDutf8" || e.Data == nil || len(e.Data) != 0 {
		t.Errorf("defaults: TS %v (want %v), actor %q, data %#v", e.TS, t0, e.Actor, e.Data)
	}

	for _, c := range []struct {
		name string
		e    Event
		msg  string
	}{
		{"empty type", Event{}, "empty type"},
		{"unencodable data", Event{Type: "x", Data: map[string]any{"n": math.NaN()}}, "data"},
		{"time out of range", Event{Type: "x", TS: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}, "outside years"},
	} {
		if err := s.Append(ctx, c.e); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got %v, want ErrInvalid mentioning %q", c.name, err, c.msg)
		}
	}
	if ev, _ := s.Events(ctx, 0, 0); len(ev) != 1 {
		t.Errorf("refused events were stored: %d events", len(ev))
	}
}

func TestEventsPaging(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	for range 5 {
		if err := s.Append(ctx, Event{Type: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		after int64
		limit int
		want  []int64
	}{
		{0, 0, []int64{1, 2, 3, 4, 5}},
		{2, 0, []int64{3, 4, 5}},
		{1, 2, []int64{2, 3}},
		{5, 10, nil},
	} {
		ev, err := s.Events(ctx, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range ev {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Events(%d, %d) = %v, want %v", c.after, c.limit, got, c.want)
		}
	}
}

func TestTriggersRefuseEditingEvents(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Append(context.Background(), Event{Type: "x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw := rawDB(t, dir)
	for _, q := range []string{`UPDATE audit_events SET actor = 'm' WHERE seq = 1`, `DELETE FROM audit_events`} {
		if _, err := raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want append-only refusal", q, err)
		}
	}
}

func TestCanonicalDataSortsNestedKeys(t *testing.T) {
	type inner struct {
		Z string `json:"z"`
		A int    `json:"a"`
	}
	got, err := canonicalData(map[string]any{"k": inner{Z: "<&>", A: 1}, "b": nil, "a": []any{1.5, "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[1.5,"x"],"b":null,"k":{"a":1,"z":"<&>"}}`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x1f\n\t", "\u2028<&>", "é日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		if !utf8.ValidString(s) {
			return // never stored: Append replaces invalid UTF-8 first
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		if back != s {
			t.Fatalf("%q encodes to %s, which decodes to %q", s, b, back)
		}
	})
}

func FuzzNormalizeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":1,"a":{"d":[1,{"z":0,"y":1e3}],"c":null}}`, `{"x":"\u003c"}`, `[1]`, `{"a":1} {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once, err := normalizeJSON([]byte(s))
		if err != nil {
			return
		}
		twice, err := normalizeJSON([]byte(once))
		if err != nil {
			t.Fatalf("canonical %s of %q does not parse: %v", once, s, err)
		}
		if once != twice {
			t.Fatalf("not idempotent: %q -> %s -> %s", s, once, twice)
		}
		if _, err := decodeData(once); err != nil {
			t.Fatalf("canonical %s is not a readable data column: %v", once, err)
		}
	})
}
