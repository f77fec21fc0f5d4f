package garnertest

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/garner-metrics/garner/pkg/model"
)

// Runner is a component that runs until its context is cancelled, such as
// an *aggregator.Aggregator.
type Runner interface {
	Run(ctx context.Context) error
}

// RunUntilCleanup runs r on a goroutine of its own until the test ends;
// the test's cleanup cancels it and waits for Run to return.
func RunUntilCleanup(t testing.TB, r Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Snapshotter is what Flush flushes, such as an *aggregator.Aggregator.
type Snapshotter interface {
	Snapshot(ctx context.Context, now time.Time) (*model.Snapshot, error)
}

// Flush takes s's snapshot as a flush one second from now would (every
// sample handed over before the call is in it) and fails the test on an
// error.
func Flush(t testing.TB, s Snapshotter) *model.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// Latencies returns n lognormal latencies, in milliseconds, drawn from r:
// a median of 50 ms and a standard deviation of sigma in log space (at
// sigma 1, about 1 ms to 2.3 s).
func Latencies(r *rand.Rand, n int, sigma float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.Exp(math.Log(50) + sigma*r.NormFloat64())
	}
	return vs
}

// CheckRel reports an error, naming what, when got is further than tol
// (relative: 0.02 is 2%) from the exact value want.
func CheckRel(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if err := math.Abs(got-want) / math.Abs(want); !(err <= tol) {
		t.Errorf("%s %g, exact %g: off by %.2f%%, want at most %g%%", what, got, want, 100*err, 100*tol)
	}
}

// Sums maps every Graphite name received (tags included) to the sum of its
// values over all the lines received so far; lines whose value does not
// parse are left out.
func (g *Graphite) Sums() map[string]float64 {
	out := map[string]float64{}
	for _, p := range g.Points() {
		if v, err := strconv.ParseFloat(p.Value, 64); err == nil {
			out[p.Name] += v
		}
	}
	return out
}
