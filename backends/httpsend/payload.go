package httpsend

// Payload is a flush (or an event) cut into batches. Its methods are called
// concurrently for different batch indexes (see the package doc).
type Payload interface {
	// Batches is the number of batches; each becomes one request.
	Batches() int
	// Series is the number of series batch i carries, counted as dropped
	// if it cannot be delivered.
	Series(i int) int
	// Encode appends batch i's uncompressed body to dst. An error drops the
	// batch without sending it; an empty body is not sent.
	Encode(dst []byte, i int) ([]byte, error)
}

// Split cuts n items into batches of at most per items (per <= 0: one
// batch), each item counting as one series. encode appends the body of the
// items [lo, hi) to dst and is called concurrently for disjoint ranges.
// n == 0 is a payload of no batches, which Send sends nothing for.
func Split(n, per int, encode func(dst []byte, lo, hi int) ([]byte, error)) Payload {
	if per <= 0 || per > n {
		per = max(n, 1)
	}
	return split{n: n, per: per, encode: encode}
}

type split struct {
	n, per int
	encode func(dst []byte, lo, hi int) ([]byte, error)
}

func (s split) Batches() int { return (s.n + s.per - 1) / s.per }
func (s split) bounds(i int) (int, int) {
	lo := i * s.per
	return lo, min(lo+s.per, s.n)
}
func (s split) Series(i int) int { lo, hi := s.bounds(i); return hi - lo }
func (s split) Encode(dst []byte, i int) ([]byte, error) {
	lo, hi := s.bounds(i)
	return s.encode(dst, lo, hi)
}

// One returns a payload of a single body built by encode (an event, a
// service check), counting as series series when dropped.
func One(series int, encode func(dst []byte) ([]byte, error)) Payload {
	return one{series: series, encode: encode}
}

type one struct {
	series int
	encode func(dst []byte) ([]byte, error)
}

func (o one) Batches() int                             { return 1 }
func (o one) Series(int) int                           { return o.series }
func (o one) Encode(dst []byte, _ int) ([]byte, error) { return o.encode(dst) }
