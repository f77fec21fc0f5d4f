package flush

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/garnertest"
	"github.com/garner-metrics/garner/pkg/model"
)

func TestEventBounds(t *testing.T) {
	cases := []struct {
		name                    string
		opts                    EventOptions
		events                  []*model.Event
		checks                  []*model.ServiceCheck
		wantEvents, wantChecks  int
		wantQueueFull, wantLong float64
	}{
		{
			name:       "under the bounds",
			opts:       EventOptions{QueueLength: 4, MaxLength: 10},
			events:     []*model.Event{{Title: "t", Text: "123456789"}},
			checks:     []*model.ServiceCheck{{Name: "c", Message: "0123456789"}},
			wantEvents: 1, wantChecks: 1,
		},
		{
			name:     "title plus text over the length bound",
			opts:     EventOptions{QueueLength: 4, MaxLength: 10},
			events:   []*model.Event{{Title: "title", Text: "text12"}, {Title: strings.Repeat("x", 11)}, {Title: "ok"}},
			wantLong: 2, wantEvents: 1,
		},
		{
			name:     "service check message over the length bound",
			opts:     EventOptions{QueueLength: 4, MaxLength: 10},
			checks:   []*model.ServiceCheck{{Name: "c", Message: strings.Repeat("m", 11)}},
			wantLong: 1,
		},
		{
			name:       "zero length bound is unbounded",
			opts:       EventOptions{QueueLength: 4},
			events:     []*model.Event{{Title: strings.Repeat("x", 1<<20)}},
			wantEvents: 1,
		},
		{
			name:          "queue full",
			opts:          EventOptions{QueueLength: 2, MaxLength: 100},
			events:        []*model.Event{{Title: "1"}, {Title: "2"}, {Title: "3"}},
			checks:        []*model.ServiceCheck{{Name: "4"}},
			wantQueueFull: 2, wantEvents: 2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Timeout = time.Second
			rec := &recorder{}
			reg := prometheus.NewRegistry()
			e := NewEvents(tc.opts, []backends.Backend{rec}, garnertest.QuietLog(), reg)
			// Queue everything before Run: the queue bound is what is tested.
			for _, ev := range tc.events {
				e.Event(ev)
			}
			for _, c := range tc.checks {
				e.ServiceCheck(c)
			}
			if got := testutil.ToFloat64(e.queueFull); got != tc.wantQueueFull {
				t.Errorf("queue_full drops = %v, want %v", got, tc.wantQueueFull)
			}
			if got := testutil.ToFloat64(e.tooLong); got != tc.wantLong {
				t.Errorf("too_long drops = %v, want %v", got, tc.wantLong)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // Run delivers what is queued, then returns
			if err := e.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if len(rec.events) != tc.wantEvents || len(rec.checks) != tc.wantChecks {
				t.Errorf("delivered %d events, %d checks; want %d, %d", len(rec.events), len(rec.checks), tc.wantEvents, tc.wantChecks)
			}
			if n, err := testutil.GatherAndCount(reg, "garner_events_dropped_total", "garner_events_queued"); err != nil || n != 3 {
				t.Errorf("self-metrics: %d series, %v; want both drop reasons and the queue gauge", n, err)
			}
		})
	}
}
