package web

import (
	"sync"
	"time"
)

// rateLimit allows n events per window; safe for concurrent use.
type rateLimit struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	start  time.Time
	used   int
}

func newRateLimit(n int, window time.Duration) *rateLimit {
	return &rateLimit{n: n, window: window}
}

func (l *rateLimit) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.start) >= l.window {
		l.start, l.used = now, 0
	}
	if l.used >= l.n {
		return false
	}
	l.used++
	return true
}
