#!/usr/bin/python3
"""hostile.py: a well-behaved client keeps calling tidewatch-ingest while
hostile and clumsy clients attack it; prints the well-behaved client's
latency and errors in a quiet phase and under attack, and the daemon's peak
memory. Driven by tests/bench/hostile.sh (which starts PostgreSQL and the
daemon); run that, not this.

Attacks (each bounded in time; all traffic to the daemon on loopback):
  hpack      HEADERS frames that reference one 4 KB HPACK table entry
             thousands of times (header-list amplification)
  window     100 streams each sending a 4 MiB - 1 message that never ends
             (flow control must bound what the server buffers)
  noread     a reflection stream flooded with requests by a client that
             accepts no response data (its receive window is 0)
  conns      as many idle connections as the server lets it open, never
             sending the HTTP/2 preface
  bigsubmit  Submit calls of 4 MiB of empty records
  poison     Submit of [bad K, good K, bad K] (same reference K)

Exit status 0 when the run completed (the figures say whether the targets
were met), 1 when the benchmark itself could not run."""

import argparse
import os
import resource
import socket
import struct
import sys
import threading
import time

BUILD = os.environ.get("TW_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
sys.path.insert(0, os.path.join(BUILD, "py"))
import grpc  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SUBMIT = "/tidewatch.v1.IngestService/Submit"
REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_str(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) < 127:
        return bytes([len(b)]) + b
    n, out = len(b) - 127, bytearray([127])
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + b


def literal(name, value, index=False):
    """A literal header field with a new name: with incremental indexing
    (added to the dynamic table) or without indexing."""
    return (b"\x40" if index else b"\x00") + hpack_str(name) + hpack_str(value)


def request_headers(path):
    return b"".join(literal(n, v) for n, v in (
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "bench"),
        ("content-type", "application/grpc"), ("te", "trailers")))


def grpc_msg(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Conn:
    """A raw HTTP/2 client connection: frames are built by hand, and a reader
    thread tracks the server's settings and flow-control windows, answers
    PINGs and SETTINGS, and notes GOAWAY, RST_STREAM and the close. With
    recv_window=0 it never lets the server send DATA."""

    def __init__(self, port, recv_window=1 << 20, rcvbuf=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lock = threading.Condition()
        self.conn_window, self.init_window, self.stream_windows = 65535, 65535, {}
        self.closed, self.goaway, self.resets, self.data_bytes = False, None, 0, 0
        self.next_stream = 1
        settings = struct.pack(">HI", 0x4, recv_window)  # SETTINGS_INITIAL_WINDOW_SIZE
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def send(self, b):
        try:
            self.sock.sendall(b)
            return True
        except OSError:
            with self.lock:
                self.closed = True
                self.lock.notify_all()
            return False

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                if self.closed:
                    return None
                continue
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def _read(self):
        while True:
            h = self._recv(9)
            if h is None:
                break
            length = int.from_bytes(h[:3], "big")
            ftype, flags, sid = h[3], h[4], struct.unpack(">I", h[5:9])[0] & 0x7FFFFFFF
            p = self._recv(length) if length else b""
            if p is None:
                break
            with self.lock:
                if ftype == SETTINGS and not flags & ACK:
                    for i in range(0, len(p) - 5, 6):
                        ident, val = struct.unpack(">HI", p[i:i + 6])
                        if ident == 0x4:
                            delta = val - self.init_window
                            self.init_window = val
                            for k in self.stream_windows:
                                self.stream_windows[k] += delta
                    self.send(frame(SETTINGS, ACK, 0))
                elif ftype == WINDOW_UPDATE:
                    inc = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
                    if sid == 0:
                        self.conn_window += inc
                    elif sid in self.stream_windows:
                        self.stream_windows[sid] += inc
                elif ftype == PING and not flags & ACK:
                    self.send(frame(PING, ACK, 0, p))
                elif ftype == GOAWAY:
                    self.goaway = struct.unpack(">I", p[4:8])[0]
                elif ftype == RST:
                    self.resets += 1
                    self.stream_windows.pop(sid, None)
                elif ftype == DATA:
                    self.data_bytes += length
                self.lock.notify_all()
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def open_stream(self, path, end_stream=False):
        sid = self.next_stream
        self.next_stream += 2
        with self.lock:
            self.stream_windows[sid] = self.init_window
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        return sid if self.send(frame(HEADERS, flags, sid, request_headers(path))) else None

    def send_data(self, sid, data, deadline):
        """Send data as the windows allow; returns the bytes sent before the
        deadline, a reset or the close."""
        sent = 0
        while sent < len(data):
            with self.lock:
                while (not self.closed and sid in self.stream_windows and
                       (self.conn_window <= 0 or self.stream_windows[sid] <= 0)):
                    if not self.lock.wait(timeout=max(0.0, deadline - time.monotonic())):
                        return sent
                if self.closed or sid not in self.stream_windows:
                    return sent
                n = min(len(data) - sent, self.conn_window, self.stream_windows[sid], 16384)
                self.conn_window -= n
                self.stream_windows[sid] -= n
            if not self.send(frame(DATA, 0, sid, data[sent:sent + n])):
                return sent
            sent += n
        return sent

    def close(self):
        with self.lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------- attacks --

class Attack:
    def __init__(self, name, port, grpc_target, deadline):
        self.name, self.port, self.target, self.deadline = name, port, grpc_target, deadline
        self.notes = {}

    def alive(self):
        return time.monotonic() < self.deadline

    def bump(self, key, n=1):
        self.notes[key] = self.notes.get(key, 0) + n


def attack_hpack(a):
    """Each HEADERS block adds one 4 KB entry to the HPACK table and then
    references it 16,000 times (HEADERS + CONTINUATION frames): ~64 MB of
    decoded headers per request if the server does not enforce its limit."""
    while a.alive():
        try:
            c = Conn(a.port)
        except OSError:
            a.bump("connect failures")
            time.sleep(0.1)
            continue
        a.bump("connections")
        first = True
        while a.alive() and not c.closed:
            sid = c.next_stream
            c.next_stream += 2
            block = request_headers(HEALTH_CHECK)
            if first:
                block += literal("x-pad", "a" * 4000, index=True)
                first = False
            refs = b"\xbe" * 16000  # indexed field 62: the newest dynamic entry
            c.send(frame(HEADERS, 0, sid, block + refs[:8000]))
            if not c.send(frame(CONTINUATION, END_HEADERS, sid, refs[8000:])):
                break
            a.bump("requests")
            time.sleep(0.02)
        a.bump("closed by server" if c.goaway is not None or c.closed else "closed by us")
        a.bump("streams reset", c.resets)
        c.close()


def attack_window(a):
    """100 streams, each announcing a 4 MiB - 1 message and sending as much
    of it as the server's windows allow, never finishing."""
    total = 0
    try:
        c = Conn(a.port)
    except OSError:
        a.bump("connect failures")
        return
    size = 4 * 1024 * 1024 - 1
    body = grpc_msg(b"\x0a" * size)[:-1]  # one byte short: never complete
    sids = [c.open_stream(SUBMIT) for _ in range(100)]
    sids = [s for s in sids if s]
    chunk = 256 * 1024
    offsets = {s: 0 for s in sids}
    while a.alive() and not c.closed and sids:
        progressed = False
        for s in list(sids):
            n = c.send_data(s, body[offsets[s]:offsets[s] + chunk], min(a.deadline, time.monotonic() + 0.05))
            offsets[s] += n
            total += n
            progressed |= n > 0
            if offsets[s] >= len(body):
                sids.remove(s)
        if not progressed:
            time.sleep(0.05)
    a.notes["bytes the server let in"] = total
    a.notes["streams reset"] = c.resets
    a.notes["connection closed"] = c.closed
    c.close()


def attack_noread(a):
    """A reflection stream flooded with file_containing_symbol requests by a
    client whose receive window is 0: every answer must wait in the server."""
    req = grpc_msg(b"\x22" + hpack_str("tidewatch.v1.IngestService"))  # field 4, string
    sent = 0
    while a.alive():
        try:
            c = Conn(a.port, recv_window=0)
        except OSError:
            a.bump("connect failures")
            time.sleep(0.1)
            continue
        a.bump("connections")
        sid = c.open_stream(REFLECTION)
        batch = req * 512
        while a.alive() and not c.closed and sid in c.stream_windows:
            n = c.send_data(sid, batch, min(a.deadline, time.monotonic() + 0.5))
            sent += n
            if n == 0:
                time.sleep(0.05)
        a.bump("streams reset", c.resets)
        c.close()
    a.notes["request bytes sent"] = sent


def attack_conns(a):
    """Open idle connections (no preface) until the server or our fd limit
    stops us; hold them; count what the server closed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    socks, refused = [], 0
    while a.alive() and len(socks) < 4000:
        try:
            s = socket.create_connection(("127.0.0.1", a.port), timeout=1)
            socks.append(s)
        except OSError:
            refused += 1
            time.sleep(0.01)
    a.notes["opened"] = len(socks)
    a.notes["refused"] = refused
    while a.alive():
        time.sleep(0.2)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    a.notes["closed by the server"] = closed


def submit_stub(target):
    ch = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 8 << 20),
                                                ("grpc.max_receive_message_length", 8 << 20)])
    return ch, ch.unary_unary(SUBMIT, request_serializer=ing.SubmitRequest.SerializeToString,
                              response_deserializer=ing.SubmitResponse.FromString)


def attack_bigsubmit(a):
    """Submit calls carrying 4 MiB - 1 KB of empty records (2 bytes each)."""
    ch, submit = submit_stub(a.target)
    body = b"\x0a\x00" * ((4 * 1024 * 1024 - 1024) // 2)
    raw = ch.unary_unary(SUBMIT)
    while a.alive():
        try:
            raw(body, timeout=10)
            a.bump("answered OK")
        except grpc.RpcError as e:
            a.bump("answered " + e.code().name)
    ch.close()


def attack_poison(a):
    """Submit [bad K, good K, bad K] with a fresh K each time."""
    ch, submit = submit_stub(a.target)
    i = 0
    while a.alive():
        k = "poison-%d-%d" % (os.getpid(), i)
        bad = record("hostile.poison", k, with_time=False)
        good = record("hostile.poison", k)
        try:
            r = submit(ing.SubmitRequest(records=[bad, good, bad]), timeout=10)
            a.bump("answered OK")
            for res in r.results:
                a.bump(ing.RecordResult.Outcome.Name(res.outcome))
        except grpc.RpcError as e:
            a.bump("answered " + e.code().name)
        i += 1
        time.sleep(0.01)
    ch.close()


ATTACKS = {"hpack": attack_hpack, "window": attack_window, "noread": attack_noread,
           "conns": attack_conns, "bigsubmit": attack_bigsubmit, "poison": attack_poison}


# ----------------------------------------------------- the good citizen --

def record(source, ref, with_time=True):
    r = rec.Record(source=source, source_ref=ref)
    p = r.purchase
    p.seller.name, p.seller.country, p.seller.kind = "Boote GmbH", "DE", rec.Party.COMPANY
    p.buyer.name, p.buyer.kind = "J. Doe", rec.Party.PERSON
    item = p.items.add(quantity=1)
    item.equipment.kind = rec.Equipment.ENGINE
    item.equipment.make, item.equipment.model = "Yamaha", "F40LEHA"
    item.equipment.serials.add(text="6E5-X-1O16523", method=rec.SerialReading.PLATE,
                               completeness=rec.SerialReading.COMPLETE)
    if with_time:
        p.time.seconds = int(time.time()) - 86400
    p.place.name, p.place.country = "Dunkerque", "FR"
    return r


class Citizen:
    """Calls Health.Check and Submit (one fresh record) in turn, 25 calls a
    second, on one channel opened before any attack."""

    def __init__(self, target):
        self.ch, self.submit = submit_stub(target)
        self.check = self.ch.unary_unary(HEALTH_CHECK)
        self.n = 0

    def run(self, seconds, label):
        lat = {"check": [], "submit": []}
        errors = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                if self.n % 2 == 0:
                    r = self.check(b"\x0a\x1atidewatch.v1.IngestService", timeout=5)
                    if r != b"\x08\x01":
                        errors.append("health: not SERVING")
                    lat["check"].append(time.monotonic() - t0)
                else:
                    rr = self.submit(ing.SubmitRequest(records=[record("hostile.citizen",
                                                                       "%s-%d-%d" % (label, os.getpid(), self.n))]),
                                     timeout=5)
                    if rr.results[0].outcome != ing.RecordResult.ACCEPTED:
                        errors.append("submit: " + ing.RecordResult.Outcome.Name(rr.results[0].outcome))
                    lat["submit"].append(time.monotonic() - t0)
            except grpc.RpcError as e:
                errors.append("%s: %s" % ("health" if self.n % 2 == 0 else "submit", e.code().name))
            self.n += 1
            time.sleep(max(0.0, 0.04 - (time.monotonic() - t0)))
        return lat, errors


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))] * 1000


def ms(xs, p):
    return "%.1fms" % pct(xs, p) if xs else "-"


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the daemon's pid (memory and CPU)")
    ap.add_argument("--quiet", type=float, default=10, help="seconds of the quiet phase")
    ap.add_argument("--attack", type=float, default=20, help="seconds of the attack phase")
    ap.add_argument("--attacks", default=",".join(ATTACKS), help="comma-separated: " + ",".join(ATTACKS))
    o = ap.parse_args()
    names = [n for n in o.attacks.split(",") if n]
    for n in names:
        if n not in ATTACKS:
            sys.exit("unknown attack %r (known: %s)" % (n, ", ".join(ATTACKS)))
    target = "127.0.0.1:%d" % o.port

    citizen = Citizen(target)
    citizen.run(1, "warm")
    rss0 = rss_kb(o.pid, "VmRSS")
    c0 = cpu_s(o.pid)
    q_lat, q_err = citizen.run(o.quiet, "quiet")
    c1 = cpu_s(o.pid)

    deadline = time.monotonic() + o.attack
    attacks = [Attack(n, o.port, target, deadline) for n in names]
    threads = [threading.Thread(target=ATTACKS[a.name], args=(a,), daemon=True) for a in attacks]
    peak = [rss0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kb(o.pid, "VmRSS"))
            except OSError:
                return
            stop.wait(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for t in threads:
        t.start()
    time.sleep(0.5)  # let the attacks build up before measuring
    a_lat, a_err = citizen.run(max(1.0, o.attack - 1.0), "attack")
    c2 = cpu_s(o.pid)
    for t in threads:
        t.join(timeout=15)
    stop.set()
    sampler.join()
    hwm = rss_kb(o.pid, "VmHWM")
    alive = os.path.exists("/proc/%d" % o.pid)

    print("well-behaved client: Health.Check and Submit(1 record) in turn, 25 calls/s, one channel")
    print("%-8s %6s %9s %9s %9s %9s %7s  %s" % ("phase", "calls", "check p50", "check p99",
                                                   "submit p50", "submit p99", "errors", "daemon CPU"))
    for label, lat, err, secs, cpu in (("quiet", q_lat, q_err, o.quiet, c1 - c0),
                                       ("attack", a_lat, a_err, o.attack - 1.0, c2 - c1)):
        print("%-8s %6d %9s %9s %10s %10s %7d  %.0f%% of a core" % (
            label, len(lat["check"]) + len(lat["submit"]), ms(lat["check"], 50), ms(lat["check"], 99),
            ms(lat["submit"], 50), ms(lat["submit"], 99), len(err), 100.0 * cpu / secs))
    if a_err:
        print("errors under attack (first 5):", "; ".join(a_err[:5]))
    print()
    print("attacks (%s s each, concurrently):" % o.attack)
    for a in attacks:
        print("  %-10s %s" % (a.name, ", ".join("%s: %s" % kv for kv in sorted(a.notes.items())) or "-"))
    print()
    print("daemon RSS: %.1f MB before, %.1f MB peak sampled, VmHWM %.1f MB (target < 256 MB); %s" % (
        rss0 / 1024, peak[0] / 1024, hwm / 1024, "still running" if alive else "DIED"))
    all_lat_q = q_lat["check"] + q_lat["submit"]
    all_lat_a = a_lat["check"] + a_lat["submit"]
    ratio = pct(all_lat_a, 99) / pct(all_lat_q, 99) if all_lat_q else float("nan")
    print("p99 of all calls: quiet %s, under attack %s, ratio %.2f (target <= 2)" % (
        ms(all_lat_q, 99), ms(all_lat_a, 99), ratio))
    met = alive and not a_err and hwm < 256 * 1024 and ratio <= 2
    print("targets: %s" % ("met" if met else "MISSED"))
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
