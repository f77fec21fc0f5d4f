//go:build linux

package receiver

import (
	"sync"
	"time"
)

// badLineKeep is how many recent bad lines the receivers remember for
// /debug/bad-lines, and badLineBytes how much of each.
const (
	badLineKeep  = 100
	badLineBytes = 512
)

// BadLine is one recently skipped line.
type BadLine struct {
	Time     time.Time `json:"time"`
	Receiver string    `json:"receiver"`
	Source   string    `json:"source,omitempty"`
	Reason   string    `json:"reason"`
	// Line is the start of the line as received; JSON escapes its bytes.
	Line      string `json:"line"`
	Truncated bool   `json:"truncated,omitempty"`
}

// badLines is a bounded ring of the most recent bad lines. Safe for
// concurrent use; touched only for bad lines.
type badLines struct {
	mu   sync.Mutex
	ring [badLineKeep]BadLine
	next int
	n    int
}

func (b *badLines) add(receiver, source, reason string, line []byte) {
	bl := BadLine{Time: time.Now(), Receiver: receiver, Source: source, Reason: reason}
	if len(line) > badLineBytes {
		line, bl.Truncated = line[:badLineBytes], true
	}
	bl.Line = string(line)
	b.mu.Lock()
	b.ring[b.next] = bl
	b.next = (b.next + 1) % badLineKeep
	b.n = min(b.n+1, badLineKeep)
	b.mu.Unlock()
}

// RecentBadLines returns the most recent bad lines, newest first (at most
// 100). Safe for concurrent use.
func (l *Lines) RecentBadLines() []BadLine {
	b := &l.bad
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]BadLine, 0, b.n)
	for i := 1; i <= b.n; i++ {
		out = append(out, b.ring[(b.next-i+badLineKeep)%badLineKeep])
	}
	return out
}
