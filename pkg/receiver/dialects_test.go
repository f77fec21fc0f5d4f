//go:build linux

package receiver

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
	"github.com/garner-metrics/garner/pkg/statsd"
)

// TestDialects sends each dialect through a LineHandler: the series it
// makes, or the reason it is counted as bad, and what it adds to the
// unknown-sections counter.
func TestDialects(t *testing.T) {
	cases := []struct {
		name    string
		off     statsd.TagFormats
		line    string
		series  string // counter "name|tags|source" and its value, "" = none
		value   float64
		bad     string // reason, "" = good
		unknown float64
	}{
		{"dogstatsd", 0, "req:1|c|#env:prod,az:a", "req|az:a,env:prod|10.0.0.7", 1, "", 0},
		{"influxdb", 0, "req,env=prod,az=a:1|c", "req|az:a,env:prod|10.0.0.7", 1, "", 0},
		{"librato", 0, "req#env=prod,az=a:1|c", "req|az:a,env:prod|10.0.0.7", 1, "", 0},
		{"signalfx", 0, "r[env=prod,az=a]eq:1|c", "req|az:a,env:prod|10.0.0.7", 1, "", 0},
		{"graphite", 0, "req;env=prod;az=a:1|c", "req|az:a,env:prod|10.0.0.7", 1, "", 0},
		{"influxdb off", statsd.TagInfluxDB, "req,env=prod:1|c", "reqenvprod||10.0.0.7", 1, "", 0},
		{"mixed", 0, "req,env=prod:1|c|#az:a", "", 0, "mixed_tag_styles", 0},
		{"invalid utf-8 name", 0, "re\xffq:1|c", "", 0, "invalid_utf8", 0},
		{"invalid utf-8 tag", 0, "req:1|c|#env:\xc3", "", 0, "invalid_utf8", 0},
		{"invalid utf-8 name tag", 0, "req,env=\xc3:1|c", "", 0, "invalid_utf8", 0},
		{"empty packed values", 0, "req:1::2:|c", "req||10.0.0.7", 3, "", 0},
		{"no value", 0, "req::|c", "", 0, "bad_value", 0},
		{"container, external data, cardinality", 0, "req:1|c|c:ci-1|e:it-false|card:low", "req||10.0.0.7", 1, "", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{DisabledTagFormats: tc.off})
			h.send(tc.line, "ok:1|c")
			cs := counters(h.flush())
			if cs["ok||10.0.0.7"].Value != 1 {
				t.Fatalf("the good line after it was lost: %v", cs)
			}
			if tc.series != "" && cs[tc.series].Value != tc.value {
				t.Fatalf("series %q = %v, want %v; have %v", tc.series, cs[tc.series].Value, tc.value, cs)
			}
			if tc.series == "" && len(cs) != 1 {
				t.Fatalf("a bad line made a series: %v", cs)
			}
			for _, reason := range statsd.Reasons {
				want := 0.0
				if reason == tc.bad {
					want = 1
				}
				if got := testutil.ToFloat64(h.r.cBad[reason]); got != want {
					t.Errorf("bad lines {reason=%q} = %v, want %v", reason, got, want)
				}
			}
			if got := testutil.ToFloat64(h.r.cUnknown); got != tc.unknown {
				t.Errorf("unknown sections = %v, want %v", got, tc.unknown)
			}
		})
	}
}

type eventRecorder struct {
	mu     sync.Mutex
	events []*model.Event
	checks []*model.ServiceCheck
}

func (r *eventRecorder) Event(e *model.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *eventRecorder) ServiceCheck(c *model.ServiceCheck) {
	r.mu.Lock()
	r.checks = append(r.checks, c)
	r.mu.Unlock()
}

// TestLenientEvents: an event or service check with a bad optional field
// is kept, the field counted as an unknown section; one with invalid UTF-8
// is counted as bad.
func TestLenientEvents(t *testing.T) {
	l := newLines(t, 1, Options{}, nil)
	rec := &eventRecorder{}
	l.events = rec
	r := l.NewHandler("test")
	r.HandleDatagram([]byte("_e{5,5}:title|te\\nt|d:abc|p:urgent|t:test|c:ci|e:x|card:low|#k:v\n"+
		"_sc|db.up|0|d:soon|card:high|m:fine\n_e{5,4}:t\xffle|text\n_sc|n\xff|0"), src, false)
	r.Handoff()
	if len(rec.events) != 1 || len(rec.checks) != 1 {
		t.Fatalf("kept %d events, %d service checks; want 1, 1", len(rec.events), len(rec.checks))
	}
	if e := rec.events[0]; e.Title != "title" || e.Text != "te\nt" || len(e.Tags) != 1 || e.Tags[0] != "k:v" ||
		e.Priority != model.PriorityNormal || e.AlertType != model.AlertInfo || e.DateHappened == 0 {
		t.Errorf("event %+v", e)
	}
	if c := rec.checks[0]; c.Name != "db.up" || c.Message != "fine" || c.Timestamp == 0 {
		t.Errorf("service check %+v", c)
	}
	if got := testutil.ToFloat64(r.cUnknown); got != 8 {
		t.Errorf("unknown sections = %v, want 8 (6 of the event, 2 of the check)", got)
	}
	if got := testutil.ToFloat64(r.cBad["invalid_utf8"]); got != 2 {
		t.Errorf("invalid_utf8 = %v, want 2", got)
	}
}
