// Package hll is a HyperLogLog cardinality sketch for statsd sets
// (set-aggregation = "hll"): the count of distinct members in bounded
// memory, mergeable across processes.
//
// Members are hashed with XXH64 (seed 0), a specified algorithm that
// gives the same 64-bit hash for the same bytes in every process on every
// machine: sketches built by different forwarders merge into the sketch of
// the union of their members. At precision p the top p bits of the hash
// pick one of m = 2^p registers, which keeps the largest rank (position of
// the first 1 bit, from 1) seen in the remaining 64-p bits.
//
// A sketch starts sparse: it keeps the distinct hashes themselves (an
// open-addressing table at most 3/4 full), so its count is exact (up to
// 64-bit hash collisions) and a small set costs 11 to 21 bytes per member.
// Once the table would take more memory than the registers (beyond 1536
// members at precision 14) it turns dense: m one-byte registers (16 KiB at
// the default precision 14), whatever the traffic. Registers
// are a function of the hashes seen, so sparse and dense sketches merge
// exactly: merging is the union of hashes, or the register-wise maximum.
//
// The dense estimate is Ertl's improved estimator ("New cardinality
// estimation algorithms for HyperLogLog sketches", 2017), which corrects
// the raw HyperLogLog estimate's bias at small and large counts without
// empirical tables (it subsumes linear counting at small counts, as
// HLL++ uses). Its relative standard error is 1.04/sqrt(m): 0.81% at
// precision 14.
//
// A Sketch is not safe for concurrent use.
package hll

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Precision limits and default. A sketch of precision p has 2^p registers.
const (
	MinPrecision     = 4
	MaxPrecision     = 18
	DefaultPrecision = 14
)

// ErrInvalid is a sketch off the wire that does not hold together.
var ErrInvalid = errors.New("invalid hyperloglog sketch")

// Sketch is a HyperLogLog sketch. The zero value is not usable: call New.
type Sketch struct {
	p     uint8
	zero  bool     // sparse: the hash 0 was seen (0 marks a free slot in table)
	n     int      // sparse: distinct hashes
	table []uint64 // sparse: the hashes, open addressing; nil when empty or dense
	dense []uint8  // 2^p registers once dense
}

// New returns an empty sparse sketch of precision p (clamped to
// MinPrecision..MaxPrecision).
func New(p int) *Sketch {
	return &Sketch{p: uint8(max(MinPrecision, min(p, MaxPrecision)))}
}

// Hash is the hash of a member (XXH64, seed 0), the same in every process.
func Hash(member []byte) uint64 { return xxhash.Sum64(member) }

// HashString is Hash for a member held in a string.
func HashString(member string) uint64 { return xxhash.Sum64String(member) }

// Add adds a member.
func (s *Sketch) Add(member []byte) { s.AddHash(Hash(member)) }

// AddString adds a member held in a string.
func (s *Sketch) AddString(member string) { s.AddHash(HashString(member)) }

// Precision is the sketch's precision p.
func (s *Sketch) Precision() int { return int(s.p) }

// Sparse reports whether the sketch still keeps its hashes (exact count).
func (s *Sketch) Sparse() bool { return s.dense == nil }

// maxTable is the most slots of a sparse sketch's hash table: as many
// bytes as the registers (at least 8 slots). It turns dense when the table
// would grow beyond, at 3/4 of it full: 1536 members at precision 14.
func (s *Sketch) maxTable() int { return max(8, (1<<s.p)/8) }

// AddHash adds a member by its hash.
func (s *Sketch) AddHash(h uint64) {
	if s.dense != nil {
		s.addDense(h)
		return
	}
	if !s.insert(h) {
		return
	}
	if len(s.table) > 0 && 4*s.n > 3*len(s.table) {
		if 2*len(s.table) > s.maxTable() {
			s.toDense()
			return
		}
		s.grow(2 * len(s.table))
	}
}

// insert adds h to the sparse table and reports whether it was new.
func (s *Sketch) insert(h uint64) bool {
	if h == 0 {
		if s.zero {
			return false
		}
		s.zero = true
		s.n++
		return true
	}
	if s.table == nil {
		s.table = make([]uint64, 8)
	}
	mask := uint64(len(s.table) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch s.table[i] {
		case h:
			return false
		case 0:
			s.table[i] = h
			s.n++
			return true
		}
	}
}

func (s *Sketch) grow(size int) {
	old := s.table
	s.table, s.n = make([]uint64, size), 0
	if s.zero {
		s.n = 1
	}
	for _, h := range old {
		if h != 0 {
			s.insert(h)
		}
	}
}

// eachHash calls fn with every hash of a sparse sketch.
func (s *Sketch) eachHash(fn func(h uint64)) {
	if s.zero {
		fn(0)
	}
	for _, h := range s.table {
		if h != 0 {
			fn(h)
		}
	}
}

// register is the register index and rank of hash h at precision p.
func register(h uint64, p uint8) (int, uint8) {
	idx := h >> (64 - p)
	w := h<<p | 1<<(p-1) // the guard bit caps the rank at 64-p+1
	return int(idx), uint8(bits.LeadingZeros64(w) + 1)
}

func (s *Sketch) addDense(h uint64) {
	i, r := register(h, s.p)
	if r > s.dense[i] {
		s.dense[i] = r
	}
}

func (s *Sketch) toDense() {
	s.dense = make([]uint8, 1<<s.p)
	s.eachHash(s.addDense)
	s.table, s.n, s.zero = nil, 0, false
}

// Reduce lowers the sketch's precision to p, if it is higher: what a
// merge with a coarser sketch does. Sparse sketches lose nothing; the
// registers of a dense one are folded (the index bits dropped become the
// top of the rank's bits), exactly what hashing at p would have given.
func (s *Sketch) Reduce(p int) {
	if p >= int(s.p) || p < MinPrecision {
		return
	}
	np := uint8(p)
	if s.dense == nil {
		s.p = np
		if len(s.table) > s.maxTable() {
			s.toDense()
		}
		return
	}
	d := s.p - np
	out := make([]uint8, 1<<np)
	for i, r := range s.dense {
		if r == 0 {
			continue
		}
		low := uint64(i) & (1<<d - 1)
		nr := d + r
		if low != 0 {
			nr = d - uint8(bits.Len64(low)) + 1
		}
		if j := i >> d; nr > out[j] {
			out[j] = nr
		}
	}
	s.p, s.dense = np, out
}

// Merge adds o's members to s (o is unchanged). A coarser o lowers s's
// precision to o's first; a finer one is folded to s's on the way.
func (s *Sketch) Merge(o *Sketch) {
	if o.p < s.p {
		s.Reduce(int(o.p))
	}
	if o.dense == nil {
		o.eachHash(s.AddHash)
		return
	}
	if s.dense == nil {
		s.toDense()
	}
	src := o.dense
	if o.p > s.p {
		c := o.Clone()
		c.Reduce(int(s.p))
		src = c.dense
	}
	for i, r := range src {
		if r > s.dense[i] {
			s.dense[i] = r
		}
	}
}

// Clone returns a copy of s.
func (s *Sketch) Clone() *Sketch {
	return &Sketch{p: s.p, zero: s.zero, n: s.n, table: slices.Clone(s.table), dense: slices.Clone(s.dense)}
}

// Estimate is the estimated number of distinct members: exact while
// sparse, within 1.04/sqrt(2^p) (one standard error) once dense.
func (s *Sketch) Estimate() uint64 {
	if s.dense == nil {
		return uint64(s.n)
	}
	q := 64 - int(s.p)
	var c [66]float64 // registers by rank, 0..q+1
	for _, r := range s.dense {
		c[r]++
	}
	m := float64(len(s.dense))
	z := m * tau(1-c[q+1]/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + c[k])
	}
	z += m * sigma(c[0]/m)
	e := m * m / (2 * math.Ln2 * z)
	switch {
	case math.IsNaN(e) || e < 0:
		return 0
	case e >= maxEstimate: // only registers crafted off the wire get here
		return maxEstimate
	}
	return uint64(math.Round(e))
}

// sigma is Ertl's σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1), for x in [0, 1).
func sigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

// tau is Ertl's τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))²·2^-k) / 3.
func tau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// maxEstimate caps Estimate, so that it converts to an int (model.Set.Count)
// whatever the registers: 2^62, far beyond any real set.
const maxEstimate = 1 << 62

// MaxStandIns is the most made-up members StandIns gives for a dense
// sketch: a sketch off the wire can claim any count up to 2^62.
const MaxStandIns = 1 << 22

// Bytes is the memory the sketch's hashes or registers take.
func (s *Sketch) Bytes() int { return 8*len(s.table) + len(s.dense) }

// Data is a sketch in its exported form: the fields of garner.v3's
// HyperLogLog message. Exactly one of Registers (dense, 2^Precision
// bytes) and Hashes (sparse) is set, or neither for an empty sketch.
type Data struct {
	Precision int32
	Registers []byte
	Hashes    []uint64
}

// Export fills d from s: Registers shares s's registers (valid until s
// next changes), Hashes are appended to d.Hashes[:0] (its memory is
// reused).
func (s *Sketch) Export(d *Data) {
	hashes := d.Hashes[:0]
	*d = Data{Precision: int32(s.p)}
	if s.dense != nil {
		d.Registers = s.dense
		return
	}
	s.eachHash(func(h uint64) { hashes = append(hashes, h) })
	d.Hashes = hashes
}

// Validate checks d as FromData does, without building a sketch: a
// precision outside MinPrecision..MaxPrecision, registers that are not
// 2^Precision bytes or hold a rank above 64-Precision+1 are refused
// (ErrInvalid, wrapped).
func (d *Data) Validate() error {
	if d.Precision < MinPrecision || d.Precision > MaxPrecision {
		return fmt.Errorf("%w: precision %d outside %d..%d", ErrInvalid, d.Precision, MinPrecision, MaxPrecision)
	}
	if len(d.Registers) == 0 {
		return nil
	}
	if len(d.Registers) != 1<<d.Precision {
		return fmt.Errorf("%w: %d registers at precision %d, want %d", ErrInvalid, len(d.Registers), d.Precision, 1<<d.Precision)
	}
	maxRank := uint8(64 - d.Precision + 1)
	for i, r := range d.Registers {
		if r > maxRank {
			return fmt.Errorf("%w: register %d has rank %d, above %d", ErrInvalid, i, r, maxRank)
		}
	}
	return nil
}

// FromData builds a sketch from its exported form (off the wire), at most
// of precision maxPrecision (a finer one is reduced), refusing what
// Validate refuses. Hashes given beside registers are added to them. It
// copies what it keeps of d.
func FromData(d *Data, maxPrecision int) (*Sketch, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	s := New(int(d.Precision))
	if len(d.Registers) > 0 {
		s.dense = slices.Clone(d.Registers)
	}
	for _, h := range d.Hashes {
		s.AddHash(h)
	}
	s.Reduce(maxPrecision)
	return s, nil
}

// StandIns calls fn with distinct strings standing for the members, for
// a receiver that takes only members (a gostatsd upstream, a statsd
// server): while sparse, each hash in hexadecimal (exactly one string per
// distinct member, the same in every process, so a receiver's union over
// several senders is right); once dense, Estimate strings "hll:0",
// "hll:1"... (a receiver's union over several senders is then their
// largest estimate, not the union), at most MaxStandIns of them. It
// reports whether they are exact.
// The string is valid only during the call.
func (s *Sketch) StandIns(fn func(member string)) (exact bool) {
	var buf [24]byte
	if s.dense == nil {
		s.eachHash(func(h uint64) { fn(string(strconv.AppendUint(buf[:0], h, 16))) })
		return true
	}
	n := min(s.Estimate(), MaxStandIns)
	for i := uint64(0); i < n; i++ {
		b := strconv.AppendUint(append(buf[:0], "hll:"...), i, 10)
		fn(string(b))
	}
	return false
}
