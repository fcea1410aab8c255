package evidence

import (
	"reflect"
	"testing"
)

func TestRotationOutcome(t *testing.T) {
	for data, want := range map[string]string{
		`{"ok":true}`:             rotationOK,
		`{"ok":false}`:            rotationFailed,
		`{"success":true}`:        rotationOK,
		`{"outcome":"rotated"}`:   rotationOK,
		`{"result":"Succeeded"}`:  rotationOK,
		`{"status":"error"}`:      rotationFailed,
		`{"steps":["fetch"]}`:     rotationUnknown,
		`not json`:                rotationUnknown,
		`{"ok":"true"}`:           rotationUnknown,
		`{"ok":false,"status":1}`: rotationFailed,
	} {
		if got := rotationOutcome(decodeObject(data)); got != want {
			t.Errorf("rotationOutcome(%s) = %q, want %q", data, got, want)
		}
	}
}

func TestOpenFailuresAreThoseNotFixedLater(t *testing.T) {
	rs := []rotation{
		{Seq: 1, Role: "bg-a", Outcome: rotationFailed},
		{Seq: 2, Role: "bg-b", Outcome: rotationFailed},
		{Seq: 3, Role: "bg-a", Outcome: rotationOK},
		{Seq: 4, Role: "bg-b", Outcome: rotationUnknown},
		{Seq: 5, Role: "bg-c", Outcome: rotationOK},
		{Seq: 6, Role: "bg-c", Outcome: rotationFailed},
	}
	var seqs []int64
	for _, r := range openFailures(rs) {
		seqs = append(seqs, r.Seq)
	}
	if !reflect.DeepEqual(seqs, []int64{2, 6}) {
		t.Errorf("open failures = %v, want [2 6]", seqs)
	}
	if r, ok := rotationFor(rs, 0); !ok || r.Seq != 6 {
		t.Errorf("rotationFor = %+v, %v", r, ok)
	}
}

func TestIntField(t *testing.T) {
	m := decodeObject(`{"a":7,"b":"12","c":-1,"d":1.5,"e":true}`)
	for k, want := range map[string]int64{"a": 7, "b": 12, "c": 0, "d": 0, "e": 0, "missing": 0} {
		if got := intField(m, k); got != want {
			t.Errorf("intField(%s) = %d, want %d", k, got, want)
		}
	}
}
