"""Shared plumbing for the python3-grpcio interop suites.

- load_protos(): makes the protoc-generated modules (gen_pb2.sh) importable
  and returns them in one namespace.
- Stub: a client stub built from a service descriptor with
  channel.unary_unary() & co. (no grpc_tools).
- SniffingRelay: a transparent TCP relay that parses the HTTP/2 frames going
  through it and reports every gRPC message (stream id, compressed flag,
  bytes). grpcio's Python API hides the per-message compressed flag, so the
  compression cases read it off the wire here.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf).
"""

import atexit
import collections
import hashlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import types
import zlib

import grpc
from google.protobuf import symbol_database

HERE = os.path.dirname(os.path.abspath(__file__))

_loaded = None


def _generate_into_temp():
    """Run gen_pb2.sh into a private temporary directory (removed at exit)."""
    base = tempfile.mkdtemp(prefix="tw-interop-py-")
    atexit.register(shutil.rmtree, base, True)
    out = os.path.join(base, "py")
    subprocess.run(["sh", os.path.join(HERE, "gen_pb2.sh"), out], check=True)
    return out


def find_py_dir(py_dir=None):
    """Directory holding the generated modules: py_dir, else $TW_PY_DIR,
    else $TW_BUILD_DIR/py, else freshly generated into a temp dir."""
    candidates = [py_dir, os.environ.get("TW_PY_DIR")]
    if os.environ.get("TW_BUILD_DIR"):
        candidates.append(os.path.join(os.environ["TW_BUILD_DIR"], "py"))
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "grpc", "testing", "test_pb2.py")):
            return os.path.abspath(c)
    return _generate_into_temp()


def load_protos(py_dir=None):
    """Import the generated modules once and return a namespace with:
    empty, messages, test, health, refl_v1, refl_v1alpha (pb2 modules),
    tidewatch (dict name -> pb2 module, may be empty), py_dir.

    The generated files live under the package name `grpc` (grpc/testing/...)
    which is also the grpcio library: we append the generated grpc/ directory
    to grpc.__path__ so `grpc.testing.messages_pb2` resolves there while
    `grpc` itself stays the library."""
    global _loaded
    if _loaded is not None:
        return _loaded
    d = find_py_dir(py_dir)
    if d not in sys.path:
        sys.path.insert(0, d)
    gdir = os.path.join(d, "grpc")
    if gdir not in grpc.__path__:
        grpc.__path__.append(gdir)
    import importlib
    ns = types.SimpleNamespace(py_dir=d)
    ns.empty = importlib.import_module("grpc.testing.empty_pb2")
    ns.messages = importlib.import_module("grpc.testing.messages_pb2")
    ns.test = importlib.import_module("grpc.testing.test_pb2")
    ns.health = importlib.import_module("grpc.health.v1.health_pb2")
    ns.refl_v1 = importlib.import_module("grpc.reflection.v1.reflection_pb2")
    ns.refl_v1alpha = importlib.import_module("grpc.reflection.v1alpha.reflection_pb2")
    ns.tidewatch = {}
    twdir = os.path.join(d, "tidewatch", "v1")
    if os.path.isdir(twdir):
        for f in sorted(os.listdir(twdir)):
            if f.endswith("_pb2.py"):
                name = f[:-3]
                ns.tidewatch[name] = importlib.import_module("tidewatch.v1." + name)
    _loaded = ns
    return ns


def message_class(descriptor):
    """The generated class for a message descriptor (module must be imported)."""
    return symbol_database.Default().GetSymbol(descriptor.full_name)


class Stub:
    """Client stub for one service descriptor: attribute per method, each a
    grpcio multicallable of the right arity. Serialization uses the pb2
    classes' SerializeToString / FromString."""

    def __init__(self, channel, service_descriptor):
        self.service = service_descriptor.full_name
        for m in service_descriptor.methods:
            req = message_class(m.input_type)
            resp = message_class(m.output_type)
            path = "/%s/%s" % (self.service, m.name)
            if m.client_streaming and m.server_streaming:
                factory = channel.stream_stream
            elif m.client_streaming:
                factory = channel.stream_unary
            elif m.server_streaming:
                factory = channel.unary_stream
            else:
                factory = channel.unary_unary
            setattr(self, m.name, factory(path, request_serializer=req.SerializeToString,
                                          response_deserializer=resp.FromString))


def status_from_int(code):
    """grpc.StatusCode for a numeric status code, None if unknown."""
    for sc in grpc.StatusCode:
        if sc.value[0] == code:
            return sc
    return None


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def grpc_decompress(data):
    """Decompress a compressed gRPC message body: gzip, else zlib (deflate
    as gRPC means it), else raw deflate. Raises zlib.error if none fits."""
    for wbits in (16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS):
        try:
            return zlib.decompress(data, wbits)
        except zlib.error:
            continue
    raise zlib.error("not gzip/deflate data")


class RequestQueue:
    """A request iterator fed by the test: put() a message, close() to
    half-close. Always close() it, or grpcio's consumer thread waits."""

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def put(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is self._END:
                return
            yield item


# --------------------------------------------------------------------------
# HTTP/2 frame sniffing

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_FRAME_DATA = 0x0
_FRAME_RST_STREAM = 0x3
_FLAG_END_STREAM = 0x1
_FLAG_PADDED = 0x8
_MAX_TRACKED_MESSAGE = 64 << 20


class H2MessageParser:
    """Parses one direction of a cleartext HTTP/2 connection and calls
    on_message(stream_id, compressed_flag, body) for each complete gRPC
    length-prefixed message in DATA frames. Only framing is parsed (no
    HPACK): stream ids identify calls."""

    def __init__(self, client_side, on_message):
        self._buf = bytearray()
        self._need_preface = client_side
        self._streams = {}
        self._on_message = on_message
        self.on_reset = None
        self.broken = None

    def drop(self, stream_id):
        self._streams.pop(stream_id, None)

    def feed(self, data):
        if self.broken:
            return
        self._buf += data
        if self._need_preface:
            if len(self._buf) < len(H2_PREFACE):
                return
            if bytes(self._buf[:len(H2_PREFACE)]) != H2_PREFACE:
                self.broken = "no HTTP/2 client preface"
                return
            del self._buf[:len(H2_PREFACE)]
            self._need_preface = False
        pos = 0
        buf = self._buf
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype = buf[pos + 3]
            flags = buf[pos + 4]
            sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
            payload = memoryview(buf)[pos + 9:pos + 9 + length]
            if ftype == _FRAME_DATA:
                if flags & _FLAG_PADDED:
                    pad = payload[0] if length else 0
                    payload = payload[1:length - pad]
                self._data(sid, payload, flags & _FLAG_END_STREAM)
            elif ftype == _FRAME_RST_STREAM:
                self.drop(sid)
                if self.on_reset:
                    self.on_reset(sid)
            payload.release()
            pos += 9 + length
        del buf[:pos]

    def _data(self, sid, payload, end):
        sb = self._streams.get(sid)
        if sb is None:
            sb = self._streams[sid] = bytearray()
        sb += payload
        while len(sb) >= 5:
            mlen = int.from_bytes(sb[1:5], "big")
            if mlen > _MAX_TRACKED_MESSAGE:
                self._on_message(sid, sb[0], None)
                self.drop(sid)
                return
            if len(sb) < 5 + mlen:
                break
            self._on_message(sid, sb[0], bytes(sb[5:5 + mlen]))
            del sb[:5 + mlen]
        if end:
            self.drop(sid)


class SniffingRelay:
    """Listens on listen_host:listen_port (0 = pick; see .port) and relays
    every connection byte for byte to upstream (host, port), parsing both
    directions with H2MessageParser. on_message(direction, stream_id,
    compressed_flag, body) is called *before* the bytes are forwarded, with
    direction "c2s" (client to server) or "s2c". body is None for a message
    too large to track."""

    def __init__(self, upstream, on_message, listen_host="127.0.0.1", listen_port=0):
        self.upstream = upstream
        self._on_message = on_message
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((listen_host, listen_port))
        self._lsock.listen(64)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._socks = set()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, name="relay-accept", daemon=True)
        self._thread.start()

    def close(self):
        with self._lock:
            self._closed = True
            socks = list(self._socks)
            self._socks.clear()
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._thread.join(5)

    def _track(self, s):
        with self._lock:
            if self._closed:
                s.close()
                return False
            self._socks.add(s)
            return True

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._lsock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not (self._track(client) and self._track(server)):
                continue
            c2s = H2MessageParser(True, lambda sid, flag, body:
                                  self._on_message("c2s", sid, flag, body))
            s2c = H2MessageParser(False, lambda sid, flag, body:
                                  self._on_message("s2c", sid, flag, body))
            # A stream reset by either side is over in both directions.
            c2s.on_reset = s2c.drop
            s2c.on_reset = c2s.drop
            for src, dst, parser, name in ((client, server, c2s, "c2s"),
                                           (server, client, s2c, "s2c")):
                threading.Thread(target=self._pump, daemon=True, name="relay-" + name,
                                 args=(src, dst, parser)).start()

    def _pump(self, src, dst, parser):
        try:
            while True:
                data = src.recv(262144)
                if not data:
                    break
                try:
                    parser.feed(data)
                except Exception as e:  # never break the relay over a parse bug
                    parser.broken = "parser error: %r" % (e,)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class CompressionLedger:
    """Remembers, for request messages seen on the wire, whether each arrived
    compressed, keyed by the SHA-256 of the uncompressed message bytes.
    lookup(raw) pops the most recent record for those bytes: for sequential
    calls that is the current call's message, and stale records (messages
    whose handler never ran) do no harm. Bounded in size."""

    MAX_KEYS = 4096
    MAX_PER_KEY = 64

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = collections.OrderedDict()

    def on_message(self, direction, sid, flag, body):
        if direction != "c2s" or body is None:
            return
        if flag & 1:
            try:
                body = grpc_decompress(body)
            except zlib.error:
                return
        key = hashlib.sha256(body).digest()
        with self._lock:
            dq = self._seen.get(key)
            if dq is None:
                dq = self._seen[key] = collections.deque(maxlen=self.MAX_PER_KEY)
            else:
                self._seen.move_to_end(key)
            dq.append(bool(flag & 1))
            while len(self._seen) > self.MAX_KEYS:
                self._seen.popitem(last=False)

    def lookup(self, raw):
        """True/False: the message with these uncompressed bytes arrived
        compressed / uncompressed; None: never seen (no relay in front)."""
        key = hashlib.sha256(raw).digest()
        with self._lock:
            dq = self._seen.get(key)
            if not dq:
                return None
            return dq.pop()


class WireRecorder:
    """Collects (direction, stream_id, compressed_flag, length) tuples from a
    SniffingRelay; reset() before a call, messages(direction) after it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._log = []

    def on_message(self, direction, sid, flag, body):
        with self._lock:
            self._log.append((direction, sid, flag, None if body is None else len(body)))

    def reset(self):
        with self._lock:
            self._log = []

    def messages(self, direction):
        with self._lock:
            return [m for m in self._log if m[0] == direction]
