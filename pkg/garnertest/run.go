package garnertest

import (
	"context"
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
