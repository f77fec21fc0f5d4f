package forwarder

import (
	"github.com/cespare/xxhash/v2"

	"github.com/garner-metrics/garner/pkg/model"
)

// Series are spread over the upstreams by rendezvous (highest random weight)
// hashing: a series goes to the upstream with the highest score(series,
// upstream). Every forwarder computes the same scores (the hashes are fixed,
// not seeded per process), so a series lands on the same aggregator whoever
// forwards it; adding or removing one upstream moves only the series whose
// highest score was, or becomes, that upstream's.

// seriesHash hashes a series key (name, tags, source) with buf as scratch; it
// returns the grown buffer for reuse.
func seriesHash(buf []byte, s *model.Series) (uint64, []byte) {
	buf = append(buf[:0], s.Name...)
	buf = append(buf, 0)
	for i, t := range s.Tags {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, t...)
	}
	buf = append(buf, 0)
	buf = append(buf, s.Source...)
	return xxhash.Sum64(buf), buf
}

// upstreamHash is an upstream's fixed identity in the scores.
func upstreamHash(id string) uint64 { return mix(xxhash.Sum64String(id)) }

// score is the weight of a series on an upstream.
func score(series, upstream uint64) uint64 { return mix(series ^ upstream) }

// mix is the splitmix64 finaliser: every input bit affects every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// choose returns the index in hashes of the upstream with the highest score
// among those for which ok is true (all when ok is nil), or -1 if none is.
func choose(series uint64, hashes []uint64, ok []bool) int {
	best, bestScore := -1, uint64(0)
	for i, h := range hashes {
		if ok != nil && !ok[i] {
			continue
		}
		if s := score(series, h); best < 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}
