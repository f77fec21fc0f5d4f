// Package null is a backend that discards everything: for benchmarks and for
// running garner only for its self-metrics.
package null

import (
	"context"

	"github.com/garner-metrics/garner/backends"
	"github.com/garner-metrics/garner/pkg/model"
)

// Name is the backend's name in the backends key.
const Name = "null"

// Backend discards what it is given. The zero value is ready to use.
type Backend struct{ backends.NoEvents }

var _ backends.Backend = Backend{}

// Name implements backends.Backend.
func (Backend) Name() string { return Name }

// SendMetrics discards s.
func (Backend) SendMetrics(context.Context, *model.Snapshot) error { return nil }
