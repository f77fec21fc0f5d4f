package forwarder

import (
	"fmt"

	"github.com/garner-metrics/garner/backends/httpsend"
)

// compressor compresses request bodies with httpsend's Compressor: deflate
// (zlib format, as gostatsd sends and expects), zstd or none. Safe for
// concurrent use.
type compressor struct {
	v3, v2 *httpsend.Compressor
}

// newCompressor takes compression-type and compression-level (0 fastest ..
// 9 smallest). zstd is for v3 only: v2 requests are deflated at the same
// level (gostatsd does not take zstd).
func newCompressor(kind string, level int) (*compressor, error) {
	var c httpsend.Compression
	switch kind {
	case "none":
		c = httpsend.None
	case "zlib", "":
		c = httpsend.Deflate
	case "zstd":
		c = httpsend.Zstd
	default:
		return nil, fmt.Errorf("compression %q: want zlib, zstd or none", kind)
	}
	level = max(level, 1) // httpsend's 0 is the algorithm's default; ours is the fastest
	v3, err := httpsend.NewCompressor(c, level)
	if err != nil {
		return nil, err
	}
	v2 := v3
	if c == httpsend.Zstd {
		if v2, err = httpsend.NewCompressor(httpsend.Deflate, level); err != nil {
			return nil, err
		}
	}
	return &compressor{v3: v3, v2: v2}, nil
}

// compress returns a new slice with raw compressed for a request body, and
// its encoding.
func (c *compressor) compress(raw []byte, v2 bool) ([]byte, httpsend.Compression, error) {
	z := c.v3
	if v2 {
		z = c.v2
	}
	body, err := z.Compress(raw)
	return body, z.Compression(), err
}

// contentEncoding is the Content-Encoding header of a body: the forwarder
// says identity rather than nothing, as gostatsd does.
func contentEncoding(c httpsend.Compression) string {
	if c == httpsend.None {
		return "identity"
	}
	return string(c)
}
