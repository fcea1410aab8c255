package evidence

import "testing"

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []int64
		want int64
	}{
		{nil, 0},
		{[]int64{5}, 5},
		{[]int64{9, 1, 5}, 5},
		{[]int64{4, 1, 3, 2}, 2}, // (2+3)/2, whole seconds
		{[]int64{10, 20}, 15},
	} {
		in := append([]int64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %d, want %d", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("median sorted its argument in place")
			}
		}
	}
}

func TestDecisionKind(t *testing.T) {
	for in, want := range map[string]string{"approved": "approve", "approve": "approve", "Denied": "deny",
		"deny": "deny", "comment": ""} {
		if got := decisionKind(in); got != want {
			t.Errorf("decisionKind(%q) = %q, want %q", in, got, want)
		}
	}
}
