package garnerpb

import "github.com/garner-metrics/garner/pkg/hll"

// Data returns the sketch in pkg/hll's exported form (sharing the
// registers and hashes), for hll.FromData, which validates it. A nil x
// gives an empty sketch of precision 0, which FromData refuses.
func (x *HyperLogLog) Data() *hll.Data {
	if x == nil {
		return &hll.Data{}
	}
	return &hll.Data{Precision: int32(min(x.Precision, 1<<20)), Registers: x.Registers, Hashes: x.Hashes}
}
