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
