package runtime

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStartupTime reports how long each phase of a `true` container
// takes (the engine's budget for `run --rm` is 40 ms in all).
func BenchmarkStartupTime(b *testing.B) {
	t := b
	requireRoot(t)
	spec := testSpec(t, busyboxRoot(t), "true")
	var best [4]time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		c, err := Create(context.Background(), CreateOpts{Spec: spec, ShimPath: shimPath})
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		if st, err := c.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("wait: %+v %v", st, err)
		}
		t3 := time.Now()
		destroy(t, c, spec)
		t4 := time.Now()
		d := [4]time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)}
		if i == 0 || d[0]+d[1]+d[2]+d[3] < best[0]+best[1]+best[2]+best[3] {
			best = d
		}
	}
	total := best[0] + best[1] + best[2] + best[3]
	b.ReportMetric(float64(total.Microseconds())/1000, "best-ms/run")
	b.Logf("create %v, start %v, wait %v, destroy %v: total %v", best[0], best[1], best[2], best[3], total)
}
