package garnertest

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Latencies returns n lognormal latencies, in milliseconds, drawn from r:
// a median of 50 ms and a standard deviation of sigma in log space (at
// sigma 1, about 1 ms to 2.3 s).
func Latencies(r *rand.Rand, n int, sigma float64) []float64 {
	vs := make([]float64, n)
	for i := range vs {
		vs[i] = math.Exp(math.Log(50) + sigma*r.NormFloat64())
	}
	return vs
}

// CheckRel reports an error, naming what, when got is further than tol
// (relative: 0.02 is 2%) from the exact value want.
func CheckRel(t testing.TB, what string, got, want, tol float64) {
	t.Helper()
	if err := math.Abs(got-want) / math.Abs(want); !(err <= tol) {
		t.Errorf("%s %g, exact %g: off by %.2f%%, want at most %g%%", what, got, want, 100*err, 100*tol)
	}
}
