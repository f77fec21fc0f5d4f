package proto

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// versionLine matches the tool versions in the generated header, which may
// differ between machines without the code differing.
var versionLine = regexp.MustCompile(`(?m)^// \tprotoc(-gen-go)? .*\n`)

// TestGeneratedUpToDate regenerates the Go code into a temporary directory and
// compares it with the committed files. It needs protoc: without it the test
// is skipped, except under CI=true, where it fails.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("protoc not found (apt-get install protobuf-compiler): cannot check the generated protobuf code")
		}
		t.Skip("protoc not found; install protobuf-compiler to check the generated code")
	}
	dir := t.TempDir()
	out, err := exec.Command("sh", "generate.sh", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"pb/gostatsd.pb.go", "garnerpb/garner_v3.pb.go"} {
		want, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(versionLine.ReplaceAll(got, nil), versionLine.ReplaceAll(want, nil)) {
			t.Errorf("%s is not what the .proto files generate: run go generate ./proto and commit the result", f)
		}
	}
}
