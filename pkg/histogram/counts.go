package histogram

import "encoding/binary"

// counts is one range of buckets (positive or negative): the counters of
// the consecutive bucket indices [off, off+n), each w bytes wide (1, 2, 4
// or 8, little endian). A counter that would overflow its width widens the
// whole range, so a bucket costs one byte until it holds 256 samples: a
// typical series' few hundred buckets stay well under 1 KB.
type counts struct {
	off int32  // bucket index of the first counter
	n   int32  // counters in use; 0 = empty range
	w   uint8  // bytes per counter; 0 until the first add
	b   []byte // len n*w
}

// hi is the index of the last bucket; only for a non-empty range.
func (c *counts) hi() int32 { return c.off + c.n - 1 }

func (c *counts) get(j int32) uint64 {
	p := c.b[int(j)*int(c.w):]
	switch c.w {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(p))
	case 4:
		return uint64(binary.LittleEndian.Uint32(p))
	}
	return binary.LittleEndian.Uint64(p)
}

func (c *counts) set(j int32, v uint64) {
	if v > maxOf(c.w) {
		c.widen(v)
	}
	p := c.b[int(j)*int(c.w):]
	switch c.w {
	case 1:
		p[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(p, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(p, uint32(v))
	default:
		binary.LittleEndian.PutUint64(p, v)
	}
}

func maxOf(w uint8) uint64 {
	if w >= 8 {
		return ^uint64(0)
	}
	return 1<<(8*uint(w)) - 1
}

// widen makes every counter wide enough to hold v.
func (c *counts) widen(v uint64) {
	w := max(c.w, 1)
	for v > maxOf(w) {
		w *= 2
	}
	if w == c.w {
		return
	}
	old := *c
	c.w = w
	c.b = make([]byte, int(c.n)*int(w))
	for j := int32(0); j < c.n; j++ {
		c.set(j, old.get(j))
	}
}

// add adds k to bucket index i, which must lie in the range (see cover).
func (c *counts) add(i int32, k uint64) {
	j := i - c.off
	c.set(j, c.get(j)+k)
}

// cover makes the range include bucket index i, growing it with zero
// counters. The caller has checked the resulting span is allowed.
func (c *counts) cover(i int32) {
	if c.w == 0 {
		c.w = 1
	}
	if c.n == 0 {
		c.off, c.n = i, 1
		c.b = append(c.b[:0], make([]byte, c.w)...)
		return
	}
	lo, hi := min(c.off, i), max(c.hi(), i)
	if lo == c.off && hi == c.hi() {
		return
	}
	n := hi - lo + 1
	w := int(c.w)
	if lo == c.off && int(n)*w <= cap(c.b) { // growth to the right, in place
		old := len(c.b)
		c.b = c.b[:int(n)*w]
		clear(c.b[old:])
		c.n = n
		return
	}
	nb := make([]byte, int(n)*w, int(n)*w+growSlack(n)*w)
	copy(nb[int(c.off-lo)*w:], c.b)
	c.off, c.n, c.b = lo, n, nb
}

// growSlack is the spare capacity, in counters, a grown range gets; it
// keeps growth to the right from copying at every new bucket.
func growSlack(n int32) int { return int(min(n/4+4, 64)) }

// downscale merges every 2^d adjacent buckets into one: index i becomes
// i>>d (floor), as a scale d lower maps it.
func (c *counts) downscale(d int32) {
	if d <= 0 || c.n == 0 {
		return
	}
	old := *c
	old.b = append([]byte(nil), c.b...)
	lo, hi := old.off>>d, old.hi()>>d
	c.off, c.n = lo, hi-lo+1
	c.b = c.b[:int(c.n)*int(c.w)]
	clear(c.b)
	for j := int32(0); j < old.n; j++ {
		if v := old.get(j); v != 0 {
			c.add((old.off+j)>>d, v)
		}
	}
}

// spanAfter is the number of buckets the range would span, with index i
// included, at a scale d lower.
func (c *counts) spanAfter(i int32, d int32) int64 {
	if c.n == 0 {
		return 1
	}
	lo, hi := min(c.off, i)>>d, max(c.hi(), i)>>d
	return int64(hi) - int64(lo) + 1
}
