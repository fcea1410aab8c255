package gateway

import (
	"fmt"
	"testing"
	"time"
)

func TestRefusalReportBurstThenOneEventPerUserPerMinute(t *testing.T) {
	clk := newFakeClock()
	r := newRefusalReport(clk.now)
	written := 0
	for i := 0; i < 1000; i++ {
		if r.allow("alice", "forward.refused", fmt.Sprintf("kind-%d", i%40), fmt.Sprintf("root@h%d", i)) {
			written++
		}
		clk.add(10 * time.Millisecond) // 10 s in all
	}
	if written != refusalBurst {
		t.Fatalf("%d written, want %d", written, refusalBurst)
	}
	if !r.allow("alice", "session.refused", "not authorized", "root@db01") {
		t.Fatal("forwarding noise used up the budget of session refusals")
	}
	if !r.allow("bob", "session.refused", "not authorized", "root@x") {
		t.Fatal("bob's first refusal is counted in alice's burst")
	}
	if ev := r.flush(false); len(ev) != 0 {
		t.Fatalf("flushed before the window ran: %+v", ev)
	}
	clk.add(50 * time.Second)
	ev := r.flush(false)
	if len(ev) != 1 || ev[0].Actor != "alice" || ev[0].Type != "refusals.suppressed" {
		t.Fatalf("events %+v", ev)
	}
	counts := ev[0].Data["counts"].(map[string]int)
	if len(counts) != refusalMaxKinds+1 || ev[0].Data["suppressed"] != 1000-refusalBurst {
		t.Fatalf("counts %v, data %v", counts, ev[0].Data)
	}
	if subj := ev[0].Data["subjects"].([]string); len(subj) != refusalMaxSubjects || subj[0] != "root@h20" ||
		ev[0].Data["subjects_more"] != 1000-refusalBurst-refusalMaxSubjects {
		t.Fatalf("subjects %v, more %v", subj, ev[0].Data["subjects_more"])
	}
	sum := 0
	for _, n := range counts {
		sum += n
	}
	if sum != 1000-refusalBurst {
		t.Fatalf("counts add up to %d", sum)
	}
	// A new window gives a new burst; bob's window, which suppressed
	// nothing, leaves no event.
	if !r.allow("alice", "forward.refused", "x", "") {
		t.Fatal("no new burst after the window")
	}
	if ev := r.flush(true); len(ev) != 0 {
		t.Fatalf("windows without suppressions gave events: %+v", ev)
	}
}

func TestRefusalReportUsersAreBounded(t *testing.T) {
	clk := newFakeClock()
	r := newRefusalReport(clk.now)
	for i := 0; i < refusalMaxUsers+500; i++ {
		for j := 0; j <= refusalBurst; j++ {
			r.allow(fmt.Sprintf("u%d", i), "command.refused", "", "")
		}
	}
	if n := len(r.byUser); n != refusalMaxUsers+1 {
		t.Fatalf("%d windows, want %d", n, refusalMaxUsers+1)
	}
	if len(r.flush(true)) != refusalMaxUsers+1 {
		t.Fatal("flush lost windows")
	}
}
