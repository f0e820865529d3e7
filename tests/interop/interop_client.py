#!/usr/bin/python3
"""gRPC interop test client (python3-grpcio), after gRPC's
doc/interop-test-descriptions.md, cleartext only.

Usage:
  interop_client.py --host H --port P --test_case NAME[,NAME...]
  NAME: a case below, "all" (every case except compression) or "compression"
  (client_compressed_unary, server_compressed_unary,
  client_compressed_streaming, server_compressed_streaming).
  The doc's spellings --server_host / --server_port are accepted too.

Prints one line per case, "PASS <case> (<secs>s)" or "FAIL <case>: <reason>",
then "N passed, M failed"; exits 1 if any case failed, 2 on usage errors.

The compression cases run through an in-process HTTP/2-sniffing relay
(interop_common.SniffingRelay) because grpcio's Python API does not show the
per-message compressed flag: the relay reads it off the wire.
"""

import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402

import interop_common as ic  # noqa: E402

TIMEOUT = 10.0  # seconds, every call: a hung server fails a case, not the run
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class Failure(Exception):
    pass


def check(cond, msg, *fmt):
    if not cond:
        raise Failure(msg % fmt if fmt else msg)


def expect_rpc_error(fn, code, what):
    """Run fn(); it must raise grpc.RpcError with `code`. Returns the error."""
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, "%s: status %s (%r), want %s", what, e.code(), e.details(), code)
        return e
    raise Failure("%s: succeeded, want %s" % (what, code))


def zeros_ok(payload, size, what):
    check(len(payload.body) == size, "%s: payload is %d bytes, want %d", what,
          len(payload.body), size)
    check(payload.body.count(0) == size, "%s: payload is not all zeros", what)


class Wire:
    """A channel whose traffic goes through a SniffingRelay, with a recorder
    of the gRPC messages seen in each direction."""

    def __init__(self, host, port):
        self.recorder = ic.WireRecorder()
        self.relay = ic.SniffingRelay((host, port), self.recorder.on_message)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.relay.port)

    def flags(self, direction):
        return [m[2] for m in self.recorder.messages(direction)]

    def close(self):
        self.channel.close()
        self.relay.close()


class Client:
    def __init__(self, host, port, pb):
        self.host, self.port, self.pb = host, port, pb
        self.m = pb.messages
        self.target = "%s:%d" % (host, port) if ":" not in host else "[%s]:%d" % (host, port)
        self.channel = grpc.insecure_channel(self.target)
        test = pb.test.DESCRIPTOR.services_by_name
        self.stub = ic.Stub(self.channel, test["TestService"])
        self.unimpl = ic.Stub(self.channel, test["UnimplementedService"])
        self._wire = None

    def wire(self):
        if self._wire is None:
            self._wire = Wire(self.host, self.port)
            test = self.pb.test.DESCRIPTOR.services_by_name
            self._wire.stub = ic.Stub(self._wire.channel, test["TestService"])
        return self._wire

    def close(self):
        if self._wire:
            self._wire.close()
        self.channel.close()

    # -- message builders ---------------------------------------------------
    def simple(self, response_size=314159, body=271828, **kw):
        return self.m.SimpleRequest(response_type=self.m.COMPRESSABLE, response_size=response_size,
                                    payload=self.m.Payload(body=bytes(body)), **kw)

    def out_req(self, sizes, body=None, **kw):
        req = self.m.StreamingOutputCallRequest(response_type=self.m.COMPRESSABLE, **kw)
        for s in sizes:
            req.response_parameters.add(size=s)
        if body is not None:
            req.payload.body = bytes(body)
        return req

    def still_serving(self, after):
        """The connection must survive what a case did (RST_STREAM etc.)."""
        try:
            self.stub.EmptyCall(self.pb.empty.Empty(), timeout=TIMEOUT)
        except grpc.RpcError as e:
            raise Failure("EmptyCall after %s failed: %s %r" % (after, e.code(), e.details()))

    # -- cases --------------------------------------------------------------
    def empty_unary(self):
        e = self.pb.empty.Empty
        seen = []

        def deser(b):
            seen.append(len(b))
            return e.FromString(b)
        call = self.channel.unary_unary("/grpc.testing.TestService/EmptyCall",
                                        request_serializer=e.SerializeToString,
                                        response_deserializer=deser)
        resp = call(e(), timeout=TIMEOUT)
        check(isinstance(resp, e), "response is %r, want grpc.testing.Empty", resp)
        check(seen == [0], "response serialized to %s bytes, want 0", seen)

    def large_unary(self):
        resp = self.stub.UnaryCall(self.simple(), timeout=TIMEOUT)
        zeros_ok(resp.payload, 314159, "response")
        check(resp.payload.type == self.m.COMPRESSABLE, "payload type %d", resp.payload.type)

    def client_streaming(self):
        sizes = [27182, 8, 1828, 45904]
        reqs = [self.m.StreamingInputCallRequest(payload=self.m.Payload(body=bytes(s)))
                for s in sizes]
        resp = self.stub.StreamingInputCall(iter(reqs), timeout=TIMEOUT)
        check(resp.aggregated_payload_size == 74922, "aggregated_payload_size %d, want 74922",
              resp.aggregated_payload_size)

    def server_streaming(self):
        sizes = [31415, 9, 2653, 58979]
        call = self.stub.StreamingOutputCall(self.out_req(sizes), timeout=TIMEOUT)
        got = list(call)
        check(len(got) == 4, "%d responses, want 4", len(got))
        for i, (r, s) in enumerate(zip(got, sizes)):
            zeros_ok(r.payload, s, "response %d" % i)
        check(call.code() == grpc.StatusCode.OK, "status %s", call.code())

    def ping_pong(self):
        pairs = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
        rq = ic.RequestQueue()
        try:
            call = self.stub.FullDuplexCall(iter(rq), timeout=TIMEOUT)
            for i, (size, body) in enumerate(pairs):
                rq.put(self.out_req([size], body))
                try:
                    resp = next(call)
                except StopIteration:
                    raise Failure("stream ended after %d responses, want 4" % i)
                zeros_ok(resp.payload, size, "response %d" % i)
            rq.close()
            extra = list(call)
            check(not extra, "%d responses after the 4th, want none", len(extra))
            check(call.code() == grpc.StatusCode.OK, "status %s", call.code())
        finally:
            rq.close()

    def empty_stream(self):
        call = self.stub.FullDuplexCall(iter([]), timeout=TIMEOUT)
        got = list(call)
        check(not got, "%d responses, want 0", len(got))
        check(call.code() == grpc.StatusCode.OK, "status %s", call.code())

    def cancel_after_begin(self):
        rq = ic.RequestQueue()
        try:
            fut = self.stub.StreamingInputCall.future(iter(rq), timeout=TIMEOUT)
            # The doc cancels "immediately"; a short pause lets HEADERS reach
            # the server first, so the server sees HEADERS then RST_STREAM.
            time.sleep(0.05)
            check(fut.cancel(), "cancel() returned False (call already over: %s)",
                  fut.code() if fut.done() else "?")
            check(fut.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED", fut.code())
        finally:
            rq.close()
        self.still_serving("cancel_after_begin")

    def cancel_after_first_response(self):
        rq = ic.RequestQueue()
        try:
            call = self.stub.FullDuplexCall(iter(rq), timeout=TIMEOUT)
            rq.put(self.out_req([31415], 27182))
            resp = next(call)
            zeros_ok(resp.payload, 31415, "first response")
            call.cancel()
            check(call.code() == grpc.StatusCode.CANCELLED, "status %s, want CANCELLED",
                  call.code())
            expect_rpc_error(lambda: next(call), grpc.StatusCode.CANCELLED, "read after cancel")
        finally:
            rq.close()
        self.still_serving("cancel_after_first_response")

    def timeout_on_sleeping_server(self):
        # Per the doc: 1 ms. Again with 300 ms so that the request surely
        # reached the server, which then holds the call until the deadline.
        for timeout in (0.001, 0.3):
            rq = ic.RequestQueue()
            try:
                rq.put(self.out_req([], 27182))
                t0 = time.monotonic()
                call = self.stub.FullDuplexCall(iter(rq), timeout=timeout)
                expect_rpc_error(lambda: list(call), grpc.StatusCode.DEADLINE_EXCEEDED,
                                 "FullDuplexCall with %g s timeout" % timeout)
                took = time.monotonic() - t0
                check(took < timeout + 3, "deadline of %g s took %.2f s", timeout, took)
            finally:
                rq.close()
        self.still_serving("timeout_on_sleeping_server")

    def _echo_status(self, message):
        st = self.m.EchoStatus(code=2, message=message)
        e = expect_rpc_error(lambda: self.stub.UnaryCall(
            self.m.SimpleRequest(response_status=st), timeout=TIMEOUT),
            grpc.StatusCode.UNKNOWN, "UnaryCall")
        check(e.details() == message, "UnaryCall status message %r, want %r", e.details(), message)
        return st

    def status_code_and_message(self):
        msg = "test status message"
        st = self._echo_status(msg)
        call = self.stub.FullDuplexCall(iter([self.m.StreamingOutputCallRequest(
            response_status=st)]), timeout=TIMEOUT)
        e = expect_rpc_error(lambda: list(call), grpc.StatusCode.UNKNOWN, "FullDuplexCall")
        check(e.details() == msg, "FullDuplexCall status message %r, want %r", e.details(), msg)

    def special_status_message(self):
        self._echo_status(SPECIAL_MESSAGE)

    def unimplemented_method(self):
        expect_rpc_error(lambda: self.stub.UnimplementedCall(self.pb.empty.Empty(),
                                                             timeout=TIMEOUT),
                         grpc.StatusCode.UNIMPLEMENTED, "TestService/UnimplementedCall")

    def unimplemented_service(self):
        expect_rpc_error(lambda: self.unimpl.UnimplementedCall(self.pb.empty.Empty(),
                                                               timeout=TIMEOUT),
                         grpc.StatusCode.UNIMPLEMENTED, "UnimplementedService/UnimplementedCall")

    @staticmethod
    def _check_echoed(call, what):
        initial = [(k, v) for k, v in (call.initial_metadata() or ())]
        trailing = [(k, v) for k, v in (call.trailing_metadata() or ())]
        check(ECHO_INITIAL in initial, "%s: initial metadata %r lacks %r", what, initial,
              ECHO_INITIAL)
        check(ECHO_TRAILING in trailing, "%s: trailing metadata %r lacks %r", what, trailing,
              ECHO_TRAILING)

    def custom_metadata(self):
        md = (ECHO_INITIAL, ECHO_TRAILING)
        resp, call = self.stub.UnaryCall.with_call(self.simple(), metadata=md, timeout=TIMEOUT)
        zeros_ok(resp.payload, 314159, "UnaryCall response")
        self._check_echoed(call, "UnaryCall")
        call = self.stub.FullDuplexCall(iter([self.out_req([314159], 271828)]), metadata=md,
                                        timeout=TIMEOUT)
        got = list(call)
        check(len(got) == 1, "FullDuplexCall: %d responses, want 1", len(got))
        zeros_ok(got[0].payload, 314159, "FullDuplexCall response")
        self._check_echoed(call, "FullDuplexCall")

    # -- compression (wire-checked through the relay) -----------------------
    def _sent_flags(self, w, want, what):
        """Harness check: grpcio put the flags we meant on the wire."""
        got = w.flags("c2s")
        check(got == want, "harness: %s went out with compressed flags %s, meant %s "
              "(python3-grpcio limitation)", what, got, want)

    def client_compressed_unary(self):
        w = self.wire()
        true, false = self.m.BoolValue(value=True), self.m.BoolValue(value=False)
        w.recorder.reset()
        expect_rpc_error(lambda: w.stub.UnaryCall(self.simple(expect_compressed=true),
                                                  timeout=TIMEOUT,
                                                  compression=grpc.Compression.NoCompression),
                         grpc.StatusCode.INVALID_ARGUMENT,
                         "probe (uncompressed, expect_compressed=true)")
        self._sent_flags(w, [0], "probe")
        for expect, comp in ((true, grpc.Compression.Gzip),
                             (false, grpc.Compression.NoCompression)):
            w.recorder.reset()
            what = "%s request (expect_compressed=%s)" % (
                "gzip" if expect.value else "uncompressed", expect.value)
            try:
                resp = w.stub.UnaryCall(self.simple(expect_compressed=expect), timeout=TIMEOUT,
                                        compression=comp)
            except grpc.RpcError as e:
                raise Failure("%s: %s %r" % (what, e.code(), e.details()))
            self._sent_flags(w, [1 if expect.value else 0], what)
            zeros_ok(resp.payload, 314159, what + " response")

    def server_compressed_unary(self):
        w = self.wire()
        for flag in (True, False):
            w.recorder.reset()
            what = "response_compressed=%s" % flag
            try:
                resp = w.stub.UnaryCall(self.simple(
                    response_compressed=self.m.BoolValue(value=flag)), timeout=TIMEOUT)
            except grpc.RpcError as e:
                raise Failure("%s: %s %r" % (what, e.code(), e.details()))
            zeros_ok(resp.payload, 314159, what + " response")
            got = w.flags("s2c")
            check(got == [1 if flag else 0], "%s: response compressed flags on the wire %s, "
                  "want [%d]", what, got, 1 if flag else 0)

    def client_compressed_streaming(self):
        w = self.wire()
        m = self.m
        true, false = m.BoolValue(value=True), m.BoolValue(value=False)
        first = m.StreamingInputCallRequest(expect_compressed=true,
                                            payload=m.Payload(body=bytes(27182)))
        w.recorder.reset()
        expect_rpc_error(lambda: w.stub.StreamingInputCall(
            iter([first]), timeout=TIMEOUT, compression=grpc.Compression.NoCompression),
            grpc.StatusCode.INVALID_ARGUMENT, "probe (uncompressed, expect_compressed=true)")
        self._sent_flags(w, [0], "probe")
        # grpcio compresses every message of a call (no per-message
        # "don't compress" on the client side). gRPC core sends a message
        # uncompressed when gzip would not shrink it, so the second message's
        # 45904-byte body is incompressible bytes instead of the doc's zeros
        # (servers only count payload bytes); the relay confirms its flag is 0.
        second = m.StreamingInputCallRequest(expect_compressed=false,
                                             payload=m.Payload(body=os.urandom(45904)))
        w.recorder.reset()
        try:
            resp = w.stub.StreamingInputCall(iter([first, second]), timeout=TIMEOUT,
                                             compression=grpc.Compression.Gzip)
        except grpc.RpcError as e:
            raise Failure("compressed+uncompressed stream: %s %r" % (e.code(), e.details()))
        self._sent_flags(w, [1, 0], "compressed+uncompressed stream")
        check(resp.aggregated_payload_size == 73086, "aggregated_payload_size %d, want 73086",
              resp.aggregated_payload_size)

    def server_compressed_streaming(self):
        w = self.wire()
        req = self.m.StreamingOutputCallRequest(response_type=self.m.COMPRESSABLE)
        req.response_parameters.add(size=31415, compressed=self.m.BoolValue(value=True))
        req.response_parameters.add(size=92653, compressed=self.m.BoolValue(value=False))
        w.recorder.reset()
        call = w.stub.StreamingOutputCall(req, timeout=TIMEOUT)
        try:
            got = list(call)
        except grpc.RpcError as e:
            raise Failure("StreamingOutputCall: %s %r" % (e.code(), e.details()))
        check(len(got) == 2, "%d responses, want 2", len(got))
        zeros_ok(got[0].payload, 31415, "response 0")
        zeros_ok(got[1].payload, 92653, "response 1")
        flags = w.flags("s2c")
        check(flags == [1, 0], "response compressed flags on the wire %s, want [1, 0]", flags)


ALL = ["empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong",
       "empty_stream", "cancel_after_begin", "cancel_after_first_response",
       "timeout_on_sleeping_server", "status_code_and_message", "special_status_message",
       "unimplemented_method", "unimplemented_service", "custom_metadata"]
COMPRESSION = ["client_compressed_unary", "server_compressed_unary",
               "client_compressed_streaming", "server_compressed_streaming"]
GROUPS = {"all": ALL, "compression": COMPRESSION}


def parse_cases(spec):
    """Expand a comma-separated list of cases and groups, in order, without
    repeats. Raises ValueError naming an unknown case."""
    cases = []
    for name in (s.strip() for s in spec.split(",")):
        if not name:
            continue
        for c in GROUPS.get(name, [name]):
            if c not in ALL and c not in COMPRESSION:
                raise ValueError("unknown test case %r (known: %s)" % (
                    c, ", ".join(list(GROUPS) + ALL + COMPRESSION)))
            if c not in cases:
                cases.append(c)
    return cases


def main():
    ap = argparse.ArgumentParser(description="gRPC interop client (python3-grpcio)")
    ap.add_argument("--host", "--server_host", dest="host", default="127.0.0.1")
    ap.add_argument("--port", "--server_port", dest="port", type=int, required=True)
    ap.add_argument("--test_case", default="all",
                    help="comma-separated cases, 'all' or 'compression'")
    ap.add_argument("--py-dir", help="generated modules (default: $TW_PY_DIR, $TW_BUILD_DIR/py)")
    ap.add_argument("-v", "--verbose", action="store_true", help="tracebacks on failure")
    args = ap.parse_args()
    try:
        cases = parse_cases(args.test_case)
    except ValueError as e:
        ap.error(str(e))
    if not cases:
        ap.error("no test case given")

    pb = ic.load_protos(args.py_dir)
    client = Client(args.host, args.port, pb)
    passed = failed = 0
    try:
        for name in cases:
            t0 = time.monotonic()
            try:
                getattr(client, name)()
            except Failure as e:
                failed += 1
                print("FAIL %s: %s" % (name, e), flush=True)
            except grpc.RpcError as e:
                failed += 1
                print("FAIL %s: unexpected RPC error %s %r" % (name, e.code(), e.details()),
                      flush=True)
            except Exception as e:  # a bug or an unexpected library behaviour
                failed += 1
                print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
                if args.verbose:
                    traceback.print_exc()
            else:
                passed += 1
                print("PASS %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
    finally:
        client.close()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
