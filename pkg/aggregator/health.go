package aggregator

import "fmt"

// ShardsRunning returns how many shard goroutines are running and how many
// there are. Safe for concurrent use; for health checks.
func (a *Aggregator) ShardsRunning() (running, total int) {
	return int(a.running.Load()), len(a.shards)
}

// CheckShards returns an error unless every shard goroutine is running. A
// shard that is alive but stuck shows in the flush check instead: a flush
// waits for every shard.
func (a *Aggregator) CheckShards() error {
	running, total := a.ShardsRunning()
	if running != total {
		return fmt.Errorf("%d of %d shards running", running, total)
	}
	return nil
}
