package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestPoolHoldsTheCycleOnce(t *testing.T) {
	tests := []struct {
		name string
		w    Workload
	}{
		{"counters only", Workload{Prefix: "p", Types: []string{"c"}, Series: 1000, DatagramSize: 1400}},
		{"every type with tags", Workload{Prefix: "load.x", Types: []string{"c", "g", "ms", "h", "s", "d"}, Series: 37, Tags: 3, DatagramSize: 512}},
		{"one line per datagram", Workload{Prefix: "p", Types: []string{"g", "c"}, Series: 10, DatagramSize: 16}},
		{"tcp newlines", Workload{Prefix: "p", Types: []string{"c", "s"}, Series: 100, DatagramSize: 300, Newline: true}},
		{"single series", Workload{Prefix: "p", Types: []string{"ms"}, Series: 1, DatagramSize: 1400}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := buildPool(tc.w)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for d, b := range p.dgrams {
				if len(b) > tc.w.DatagramSize {
					t.Fatalf("datagram %d has %d bytes > %d", d, len(b), tc.w.DatagramSize)
				}
				if tc.w.Newline != bytes.HasSuffix(b, []byte("\n")) {
					t.Fatalf("datagram %d %q: newline-terminated = %v, want %v", d, b, !tc.w.Newline, tc.w.Newline)
				}
				ls := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				if len(ls) != p.lines(d) {
					t.Fatalf("datagram %d holds %d lines, first[] says %d", d, len(ls), p.lines(d))
				}
				if n := len(ls); n < p.minLPD || n > p.maxLPD {
					t.Fatalf("datagram %d: %d lines outside [%d, %d]", d, n, p.minLPD, p.maxLPD)
				}
				lines = append(lines, ls...)
			}
			if len(lines) != tc.w.cycleLen() {
				t.Fatalf("%d lines in the pool, want %d", len(lines), tc.w.cycleLen())
			}
			seen := map[string]bool{}
			for j, l := range lines {
				typ := tc.w.Types[j%len(tc.w.Types)]
				name := tc.w.name(typ, j/len(tc.w.Types))
				if !strings.HasPrefix(l, name+":") || !strings.Contains(l, "|"+typ) {
					t.Fatalf("line %d = %q, want %s:<value>|%s...", j, l, name, typ)
				}
				if typ == "c" && !strings.HasPrefix(l, name+":1|c") {
					t.Fatalf("counter line %q does not send 1", l)
				}
				if got := strings.Count(l, ":v"); got != tc.w.Tags {
					t.Fatalf("line %q has %d tags, want %d", l, got, tc.w.Tags)
				}
				if seen[name] {
					t.Fatalf("series %s twice in one cycle", name)
				}
				seen[name] = true
			}
		})
	}
}

func TestPoolRejects(t *testing.T) {
	tests := []struct {
		name string
		w    Workload
		want string
	}{
		{"line longer than a datagram", Workload{Prefix: "a.long.prefix", Types: []string{"c"}, Series: 10, DatagramSize: 10}, "longer than the datagram size"},
		{"no series", Workload{Prefix: "p", Types: []string{"c"}, Series: 0, DatagramSize: 100}, "series"},
		{"bad prefix", Workload{Prefix: "a:b", Types: []string{"c"}, Series: 1, DatagramSize: 100}, "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := buildPool(tc.w); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseTypes(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"c", "c", false},
		{"c, g ,ms,h,s,d", "c,g,ms,h,s,d", false},
		{"c,x", "", true},
		{"c,c", "", true},
		{",", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTypes(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !tc.wantErr && strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v, want %s", got, tc.want)
			}
		})
	}
}

// TestSpanCounts checks the closed-form totals against walking the lines.
func TestSpanCounts(t *testing.T) {
	w := Workload{Prefix: "p", Types: []string{"c", "g", "ms"}, Series: 7}
	L := w.cycleLen()
	tests := []struct {
		name  string
		spans []span
	}{
		{"nothing", []span{{0, 0}}},
		{"part of a cycle", []span{{0, 5}}},
		{"from the middle, wrapping", []span{{17, 9}}},
		{"several cycles and a bit", []span{{4, int64(3*L + 11)}}},
		{"exactly one cycle from the middle", []span{{10, int64(L)}}},
		{"several senders", []span{{0, 40}, {7, 3}, {20, int64(2*L + 1)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			byType := make([]int64, len(w.Types))
			bySeries := map[string]int64{}
			for _, s := range tc.spans {
				for k := int64(0); k < s.n; k++ {
					j := (s.start + int(k)) % L
					ti := j % len(w.Types)
					byType[ti]++
					bySeries[fmt.Sprint(ti, "/", j/len(w.Types))]++
				}
			}
			for ti := range w.Types {
				if got := w.typeCount(tc.spans, ti); got != byType[ti] {
					t.Errorf("type %s: %d, want %d", w.Types[ti], got, byType[ti])
				}
				for idx := 0; idx < w.Series; idx++ {
					if got, want := w.seriesCount(tc.spans, ti, idx), bySeries[fmt.Sprint(ti, "/", idx)]; got != want {
						t.Errorf("type %s series %d: %d, want %d", w.Types[ti], idx, got, want)
					}
				}
			}
		})
	}
}
