#!/usr/bin/python3
"""Reference grpc.testing.TestService server in python3-grpcio.

Implements the server features of gRPC's doc/interop-test-descriptions.md
(EmptyCall, UnaryCall, CacheableUnaryCall, StreamingInputCall,
StreamingOutputCall, FullDuplexCall, HalfDuplexCall, CompressedRequest,
CompressedResponse, Echo Status, Echo Metadata, ResponseParameters.interval_us;
UnimplementedCall and UnimplementedService are deliberately absent), plus
grpc.health.v1.Health and server reflection (grpc.reflection.v1 and v1alpha).

It is the known-good peer for tests/interop/interop_client.py and
test_grpc_basics.py, and for our C client later.

CompressedRequest needs the per-message compressed flag, which grpcio's
Python server API does not expose. So by default the public port is a
transparent HTTP/2-sniffing relay (interop_common.SniffingRelay) in front of
the grpcio server on a private loopback port; the relay records whether each
request message arrived compressed. With --no-relay, expect_compressed
cannot be checked and is accepted as is (a warning is printed).

Usage: py_test_server.py --port N [--host 127.0.0.1] [--no-relay]
Prints "PORT <n>" (the listening port; useful with --port 0) and flushes.
SIGTERM/SIGINT: graceful stop, exit 0.
"""

import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from google.protobuf import descriptor_pool  # noqa: E402

import interop_common as ic  # noqa: E402

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


class TestService:
    def __init__(self, pb, ledger):
        self.pb = pb
        self.m = pb.messages
        self.ledger = ledger
        self._warned = False

    # -- helpers ------------------------------------------------------------
    def _payload(self, ptype, size, ctx):
        if ptype != self.m.COMPRESSABLE:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type %d" % ptype)
        if size < 0:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "negative size %d" % size)
        return self.m.Payload(type=self.m.COMPRESSABLE, body=bytes(size))

    @staticmethod
    def _echo_metadata(ctx):
        md = dict((k, v) for k, v in ctx.invocation_metadata())
        if ECHO_INITIAL in md:
            ctx.send_initial_metadata(((ECHO_INITIAL, md[ECHO_INITIAL]),))
        if ECHO_TRAILING in md:
            ctx.set_trailing_metadata(((ECHO_TRAILING, md[ECHO_TRAILING]),))

    @staticmethod
    def _maybe_echo_status(req, ctx):
        if req.HasField("response_status") and req.response_status.code != 0:
            code = ic.status_from_int(req.response_status.code) or grpc.StatusCode.UNKNOWN
            ctx.abort(code, req.response_status.message)

    def _check_expected_compression(self, raw, expect, ctx):
        """Pop the wire record for this message (always, to keep the ledger
        in step) and fail INVALID_ARGUMENT if compression was expected but
        the message arrived uncompressed."""
        compressed = self.ledger.lookup(raw) if self.ledger else None
        if not expect:
            return
        if compressed is None:
            if not self._warned:
                print("py_test_server: cannot verify expect_compressed without the relay",
                      file=sys.stderr, flush=True)
                self._warned = True
            return
        if not compressed:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "expected a compressed request, got an uncompressed one")

    @staticmethod
    def _sleeper(ctx):
        """Return sleep(seconds) -> bool that returns False early when the
        call ends (cancelled, deadline, client gone)."""
        done = threading.Event()
        ctx.add_callback(done.set)

        def sleep(seconds):
            if seconds > 0:
                done.wait(seconds)
            return not done.is_set() and ctx.is_active()
        return sleep

    # -- methods ------------------------------------------------------------
    def EmptyCall(self, req, ctx):
        self._echo_metadata(ctx)
        return self.pb.empty.Empty()

    def UnaryCall(self, raw, ctx):
        req = self.m.SimpleRequest.FromString(raw)
        self._echo_metadata(ctx)
        self._check_expected_compression(raw, req.expect_compressed.value, ctx)
        if req.response_compressed.value:
            ctx.set_compression(grpc.Compression.Gzip)
        self._maybe_echo_status(req, ctx)
        resp = self.m.SimpleResponse(payload=self._payload(req.response_type, req.response_size, ctx))
        if req.fill_server_id:
            resp.server_id = "py_test_server"
        return resp

    def CacheableUnaryCall(self, req, ctx):
        self._echo_metadata(ctx)
        body = str(time.time_ns()).encode()
        return self.m.SimpleResponse(payload=self.m.Payload(type=self.m.COMPRESSABLE, body=body))

    def StreamingInputCall(self, raw_iter, ctx):
        self._echo_metadata(ctx)
        total = 0
        for raw in raw_iter:
            req = self.m.StreamingInputCallRequest.FromString(raw)
            self._check_expected_compression(raw, req.expect_compressed.value, ctx)
            total += len(req.payload.body)
        return self.m.StreamingInputCallResponse(aggregated_payload_size=total)

    def _respond(self, params, ptype, ctx, sleep):
        """Yield one StreamingOutputCallResponse per ResponseParameters,
        sleeping interval_us before each; compressed only where asked
        (the call itself was set to gzip by the caller)."""
        for p in params:
            if not sleep(p.interval_us / 1e6):
                return
            if not p.compressed.value:
                ctx.disable_next_message_compression()
            yield self.m.StreamingOutputCallResponse(payload=self._payload(ptype, p.size, ctx))

    def StreamingOutputCall(self, req, ctx):
        self._echo_metadata(ctx)
        if any(p.compressed.value for p in req.response_parameters):
            ctx.set_compression(grpc.Compression.Gzip)
        sleep = self._sleeper(ctx)
        yield from self._respond(req.response_parameters, req.response_type, ctx, sleep)
        self._maybe_echo_status(req, ctx)

    def FullDuplexCall(self, req_iter, ctx):
        # Which later request asks for compression is unknown up front, and
        # grpcio fixes the call's algorithm with the initial metadata: gzip
        # for the call, disabled per message unless requested.
        ctx.set_compression(grpc.Compression.Gzip)
        self._echo_metadata(ctx)
        sleep = self._sleeper(ctx)
        for req in req_iter:
            self._maybe_echo_status(req, ctx)
            yield from self._respond(req.response_parameters, req.response_type, ctx, sleep)

    def HalfDuplexCall(self, req_iter, ctx):
        ctx.set_compression(grpc.Compression.Gzip)
        self._echo_metadata(ctx)
        reqs = list(req_iter)
        sleep = self._sleeper(ctx)
        for req in reqs:
            self._maybe_echo_status(req, ctx)
            yield from self._respond(req.response_parameters, req.response_type, ctx, sleep)

    def handler(self):
        m, e = self.m, self.pb.empty
        raw = None  # request_deserializer=None: the handler gets the bytes
        return grpc.method_handlers_generic_handler("grpc.testing.TestService", {
            "EmptyCall": grpc.unary_unary_rpc_method_handler(
                self.EmptyCall, e.Empty.FromString, e.Empty.SerializeToString),
            "UnaryCall": grpc.unary_unary_rpc_method_handler(
                self.UnaryCall, raw, m.SimpleResponse.SerializeToString),
            "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(
                self.CacheableUnaryCall, m.SimpleRequest.FromString,
                m.SimpleResponse.SerializeToString),
            "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
                self.StreamingInputCall, raw, m.StreamingInputCallResponse.SerializeToString),
            "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(
                self.StreamingOutputCall, m.StreamingOutputCallRequest.FromString,
                m.StreamingOutputCallResponse.SerializeToString),
            "FullDuplexCall": grpc.stream_stream_rpc_method_handler(
                self.FullDuplexCall, m.StreamingOutputCallRequest.FromString,
                m.StreamingOutputCallResponse.SerializeToString),
            "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(
                self.HalfDuplexCall, m.StreamingOutputCallRequest.FromString,
                m.StreamingOutputCallResponse.SerializeToString),
        })


class Health:
    def __init__(self, pb, services):
        self.h = pb.health
        serving = self.h.HealthCheckResponse.SERVING
        self.status = {"": serving}
        for s in services:
            self.status[s] = serving

    def Check(self, req, ctx):
        if req.service not in self.status:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % req.service)
        return self.h.HealthCheckResponse(status=self.status[req.service])

    def Watch(self, req, ctx):
        yield self.h.HealthCheckResponse(
            status=self.status.get(req.service, self.h.HealthCheckResponse.SERVICE_UNKNOWN))
        done = threading.Event()
        ctx.add_callback(done.set)
        done.wait()  # statuses never change here; hold the stream until it ends

    def handler(self):
        h = self.h
        return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.Check, h.HealthCheckRequest.FromString,
                h.HealthCheckResponse.SerializeToString),
            "Watch": grpc.unary_stream_rpc_method_handler(
                self.Watch, h.HealthCheckRequest.FromString,
                h.HealthCheckResponse.SerializeToString),
        })


class Reflection:
    """ServerReflectionInfo for one protocol version (module = the v1 or
    v1alpha reflection_pb2). Answers list_services, file_by_filename,
    file_containing_symbol, file_containing_extension and
    all_extension_numbers_of_type from the default descriptor pool. A file is
    sent together with its transitive dependencies unless send_deps is
    False (then clients must ask for them by file name)."""

    def __init__(self, module, services, send_deps=True):
        self.r = module
        self.services = sorted(services)
        self.send_deps = send_deps
        self.pool = descriptor_pool.Default()
        self.full_name = module.DESCRIPTOR.services_by_name["ServerReflection"].full_name

    def _files(self, fd):
        out, seen, stack = [], set(), [fd]
        while stack:
            f = stack.pop()
            if f.name in seen:
                continue
            seen.add(f.name)
            out.append(f.serialized_pb)
            if self.send_deps:
                stack.extend(f.dependencies)
        return self.r.ServerReflectionResponse(
            file_descriptor_response=self.r.FileDescriptorResponse(file_descriptor_proto=out))

    def _error(self, code, msg):
        return self.r.ServerReflectionResponse(
            error_response=self.r.ErrorResponse(error_code=code.value[0], error_message=msg))

    def _answer(self, req):
        which = req.WhichOneof("message_request")
        try:
            if which == "list_services":
                return self.r.ServerReflectionResponse(
                    list_services_response=self.r.ListServiceResponse(
                        service=[self.r.ServiceResponse(name=s) for s in self.services]))
            if which == "file_by_filename":
                return self._files(self.pool.FindFileByName(req.file_by_filename))
            if which == "file_containing_symbol":
                return self._files(self.pool.FindFileContainingSymbol(req.file_containing_symbol))
            if which == "file_containing_extension":
                ext = req.file_containing_extension
                msg = self.pool.FindMessageTypeByName(ext.containing_type)
                return self._files(self.pool.FindExtensionByNumber(msg, ext.extension_number).file)
            if which == "all_extension_numbers_of_type":
                msg = self.pool.FindMessageTypeByName(req.all_extension_numbers_of_type)
                nums = sorted(x.number for x in self.pool.FindAllExtensions(msg))
                return self.r.ServerReflectionResponse(
                    all_extension_numbers_response=self.r.ExtensionNumberResponse(
                        base_type_name=msg.full_name, extension_number=nums))
        except KeyError as e:
            return self._error(grpc.StatusCode.NOT_FOUND, "not found: %s" % e)
        return self._error(grpc.StatusCode.UNIMPLEMENTED, "unsupported request %r" % which)

    def Info(self, req_iter, ctx):
        for req in req_iter:
            resp = self._answer(req)
            resp.valid_host = req.host
            resp.original_request.CopyFrom(req)
            yield resp

    def handler(self):
        r = self.r
        return grpc.method_handlers_generic_handler(self.full_name, {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                self.Info, r.ServerReflectionRequest.FromString,
                r.ServerReflectionResponse.SerializeToString),
        })


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="0 = pick one (printed)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--no-relay", action="store_true",
                    help="serve grpcio directly (expect_compressed then unchecked)")
    ap.add_argument("--reflection-no-deps", action="store_true",
                    help="reflection answers a file without its dependencies")
    ap.add_argument("--py-dir", help="generated modules (default: $TW_PY_DIR, $TW_BUILD_DIR/py)")
    args = ap.parse_args()

    pb = ic.load_protos(args.py_dir)
    ledger = None if args.no_relay else ic.CompressionLedger()
    refl_services = [pb.refl_v1.DESCRIPTOR.services_by_name["ServerReflection"].full_name,
                     pb.refl_v1alpha.DESCRIPTOR.services_by_name["ServerReflection"].full_name]
    services = ["grpc.testing.TestService", "grpc.health.v1.Health"] + refl_services

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32),
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((
        TestService(pb, ledger).handler(),
        Health(pb, services).handler(),
        Reflection(pb.refl_v1, services, not args.reflection_no_deps).handler(),
        Reflection(pb.refl_v1alpha, services, not args.reflection_no_deps).handler(),
    ))
    relay = None
    if ledger is not None:
        inner = server.add_insecure_port("127.0.0.1:0")
        if not inner:
            sys.exit("py_test_server: cannot bind the inner port")
        server.start()
        try:
            relay = ic.SniffingRelay(("127.0.0.1", inner), ledger.on_message,
                                     args.host, args.port)
        except OSError as e:
            server.stop(None)
            sys.exit("py_test_server: cannot listen on %s:%d: %s" % (args.host, args.port, e))
        port = relay.port
    else:
        port = server.add_insecure_port("%s:%d" % (args.host, args.port))
        if not port:
            sys.exit("py_test_server: cannot listen on %s:%d" % (args.host, args.port))
        server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("PORT %d" % port, flush=True)
    while not stop.wait(3600):
        pass
    if relay:
        relay.close()
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
