#!/usr/bin/python3
"""Reference gRPC echo server (python3-grpcio) for the client integration tests.

No .proto files: the methods use identity (de)serializers, so requests and
responses are raw bytes.

  /echo.Echo/Unary         echo the request
  /echo.Echo/ServerStream  request = 4-byte big-endian N; reply with N messages,
                           message i being i as 4-byte big-endian
  /echo.Echo/ClientStream  reply with the concatenation of all requests
  /echo.Echo/Bidi          echo each request as it arrives
  /echo.Echo/Sleep         sleep 2 s (or until cancelled), then echo
  /echo.Echo/Fail          abort with INVALID_ARGUMENT, "bad \u2713 100%"
  /echo.Echo/Shutdown      reply, then stop the server with a 5 s grace
                           (the server sends GOAWAY)

Every method echoes request metadata "x-echo" into the initial metadata and
"x-echo-bin" into the trailing metadata.

Prints "PORT <n>" on stdout once listening (use --port 0 for a free port).
"""

import argparse
import signal
import struct
import sys
import threading
import time
from concurrent import futures

import grpc


def echo_metadata(context):
    md = dict(context.invocation_metadata())
    if "x-echo" in md:
        context.send_initial_metadata((("x-echo", md["x-echo"]),))
    if "x-echo-bin" in md:
        context.set_trailing_metadata((("x-echo-bin", md["x-echo-bin"]),))


def unary(request, context):
    echo_metadata(context)
    return request


def server_stream(request, context):
    echo_metadata(context)
    if len(request) != 4:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "want a 4-byte count")
    (n,) = struct.unpack(">I", request)
    for i in range(n):
        if not context.is_active():
            return
        yield struct.pack(">I", i)


def client_stream(request_iterator, context):
    echo_metadata(context)
    return b"".join(request_iterator)


def bidi(request_iterator, context):
    echo_metadata(context)
    for req in request_iterator:
        yield req


def sleep(request, context):
    echo_metadata(context)
    end = time.monotonic() + 2.0
    while time.monotonic() < end and context.is_active():
        time.sleep(0.02)
    return request


def fail(request, context):
    echo_metadata(context)
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad \u2713 100%")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    stopping = threading.Event()

    def shutdown(request, context):
        echo_metadata(context)
        stopping.set()
        return request

    ident = dict(request_deserializer=None, response_serializer=None)
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **ident),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep, **ident),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, **ident),
        "Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, **ident),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        print("could not bind %s:%d" % (args.host, args.port), file=sys.stderr)
        return 1
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    print("PORT %d" % port, flush=True)
    while not stopping.wait(0.1):
        pass
    server.stop(5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
