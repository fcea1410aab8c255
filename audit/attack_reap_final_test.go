package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/internal/s3test"
)

// Attack: someone who may write the bucket puts a final object for a
// session whose node just died, before a survivor reaps it. An open
// session never has one (the final object is made only once its end is in
// the chain), so it can only be planted. The survivor sealed "the final
// object if there is one": the planted bytes became the recording in the
// chain, the dead node's real segments were deleted as covered by it, and
// audit verify passed. The seal must come from the segments the node
// uploaded, and the planted object must show in verify.
func TestAttackPlantedFinalObjectIsNotSealedAtReap(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	planted := []byte(`{"version":2,"width":80,"height":24}` + "\n" + `[0.1,"o","$ nothing to see\r\n"]` + "\n")
	putObject(t, sc.srv, sc.finalKey, planted)
	sc.clock.Add(31 * time.Second)
	if err := sc.b.Heartbeat(ctx, me(sc.b)); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v; want 1", n, err)
	}
	row, err := sc.b.Session(ctx, reapID)
	if err != nil {
		t.Fatal(err)
	}
	if row.RecordingSHA256 == hexSum(planted) {
		t.Fatal("the survivor sealed the planted object as the recording")
	}
	if row.RecordingSHA256 != hexSum(sc.uploaded) {
		t.Fatalf("sealed %q; want the segments' digest", row.RecordingSHA256)
	}
	if p := sc.srv.Objects(sc.partsKey); len(p) != 2 {
		t.Fatalf("segments %v; want the node's two kept (the final object is not theirs)", p)
	}
	rep, err := VerifyWith(ctx, sc.auditDir, sc.bS3)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, p := range rep.Problems {
		found = found || p.Session == reapID
	}
	if !found {
		t.Fatalf("verify passed with a planted final object: %+v", rep.Problems)
	}
}

// The same, the segments removed too: nothing the node uploaded is left,
// so nothing is sealed (a note says why), never the planted object.
func TestAttackPlantedFinalObjectWithoutSegmentsIsNotSealed(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	for k := range sc.srv.Objects(sc.partsKey) {
		if err := sc.srv.Client().RemoveObject(ctx, s3test.Bucket, k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	planted := []byte(`{"version":2,"width":80,"height":24}` + "\n")
	putObject(t, sc.srv, sc.finalKey, planted)
	sc.clock.Add(31 * time.Second)
	if err := sc.b.Heartbeat(ctx, me(sc.b)); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v; want 1", n, err)
	}
	row, err := sc.b.Session(ctx, reapID)
	if err != nil {
		t.Fatal(err)
	}
	if row.RecordingSHA256 != "" {
		t.Fatalf("sealed %q from a planted object", row.RecordingSHA256)
	}
	ends := eventsOf(t, sc.b, EventSessionEnd)
	if len(ends) != 1 || !strings.Contains(fmt.Sprint(ends[0].Data["recording_note"]), "still open") {
		t.Fatalf("session.end %+v; want a note naming the unexpected final object", ends)
	}
}
