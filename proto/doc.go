// Package proto holds garner's forwarding protocol definitions and the code
// generated from them:
//
//   - gostatsd.proto → package pb: version 2 (/v2/raw, /v2/event),
//     wire-compatible with atlassian/gostatsd;
//   - garner_v3.proto → package garnerpb: garner's version 3 (/v3/raw,
//     /v3/event).
//
// The generated .pb.go files are committed. After editing a .proto file run
// go generate ./proto (needs protoc); TestGeneratedUpToDate fails when the
// committed code differs from what the .proto files generate.
package proto

//go:generate sh generate.sh
