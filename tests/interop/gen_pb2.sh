#!/bin/sh
# gen_pb2.sh OUT_DIR: generate the Python message modules the interop suites
# import (grpc.testing, grpc.health.v1, grpc.reflection.v1/v1alpha, and our
# own tidewatch.v1) into OUT_DIR, which is replaced atomically. OUT_DIR is a
# build-tree directory: generated code is never committed.
#
# Environment (all optional):
#   PROTOC             protoc binary (default: protoc on PATH)
#   TW_GRPC_PROTO_DIR  gRPC's .proto files (default /usr/share/grpc-proto, Debian grpc-proto)
#   TW_PROTO_DIR       our .proto root (default: <repo>/proto)
#   TW_PROTOBUF_PROTO_DIR  google/protobuf/*.proto root (default /usr/include)
#
# No grpc_tools: the suites build stubs with channel.unary_unary() & co.
set -eu

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
protoc=${PROTOC:-protoc}
grpc_dir=${TW_GRPC_PROTO_DIR:-/usr/share/grpc-proto}
tw_dir=${TW_PROTO_DIR:-$here/../../proto}
pb_dir=${TW_PROTOBUF_PROTO_DIR:-/usr/include}

for f in grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto \
         grpc/health/v1/health.proto grpc/reflection/v1alpha/reflection.proto \
         grpc/reflection/v1/reflection.proto; do
  if [ ! -f "$grpc_dir/$f" ]; then
    echo "gen_pb2.sh: $grpc_dir/$f missing (install Debian package grpc-proto)" >&2
    exit 1
  fi
done

parent=$(dirname "$out")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.py.XXXXXX")
tmp=$(cd "$tmp" && pwd)
trap 'rm -rf "$tmp"' EXIT

"$protoc" --python_out="$tmp" -I"$grpc_dir" \
  grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto \
  grpc/health/v1/health.proto grpc/reflection/v1alpha/reflection.proto \
  grpc/reflection/v1/reflection.proto

if ls "$tw_dir"/tidewatch/v1/*.proto >/dev/null 2>&1; then
  tw_dir=$(cd "$tw_dir" && pwd)
  incs="-I$tw_dir -I$grpc_dir"
  [ -d "$pb_dir/google/protobuf" ] && incs="$incs -I$pb_dir"
  # shellcheck disable=SC2086
  (cd "$tw_dir" && "$protoc" --python_out="$tmp" $incs tidewatch/v1/*.proto)
fi

touch "$tmp/.stamp"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
