// Package stdout is the default backend: one readable line per aggregate on
// standard output, events and service checks too. It is meant for trying
// garner out and for debugging, not for machines to parse.
//
// Line format (fields separated by spaces, tags as k=v after ';'):
//
//	counter <name>[;tags][;host=<source>] value=<sum> per_second=<rate> [time=<unix seconds>]
//	gauge   <name>... value=<v> [time=<unix seconds>]
//	set     <name>... count=<unique values>
//	timer   <name>... count=.. count_ps=.. lower=.. upper=.. mean=.. median=.. std=.. sum=.. sum_squares=.. <percentiles>
//	timer   <name>... le=<bound>:<count> ... (gsd_histogram timers)
//	event   title=.. text=.. host=.. tags=.. ...
//
// time= is there only for a counter or gauge of a past flush interval
// (timestamps = "honor"): that interval's end. Every other line is for the
// flush's time.
package stdout

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "stdout"

// Backend writes to an io.Writer. Safe for concurrent use.
type Backend struct {
	mu sync.Mutex
	w  *bufio.Writer
}

var (
	_ backends.Backend            = (*Backend)(nil)
	_ backends.ServiceCheckSender = (*Backend)(nil)
)

// Options configures the backend. It has no config keys; start from
// DefaultOptions.
type Options struct {
	// Out is where the lines go. Default os.Stdout; nil = os.Stdout.
	Out io.Writer
	// BufferSize is the write buffer in bytes, flushed at the end of each
	// flush. Default 64 KiB; 0 = bufio's default (4 KiB).
	BufferSize int
}

// DefaultOptions returns what garner runs the stdout backend with.
func DefaultOptions() Options { return Options{Out: os.Stdout, BufferSize: 64 << 10} }

// New returns a backend writing to opts.Out.
func New(opts Options) *Backend {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	return &Backend{w: bufio.NewWriterSize(opts.Out, opts.BufferSize)}
}

// Name implements backends.Backend.
func (b *Backend) Name() string { return Name }

func appendSeries(dst []byte, kind string, s *model.Series) []byte {
	dst = append(dst, kind...)
	dst = append(dst, ' ')
	dst = append(dst, s.Name...)
	for _, t := range s.Tags {
		dst = append(dst, ';')
		if k, v, ok := strings.Cut(t, ":"); ok {
			dst = append(dst, k...)
			dst = append(dst, '=')
			dst = append(dst, v...)
		} else {
			dst = append(dst, "unnamed="...)
			dst = append(dst, t...)
		}
	}
	if s.Source != "" && !s.HasTag("host:") {
		dst = append(dst, ";host="...)
		dst = append(dst, s.Source...)
	}
	return dst
}

func appendField(dst []byte, name string, v float64) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=')
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendTime appends " time=<unix seconds>" for a point of a past interval
// (at != 0).
func appendTime(dst []byte, at int64) []byte {
	if at == 0 {
		return dst
	}
	dst = append(dst, " time="...)
	return strconv.AppendInt(dst, at/int64(time.Second), 10)
}

// SendMetrics writes one line per series.
func (b *Backend) SendMetrics(_ context.Context, s *model.Snapshot) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var line []byte
	write := func() {
		line = append(line, '\n')
		_, _ = b.w.Write(line)
	}
	for i := range s.Counters {
		c := &s.Counters[i]
		line = appendSeries(line[:0], "counter", &c.Series)
		line = appendField(line, "value", c.Value)
		line = appendField(line, "per_second", c.PerSecond)
		line = appendTime(line, c.At)
		write()
	}
	for i := range s.Gauges {
		g := &s.Gauges[i]
		line = appendSeries(line[:0], "gauge", &g.Series)
		line = appendField(line, "value", g.Value)
		line = appendTime(line, g.At)
		write()
	}
	for i := range s.Sets {
		st := &s.Sets[i]
		line = appendSeries(line[:0], "set", &st.Series)
		line = appendField(line, "count", float64(st.Count()))
		write()
	}
	for i := range s.Timers {
		t := &s.Timers[i]
		line = appendSeries(line[:0], "timer", &t.Series)
		if t.Histogram != nil {
			for _, bk := range t.Histogram {
				line = append(line, " le="...)
				line = append(line, model.FormatBound(bk.Le)...)
				line = append(line, ':')
				line = strconv.AppendUint(line, bk.Count, 10)
			}
		} else {
			for _, st := range model.TimerStats {
				if !s.Disabled.Has(st.Sub) {
					line = appendField(line, st.Name, st.Value(t))
				}
			}
			for _, p := range t.Percentiles {
				line = appendField(line, p.Name, p.Value)
			}
		}
		write()
	}
	return b.w.Flush()
}

// SendEvent writes the event on one line.
func (b *Backend) SendEvent(_ context.Context, e *model.Event) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = fmt.Fprintf(b.w, "event title=%q text=%q date=%d host=%q source=%q priority=%s alert_type=%s aggregation_key=%q source_type=%q tags=%q\n",
		e.Title, e.Text, e.DateHappened, e.Hostname, e.Source, e.Priority, e.AlertType, e.AggregationKey, e.SourceTypeName, strings.Join(e.Tags, ","))
	return b.w.Flush()
}

// SendServiceCheck writes the service check on one line.
func (b *Backend) SendServiceCheck(_ context.Context, c *model.ServiceCheck) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, _ = fmt.Fprintf(b.w, "service_check name=%q status=%s timestamp=%d host=%q source=%q message=%q tags=%q\n",
		c.Name, c.Status, c.Timestamp, c.Hostname, c.Source, c.Message, strings.Join(c.Tags, ","))
	return b.w.Flush()
}
