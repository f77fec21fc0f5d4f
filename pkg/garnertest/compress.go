package garnertest

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zlib"
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
