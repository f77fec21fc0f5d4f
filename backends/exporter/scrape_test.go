package exporter

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/garner-metrics/garner/pkg/model"
)

const scrapeMappings = testMappings + `
- match: "odd.*"
  name: "odd_values"
  help: "Help with a \\ backslash\nand a newline."
  labels:
    quote: 'say "hi" \ there'
    nl: "a\nb"
    which: "$1"
`

// sampleState fills f with every type, odd label values and odd floats.
func sampleState(t *testing.T, f *fixture) {
	f.send(t, 0, model.Snapshot{
		Counters: []model.Counter{
			{Series: ser("test.dispatcher.p.send.ok", "env:prod"), Value: 3},
			{Series: ser("test.dispatcher.q.send.fail", "env:prod"), Value: 1e21},
			{Series: ser("odd.c", `tag:back\slash`), Value: 0.1},
			{Series: ser("plain.counter"), Value: 1},
		},
		Gauges: []model.Gauge{
			{Series: ser("g.minf"), Value: math.Inf(-1)},
			{Series: ser("g.nan"), Value: math.NaN()},
			{Series: ser("g.inf"), Value: math.Inf(1)},
			{Series: ser("g.neg"), Value: -1},
			{Series: ser("g.zero"), Value: 0},
			{Series: ser("g.small", "k:v"), Value: 1.5e-7},
		},
		Sets: []model.Set{{Series: ser("users.unique"), Members: map[string]struct{}{"a": {}}}},
		Timers: []model.Timer{
			{Series: ser("api.request.home"), Values: []float64{5, 50, 500, 5000}, SampledCount: 4},
			{Series: ser("api.request.away", "env:x"), Values: []float64{0.5}, SampledCount: 1},
			{Series: ser("api.summary.home"), Values: []float64{100, 200}, SampledCount: 2},
			{Series: ser("plain.timer"), Values: []float64{1, 2, 3}, SampledCount: 3},
			{Series: ser("classic.a"), Values: []float64{0.5, 1, 5, 10, 2000}, SampledCount: 5},
			{Series: ser("classic.b", `q:"x"`), Values: []float64{0}, SampledCount: 1},
		},
	})
}

func serve(t *testing.T, f *fixture, accept, encoding string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	f.e.scrape.ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("scrape: %d %s", w.Code, w.Body)
	}
	return w
}

// TestTextMatchesExpfmt: the direct text writer writes what client_golang's
// encoder writes for the same families, byte for byte.
func TestTextMatchesExpfmt(t *testing.T) {
	f := newFixture(t, scrapeMappings)
	sampleState(t, f)
	got := serve(t, f, "", "")
	if ct := got.Header().Get("Content-Type"); ct != string(expfmt.NegotiateAccept(http.Header{}, expfmt.DefaultAcceptedFormats()...)) {
		t.Errorf("Content-Type %q", ct)
	}
	fams, err := f.e.gather()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	enc := expfmt.NewEncoder(&want, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range fams {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if len(fams) < 13 {
		t.Fatalf("only %d families in the sample", len(fams))
	}
	if got.Body.String() != want.String() {
		t.Errorf("text differs from expfmt's\n--- got\n%s\n--- want\n%s", got.Body, want.String())
	}
	for _, s := range []string{`odd_values{nl="a\nb",quote="say \"hi\" \\ there",tag="back\\slash",which="c"} 0.1`, "# HELP odd_values Help with a \\\\ backslash\\nand a newline.", "g_nan NaN", "g_minf -Inf"} {
		if !bytes.Contains(got.Body.Bytes(), []byte(s)) {
			t.Errorf("missing %q", s)
		}
	}

	// gzip when accepted, the same text once inflated.
	gz := serve(t, f, "", "deflate, gzip;q=0.8")
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", gz.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	inflated, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(inflated) != want.String() {
		t.Error("gzip body differs from the text")
	}
	if id := serve(t, f, "", "gzip;q=0"); id.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 was compressed")
	}
}

// TestProtobufMatchesClientModel: the direct protobuf writer's messages
// decode to the families client_golang builds.
func TestProtobufMatchesClientModel(t *testing.T) {
	f := newFixture(t, scrapeMappings)
	sampleState(t, f)
	// Formats other than text and delimited protobuf go to client_golang.
	const protoText = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text`
	if got := serve(t, f, protoText, ""); !bytes.Contains(got.Body.Bytes(), []byte(`"api_request_seconds"`)) ||
		!strings.Contains(got.Header().Get("Content-Type"), "encoding=text") {
		t.Errorf("protobuf text: %s %.200s", got.Header().Get("Content-Type"), got.Body)
	}
	for _, accept := range []string{
		`application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`,
		`application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.1`, // Prometheus
	} {
		got := serve(t, f, accept, "")
		fams, err := f.e.gather()
		if err != nil {
			t.Fatal(err)
		}
		dec := expfmt.NewDecoder(got.Body, expfmt.ResponseFormat(got.Header()))
		for i := 0; ; i++ {
			mf := &dto.MetricFamily{}
			if err := dec.Decode(mf); err == io.EOF {
				if i != len(fams) {
					t.Errorf("%s: %d families, want %d", accept, i, len(fams))
				}
				break
			} else if err != nil {
				t.Fatalf("%s: family %d: %v", accept, i, err)
			}
			if i >= len(fams) {
				t.Fatalf("%s: more families than gathered", accept)
			}
			// A summary's or histogram's state is written anew on each
			// read; nothing was observed in between, so they are equal too.
			if !proto.Equal(mf, fams[i]) {
				t.Errorf("%s: family %d:\n got %v\nwant %v", accept, i, mf, fams[i])
			}
		}
	}
}

// TestScrapeDoesNotHoldFlushes: a scraper that stops reading does not keep
// SendMetrics waiting (the series are copied, then written unlocked).
func TestScrapeDoesNotHoldFlushes(t *testing.T) {
	f := newFixture(t, testMappings)
	s := model.Snapshot{Counters: make([]model.Counter, 20000)}
	for i := range s.Counters {
		s.Counters[i] = model.Counter{Series: ser("stall.c", "i:"+strconv.Itoa(i)), Value: 1}
	}
	f.send(t, 0, s)
	req, _ := http.NewRequest("GET", "http://"+f.e.Addr()+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // read nothing: the server blocks writing
	done := make(chan struct{})
	go func() {
		f.send(t, time.Second, model.Snapshot{Counters: []model.Counter{{Series: ser("stall.c", "i:0"), Value: 1}}})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a flush waited for a stalled scrape")
	}
}

// TestClassicMatchesClientGolang: the exporter's own classic histogram
// counts as client_golang's does (le inclusive, +Inf last), and the two
// encode to the same text.
func TestClassicMatchesClientGolang(t *testing.T) {
	buckets := []float64{0.005, 0.01, 0.025, 0.1, 1, 10}
	mine := newClassic(buckets)
	theirs := prom.NewHistogram(prom.HistogramOpts{Name: "h", Help: "h", Buckets: buckets})
	for _, v := range []float64{-3, 0, 0.005, 0.0050001, 0.01, 0.02, 0.1, 0.1, 1, 9.99, 10, 10.01, 1e9} {
		mine.Observe(v)
		theirs.Observe(v)
	}
	var m dto.Metric
	if err := theirs.Write(&m); err != nil {
		t.Fatal(err)
	}
	want := m.GetHistogram()
	want.CreatedTimestamp = nil
	got := readClassic(mine, mine.appendState(nil)).dto()
	if !proto.Equal(got, want) {
		t.Errorf("classic histogram\n got %v\nwant %v", got, want)
	}
	name, help, typ := "h", "h", dto.MetricType_HISTOGRAM
	var a, b bytes.Buffer
	for buf, h := range map[*bytes.Buffer]*dto.Histogram{&a: got, &b: want} {
		if _, err := expfmt.MetricFamilyToText(buf, &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: []*dto.Metric{{Histogram: h}}}); err != nil {
			t.Fatal(err)
		}
	}
	if a.String() != b.String() || !strings.Contains(a.String(), `h_bucket{le="0.005"} 3`) {
		t.Errorf("text differs:\n%s\n%s", a.String(), b.String())
	}
}
