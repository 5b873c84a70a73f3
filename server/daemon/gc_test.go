package daemon

import "testing"

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live, stacks, globals uint64
		want                  int
	}{
		{0, 0, 0, 1000},            // tiny heap: capped at 1000
		{2 * mib, 0, 0, 800},       // 16 MiB headroom over 2 MiB
		{2 * mib, 2 * mib, 0, 400}, // stacks count: the goal stays live + 16 MiB
		{2 * mib, 1 * mib, 1 * mib, 400},
		{16 * mib, 0, 0, 100},
		{64 * mib, 0, 0, 50}, // large heaps: floor of 50
		{1 << 40, 1 << 30, 0, 50},
	}
	for _, tt := range tests {
		got := gcPercent(tt.live, tt.stacks, tt.globals)
		if got != tt.want {
			t.Errorf("gcPercent(%d, %d, %d) = %d, want %d", tt.live, tt.stacks, tt.globals, got, tt.want)
		}
		// The headroom the runtime then leaves, (live+stacks+globals)·pct/100,
		// is 16 MiB wherever the bounds do not bind.
		if scan := tt.live + tt.stacks + tt.globals; got > 50 && got < 1000 {
			if h := scan * uint64(got) / 100; h > gcHeadroom || h < gcHeadroom*99/100 {
				t.Errorf("gcPercent(%d, %d, %d) leaves %d bytes of headroom, want about %d", tt.live, tt.stacks, tt.globals, h, gcHeadroom)
			}
		}
	}
}
