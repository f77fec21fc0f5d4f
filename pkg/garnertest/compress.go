package garnertest

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// Deflate compresses b as a body sent with Content-Encoding: deflate (zlib,
// as gostatsd's and garner's forwarders send it).
func Deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	_, _ = w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DecodedBody reads r's body and undoes its Content-Encoding: none, gzip,
// deflate (a zlib stream), snappy (the block format) or zstd. It uses the
// compression libraries directly, not garner's httpsend, so a test of what
// garner sends checks garner's encoding against a decoder of its own.
func DecodedBody(r *http.Request) ([]byte, error) {
	enc := r.Header.Get("Content-Encoding")
	var body io.Reader = r.Body
	var err error
	switch enc {
	case "", "snappy": // snappy's block format needs the whole body
	case "gzip":
		body, err = gzip.NewReader(r.Body)
	case "deflate":
		body, err = zlib.NewReader(r.Body)
	case "zstd":
		var d *zstd.Decoder
		if d, err = zstd.NewReader(r.Body); err == nil {
			defer d.Close()
			body = d
		}
	default:
		return nil, fmt.Errorf("unexpected Content-Encoding %q", enc)
	}
	var out []byte
	if err == nil {
		out, err = io.ReadAll(body)
	}
	if err == nil && enc == "snappy" {
		out, err = snappy.Decode(nil, out)
	}
	if err != nil {
		return nil, fmt.Errorf("%s body: %w", cmp.Or(enc, "read"), err)
	}
	return out, nil
}
