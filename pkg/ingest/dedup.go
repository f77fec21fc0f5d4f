package ingest

import (
	"sync"
	"time"
)

// dedup remembers the batch ids applied within a window, so that a batch
// retried by a forwarder (its answer was lost, or came too late) is applied
// once. It holds at most max ids; beyond that the oldest are forgotten
// early. Safe for concurrent use.
type dedup struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[string]struct{}
	order  []dedupEntry // oldest first, from head
	head   int
}

type dedupEntry struct {
	id string
	at time.Time
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: window, max: max, seen: make(map[string]struct{})}
}

// firstTime records id and reports whether it was not seen within the
// window. An empty id (a batch without one) is always new.
//
// The id is recorded before the batch is applied: a copy that arrives while
// the first is still being applied is answered as a duplicate, not applied
// twice.
func (d *dedup) firstTime(id []byte, now time.Time) bool {
	if len(id) == 0 {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked(now)
	if _, ok := d.seen[string(id)]; ok {
		return false
	}
	k := string(id)
	d.seen[k] = struct{}{}
	d.order = append(d.order, dedupEntry{id: k, at: now})
	return true
}

// expireLocked forgets ids older than the window, and the oldest ids beyond
// max.
func (d *dedup) expireLocked(now time.Time) {
	for d.head < len(d.order) {
		e := d.order[d.head]
		if now.Sub(e.at) <= d.window && len(d.order)-d.head < d.max {
			break
		}
		delete(d.seen, e.id)
		d.order[d.head] = dedupEntry{}
		d.head++
	}
	// Compact once half of the slice is dead.
	if d.head > 1024 && d.head*2 > len(d.order) {
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order = d.order[:n]
		d.head = 0
	}
}

// len is the number of ids remembered.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}
