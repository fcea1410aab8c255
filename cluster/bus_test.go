package cluster

import (
	"context"
	"testing"
	"time"
)

func TestLocalDeliversToSubscribersOfTheTopicOnly(t *testing.T) {
	b := NewLocal()
	defer b.Close()
	got := make(chan string, 4)
	cancel := b.Subscribe("kill", func(p []byte) { got <- "kill:" + string(p) })
	b.Subscribe("other", func(p []byte) { got <- "other:" + string(p) })
	ctx := context.Background()
	if err := b.Publish(ctx, "kill", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "kill:a" {
		t.Fatalf("got %q", v)
	}
	cancel()
	if err := b.Publish(ctx, "kill", []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "other", []byte("c")); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "other:c" {
			t.Fatalf("a cancelled subscriber got %q", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
}

func TestLocalRefusesBadTopicsAndLargePayloads(t *testing.T) {
	b := NewLocal()
	defer b.Close()
	for _, topic := range []string{"", "Kill", "kill;drop", "a-b", string(make([]byte, 41))} {
		if err := b.Publish(context.Background(), topic, nil); err == nil {
			t.Errorf("topic %q accepted", topic)
		}
	}
	if err := b.Publish(context.Background(), "t", make([]byte, MaxPayload+1)); err != ErrTooLarge {
		t.Fatalf("large payload: %v", err)
	}
	// What PostgreSQL's NOTIFY could not carry is refused alone too.
	for _, p := range [][]byte{[]byte("a\x00b"), {0xff}} {
		if err := b.Publish(context.Background(), "t", p); err != ErrPayload {
			t.Errorf("payload %q: %v, want ErrPayload", p, err)
		}
	}
}
