#!/usr/bin/python3
"""Latency from a record's acknowledgement by tidewatch-ingest to the alert it
causes on AlertService/WatchAlerts (tidewatch-query), under sustained ingest.

    alerts_latency.py --ingest HOST:PORT --query HOST:PORT --scenario DIR
                      [--rate N] [--settle SECONDS]

DIR is a `tidewatch simulate --out` directory (records.pb, index.csv). A
WatchAlerts stream is opened first (changes from now on); then the records
are submitted in arrival order, one per Submit call, at N records a second
(default 100; in the background of the stream), and the monotonic time of
each answer is noted by source_ref. Each alert change of a real-time rule
(job "") that arrives is matched to the records its evidence names (every
"source_ref" in evidence_json): its latency is its arrival minus the latest
acknowledgement among them. Prints p50 / p90 / p99 / max over the matched
changes, and how many could not be matched. Figures only: exit 0 unless the
services fail (1) or the input is bad (2)."""

import argparse
import csv
import os
import sys
import threading
import time

BUILD = os.environ.get("TW_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build"))
sys.path.insert(0, os.path.join(BUILD, "py"))
import grpc  # noqa: E402
from tidewatch.v1 import alerts_pb2  # noqa: E402
from tidewatch.v1 import ingest_pb2  # noqa: E402
from alerts_score import evidence_refs  # noqa: E402  (this directory)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    off, out = 0, []
    while off < len(data):
        n = shift = 0
        while True:
            b = data[off]
            off += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append(data[off:off + n])
        off += n
    return out


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingest", required=True)
    ap.add_argument("--query", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to wait for late alerts")
    args = ap.parse_args()
    try:
        recs = read_records(os.path.join(args.scenario, "records.pb"))
        with open(os.path.join(args.scenario, "index.csv"), newline="") as f:
            index = list(csv.DictReader(f))
    except (OSError, IndexError) as e:
        print("alerts_latency: cannot read the scenario: %s" % e, file=sys.stderr)
        return 2
    if len(recs) != len(index):
        print("alerts_latency: records.pb and index.csv disagree", file=sys.stderr)
        return 2
    qch = grpc.insecure_channel(args.query)
    ich = grpc.insecure_channel(args.ingest)
    watch = qch.unary_stream("/tidewatch.v1.AlertService/WatchAlerts",
                             request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=alerts_pb2.AlertChange.FromString)
    submit = ich.unary_unary("/tidewatch.v1.IngestService/Submit", request_serializer=lambda b: b,
                             response_deserializer=ingest_pb2.SubmitResponse.FromString)
    acked = {}
    changes = []
    lock = threading.Lock()
    stream = watch(alerts_pb2.WatchAlertsRequest())
    failure = []

    def reader():
        try:
            for ch in stream:
                t = time.monotonic()
                with lock:
                    changes.append((t, ch))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                failure.append(e)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    time.sleep(1.0)  # the stream is open before the first record
    period = 1.0 / args.rate if args.rate > 0 else 0
    t0 = time.monotonic()
    for i, (rec, row) in enumerate(zip(recs, index)):
        due = t0 + i * period
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        try:
            submit(b"\x0a" + varint(len(rec)) + rec, timeout=30)
        except grpc.RpcError as e:
            print("alerts_latency: Submit failed: %s" % e, file=sys.stderr)
            return 1
        acked[row["source_ref"]] = time.monotonic()
    sent_s = time.monotonic() - t0
    time.sleep(args.settle)
    stream.cancel()
    th.join(5)
    if failure:
        print("alerts_latency: WatchAlerts failed: %s" % failure[0], file=sys.stderr)
        return 1
    lat, unmatched, jobs = [], 0, 0
    with lock:
        for t, ch in changes:
            if ch.alert.job:
                jobs += 1
                continue
            if ch.kind not in ("raised", "evidence"):
                continue
            times = [acked[r] for r in evidence_refs(ch.alert.evidence_json) if r in acked]
            if not times:
                unmatched += 1
                continue
            lat.append((t - max(times)) * 1000.0)
    print("latency: %d records submitted in %.1f s (%.0f records/s, one per Submit); %d alert changes "
          "on WatchAlerts (%d from jobs, %d real-time not matched to a record)"
          % (len(recs), sent_s, len(recs) / sent_s if sent_s else 0, len(changes), jobs, unmatched))
    print("latency ack -> WatchAlerts: %d matched: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms "
          "(target p99 < 250 ms)" % (len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99),
                                    max(lat) if lat else float("nan")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
