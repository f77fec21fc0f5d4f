package aggregator

import "math/bits"

// seriesIndex is a shard's index of the series of one type. It replaces a
// map[string]*state, whose lookups were most of a shard's CPU at high
// cardinality (cache misses: a control group, a slot, the key, then the
// state behind its pointer).
//
// Lookups hash nothing: the Batcher hashes a series key once (it needs the
// hash to choose the shard) and the record carries the hash here. Slots are
// open addressing with linear probing, 8 bytes each: the hash's top 32 bits
// (which also give the home slot, so growing and deleting never read an
// entry) and the entry's position + 1 (0 = empty). Entries hold the key, its
// hash and the state by value in fixed-size chunks: no allocation per series
// but its key, no pointer to chase from slot to state, and a state pointer
// stays valid while the index grows (chunks never move). A deleted entry's
// position is reused by the next new series; deletion shifts the following
// slots back (no tombstones).
//
// Only the owning shard's goroutine touches an index.
type seriesIndex[T any] struct {
	slots  []uint64
	shift  uint // home slot of hash h: h >> shift
	used   int  // live entries
	chunks [][]indexEntry[T]
	next   uint32   // positions handed out so far
	free   []uint32 // positions of deleted entries, for reuse
}

type indexEntry[T any] struct {
	key  string // "" = a free position (a SeriesKey is never empty)
	hash uint64
	val  T
}

const (
	indexChunkBits = 8 // entries per chunk: 256
	indexChunk     = 1 << indexChunkBits
	indexMinSlots  = 64
	slotHashMask   = uint64(0xffffffff) << 32
)

// len is the number of series in x.
func (x *seriesIndex[T]) len() int { return x.used }

func (x *seriesIndex[T]) entry(pos uint32) *indexEntry[T] {
	return &x.chunks[pos>>indexChunkBits][pos&(indexChunk-1)]
}

// get returns the state of key, whose hash is h, or nil.
func (x *seriesIndex[T]) get(key []byte, h uint64) *T {
	if x.used == 0 {
		return nil
	}
	mask := uint64(len(x.slots) - 1)
	top := h & slotHashMask
	for i := h >> x.shift; ; i = (i + 1) & mask {
		sl := x.slots[i]
		if sl == 0 {
			return nil
		}
		if sl&slotHashMask == top {
			e := x.entry(uint32(sl) - 1)
			if e.hash == h && e.key == string(key) {
				return &e.val
			}
		}
	}
}

// add makes an entry for key, whose hash is h and which is not in x, and
// returns its state, zero.
func (x *seriesIndex[T]) add(key string, h uint64) *T {
	if (x.used+1)*4 > len(x.slots)*3 { // load factor at most 3/4
		x.grow()
	}
	var pos uint32
	if n := len(x.free); n > 0 {
		pos = x.free[n-1]
		x.free = x.free[:n-1]
	} else {
		pos = x.next
		x.next++
		if int(pos>>indexChunkBits) == len(x.chunks) {
			x.chunks = append(x.chunks, make([]indexEntry[T], indexChunk))
		}
	}
	e := x.entry(pos)
	e.key, e.hash = key, h
	x.place(h&slotHashMask | uint64(pos+1))
	x.used++
	return &e.val
}

// place puts a slot value into the first empty slot from its home.
func (x *seriesIndex[T]) place(sl uint64) {
	mask := uint64(len(x.slots) - 1)
	i := sl >> x.shift
	for x.slots[i] != 0 {
		i = (i + 1) & mask
	}
	x.slots[i] = sl
}

// grow doubles the slots (or makes the first ones) and places every slot
// again; it reads no entry.
func (x *seriesIndex[T]) grow() {
	old := x.slots
	n := max(2*len(old), indexMinSlots)
	x.slots = make([]uint64, n)
	x.shift = uint(64 - bits.TrailingZeros(uint(n)))
	for _, sl := range old {
		if sl != 0 {
			x.place(sl)
		}
	}
}

// del removes the entry at pos (from all) and zeroes it, so that what its
// state pointed to can be collected.
func (x *seriesIndex[T]) del(pos uint32) {
	e := x.entry(pos)
	mask := uint64(len(x.slots) - 1)
	i := e.hash >> x.shift
	for uint32(x.slots[i]) != pos+1 {
		i = (i + 1) & mask
	}
	// Backward shift: move every following slot of the run whose home is
	// not cyclically in (i, j] into the hole, so that probes still find it.
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		home := x.slots[j] >> x.shift
		if (j-home)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	*e = indexEntry[T]{}
	x.free = append(x.free, pos)
	x.used--
}

// all yields the position and state of every entry, in position order. The
// loop body may delete the entry it is given.
func (x *seriesIndex[T]) all(yield func(pos uint32, v *T) bool) {
	for ci, c := range x.chunks {
		base := uint32(ci) << indexChunkBits
		for k := range c {
			if base+uint32(k) >= x.next {
				return
			}
			e := &c[k]
			if e.key != "" && !yield(base+uint32(k), &e.val) {
				return
			}
		}
	}
}

// firstSlot is the home slot of hash h (0 when there are no slots): the
// first read of a lookup (shard.prefetch).
func (x *seriesIndex[T]) firstSlot(h uint64) uint64 {
	if len(x.slots) == 0 {
		return 0
	}
	return x.slots[h>>x.shift]
}
