#!/bin/sh
# Regenerates the Go code from the .proto files in this directory:
#   go generate ./proto        (or: sh proto/generate.sh [output-dir])
# Needs protoc on PATH (Debian: apt-get install protobuf-compiler).
# protoc-gen-go is built from the google.golang.org/protobuf version pinned in
# go.mod, so the generated code matches the runtime library.
set -eu
cd "$(dirname "$0")"
out="${1:-.}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
mkdir -p "$out"
protoc --plugin=protoc-gen-go="$tmp/protoc-gen-go" \
  --go_out="$out" --go_opt=module=github.com/garner-metrics/garner/proto \
  gostatsd.proto garner_v3.proto
