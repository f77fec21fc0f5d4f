//go:build race

package forwarder

// raceEnabled: under the race detector sync.Pool drops items at random, so
// allocation counts of pooled paths are not stable.
const raceEnabled = true
