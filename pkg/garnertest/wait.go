package garnertest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10ms until it holds, and fails the test (naming
// what it waited for) when timeout passes first. The timeout is a bound on a
// condition, not a guess at how long something takes: make it generous.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Receive waits up to timeout for a value from ch (or for ch to be closed)
// and returns it; when timeout passes first it fails the test with failure,
// which says what did not happen. As with WaitFor, the timeout bounds
// something that must happen: make it generous.
func Receive[T any](t testing.TB, failure string, timeout time.Duration, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("%s (waited %s)", failure, timeout)
		var zero T
		return zero
	}
}
