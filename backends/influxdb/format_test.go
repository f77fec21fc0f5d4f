package influxdb

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/garner-metrics/garner/pkg/model"
)

var flushTime = time.Unix(1700000000, 123_000_000)

func encodeAll(s *model.Snapshot, nonFinite prometheus.Counter) (string, int) {
	e := encoder{nonFinite: nonFinite}
	var dst []byte
	for k := range s.Len() {
		dst = e.appendSeries(dst, s, k)
	}
	return string(dst), e.empty
}

func TestLines(t *testing.T) {
	ser := func(name, src string, tags ...string) model.Series {
		return model.Series{Name: name, Tags: tags, Source: src}
	}
	cases := []struct {
		name      string
		snap      model.Snapshot
		want      string
		wantEmpty int
	}{
		{
			name: "counter with tags and host from the source",
			snap: model.Snapshot{Counters: []model.Counter{{Series: ser("api.req", "10.0.0.7", "env:prod", "region:us"), Value: 42, PerSecond: 4.2}}},
			want: "api.req,env=prod,host=10.0.0.7,region=us count=42,rate=4.2 1700000000123\n",
		},
		{
			name: "fractional counter stays a float",
			snap: model.Snapshot{Counters: []model.Counter{{Series: ser("c", ""), Value: 0.8, PerSecond: 0.08}}},
			want: "c count=0.8,rate=0.08 1700000000123\n",
		},
		{
			name: "host tag wins over the source",
			snap: model.Snapshot{Gauges: []model.Gauge{{Series: ser("g", "10.0.0.7", "host:web1"), Value: -3.5}}},
			want: "g,host=web1 value=-3.5 1700000000123\n",
		},
		{
			name: "bare tags are unnamed, repeated keys joined with __",
			snap: model.Snapshot{Gauges: []model.Gauge{{Series: ser("g", "", "a:2", "a:1", "zeta", "alpha", "b:x"), Value: 1}}},
			want: "g,a=1__2,b=x,unnamed=alpha__zeta value=1 1700000000123\n",
		},
		{
			name: "escaping of measurement, tag keys and values",
			snap: model.Snapshot{Gauges: []model.Gauge{{Series: ser("my name,x", "", "k y:v,1=2", `path:c:\dir\`, "e:"), Value: 1}}},
			want: `my\ name\,x,k\ y=v\,1\=2,path=c:\dir\\ value=1 1700000000123` + "\n",
		},
		{
			name: "set",
			snap: model.Snapshot{Sets: []model.Set{{Series: ser("users", ""), Members: map[string]struct{}{"a": {}, "b": {}, "c": {}}}}},
			want: "users count=3 1700000000123\n",
		},
		{
			name: "timer with percentiles and gostatsd's field names",
			snap: model.Snapshot{Timers: []model.Timer{{
				Series: ser("t", ""), Count: 4, PerSecond: 0.4, Lower: 1, Upper: 10, Mean: 4, Median: 2.5, Std: 3.5, Sum: 16, SumSquares: 110,
				Percentiles: []model.Percentile{{Name: "count_90", Value: 4}, {Name: "upper_99_9", Value: 10}},
			}}},
			want: "t lower=1,upper=10,count=4,rate=0.4,mean=4,median=2.5,stddev=3.5,sum=16,sum_squares=110,count_90=4,upper_99_9=10 1700000000123\n",
		},
		{
			name: "disabled sub-metrics are left out",
			snap: model.Snapshot{Disabled: model.SubLower | model.SubStd | model.SubSumSquares | model.SubCountPerSecond,
				Timers: []model.Timer{{Series: ser("t", ""), Count: 1, Lower: 1, Upper: 1, Mean: 1, Median: 1, Sum: 1}}},
			want: "t upper=1,count=1,mean=1,median=1,sum=1 1700000000123\n",
		},
		{
			name: "histogram timer",
			snap: model.Snapshot{Timers: []model.Timer{{Series: ser("h", "", "gsd_histogram:5_10"),
				Histogram: []model.Bucket{{Le: 5, Count: 1}, {Le: 10, Count: 2}, {Le: math.Inf(1), Count: 3}}}}},
			want: "h,gsd_histogram=5_10 le.5=1,le.10=2,le.+Inf=3 1700000000123\n",
		},
		{
			name: "non-finite fields are left out, a line with none is not written",
			snap: model.Snapshot{
				Counters: []model.Counter{{Series: ser("c", ""), Value: 1, PerSecond: math.Inf(1)}},
				Gauges:   []model.Gauge{{Series: ser("nan", ""), Value: math.NaN()}, {Series: ser("ok", ""), Value: 2}},
			},
			want:      "c count=1 1700000000123\nok value=2 1700000000123\n",
			wantEmpty: 1,
		},
		{
			name: "a past interval's counter and gauge carry its end",
			snap: model.Snapshot{
				Counters: []model.Counter{{Series: ser("c", ""), Value: 5, PerSecond: 0.5, At: time.Unix(1699999970, 0).UnixNano()}, {Series: ser("c", ""), Value: 1, PerSecond: 0.1}},
				Gauges:   []model.Gauge{{Series: ser("g", ""), Value: 7, At: time.Unix(1699999970, 0).UnixNano()}},
			},
			want: "c count=5,rate=0.5 1699999970000\nc count=1,rate=0.1 1700000000123\ng value=7 1699999970000\n",
		},
		{
			name: "large and tiny values",
			snap: model.Snapshot{Gauges: []model.Gauge{{Series: ser("big", ""), Value: 1e300}, {Series: ser("tiny", ""), Value: 1e-9}, {Series: ser("mid", ""), Value: 123456789.25}}},
			want: "big value=1e+300 1700000000123\ntiny value=1e-09 1700000000123\nmid value=123456789.25 1700000000123\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.snap.Time = flushTime
			nf := prometheus.NewCounter(prometheus.CounterOpts{Name: "x", Help: "x"})
			got, empty := encodeAll(&c.snap, nf)
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			if empty != c.wantEmpty {
				t.Errorf("empty series = %d, want %d", empty, c.wantEmpty)
			}
			if strings.Contains(c.name, "non-finite") && testutil.ToFloat64(nf) != 2 {
				t.Errorf("non-finite counter = %v, want 2", testutil.ToFloat64(nf))
			}
		})
	}
}

func TestEventLine(t *testing.T) {
	cases := []struct {
		name string
		ev   model.Event
		want string
	}{
		{
			name: "all fields",
			ev: model.Event{Title: `deploy "v2"`, Text: "line1\nline2 \\ end", DateHappened: 1700000000, Hostname: "web1",
				AggregationKey: "agg", SourceTypeName: "jenkins", Tags: []string{"env:prod"}, Source: "10.0.0.1",
				Priority: model.PriorityLow, AlertType: model.AlertError},
			want: `events,aggregationkey=agg,alerttype=error,env=prod,host=web1,priority=low,sourcetypename=jenkins title="deploy \"v2\"",text="line1\nline2 \\ end" 1700000000000` + "\n",
		},
		{
			name: "source as host, host tag wins",
			ev:   model.Event{Title: "t", Text: "x", DateHappened: 1, Source: "10.0.0.1", Tags: []string{"host:h"}},
			want: `events,alerttype=info,host=h,priority=normal title="t",text="x" 1000` + "\n",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e encoder
			if got := string(e.appendEvent(nil, &c.ev)); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	s := &model.Snapshot{Time: flushTime}
	for i := range 1000 {
		s.Counters = append(s.Counters, model.Counter{Series: model.Series{Name: "app.requests." + strconv.Itoa(i), Tags: []string{"env:prod", "region:eu"}, Source: "10.0.0.1"}, Value: float64(i), PerSecond: float64(i) / 10})
	}
	for i := range 100 {
		s.Timers = append(s.Timers, model.Timer{Series: model.Series{Name: "app.lat." + strconv.Itoa(i), Source: "10.0.0.1"}, Count: 10, Lower: 1, Upper: 100, Mean: 50.5,
			Percentiles: []model.Percentile{{Name: "upper_90", Value: 90}}})
	}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		e := encoder{}
		dst = dst[:0]
		for k := range s.Len() {
			dst = e.appendSeries(dst, s, k)
		}
	}
	b.SetBytes(int64(len(dst)))
}
