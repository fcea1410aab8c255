package cluster

import "context"

// Leader runs a job on one node of the cluster at a time: the evidence
// schedule and the elevation workflow's deadlines must act once per
// cluster, not once per node.
type Leader interface {
	// Lead calls fn each time this node becomes the leader of name, with a
	// context that ends when it stops being the leader (or ctx ends), and
	// returns when ctx ends. If fn returns early, the node stays leader
	// and fn is not called again in that term.
	Lead(ctx context.Context, name string, fn func(ctx context.Context))
}

// Alone is the Leader of a node alone on its store: it always leads.
type Alone struct{}

// Lead implements Leader.
func (Alone) Lead(ctx context.Context, _ string, fn func(ctx context.Context)) {
	fn(ctx)
	<-ctx.Done()
}
