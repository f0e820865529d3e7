#!/usr/bin/python3
"""Basic gRPC conformance checks, with python3-grpcio as the client, against
ANY server that implements grpc.testing.TestService, grpc.health.v1.Health
and server reflection.

Usage:
  test_grpc_basics.py --target HOST:PORT [--services S1,S2] [unittest args, e.g. -k health]

Prints unittest's per-test lines, then "N passed, M failed"; exits 1 on any
failure.

check_reflection(target, expected_services) is reusable by other suites
(import this module; it needs no TestService):
    from test_grpc_basics import check_reflection
    check_reflection("127.0.0.1:50051", ["tidewatch.v1.IngestService"])
"""

import argparse
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool  # noqa: E402

import interop_common as ic  # noqa: E402

TIMEOUT = 10.0
DEFAULT_SERVICES = ["grpc.testing.TestService", "grpc.health.v1.Health"]
CONFIG = {"target": None, "services": DEFAULT_SERVICES}


class ReflectionError(AssertionError):
    pass


def _reflect_one(channel, module, version, expected_services, timeout):
    """One ServerReflectionInfo stream, driven like grpcurl: list_services,
    then file_containing_symbol for every listed service, then
    file_by_filename for every dependency not yet received. Every file is
    parsed as a FileDescriptorProto and the set is loaded into a fresh
    DescriptorPool, which must resolve every listed service. Returns the
    listed service names; raises ReflectionError."""
    path = "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version
    mc = channel.stream_stream(path, request_serializer=module.ServerReflectionRequest.SerializeToString,
                               response_deserializer=module.ServerReflectionResponse.FromString)
    rq = ic.RequestQueue()
    call = mc(iter(rq), timeout=timeout)

    def ask(what, **kw):
        rq.put(module.ServerReflectionRequest(**kw))
        try:
            resp = next(call)
        except StopIteration:
            raise ReflectionError("%s: %s: stream ended without an answer" % (version, what))
        except grpc.RpcError as e:
            raise ReflectionError("%s: %s: %s %r" % (version, what, e.code(), e.details()))
        kind = resp.WhichOneof("message_response")
        if kind == "error_response":
            raise ReflectionError("%s: %s: error %d %r" % (
                version, what, resp.error_response.error_code, resp.error_response.error_message))
        return kind, resp

    files = {}

    def take(what, resp):
        if not resp.file_descriptor_response.file_descriptor_proto:
            raise ReflectionError("%s: %s: empty file_descriptor_response" % (version, what))
        got = []
        for raw in resp.file_descriptor_response.file_descriptor_proto:
            fdp = descriptor_pb2.FileDescriptorProto()
            try:
                fdp.ParseFromString(raw)
            except Exception as e:
                raise ReflectionError("%s: %s: unparsable FileDescriptorProto: %s" % (version, what, e))
            if not fdp.name:
                raise ReflectionError("%s: %s: FileDescriptorProto without a name" % (version, what))
            files[fdp.name] = fdp
            got.append(fdp)
        return got

    try:
        kind, resp = ask("list_services", list_services="")
        if kind != "list_services_response":
            raise ReflectionError("%s: list_services answered with %s" % (version, kind))
        names = [s.name for s in resp.list_services_response.service]
        if not names:
            raise ReflectionError("%s: list_services returned no service" % version)
        missing = [s for s in expected_services if s not in names]
        if missing:
            raise ReflectionError("%s: list_services %s lacks %s" % (version, names, missing))

        for name in names:
            what = "file_containing_symbol(%s)" % name
            kind, resp = ask(what, file_containing_symbol=name)
            if kind != "file_descriptor_response":
                raise ReflectionError("%s: %s answered with %s" % (version, what, kind))
            found = False
            for fdp in take(what, resp):
                prefix = fdp.package + "." if fdp.package else ""
                if any(prefix + s.name == name for s in fdp.service):
                    found = True
            if not found:
                raise ReflectionError("%s: %s: service not in the returned file(s) %s" % (
                    version, what, [f.name for f in files.values()]))

        for _ in range(1000):  # bounded: a cycle or a lying server cannot loop forever
            wanted = sorted({d for f in files.values() for d in f.dependency if d not in files})
            if not wanted:
                break
            what = "file_by_filename(%s)" % wanted[0]
            kind, resp = ask(what, file_by_filename=wanted[0])
            if kind != "file_descriptor_response":
                raise ReflectionError("%s: %s answered with %s" % (version, what, kind))
            take(what, resp)
            if wanted[0] not in files:
                raise ReflectionError("%s: %s did not return that file" % (version, what))

        pool = descriptor_pool.DescriptorPool()
        added = set()

        def add(fname, stack=()):
            if fname in added:
                return
            if fname in stack:
                raise ReflectionError("%s: import cycle through %s" % (version, fname))
            for dep in files[fname].dependency:
                add(dep, stack + (fname,))
            try:
                pool.Add(files[fname])
            except Exception as e:
                raise ReflectionError("%s: descriptor %s does not load: %s" % (version, fname, e))
            added.add(fname)
        for fname in sorted(files):
            add(fname)
        for name in names:
            try:
                svc = pool.FindServiceByName(name)
            except KeyError:
                raise ReflectionError("%s: %s not resolvable from the returned files" % (version, name))
            for m in svc.methods:  # input/output types resolved by the pool
                if not (m.input_type.full_name and m.output_type.full_name):
                    raise ReflectionError("%s: %s.%s has unresolved types" % (version, name, m.name))

        rq.close()
        try:
            extra = list(call)
        except grpc.RpcError as e:
            raise ReflectionError("%s: after half-close: %s %r" % (version, e.code(), e.details()))
        if extra:
            raise ReflectionError("%s: %d unsolicited responses" % (version, len(extra)))
        return names
    finally:
        rq.close()
        call.cancel()


def check_reflection(target, expected_services, versions=("v1", "v1alpha"), timeout=TIMEOUT):
    """Check server reflection at target ("host:port", cleartext) for each
    protocol version in `versions` (v1 first, then v1alpha; both must work):
    every name in expected_services is listed, and every listed service is
    found, with all its dependencies, in FileDescriptorProtos the server
    returns. Returns {version: [listed services]}; raises ReflectionError
    (an AssertionError) naming every version that failed."""
    pb = ic.load_protos()
    modules = {"v1": pb.refl_v1, "v1alpha": pb.refl_v1alpha}
    result, errors = {}, []
    with grpc.insecure_channel(target) as channel:
        for v in versions:
            try:
                result[v] = _reflect_one(channel, modules[v], v, list(expected_services), timeout)
            except ReflectionError as e:
                errors.append(str(e))
    if errors:
        raise ReflectionError("; ".join(errors))
    return result


class GrpcBasics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CONFIG["target"]:
            raise unittest.SkipTest("no --target")
        cls.pb = ic.load_protos()
        cls.m = cls.pb.messages
        # No client-side send cap, so the oversize request reaches the server.
        cls.channel = grpc.insecure_channel(CONFIG["target"], options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        svcs = cls.pb.test.DESCRIPTOR.services_by_name
        cls.stub = ic.Stub(cls.channel, svcs["TestService"])
        cls.health = ic.Stub(cls.channel, cls.pb.health.DESCRIPTOR.services_by_name["Health"])

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def rpc_code(self, fn):
        try:
            fn()
        except grpc.RpcError as e:
            return e.code(), e.details()
        return grpc.StatusCode.OK, None

    def assert_serving(self):
        """The server still answers on the same connection."""
        resp = self.stub.UnaryCall(self.m.SimpleRequest(response_size=3), timeout=TIMEOUT)
        self.assertEqual(len(resp.payload.body), 3)

    def test_unary(self):
        req = self.m.SimpleRequest(response_size=1000, payload=self.m.Payload(body=b"\0" * 1000))
        resp, call = self.stub.UnaryCall.with_call(req, timeout=TIMEOUT)
        self.assertEqual(resp.payload.body, bytes(1000))
        self.assertEqual(call.code(), grpc.StatusCode.OK)

    def test_server_stream(self):
        sizes = [1, 10, 100000, 0, 7]
        req = self.m.StreamingOutputCallRequest()
        for s in sizes:
            req.response_parameters.add(size=s)
        call = self.stub.StreamingOutputCall(req, timeout=TIMEOUT)
        self.assertEqual([len(r.payload.body) for r in call], sizes)
        self.assertEqual(call.code(), grpc.StatusCode.OK)

    def test_client_stream(self):
        sizes = [10, 0, 300000, 1]
        reqs = (self.m.StreamingInputCallRequest(payload=self.m.Payload(body=bytes(s)))
                for s in sizes)
        resp = self.stub.StreamingInputCall(reqs, timeout=TIMEOUT)
        self.assertEqual(resp.aggregated_payload_size, sum(sizes))

    def test_bidi_stream(self):
        rq = ic.RequestQueue()
        try:
            call = self.stub.FullDuplexCall(iter(rq), timeout=TIMEOUT)
            for size in (5, 70000, 1):
                req = self.m.StreamingOutputCallRequest()
                req.response_parameters.add(size=size)
                rq.put(req)
                self.assertEqual(len(next(call).payload.body), size)
            rq.close()
            self.assertEqual(list(call), [])
            self.assertEqual(call.code(), grpc.StatusCode.OK)
        finally:
            rq.close()

    def test_deadline_exceeded(self):
        # The server sleeps 2 s (interval_us) before its only response.
        req = self.m.StreamingOutputCallRequest()
        req.response_parameters.add(size=1, interval_us=2000000)
        t0 = time.monotonic()
        call = self.stub.StreamingOutputCall(req, timeout=0.3)
        code, details = self.rpc_code(lambda: list(call))
        took = time.monotonic() - t0
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        self.assertLess(took, 1.5)
        self.assert_serving()

    def test_unknown_method(self):
        nope = self.channel.unary_unary("/grpc.testing.TestService/Nope")  # raw bytes
        code, details = self.rpc_code(lambda: nope(b"", timeout=TIMEOUT))
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, details)
        self.assert_serving()

    def test_oversize_request(self):
        req = self.m.SimpleRequest(response_size=1, payload=self.m.Payload(body=bytes(5 << 20)))
        code, details = self.rpc_code(lambda: self.stub.UnaryCall(req, timeout=TIMEOUT))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        self.assert_serving()

    def test_health_server_serving(self):
        h = self.pb.health
        resp = self.health.Check(h.HealthCheckRequest(service=""), timeout=TIMEOUT)
        self.assertEqual(resp.status, h.HealthCheckResponse.SERVING)

    def test_health_unknown_service_not_found(self):
        h = self.pb.health
        code, details = self.rpc_code(lambda: self.health.Check(
            h.HealthCheckRequest(service="no.such.Service"), timeout=TIMEOUT))
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)

    def test_reflection(self):
        try:
            res = check_reflection(CONFIG["target"], CONFIG["services"])
        except ReflectionError as e:
            self.fail(str(e))
        self.assertEqual(sorted(res), ["v1", "v1alpha"])




def main():
    ap = argparse.ArgumentParser(description="gRPC basics against any TestService server",
                                 add_help=True)
    ap.add_argument("--target", required=True, help="host:port")
    ap.add_argument("--services", default=",".join(DEFAULT_SERVICES),
                    help="services reflection must list (comma-separated)")
    ap.add_argument("--py-dir", help="generated modules (default: $TW_PY_DIR, $TW_BUILD_DIR/py)")
    args, rest = ap.parse_known_args()
    CONFIG["target"] = args.target
    CONFIG["services"] = [s for s in args.services.split(",") if s]
    ic.load_protos(args.py_dir)
    prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False,
                         testRunner=unittest.TextTestRunner(stream=sys.stdout, verbosity=2))
    r = prog.result
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    passed = r.testsRun - failed - len(r.skipped) - len(r.expectedFailures)
    line = "%d passed, %d failed" % (passed, failed)
    if r.skipped:
        line += ", %d skipped" % len(r.skipped)
    print(line, flush=True)
    return 1 if failed or r.testsRun == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
