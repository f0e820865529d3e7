#!/usr/bin/python3
"""Every Tidewatch daemon, started as a real process: settings errors and
--help, health SERVING over python3-grpcio, reflection (our python check for
v1 and v1alpha, and the stock `buf curl` client), GetServerInfo, the metrics
endpoint, and a clean exit 0 on SIGTERM.

Environment: TW_BIN_DIR (binaries), TW_SOURCE_DIR, TW_BUF (buf binary; the
test fails when it is missing rather than skip: tests/run.sh installs it).
Prints "N passed, M failed"; exits 1 on any failure."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest
import urllib.request

SRC = os.environ.get("TW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "interop"))
import grpc  # noqa: E402
from test_grpc_basics import check_reflection  # noqa: E402

BIN = os.environ.get("TW_BIN_DIR", os.path.join(SRC, "build", "bin"))
DAEMONS = {
    "ingest": ["tidewatch.v1.IngestService"],
    "query": ["tidewatch.v1.ProvenanceService", "tidewatch.v1.AlertService"],
    "provenance": ["tidewatch.v1.WorkerService"],
    "alerts": ["tidewatch.v1.WorkerService"],
}
IDENT = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError("daemon exited early with %s: %s" % (proc.returncode, proc.stderr.read()))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listening on port %d after %.0f s" % (port, timeout))


def decode_varint_field1(b):
    """Field 1 (varint) of a tiny protobuf message, or 0 when absent."""
    if len(b) >= 2 and b[0] == 0x08:
        return b[1]
    return 0


def strings_of(b):
    """Length-delimited string fields of a flat protobuf message: {num: str}."""
    out, i = {}, 0
    while i < len(b):
        key = b[i]
        i += 1
        num, wt = key >> 3, key & 7
        if wt == 2:
            n = b[i]
            i += 1
            out[num] = b[i:i + n].decode()
            i += n
        elif wt == 0:
            while b[i] & 0x80:
                i += 1
            i += 1
        else:
            raise ValueError("unexpected wire type %d" % wt)
    return out


class Daemon:
    def __init__(self, name, extra_env=None, args=()):
        self.name = name
        self.port, self.metrics = free_port(), free_port()
        env = dict(os.environ, TIDEWATCH_LOG_LEVEL="info")
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-" + name), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics, *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_port(self.port, self.proc)
        wait_port(self.metrics, self.proc)

    signalled = False

    def term(self):
        self.signalled = True
        self.proc.send_signal(signal.SIGTERM)

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port

    def stop(self, timeout=10.0):
        if self.proc.poll() is None and not self.signalled:
            self.term()
        try:
            rc = self.proc.wait(timeout)
            self.log = self.proc.stderr.read()
            return rc
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc.stderr.close()


def run_binary(name, args, env=None):
    return subprocess.run([os.path.join(BIN, "tidewatch-" + name), *args], capture_output=True,
                          text=True, timeout=10, env=dict(os.environ, **(env or {})))


class Settings(unittest.TestCase):
    def test_help_lists_every_setting(self):
        for name in DAEMONS:
            r = run_binary(name, ["--help"])
            self.assertEqual(r.returncode, 0, r.stderr)
            for env in ("TIDEWATCH_LISTEN", "TIDEWATCH_DATABASE_URL", "TIDEWATCH_LOG_LEVEL",
                        "TIDEWATCH_LOG_FORMAT", "TIDEWATCH_METRICS_LISTEN"):
                self.assertIn(env, r.stdout, "%s --help lacks %s" % (name, env))

    def test_bad_flag_value_names_the_setting(self):
        r = run_binary("ingest", ["--listen", "nonsense"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("listen", r.stderr)
        self.assertIn("nonsense", r.stderr)

    def test_bad_env_value_names_the_variable(self):
        r = run_binary("query", [], env={"TIDEWATCH_LOG_LEVEL": "loud"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("TIDEWATCH_LOG_LEVEL", r.stderr)
        self.assertIn("loud", r.stderr)

    def test_unknown_flag_is_an_error(self):
        r = run_binary("alerts", ["--no-such-flag"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("no-such-flag", r.stderr)

    def test_port_in_use_is_a_clear_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = run_binary("ingest", ["--listen", "127.0.0.1:%d" % port, "--metrics-listen", ""])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(str(port), r.stderr)


class Daemons(unittest.TestCase):
    def check_daemon(self, name, services):
        d = Daemon(name)
        try:
            with grpc.insecure_channel(d.target) as ch:
                check = ch.unary_unary("/grpc.health.v1.Health/Check", **IDENT)
                self.assertEqual(decode_varint_field1(check(b"", timeout=5)), 1, "SERVING")
                info = ch.unary_unary("/%s/GetServerInfo" % services[0], **IDENT)
                fields = strings_of(info(b"", timeout=5))
                self.assertEqual(fields.get(1), name)
                self.assertTrue(fields.get(2))
            listed = check_reflection(d.target, ["grpc.health.v1.Health", *services])
            self.assertEqual(set(listed["v1"]), set(listed["v1alpha"]))

            buf = os.environ.get("TW_BUF") or os.path.join(
                os.environ.get("TW_BUILD_DIR", ""), "tools/node_modules/@bufbuild/buf-linux-x64/bin/buf")
            self.assertTrue(buf and os.access(buf, os.X_OK),
                            "TW_BUF must name the buf binary (tests/run.sh installs it)")
            for proto in ("grpc-v1", "grpc-v1alpha"):
                r = subprocess.run([buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                                    "--reflect-protocol", proto, "--list-services",
                                    "http://" + d.target], capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = set(r.stdout.split())
                for s in ["grpc.health.v1.Health", *services]:
                    self.assertIn(s, got, "buf curl (%s) did not list %s" % (proto, s))
            r = subprocess.run([buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                                "-d", '{"service":""}',
                                "http://%s/grpc.health.v1.Health/Check" % d.target],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"SERVING"', r.stdout)

            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.metrics, timeout=5).read().decode()
            self.assertIn('method="/grpc.health.v1.Health/Check",code="OK"', body)
            self.assertIn("tidewatch_grpc_connections", body)
            self.assertIn('service="%s"' % name, body)
        finally:
            rc = d.stop()
        self.assertEqual(rc, 0, "SIGTERM must end the daemon with 0")

    def test_ingest(self):
        self.check_daemon("ingest", DAEMONS["ingest"])

    def test_query(self):
        self.check_daemon("query", DAEMONS["query"])

    def test_provenance(self):
        self.check_daemon("provenance", DAEMONS["provenance"])

    def test_alerts(self):
        self.check_daemon("alerts", DAEMONS["alerts"])

    def test_json_logs(self):
        d = Daemon("ingest", extra_env={"TIDEWATCH_LOG_FORMAT": "json"})
        rc = d.stop()
        self.assertEqual(rc, 0)
        lines = [json.loads(line) for line in d.log.splitlines()]
        self.assertGreaterEqual(len(lines), 2, d.log)
        for rec in lines:
            self.assertEqual(rec["service"], "ingest")
            self.assertIn(rec["level"], ("debug", "info", "warn", "error"))
            self.assertTrue(rec["msg"] and rec["ts"])

    def test_sigterm_ends_health_watch_and_exits(self):
        d = Daemon("ingest")
        try:
            ch = grpc.insecure_channel(d.target)
            watch = ch.unary_stream("/grpc.health.v1.Health/Watch", **IDENT)(b"", timeout=10)
            self.assertEqual(decode_varint_field1(next(watch)), 1)
            d.term()
            seen = []
            with self.assertRaises(grpc.RpcError) as cm:
                for m in watch:
                    seen.append(decode_varint_field1(m))
            self.assertEqual(seen, [2], "watchers learn NOT_SERVING before the stream ends")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            ch.close()
        finally:
            rc = d.stop()
        self.assertEqual(rc, 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
