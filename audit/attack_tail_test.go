package audit

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/internal/s3test"
)

// tailScene is TestReapedNodeReturnStoresTail's end: gw-a died, gw-b sealed
// its session from the segments, gw-a came back and stored the rest of its
// spool as the tail object, bound by a recording.tail_recovered event.
func tailScene(t *testing.T) *reapScene {
	t.Helper()
	ctx := context.Background()
	sc := newReapScene(t)
	sc.clock.Add(31 * time.Second)
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	back := &Self{Host: "testhost", Instance: "after-the-crash", DeadAfter: 30 * time.Second}
	if err := sc.a.NodeStarted(ctx, back); err != nil {
		t.Fatal(err)
	}
	if n := recoverOn(t, sc); n != 1 {
		t.Fatalf("Recover stored %d, want 1", n)
	}
	mustVerify(t, sc.auditDir, sc.bS3)
	return sc
}

func putObject(t *testing.T, srv *s3test.Server, key string, b []byte) {
	t.Helper()
	if _, err := srv.Client().PutObject(context.Background(), s3test.Bucket, key, bytes.NewReader(b), int64(len(b)),
		minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// Attack: the tail object holds the last seconds of a session whose node
// died (up to one upload interval, what happened just before), and its
// digest is in the chain (recording.tail_recovered). Someone who may write
// the bucket replaces it, or deletes it: audit verify, which says it names
// every missing or altered object, must say so.
func TestAttackTailObjectAlteredOrRemovedIsFound(t *testing.T) {
	for _, c := range []struct {
		name string
		do   func(t *testing.T, sc *reapScene)
		want string
	}{
		{"replaced", func(t *testing.T, sc *reapScene) {
			putObject(t, sc.srv, sc.tailKey, []byte(`[0.9,"o","nothing to see\r\n"]`+"\n"))
		}, "altered"},
		{"removed", func(t *testing.T, sc *reapScene) {
			if err := sc.srv.Client().RemoveObject(context.Background(), s3test.Bucket, sc.tailKey, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}, "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := tailScene(t)
			c.do(t, sc)
			rep, err := VerifyWith(context.Background(), sc.auditDir, sc.bS3)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, p := range rep.Problems {
				found = found || p.Session == reapID && strings.Contains(p.Msg, c.want)
			}
			if !found {
				t.Fatalf("verify found nothing of a tail object %s: %+v", c.name, rep.Problems)
			}
		})
	}
}
