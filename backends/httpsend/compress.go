package httpsend

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Compression is a request body encoding.
type Compression string

// Supported body encodings; the value is the Content-Encoding header sent
// (none sends no header).
const (
	None    Compression = ""
	Gzip    Compression = "gzip"
	Deflate Compression = "deflate" // zlib stream (RFC 1950), what HTTP calls deflate (and gostatsd sends)
	Snappy  Compression = "snappy"  // snappy block format (Prometheus remote write)
	Zstd    Compression = "zstd"
)

// ParseCompression maps a config value to a Compression: "" / "none" /
// "identity" / "false" → None, "true" → def (for boolean compress_payload keys),
// "zlib" → Deflate, and a Compression's own name (any case) → it.
func ParseCompression(s string, def Compression) (Compression, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "", "none", "identity", "false":
		return None, nil
	case "true":
		return def, nil
	case "zlib":
		return Deflate, nil
	case string(Gzip), string(Deflate), string(Snappy), string(Zstd):
		return Compression(v), nil
	}
	return None, fmt.Errorf("unknown compression %q (want none, gzip, deflate, snappy or zstd)", s)
}

// Compressor compresses request bodies with one Compression at one level.
// Safe for concurrent use: it pools its writers, and keeps one aside that
// garbage collections do not take, so a steady sender does not build a new
// writer after each one.
type Compressor struct {
	c     Compression
	newZ  func() *zState
	pool  sync.Pool // *zState
	mu    sync.Mutex
	spare *zState
}

// zState is one writer with the buffers it writes into.
type zState struct {
	w       streamWriter  // gzip, deflate
	zs      *zstd.Encoder // zstd
	sw      sliceWriter   // w's destination
	scratch []byte        // Compress's buffer
}

// NewCompressor returns a Compressor. level is 1 (fastest) to 9 (smallest)
// for gzip, deflate and zstd (zstd: 1-2 fastest, 3-5 default, 6-8 better,
// 9 best); 0 = the algorithm's default; snappy has no levels.
func NewCompressor(c Compression, level int) (*Compressor, error) {
	if level < 0 || level > 9 {
		return nil, fmt.Errorf("compression level %d: want 0 to 9", level)
	}
	z := &Compressor{c: c, newZ: func() *zState { return &zState{} }}
	switch c {
	case None, Snappy:
	case Gzip, Deflate:
		newWriter := func(lvl int) (streamWriter, error) { return zlib.NewWriterLevel(nil, lvl) }
		if c == Gzip {
			newWriter = func(lvl int) (streamWriter, error) { return gzip.NewWriterLevel(nil, lvl) }
		}
		lvl := -1 // the library's default, for both
		if level > 0 {
			lvl = level
		}
		if _, err := newWriter(lvl); err != nil {
			return nil, fmt.Errorf("%s level %d: %w", c, level, err)
		}
		z.newZ = func() *zState { w, _ := newWriter(lvl); return &zState{w: w} }
	case Zstd:
		lvl := zstd.SpeedDefault
		switch {
		case level == 0:
		case level <= 2:
			lvl = zstd.SpeedFastest
		case level >= 9:
			lvl = zstd.SpeedBestCompression
		case level >= 6:
			lvl = zstd.SpeedBetterCompression
		}
		if _, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1)); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		z.newZ = func() *zState {
			w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1))
			return &zState{zs: w}
		}
	default:
		return nil, fmt.Errorf("unknown compression %q", c)
	}
	return z, nil
}

func (z *Compressor) get() *zState {
	z.mu.Lock()
	st := z.spare
	z.spare = nil
	z.mu.Unlock()
	if st != nil {
		return st
	}
	if st, ok := z.pool.Get().(*zState); ok {
		return st
	}
	return z.newZ()
}

func (z *Compressor) put(st *zState) {
	z.mu.Lock()
	if z.spare == nil {
		z.spare, st = st, nil
	}
	z.mu.Unlock()
	if st != nil {
		z.pool.Put(st)
	}
}

// Compression returns the encoding the Compressor produces.
func (z *Compressor) Compression() Compression { return z.c }

// Append appends raw, compressed, to dst.
func (z *Compressor) Append(dst, raw []byte) ([]byte, error) {
	if z.c == None || z.c == Snappy {
		return z.appendWith(nil, dst, raw)
	}
	st := z.get()
	defer z.put(st)
	return z.appendWith(st, dst, raw)
}

func (z *Compressor) appendWith(st *zState, dst, raw []byte) ([]byte, error) {
	switch z.c {
	case Snappy:
		n := snappy.MaxEncodedLen(len(raw))
		if cap(dst)-len(dst) < n {
			dst = append(make([]byte, 0, len(dst)+n), dst...)
		}
		out := snappy.Encode(dst[len(dst):cap(dst)], raw)
		return dst[:len(dst)+len(out)], nil
	case Zstd:
		return st.zs.EncodeAll(raw, dst), nil
	case Gzip, Deflate:
		st.sw.b = dst
		defer func() { st.sw.b = nil }()
		st.w.Reset(&st.sw)
		if _, err := st.w.Write(raw); err != nil {
			return dst, fmt.Errorf("cannot compress (%s): %w", z.c, err)
		}
		if err := st.w.Close(); err != nil {
			return dst, fmt.Errorf("cannot compress (%s): %w", z.c, err)
		}
		return st.sw.b, nil
	}
	return append(dst, raw...), nil
}

// Compress returns raw compressed in a new slice of exactly its length (for
// bodies kept queued, whose memory is counted by length).
func (z *Compressor) Compress(raw []byte) ([]byte, error) {
	if z.c == None {
		return bytes.Clone(raw), nil
	}
	st := z.get()
	defer z.put(st)
	out, err := z.appendWith(st, st.scratch[:0], raw)
	if err != nil {
		return nil, err
	}
	if cap(out) <= 16<<20 {
		st.scratch = out[:0] // keep the grown buffer, unless unusually large
	}
	return bytes.Clone(out), nil
}

// Decompress undoes a Compressor (for re-encoding a queued body). The size
// is bounded by the caller's own encoder, not by outside input.
func Decompress(body []byte, c Compression) ([]byte, error) {
	switch c {
	case None:
		return body, nil
	case Snappy:
		return snappy.Decode(nil, body)
	case Zstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(body, nil)
	case Gzip, Deflate:
		var r io.Reader
		var err error
		if c == Gzip {
			r, err = gzip.NewReader(bytes.NewReader(body))
		} else {
			r, err = zlib.NewReader(bytes.NewReader(body))
		}
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		if _, err := out.ReadFrom(r); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown content encoding %q", c)
}

// streamWriter is a gzip or zlib writer.
type streamWriter interface {
	io.WriteCloser
	Reset(io.Writer)
}

// sliceWriter appends to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}
