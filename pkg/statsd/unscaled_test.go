package statsd

import "testing"

// TestUnscaled: h and d timers are marked Unscaled, ms timers and every
// other type not (statsd_exporter divides only ms by 1000), and the mark
// does not outlive its line.
func TestUnscaled(t *testing.T) {
	var m Metric
	for _, c := range []struct {
		line     string
		unscaled bool
	}{
		{"a:1|h", true}, {"a:1|ms", false}, {"a:1:2|d|@0.5", true}, {"a:1|c", false}, {"a:1|h|#k:v", true}, {"a:1|g", false},
	} {
		if err := m.Parse([]byte(c.line)); err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if m.Type != Timer && c.unscaled || m.Unscaled != c.unscaled {
			t.Errorf("%s: type %v, Unscaled %v, want %v", c.line, m.Type, m.Unscaled, c.unscaled)
		}
	}
}
