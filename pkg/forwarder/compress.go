package forwarder

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Content encodings of request bodies.
const (
	encIdentity = "identity"
	encDeflate  = "deflate" // zlib format, as gostatsd sends and expects
	encZstd     = "zstd"
)

// compressor compresses request bodies. Safe for concurrent use.
type compressor struct {
	kind  string // zlib | zstd | none
	level int    // 0..9

	mu   sync.Mutex
	buf  bytes.Buffer
	zw   *zlib.Writer
	zstd *zstd.Encoder
}

func newCompressor(kind string, level int) (*compressor, error) {
	c := &compressor{kind: kind, level: level}
	zl := level
	if zl == 0 {
		zl = zlib.BestSpeed
	}
	zw, err := zlib.NewWriterLevel(&c.buf, zl)
	if err != nil {
		return nil, fmt.Errorf("zlib level %d: %w", level, err)
	}
	c.zw = zw
	if kind == "zstd" {
		zlevel := zstd.SpeedDefault
		switch {
		case level <= 2:
			zlevel = zstd.SpeedFastest
		case level >= 9:
			zlevel = zstd.SpeedBestCompression
		case level >= 6:
			zlevel = zstd.SpeedBetterCompression
		}
		c.zstd, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zlevel), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
	}
	return c, nil
}

// compress returns a new slice with raw compressed for a request body, and
// its Content-Encoding. v2 requests never use zstd (gostatsd does not take
// it): they fall back to deflate.
func (c *compressor) compress(raw []byte, v2 bool) ([]byte, string, error) {
	switch {
	case c.kind == "none":
		return bytes.Clone(raw), encIdentity, nil
	case c.kind == "zstd" && !v2:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.zstd.EncodeAll(raw, make([]byte, 0, len(raw)/4+64)), encZstd, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(raw); err != nil {
		return nil, "", fmt.Errorf("cannot deflate: %w", err)
	}
	if err := c.zw.Close(); err != nil {
		return nil, "", fmt.Errorf("cannot deflate: %w", err)
	}
	return bytes.Clone(c.buf.Bytes()), encDeflate, nil
}

// decompress undoes compress (for the v3 → v2 conversion of a queued batch).
// The size is bounded by the caller's own encoder, not by outside input.
func decompress(body []byte, encoding string) ([]byte, error) {
	switch encoding {
	case encIdentity, "":
		return body, nil
	case encZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(body, nil)
	case encDeflate:
		r, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if _, err := out.ReadFrom(r); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown content encoding %q", encoding)
}
