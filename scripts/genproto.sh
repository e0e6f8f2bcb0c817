#!/usr/bin/env bash
# Regenerates the Go code for api/proto/*.proto. The generated files are
# committed; run this after editing a .proto.
#
# Needs protoc (apt-get install protobuf-compiler) and the Go plugins:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
set -euo pipefail
cd "$(dirname "$0")/../api"
export PATH="$(go env GOPATH)/bin:$PATH"
protoc -I proto \
  --go_out=. --go_opt=module=github.com/nokv/nokv/api \
  --go-grpc_out=. --go-grpc_opt=module=github.com/nokv/nokv/api \
  proto/*.proto
