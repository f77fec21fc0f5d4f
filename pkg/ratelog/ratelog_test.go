package ratelog

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := Every(time.Minute, 2)
	l.now = func() time.Time { return now }
	l.last = now
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := l.Allow(); ok != want {
			t.Fatalf("call %d: Allow() = %v, want %v", i, ok, want)
		}
	}
	now = now.Add(30 * time.Second) // one token back
	ok, supp := l.Allow()
	if !ok || supp != 2 {
		t.Fatalf("after 30s: Allow() = %v, %d; want true, 2", ok, supp)
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("a second line in the same instant was let through")
	}
	now = now.Add(time.Hour) // refills to burst only
	for i := 0; i < 2; i++ {
		if ok, _ := l.Allow(); !ok {
			t.Fatalf("after an hour, line %d refused", i)
		}
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("bucket refilled past its burst")
	}
}

func TestZeroAndNil(t *testing.T) {
	var l *Limiter
	if ok, _ := l.Allow(); ok {
		t.Fatal("nil limiter let a line through")
	}
	if ok, _ := New(0, 10).Allow(); ok {
		t.Fatal("rate 0 let a line through")
	}
}

func TestEntry(t *testing.T) {
	var buf bytes.Buffer
	log := logrus.New()
	log.SetOutput(&buf)
	now := time.Unix(1000, 0)
	l := Every(time.Minute, 1)
	l.now = func() time.Time { return now }
	l.last = now
	for i := 0; i < 3; i++ {
		if e := l.Entry(log.WithField("k", "v")); e != nil {
			e.Warn("hello")
		}
		now = now.Add(time.Second)
	}
	now = now.Add(time.Minute)
	if e := l.Entry(log); e != nil {
		e.Warn("again")
	}
	out := buf.String()
	if n := strings.Count(out, "hello"); n != 1 {
		t.Fatalf("%d lines logged in the first minute, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed=2") || !strings.Contains(out, "again") {
		t.Fatalf("second line does not carry suppressed=2:\n%s", out)
	}
}
