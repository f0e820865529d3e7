#!/usr/bin/python3
"""tidewatch-ingest end to end: a real daemon, a real PostgreSQL, python3-grpcio
as the client. Records land once; resubmissions are duplicates; a mixed batch
keeps the good and reports the bad with field paths (and quarantines them);
limits are enforced; and PostgreSQL stopped and restarted during a stream
loses nothing and duplicates nothing once the client retries.

The daemon connects as a LOGIN user that is only a member of the
tidewatch_ingest role (least privilege).

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py), TW_PG_BINDIR (PostgreSQL server binaries). Prints "N passed, M
failed"."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SRC = os.environ.get("TW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TW_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.environ.get("TW_BIN_DIR", os.path.join(BUILD, "bin"))
sys.path.insert(0, os.path.join(BUILD, "py"))
import grpc  # noqa: E402
from tidewatch.v1 import derived_pb2  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402

R = ing.RecordResult
NOW = int(time.time())


def pg_bindir():
    d = os.environ.get("TW_PG_BINDIR")
    if d:
        return d
    out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
    return out.stdout.strip() or "/usr/lib/postgresql/15/bin"


def as_postgres(cmd):
    """Run a PostgreSQL server command as the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + cmd
    return cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A private PostgreSQL cluster this suite can stop and restart."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tw-ingest-pg-")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = os.path.join(self.dir, "data")
        bindir = pg_bindir()
        self.pg_ctl = os.path.join(bindir, "pg_ctl")
        subprocess.run(as_postgres([os.path.join(bindir, "initdb"), "-D", self.data, "-U", "postgres",
                                    "-A", "trust", "--no-sync"]),
                       check=True, capture_output=True)
        self.start()
        self.psql("postgres", "CREATE DATABASE tidewatch")
        self.url = "host=%s dbname=tidewatch user=postgres" % self.dir

    def start(self):
        subprocess.run(as_postgres([self.pg_ctl, "-D", self.data, "-w", "-l",
                                    os.path.join(self.dir, "log"), "-o",
                                    "-k %s -c listen_addresses='' -c fsync=off" % self.dir, "start"]),
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_postgres([self.pg_ctl, "-D", self.data, "-w", "-m", "fast", "stop"]),
                       check=True, capture_output=True)

    def psql(self, db, sql):
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                              "host=%s dbname=%s user=postgres" % (self.dir, db), "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("psql %s: %s" % (sql, out.stderr))
        return out.stdout.strip()

    def query(self, sql):
        return self.psql("tidewatch", sql)

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    def __init__(self, url):
        self.port = free_port()
        self.log = open(os.path.join(tempfile.gettempdir(), "tw-ingest-test-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-ingest"), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "", "--database-url", url, "--log-level", "info"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port,
                                             options=[("grpc.max_send_message_length", -1),
                                                      ("grpc.max_receive_message_length", -1)])
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.submit = self.channel.unary_unary("/tidewatch.v1.IngestService/Submit",
                                               request_serializer=ing.SubmitRequest.SerializeToString,
                                               response_deserializer=ing.SubmitResponse.FromString)
        self.stream = self.channel.stream_unary("/tidewatch.v1.IngestService/SubmitStream",
                                                request_serializer=rec.Record.SerializeToString,
                                                response_deserializer=ing.SubmitStreamResponse.FromString)
        self.health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                               request_serializer=lambda b: b,
                                               response_deserializer=lambda b: b)
        self.wait_serving()

    def serving(self):
        # HealthCheckRequest{service="tidewatch.v1.IngestService"}
        name = b"tidewatch.v1.IngestService"
        resp = self.health(b"\x0a" + bytes([len(name)]) + name, timeout=5)
        return resp == b"\x08\x01"

    def wait_serving(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.serving():
                return
            time.sleep(0.1)
        raise AssertionError("ingest never became SERVING")

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        os.unlink(self.log.name)
        return rc, text


def purchase(ref, serial="6E5-X-1O16523", source="retailer.de.boote", place="Dunkerque"):
    r = rec.Record(source=source, source_ref=ref)
    r.grading.source = rec.Grading.SOURCE_1_RELIABLE
    r.grading.information = rec.Grading.INFORMATION_A_KNOWN_DIRECTLY
    r.grading.handling = rec.Grading.HANDLING_P_LAWFUL_SHARING
    p = r.purchase
    p.seller.name, p.seller.country, p.seller.kind = "Boote GmbH", "DE", rec.Party.COMPANY
    p.buyer.name, p.buyer.kind = "J. Doe", rec.Party.PERSON
    item = p.items.add(quantity=1)
    item.equipment.kind = rec.Equipment.ENGINE
    item.equipment.make, item.equipment.model = "Yamaha", "F40LEHA"
    item.equipment.serials.add(text=serial, method=rec.SerialReading.PLATE,
                               completeness=rec.SerialReading.COMPLETE)
    p.time.seconds = NOW - 86400
    p.place.name, p.place.country = place, "FR"
    return r


class Ingest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Cluster()
        out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", cls.pg.url],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("migrate: " + out.stderr)
        cls.pg.query("CREATE ROLE ingest_login LOGIN IN ROLE tidewatch_ingest")
        cls.daemon = Daemon("host=%s dbname=tidewatch user=ingest_login" % cls.pg.dir)

    @classmethod
    def tearDownClass(cls):
        try:
            rc, log = cls.daemon.stop()
            if rc != 0:
                print(log, file=sys.stderr)
            assert rc == 0, "ingest must exit 0 on SIGTERM"
        finally:
            cls.pg.destroy()

    def count(self, where="true"):
        return int(self.pg.query("SELECT count(*) FROM events WHERE " + where))

    def test_accepted_once_then_duplicates(self):
        recs = [purchase("once-%d" % i) for i in range(3)]
        first = self.daemon.submit(ing.SubmitRequest(records=recs), timeout=10)
        self.assertEqual([r.outcome for r in first.results], [R.ACCEPTED] * 3)
        ids = [r.event_id for r in first.results]
        self.assertEqual(len(set(ids)), 3)
        self.assertEqual(self.count("source_ref LIKE 'once-%'"), 3)
        again = self.daemon.submit(ing.SubmitRequest(records=recs), timeout=10)
        self.assertEqual([r.outcome for r in again.results], [R.DUPLICATE] * 3)
        self.assertEqual([r.event_id for r in again.results], ids, "duplicates name the original")
        self.assertEqual(self.count("source_ref LIKE 'once-%'"), 3, "nothing added")

    def test_stored_with_normalised_keys(self):
        resp = self.daemon.submit(ing.SubmitRequest(records=[purchase("keys-1")]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        row = self.pg.query("SELECT kind, serial_keys::text, octet_length(payload) > 0, "
                            "encode(derived, 'hex') FROM events WHERE source_ref = 'keys-1'")
        kind, keys, has_payload, derived_hex = row.split("|")
        self.assertEqual((kind, keys, has_payload), ("1", "{6E5X1016523}", "t"))
        derived = derived_pb2.DerivedRecord.FromString(bytes.fromhex(derived_hex))
        self.assertEqual([s.key for s in derived.serials], ["6E5X1016523"])
        self.assertEqual(derived.places[0].source, "hub")
        self.assertEqual(derived.places[0].hub.name, "Dunkerque")
        self.assertIn("serial_format", {w.code for w in derived.warnings})
        codes = {w.code for w in resp.results[0].warnings}
        self.assertIn("serial_format", codes, "the OCR fix is reported")

    def test_mixed_batch_keeps_the_good(self):
        bad = purchase("mixed-bad")
        bad.purchase.seller.name = ""
        bad.purchase.items[0].equipment.serials[0].text = "6E5\U0001F600"
        recs = [purchase("mixed-good-1"), bad, purchase("mixed-good-2")]
        resp = self.daemon.submit(ing.SubmitRequest(records=recs), timeout=10)
        self.assertEqual([r.outcome for r in resp.results], [R.ACCEPTED, R.REJECTED, R.ACCEPTED])
        fields = {(e.field, e.code) for e in resp.results[1].errors}
        self.assertIn(("purchase.seller.name", "required"), fields)
        self.assertTrue(any(f == "purchase.items[0].equipment.serials[0].text" for f, _ in fields), fields)
        self.assertEqual(resp.results[1].event_id, 0)
        self.assertEqual(self.count("source_ref LIKE 'mixed-%'"), 2)
        self.assertEqual(self.pg.query("SELECT attempts, resolved_event IS NULL FROM quarantine "
                                       "WHERE source_ref = 'mixed-bad'"), "1|t")
        # The provider fixes it and resubmits under the same reference.
        fixed = self.daemon.submit(ing.SubmitRequest(records=[purchase("mixed-bad")]), timeout=10)
        self.assertEqual(fixed.results[0].outcome, R.ACCEPTED)
        self.assertEqual(self.pg.query("SELECT resolved_event = %d FROM quarantine WHERE "
                                       "source_ref = 'mixed-bad'" % fixed.results[0].event_id), "t")

    def test_duplicates_within_one_batch(self):
        resp = self.daemon.submit(ing.SubmitRequest(records=[purchase("twice"), purchase("twice")]),
                                  timeout=10)
        self.assertEqual([r.outcome for r in resp.results], [R.ACCEPTED, R.DUPLICATE])
        self.assertEqual(resp.results[0].event_id, resp.results[1].event_id)
        self.assertEqual(self.count("source_ref = 'twice'"), 1)

    def test_concurrent_calls_same_reference(self):
        results = []

        def go():
            results.append(self.daemon.submit(ing.SubmitRequest(records=[purchase("race")]),
                                              timeout=10).results[0])
        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes = sorted(r.outcome for r in results)
        self.assertEqual(outcomes, [R.ACCEPTED] + [R.DUPLICATE] * 3)
        self.assertEqual(len({r.event_id for r in results}), 1)
        self.assertEqual(self.count("source_ref = 'race'"), 1)

    def test_concurrent_batches_overlapping_references(self):
        """Batches committed concurrently on different connections that share
        references: every copy is answered with the one event's id (a
        duplicate committed by another transaction is looked up after)."""
        refs = ["overlap-%d" % i for i in range(200)]
        results = []
        lock = threading.Lock()

        def go(k):
            recs = [purchase(r) for r in (refs[k % 2::2] + refs[(k + 1) % 2::2])]
            resp = self.daemon.submit(ing.SubmitRequest(records=recs), timeout=20)
            with lock:
                results.extend(resp.results)
        threads = [threading.Thread(target=go, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(results), 12 * 200)
        ids = {}
        for r in results:
            self.assertIn(r.outcome, (R.ACCEPTED, R.DUPLICATE))
            self.assertNotEqual(r.event_id, 0, "every answer names the event")
            ids.setdefault(r.source_ref, set()).add(r.event_id)
        self.assertTrue(all(len(v) == 1 for v in ids.values()), "one event per reference")
        self.assertEqual(sum(r.outcome == R.ACCEPTED for r in results), 200)
        self.assertEqual(self.count("source_ref LIKE 'overlap-%'"), 200)

    def test_duplicate_committed_by_another_transaction_meanwhile(self):
        """Another writer holds the same reference uncommitted: our batch
        waits on it, and once it commits the answer is DUPLICATE with that
        writer's event id (looked up after our statement, whose snapshot
        could not see it)."""
        psql = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                                 "host=%s dbname=tidewatch user=postgres" % self.pg.dir],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        psql.stdin.write("BEGIN;\nINSERT INTO events (source, source_ref, kind, payload) VALUES "
                         "('retailer.de.boote', 'held', 1, '\\x00') RETURNING id;\n")
        psql.stdin.flush()
        held_id = int(psql.stdout.readline().strip())
        result = []
        t = threading.Thread(target=lambda: result.append(
            self.daemon.submit(ing.SubmitRequest(records=[purchase("held"), purchase("held-other")]),
                               timeout=20)))
        t.start()
        time.sleep(0.5)
        self.assertFalse(result, "the batch waits for the other transaction")
        psql.stdin.write("COMMIT;\n")
        psql.stdin.close()
        psql.wait(10)
        psql.stdout.close()
        t.join(20)
        self.assertTrue(result)
        r = result[0].results
        self.assertEqual((r[0].outcome, r[0].event_id), (R.DUPLICATE, held_id))
        self.assertEqual(r[1].outcome, R.ACCEPTED)

    def test_too_many_records_is_invalid_argument(self):
        recs = [purchase("many-%d" % i) for i in range(1001)]
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.submit(ing.SubmitRequest(records=recs), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("1000", cm.exception.details())
        self.assertEqual(self.count("source_ref LIKE 'many-%'"), 0)

    def test_oversize_message_is_refused(self):
        r = purchase("huge")
        r.purchase.items[0].equipment.description = "x" * (4 * 1024 * 1024 + 10)
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.submit(ing.SubmitRequest(records=[r]), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(self.count("source_ref = 'huge'"), 0)

    def test_malformed_bytes_are_invalid_argument(self):
        raw = self.daemon.channel.unary_unary("/tidewatch.v1.IngestService/Submit",
                                              request_serializer=lambda b: b,
                                              response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as cm:
            raw(b"\x0a\x05\x01", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_correction_links_to_the_corrected_event(self):
        orig = self.daemon.submit(ing.SubmitRequest(records=[purchase("to-correct")]), timeout=10)
        c = rec.Record(source="retailer.de.boote", source_ref="correction-1")
        c.correction.corrects.source = "retailer.de.boote"
        c.correction.corrects.source_ref = "to-correct"
        c.correction.reason = "wrong serial typed"
        resp = self.daemon.submit(ing.SubmitRequest(records=[c]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        self.assertEqual(self.pg.query("SELECT corrects FROM events WHERE source_ref = 'correction-1'"),
                         str(orig.results[0].event_id))
        c2 = rec.Record(source="retailer.de.boote", source_ref="correction-2")
        c2.correction.corrects.source = "retailer.de.boote"
        c2.correction.corrects.source_ref = "never-submitted"
        c2.correction.reason = "x"
        resp = self.daemon.submit(ing.SubmitRequest(records=[c2]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        self.assertIn("not_found", {w.code for w in resp.results[0].warnings})

    def test_stream_counts_and_rejections(self):
        def gen():
            for i in range(3000):
                r = purchase("stream-%d" % i)
                if i % 1000 == 7:
                    r.purchase.ClearField("time")
                yield r
        resp = self.daemon.stream(gen(), timeout=60)
        self.assertEqual((resp.accepted, resp.duplicates, resp.rejected), (2997, 0, 3))
        self.assertEqual(sorted(r.source_ref for r in resp.rejections),
                         ["stream-1007", "stream-2007", "stream-7"])
        self.assertEqual(resp.rejections[0].errors[0].field, "purchase.time")
        self.assertEqual(self.count("source_ref LIKE 'stream-%'"), 2997)

    def test_zz_postgres_restart_during_stream(self):
        """Stop PostgreSQL in the middle of a stream: the client sees
        UNAVAILABLE, retries the whole stream after the restart, and the log
        holds every record exactly once."""
        n = 20000
        recs = [purchase("restart-%d" % i) for i in range(n)]
        sent = [0]

        def gen():
            for i, r in enumerate(recs):
                sent[0] = i
                yield r
        stopper = threading.Thread(target=lambda: (time.sleep(0.3), self.pg.stop()))
        stopper.start()
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.stream(gen(), timeout=60)
            # A tiny chance the stream completed before the stop: make it fail
            # visibly rather than pass vacuously.
            raise AssertionError("the stream finished before PostgreSQL stopped")
        stopper.join()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE, cm.exception.details())
        self.assertGreater(sent[0], 0)
        end = time.monotonic() + 10
        while self.daemon.serving() and time.monotonic() < end:
            time.sleep(0.1)
        self.assertFalse(self.daemon.serving(), "NOT_SERVING while the database is down")
        # Fail fast while down.
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.submit(ing.SubmitRequest(records=[purchase("while-down")]), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)

        self.pg.start()
        self.daemon.wait_serving(timeout=30)
        # The client's retry loop: the whole stream again until it succeeds.
        for attempt in range(10):
            try:
                resp = self.daemon.stream(iter(recs), timeout=120)
                break
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)
                time.sleep(0.5)
        else:
            self.fail("the retried stream never succeeded")
        self.assertEqual(resp.rejected, 0)
        self.assertEqual(resp.accepted + resp.duplicates, n)
        self.assertEqual(self.count("source_ref LIKE 'restart-%'"), n, "no loss, no duplicates")
        self.assertEqual(self.count("source_ref = 'while-down'"), 0)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
