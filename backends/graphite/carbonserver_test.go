package graphite_test

import "github.com/garner-metrics/garner/pkg/garnertest"

// Helpers over the points a real carbon-cache (garnertest.Carbon) stored.

type point = garnertest.WhisperPoint

func sum(pts []point) float64 {
	var s float64
	for _, p := range pts {
		s += p.V
	}
	return s
}

// nonZero keeps the points whose value is not 0 (idle series are re-sent as 0).
func nonZero(pts []point) []point {
	var out []point
	for _, p := range pts {
		if p.V != 0 {
			out = append(out, p)
		}
	}
	return out
}

// changes is the value sequence with consecutive repeats collapsed.
func changes(pts []point) []float64 {
	var out []float64
	for _, p := range pts {
		if len(out) == 0 || out[len(out)-1] != p.V {
			out = append(out, p.V)
		}
	}
	return out
}

func valueAt(pts []point, ts int64) (float64, bool) {
	for _, p := range pts {
		if p.TS == ts {
			return p.V, true
		}
	}
	return 0, false
}
