// Package ratelog is garner's one rate limiter for log lines. Whatever can
// happen per packet, per line or per request is counted in a metric and
// logged through a Limiter, so a flood of bad input costs a few log lines a
// minute, each saying how many like it were suppressed since the last one.
package ratelog

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// SuppressedField is the log field that carries how many lines a Limiter
// refused since the line before.
const SuppressedField = "suppressed"

// Limiter is a token bucket of log lines: it lets burst lines through at
// once and then one line per 1/rate. Safe for concurrent use. A nil Limiter,
// or one with a rate of 0, lets nothing through.
type Limiter struct {
	mu         sync.Mutex
	rate       float64 // tokens per second
	burst      float64
	tokens     float64
	last       time.Time
	suppressed int
	now        func() time.Time // for tests
}

// New allows burst lines at once, then perSecond lines a second.
func New(perSecond float64, burst int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	return &Limiter{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: time.Now(), now: time.Now}
}

// Every allows burst lines at once, then burst lines per period: the same
// average as "burst per period" without a cliff at each period's start.
func Every(period time.Duration, burst int) *Limiter {
	if period <= 0 {
		period = time.Second
	}
	if burst < 1 {
		burst = 1
	}
	return New(float64(burst)/period.Seconds(), burst)
}

// Allow reports whether one more line may be logged now and, when it may,
// how many lines were refused since the last one let through.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	if l == nil || l.rate <= 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.tokens += now.Sub(l.last).Seconds() * l.rate
	if l.tokens > l.burst {
		l.tokens = l.burst
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// Entry returns log with the suppressed count added when the limiter lets a
// line through, or nil when it does not:
//
//	if e := lim.Entry(log.WithField("reason", r)); e != nil {
//		e.Warn("skipping bad line")
//	}
func (l *Limiter) Entry(log logrus.FieldLogger) *logrus.Entry {
	ok, suppressed := l.Allow()
	if !ok {
		return nil
	}
	e := log.WithFields(logrus.Fields{})
	if suppressed > 0 {
		e = e.WithField(SuppressedField, suppressed)
	}
	return e
}
