package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zlib"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/proto/garnerpb"
	"github.com/garner-metrics/garner/proto/pb"
)

// garner-load bench-ingest: garner as the aggregator of a fleet. N
// simulated forwarders POST deflated /v2/raw (gostatsd's format) or
// /v3/raw bodies, each of C counters (value 1) and T timers of V values,
// at a fixed rate of bodies/s over all forwarders; garner flushes to the
// Graphite listener every second and the flushed counts are compared with
// what was accepted (202), exactly.

type ingestOptions struct {
	Protos       []string // runs, in order
	Proto        string   // of the current run: v2 | v3
	Forwarders   int
	Counters     int
	Timers       int
	TimerValues  int
	BodiesPerSec float64

	bench benchOptions // garner, durations, out, commit
}

// ingestReport is the outcome of one bench-ingest run.
type ingestReport struct {
	Proto                           string
	Bodies, Accepted, Refused, Late int64 // requests; late: started over 1s behind schedule
	Seconds                         float64
	SeriesSent, SeriesAccepted      int64   // per accepted body: counters + timers
	CounterWant, CounterGot         int64   // flushed counter totals
	TimerWant, TimerGot             int64   // flushed timer counts
	P50, P99, Max                   float64 // request latency, ms
	GarnerCPU, LoadCPU              float64 // seconds
	PeakRSS                         int64
	Notes                           []string
}

func parseIngestFlags(args []string, stderr io.Writer) (*ingestOptions, error) {
	o := &ingestOptions{}
	fs := newFlagSet("garner-load bench-ingest", "Usage: garner-load bench-ingest [flags]\n\nRuns garner as an aggregator (enable-ingestion) flushing to a Graphite listener of its own,\nPOSTs forwarded bodies to it and reports series/s accepted, garner's CPU per series, request\nlatency, peak RSS and whether the flushed totals are exact.\n\n", stderr)
	fs.StringSliceVar(&o.Protos, "proto", []string{"v2"}, "v2 (POST /v2/raw, gostatsd's format) or v3 (POST /v3/raw, garner's, a batch id per body); v2,v3 = a run of each, a row each")
	fs.IntVar(&o.Forwarders, "forwarders", 10, "Simulated forwarders, each with its own connection and one request in flight")
	fs.IntVar(&o.Counters, "counters", 1000, "Counters per body (value 1 each)")
	fs.IntVar(&o.Timers, "timers", 100, "Timers per body")
	fs.IntVar(&o.TimerValues, "timer-values", 10, "Values per timer")
	rate := fs.String("bodies", "300", "Bodies per second over all forwarders")
	b := &o.bench
	b.garnerFlags(fs)
	b.runFlags(fs, 20*time.Second, time.Second, "bench-ingest")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var err error
	if o.BodiesPerSec, err = strconv.ParseFloat(*rate, 64); err != nil || o.BodiesPerSec <= 0 {
		return nil, fmt.Errorf("--bodies %q: want a positive number of bodies per second", *rate)
	}
	switch {
	case slices.ContainsFunc(o.Protos, func(p string) bool { return p != "v2" && p != "v3" }) || len(o.Protos) == 0:
		return nil, fmt.Errorf("--proto %q: want v2, v3 or v2,v3", o.Protos)
	case o.Forwarders < 1 || o.Counters < 0 || o.Timers < 0 || o.TimerValues < 1 || o.Counters+o.Timers == 0:
		return nil, errors.New("--forwarders and --timer-values must be at least 1, --counters and --timers not negative and not both 0")
	}
	return o, b.validate()
}

// idDigits is the width of a v3 batch id's number: ids are patched into
// one marshalled body (batch_id, field 1, comes first), not re-marshalled.
const idDigits = 16

// rawBody is forwarder f's message, uncompressed; a v3 body's batch id is
// at raw[2:2+len(idPrefix)+idDigits].
func (o *ingestOptions) rawBody(f int) []byte {
	tags := []string{"env:bench", "forwarder:" + strconv.Itoa(f)}
	vals := make([]float64, o.TimerValues)
	for i := range vals {
		vals[i] = float64(i)
	}
	var m proto.Message
	if o.Proto == "v3" {
		b := &garnerpb.RawBatch{BatchId: []byte(idPrefix + strings.Repeat("0", idDigits))}
		for i := range o.Counters {
			b.Counters = append(b.Counters, &garnerpb.Counter{Name: "garnerload.c.s" + strconv.Itoa(i), Tags: tags, Value: 1})
		}
		for i := range o.Timers {
			b.Timers = append(b.Timers, &garnerpb.Timer{Name: "garnerload.ms.s" + strconv.Itoa(i), Tags: tags, Values: vals, SampleCount: float64(len(vals))})
		}
		m = b
	} else {
		key := "env:bench,forwarder:" + strconv.Itoa(f)
		b := &pb.RawMessageV2{Counters: map[string]*pb.CounterTagV2{}, Timers: map[string]*pb.TimerTagV2{}}
		for i := range o.Counters {
			b.Counters["garnerload.c.s"+strconv.Itoa(i)] = &pb.CounterTagV2{TagMap: map[string]*pb.RawCounterV2{key: {Tags: tags, Value: 1}}}
		}
		for i := range o.Timers {
			b.Timers["garnerload.ms.s"+strconv.Itoa(i)] = &pb.TimerTagV2{TagMap: map[string]*pb.RawTimerV2{key: {Tags: tags, Values: vals, SampleCount: float64(len(vals))}}}
		}
		m = b
	}
	raw, err := proto.Marshal(m)
	if err != nil {
		panic(err) // the messages above always marshal
	}
	return raw
}

const idPrefix = "garner-load-"

// bodyMaker deflates one forwarder's bodies, patching a new batch id into
// each v3 body.
type bodyMaker struct {
	raw []byte
	v3  bool
	buf bytes.Buffer
	zw  *zlib.Writer
}

func (m *bodyMaker) body(id uint64) []byte {
	if m.v3 {
		digits := strconv.AppendUint(nil, id, 10)
		at := 2 + len(idPrefix) + idDigits - len(digits)
		copy(m.raw[at:], digits)
	}
	m.buf.Reset()
	if m.zw == nil {
		m.zw = zlib.NewWriter(&m.buf)
	} else {
		m.zw.Reset(&m.buf)
	}
	_, _ = m.zw.Write(m.raw)
	_ = m.zw.Close()
	return m.buf.Bytes()
}

// load runs the forwarders against url until the duration passes and
// returns the report's request figures.
func (o *ingestOptions) load(ctx context.Context, url string) *ingestReport {
	rep := &ingestReport{Proto: o.Proto}
	var mu sync.Mutex
	var lat []float64
	var ids atomic.Uint64
	interval := time.Duration(float64(time.Second) * float64(o.Forwarders) / o.BodiesPerSec)
	start := time.Now()
	end := start.Add(o.bench.Duration)
	var wg sync.WaitGroup
	for f := range o.Forwarders {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
			defer client.CloseIdleConnections()
			mk := &bodyMaker{raw: o.rawBody(f), v3: o.Proto == "v3"}
			v2body := mk.body(0) // v2 bodies carry no id: deflated once
			due := start.Add(interval * time.Duration(f) / time.Duration(o.Forwarders))
			var mine []float64
			var sent, ok, refused, late int64
			for ; due.Before(end) && ctx.Err() == nil; due = due.Add(interval) {
				if d := time.Until(due); d > 0 {
					sleep(ctx, d)
				} else if -d > time.Second {
					late++
				}
				body := v2body
				if o.Proto == "v3" {
					body = mk.body(ids.Add(1))
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					continue
				}
				req.Header.Set("Content-Type", "application/x-protobuf")
				req.Header.Set("Content-Encoding", "deflate")
				t0 := time.Now()
				resp, err := client.Do(req)
				sent++
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1e3)
				if err == nil && resp.StatusCode == http.StatusAccepted {
					ok++
				} else {
					refused++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			rep.Bodies += sent
			rep.Accepted += ok
			rep.Refused += refused
			rep.Late += late
			mu.Unlock()
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rep.P50, rep.P99, rep.Max = q(0.5), q(0.99), q(1)
	per := int64(o.Counters + o.Timers)
	rep.SeriesSent, rep.SeriesAccepted = rep.Bodies*per, rep.Accepted*per
	rep.CounterWant = rep.Accepted * int64(o.Counters)
	rep.TimerWant = rep.Accepted * int64(o.Timers*o.TimerValues)
	return rep
}
