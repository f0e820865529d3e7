#!/usr/bin/python3
"""tidewatch-ingest end to end: a real daemon, a real PostgreSQL, python3-grpcio
as the client. Records land once; resubmissions are duplicates (or conflicts
when the content differs); a mixed batch keeps the good and reports the bad
with field paths (and quarantines them); one caller's bad records never fail
another caller's; limits (records, bytes, decoding memory, answer size) are
enforced; and PostgreSQL stopped and restarted during a stream loses nothing
and duplicates nothing once the client retries.

The daemon connects as a LOGIN user that is only a member of the
tidewatch_ingest role (least privilege).

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py), TW_PG_BINDIR (PostgreSQL server binaries). Prints "N passed, M
failed"."""

import os
import signal
import subprocess
import sys
import tempfile
import re
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, PgCluster, free_port  # noqa: E402,F401
import grpc  # noqa: E402
from tidewatch.v1 import derived_pb2  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402

R = ing.RecordResult
NOW = int(time.time())


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


def ld_field(number, payload):
    """A length-delimited field on the wire."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def submit_bytes(records):
    """A SubmitRequest from records given as bytes."""
    return b"".join(ld_field(1, r) for r in records)




class Cluster(PgCluster):
    """A private PostgreSQL cluster this suite can stop and restart."""

    def __init__(self):
        PgCluster.__init__(self, "tw-ingest-pg-")
        self.psql("postgres", "CREATE DATABASE tidewatch")
        self.url = "host=%s dbname=tidewatch user=postgres" % self.dir

    def psql(self, db, sql):
        out = self.run_psql(db, sql)
        if out.returncode != 0:
            raise AssertionError("psql %s: %s" % (sql, out.stderr))
        return out.stdout.strip()

    def deadlocks(self):
        """Deadlocks the server has logged so far (immediate, unlike
        pg_stat_database, whose counters are flushed lazily)."""
        return self.log_text().count("deadlock detected")


class Client:
    """One gRPC channel (one HTTP/2 connection) to the daemon: one caller."""

    def __init__(self, port):
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port,
                                             options=[("grpc.max_send_message_length", -1),
                                                      ("grpc.max_receive_message_length", -1)])
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.submit = self.channel.unary_unary("/tidewatch.v1.IngestService/Submit",
                                               request_serializer=ing.SubmitRequest.SerializeToString,
                                               response_deserializer=ing.SubmitResponse.FromString)
        # The request as raw bytes: what a stock client's serializer cannot produce.
        self.raw_submit = self.channel.unary_unary("/tidewatch.v1.IngestService/Submit",
                                                   request_serializer=lambda b: b,
                                                   response_deserializer=ing.SubmitResponse.FromString)
        self.stream = self.channel.stream_unary("/tidewatch.v1.IngestService/SubmitStream",
                                                request_serializer=rec.Record.SerializeToString,
                                                response_deserializer=ing.SubmitStreamResponse.FromString)
        self.health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                               request_serializer=lambda b: b,
                                               response_deserializer=lambda b: b)

    def close(self):
        self.channel.close()


class Daemon(Client):
    def __init__(self, url, extra=()):
        self.port = free_port()
        self.metrics_port = free_port()
        self.log = open(os.path.join(tempfile.gettempdir(), "tw-ingest-test-%d.log" % self.port), "w+")
        env = dict(os.environ)
        if env.get("ASAN_OPTIONS"):
            # ASan holds up to 256 MiB of freed memory in quarantine by
            # default, which would hide what the daemon itself keeps (the
            # memory tests read its RSS).
            env["ASAN_OPTIONS"] += ":quarantine_size_mb=16"
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-ingest"), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port, "--database-url", url,
             "--log-level", "info", "--log-rejections", "1000000"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        Client.__init__(self, self.port)
        self.wait_serving()

    def metric(self, name, label=None):
        """The value of one series on /metrics (0 when absent)."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=10) as f:
            text = f.read().decode()
        for line in text.splitlines():
            m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), line)
            if m and (label is None or label in m.group(1)):
                return float(m.group(2))
        return 0.0

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def status(self, key):
        """A line of /proc/PID/status in KiB, e.g. VmHWM."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise AssertionError("no %s in /proc/%d/status" % (key, self.proc.pid))

    def reset_peak_rss(self):
        """Make VmHWM start again from the current RSS (Linux >= 4.0)."""
        with open("/proc/%d/clear_refs" % self.proc.pid, "w") as f:
            f.write("5")

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


def correction(ref, target, source="retailer.de.boote", target_source="retailer.de.boote"):
    c = rec.Record(source=source, source_ref=ref)
    c.correction.corrects.source = target_source
    c.correction.corrects.source_ref = target
    c.correction.reason = "wrong serial typed"
    return c


def padded_purchase(ref, size):
    """A valid purchase of about `size` bytes (items with 1000-byte descriptions)."""
    r = purchase(ref)
    while r.ByteSize() < size - 1100:
        item = r.purchase.items.add(quantity=1)
        item.equipment.kind = rec.Equipment.OTHER
        item.equipment.description = "d" * 1000
    return r


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
        cls.daemon_url = "host=%s dbname=tidewatch user=ingest_login" % cls.pg.dir
        cls.daemon = Daemon(cls.daemon_url)

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

    def test_party_places_identifiers_and_times_are_derived(self):
        # Issue 7: a buyer's town and region, its identifiers and the record's
        # times reach events.derived through the real daemon, over gRPC.
        r1 = purchase("contract-1")
        buyer = r1.purchase.buyer
        buyer.country = "DE"
        buyer.place.name = "Münster"
        buyer.place.country = "DE"
        buyer.place.region = "DE-NW"
        buyer.identifiers.add(kind=rec.PartyIdentifier.VAT, value="811 907 980")
        buyer.identifiers.add(kind=rec.PartyIdentifier.PHONE, value="01512 3456789")
        buyer.identifiers.add(kind=rec.PartyIdentifier.EMAIL, value=" Max@Example.DE")
        resp = self.daemon.submit(ing.SubmitRequest(records=[r1]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED, resp.results[0])
        derived_hex = self.pg.query("SELECT encode(derived, 'hex') FROM events "
                                    "WHERE source_ref = 'contract-1'")
        derived = derived_pb2.DerivedRecord.FromString(bytes.fromhex(derived_hex))
        self.assertEqual([p.field for p in derived.party_places], ["purchase.buyer.place"])
        self.assertAlmostEqual(derived.party_places[0].lat, 51.96236, places=4)
        self.assertEqual([(i.kind, i.value) for i in derived.identifiers],
                         [("vat", "DE811907980"), ("phone", "+4915123456789"),
                          ("email", "max@example.de")])
        self.assertEqual([t.field for t in derived.times], ["purchase.time"])
        self.assertEqual(derived.times[0].seconds, r1.purchase.time.seconds)
        # Without the region the town stays unresolved, and the warning
        # advises the contract's field.
        r2 = purchase("contract-2")
        r2.purchase.buyer.place.name = "Münster"
        r2.purchase.buyer.place.country = "DE"
        resp = self.daemon.submit(ing.SubmitRequest(records=[r2]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        amb = [w for w in resp.results[0].warnings if w.code == "ambiguous"]
        self.assertEqual([w.field for w in amb], ["purchase.buyer.place"])
        self.assertIn("place.region", amb[0].reason)
        self.assertNotIn("admin1", amb[0].reason)

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
        deadlocks = self.pg.deadlocks()

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
        # Every group commit takes its keys in one global order, so the
        # daemon's concurrent transactions never wait on each other in a
        # cycle (each deadlock would cost deadlock_timeout, then a retry).
        self.assertEqual(self.pg.deadlocks() - deadlocks, 0, "group commits deadlocked")

    def test_different_orders_in_concurrent_batches_do_not_deadlock(self):
        """Two callers send the same references at once, each in its own
        order, so that their group commits run concurrently on the daemon's
        two connections with the same keys. Inserted in arrival order, each
        transaction would hold keys the other waits for (a deadlock: 1 s of
        deadlock_timeout, then a retry); inserted in key order they cannot."""
        import random
        rnd = random.Random(6)
        d = Daemon(self.daemon_url, ["--flush-delay", "0"])
        clients = [Client(d.port), Client(d.port)]
        try:
            deadlocks = self.pg.deadlocks()
            for round_ in range(8):
                refs = ["order-%d-%03d" % (round_, i) for i in range(300)]
                orders = [rnd.sample(refs, len(refs)) for _ in clients]
                reqs = [ing.SubmitRequest(records=[purchase(r) for r in o]) for o in orders]
                results = [None, None]
                start = threading.Barrier(2)

                def go(k):
                    start.wait()
                    results[k] = clients[k].submit(reqs[k], timeout=30).results
                threads = [threading.Thread(target=go, args=(k,)) for k in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                outcomes = [r.outcome for v in results for r in v]
                self.assertEqual(outcomes.count(R.ACCEPTED), 300)
                self.assertEqual(outcomes.count(R.DUPLICATE), 300)
            self.assertEqual(self.pg.deadlocks() - deadlocks, 0, "group commits deadlocked")
        finally:
            for c in clients:
                c.close()
            d.stop()

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

    def target_of(self, correction_ref):
        """The event a correction names, resolved at read time by (source,
        source_ref): its id, or "" while the target is not in the log."""
        return self.pg.query("SELECT target_id FROM event_corrections c JOIN events e "
                             "ON e.id = c.correction_id WHERE e.source_ref = '%s'" % correction_ref)

    def test_correction_links_to_the_corrected_event(self):
        orig = self.daemon.submit(ing.SubmitRequest(records=[purchase("to-correct")]), timeout=10)
        resp = self.daemon.submit(ing.SubmitRequest(records=[correction("correction-1", "to-correct")]),
                                  timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        self.assertNotIn("not_found", {w.code for w in resp.results[0].warnings})
        self.assertEqual(self.pg.query("SELECT corrects_source || '|' || corrects_ref FROM events "
                                       "WHERE source_ref = 'correction-1'"),
                         "retailer.de.boote|to-correct")
        self.assertEqual(self.target_of("correction-1"), str(orig.results[0].event_id))
        resp = self.daemon.submit(ing.SubmitRequest(records=[correction("correction-2", "never-submitted")]),
                                  timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        self.assertIn("not_found", {w.code for w in resp.results[0].warnings})
        self.assertEqual(self.target_of("correction-2"), "")

    def test_correction_in_the_same_batch_as_its_target(self):
        """The target and its correction in one group commit: the link used to
        be resolved with the statement's snapshot (NULL for ever); it is now
        what the correction names, resolved when read."""
        resp = self.daemon.submit(ing.SubmitRequest(records=[purchase("same-batch-target"),
                                                             correction("same-batch-corr", "same-batch-target")]),
                                  timeout=10)
        self.assertEqual([r.outcome for r in resp.results], [R.ACCEPTED, R.ACCEPTED])
        self.assertNotIn("not_found", {w.code for w in resp.results[1].warnings},
                         "the target is in the same batch")
        self.assertEqual(self.target_of("same-batch-corr"), str(resp.results[0].event_id))

    def test_correction_before_its_target(self):
        """A correction that arrives first is accepted with a warning, and
        applies once its target arrives: order of arrival does not matter."""
        resp = self.daemon.submit(ing.SubmitRequest(records=[correction("early-corr", "late-target")]),
                                  timeout=10)
        self.assertEqual(resp.results[0].outcome, R.ACCEPTED)
        warn = [w for w in resp.results[0].warnings if w.code == "not_found"]
        self.assertEqual(len(warn), 1)
        self.assertEqual(warn[0].field, "correction.corrects")
        self.assertIn("when it arrives", warn[0].reason)
        self.assertEqual(self.target_of("early-corr"), "")
        target = self.daemon.submit(ing.SubmitRequest(records=[purchase("late-target")]), timeout=10)
        self.assertEqual(target.results[0].outcome, R.ACCEPTED)
        self.assertEqual(self.target_of("early-corr"), str(target.results[0].event_id))

    def test_correction_of_another_source_is_rejected(self):
        """EPCIS: an error declaration comes from the party that declared the
        event. A correction naming another source's record is rejected."""
        self.daemon.submit(ing.SubmitRequest(records=[purchase("theirs", source="retailer.fr.other")]),
                           timeout=10)
        c = correction("not-mine", "theirs", source="retailer.de.boote", target_source="retailer.fr.other")
        resp = self.daemon.submit(ing.SubmitRequest(records=[c]), timeout=10)
        self.assertEqual(resp.results[0].outcome, R.REJECTED)
        self.assertIn(("correction.corrects.source", "other_source"),
                      {(e.field, e.code) for e in resp.results[0].errors})
        self.assertEqual(self.count("source_ref = 'not-mine'"), 0)

    def test_conflicting_resubmission(self):
        """Same reference, different content: CONFLICT (the stored record
        stays); same content, even encoded differently: DUPLICATE."""
        a = purchase("conflict-1")
        first = self.daemon.submit(ing.SubmitRequest(records=[a]), timeout=10).results[0]
        self.assertEqual(first.outcome, R.ACCEPTED)
        same = self.daemon.submit(ing.SubmitRequest(records=[a]), timeout=10).results[0]
        self.assertEqual((same.outcome, same.event_id), (R.DUPLICATE, first.event_id))
        b = purchase("conflict-1", serial="6E5-X-1999999")
        other = self.daemon.submit(ing.SubmitRequest(records=[b]), timeout=10).results[0]
        self.assertEqual((other.outcome, other.event_id), (R.CONFLICT, first.event_id))
        self.assertEqual([(e.field, e.code) for e in other.errors], [("(record)", "conflict")])
        self.assertIn("conflict: same reference, different content; send a correction",
                      other.errors[0].reason)
        self.assertEqual(self.pg.query("SELECT payload = '\\x%s'::bytea FROM events WHERE source_ref = "
                                       "'conflict-1'" % a.SerializeToString().hex()), "t")
        # The same content with its fields in another order on the wire.
        body = rec.Record()
        body.CopyFrom(a)
        body.ClearField("source")
        body.ClearField("source_ref")
        reordered = (ld_field(2, b"conflict-1") + body.SerializeToString() +
                     ld_field(1, a.source.encode()))
        again = self.daemon.raw_submit(submit_bytes([reordered]), timeout=10).results[0]
        self.assertEqual((again.outcome, again.event_id), (R.DUPLICATE, first.event_id))
        # Within one batch.
        resp = self.daemon.submit(ing.SubmitRequest(records=[purchase("conflict-2"), purchase("conflict-2"),
                                                             purchase("conflict-2", serial="6E5-X-1999999")]),
                                  timeout=10)
        self.assertEqual([r.outcome for r in resp.results], [R.ACCEPTED, R.DUPLICATE, R.CONFLICT])
        self.assertEqual(len({r.event_id for r in resp.results}), 1)
        self.assertEqual(self.count("source_ref = 'conflict-2'"), 1)

    def test_unknown_fields_are_rejected_with_their_path(self):
        r = purchase("unknown-1")
        eq = rec.Equipment()
        eq.ParseFromString(r.purchase.items[0].equipment.SerializeToString() + varint(99 << 3) + b"\x01")
        r.purchase.items[0].equipment.CopyFrom(eq)  # keeps the unknown field 99
        resp = self.daemon.submit(ing.SubmitRequest(records=[r, purchase("unknown-good")]), timeout=10)
        self.assertEqual([x.outcome for x in resp.results], [R.REJECTED, R.ACCEPTED])
        errs = [(e.field, e.code) for e in resp.results[0].errors]
        self.assertIn(("purchase.items[0].equipment", "unknown_field"), errs)
        self.assertIn("99", [e.reason for e in resp.results[0].errors if e.code == "unknown_field"][0])
        self.assertEqual(self.count("source_ref = 'unknown-1'"), 0)
        self.assertEqual(self.pg.query("SELECT resolved_event IS NULL FROM quarantine "
                                       "WHERE source_ref = 'unknown-1'"), "t")

    def test_field_number_zero_is_rejected(self):
        """Field number 0 (here a padded two-byte key, which protobuf-c takes
        for an unknown field) is malformed: rejected with its path."""
        bad = purchase("zero-1").SerializeToString() + b"\x80\x00\x01"
        good = purchase("zero-good").SerializeToString()
        resp = self.daemon.raw_submit(submit_bytes([bad, good]), timeout=10)
        self.assertEqual([x.outcome for x in resp.results], [R.REJECTED, R.ACCEPTED])
        e = resp.results[0].errors[0]
        self.assertEqual((e.field, e.code), ("(record)", "malformed"))
        self.assertIn("field number 0", e.reason)
        self.assertEqual(self.count("source_ref = 'zero-1'"), 0)

    def test_oversized_record_is_rejected(self):
        """A record is capped (64 KiB by default) well below the message
        limit, padded with unknown fields or not."""
        big = padded_purchase("big-1", 70 * 1024)
        padded = purchase("big-2").SerializeToString() + ld_field(50, b"x" * (1 << 20))
        resp = self.daemon.raw_submit(submit_bytes([big.SerializeToString(), padded,
                                                    padded_purchase("big-ok", 60 * 1024).SerializeToString()]),
                                      timeout=20)
        self.assertEqual([x.outcome for x in resp.results], [R.REJECTED, R.REJECTED, R.ACCEPTED])
        for res in resp.results[:2]:
            self.assertEqual([(e.field, e.code) for e in res.errors], [("(record)", "too_large")])
            self.assertIn("65536", res.errors[0].reason)
        self.assertEqual(resp.results[1].source_ref, "big-2", "the reference is still reported")
        self.assertEqual(self.count("source_ref IN ('big-1', 'big-2')"), 0)
        self.assertEqual(self.count("source_ref = 'big-ok'"), 1)

    def test_stream_byte_window_and_batch_bytes(self):
        """While commits are held up, a stream may have 8 MiB (not 4000
        records) awaiting commit before the server stops reading it; and
        once they flow, no group commit is larger than 4 MiB."""
        lock = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                                 "host=%s dbname=tidewatch user=postgres" % self.pg.dir],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        lock.stdin.write("BEGIN;\nLOCK TABLE events IN SHARE ROW EXCLUSIVE MODE;\nSELECT 'locked';\n")
        lock.stdin.flush()
        self.assertEqual(lock.stdout.readline().strip(), "locked")
        template = padded_purchase("window-x", 60 * 1024)
        total = 700
        sent = [0]

        def gen():
            for i in range(total):
                r = rec.Record()
                r.CopyFrom(template)
                r.source_ref = "window-%d" % i
                sent[0] = i + 1
                yield r
        result = []
        failure = []

        def run():
            try:
                result.append(self.daemon.stream(gen(), timeout=120))
            except grpc.RpcError as e:
                failure.append(e)
        t = threading.Thread(target=run)
        try:
            t.start()
            last, still = -1, 0
            end = time.monotonic() + 60
            while time.monotonic() < end and sent[0] < total and still < 20:
                time.sleep(0.1)
                still = still + 1 if sent[0] == last else 0
                last = sent[0]
            held = sent[0]
            print("records handed to the stream while commits were held: %d (%.1f MiB)" %
                  (held, held * template.ByteSize() / 1048576.0), file=sys.stderr)
        finally:
            lock.stdin.write("COMMIT;\n")
            lock.stdin.close()
            lock.wait(10)
            lock.stdout.close()
        t.join(120)
        self.assertLess(held, total, "the server never stopped reading the stream")
        # 8 MiB of window, plus what HTTP/2 and the sockets hold.
        self.assertLess(held * template.ByteSize(), 32 << 20)
        self.assertFalse(failure, failure and failure[0].details())
        self.assertEqual((result[0].accepted, result[0].rejected), (total, 0))
        biggest = int(self.pg.query("SELECT max(s) FROM (SELECT sum(octet_length(payload)) AS s FROM events "
                                    "WHERE source_ref LIKE 'window-%' GROUP BY tx) t"))
        self.assertLessEqual(biggest, 4 << 20, "a group commit holds at most 4 MiB of records")

    def test_response_fits_with_999_bad_records(self):
        """999 records with a hundred errors each and one good record: the
        answer is bounded (issue lists truncated, and said so) instead of
        being lost after the good record committed."""
        def bad(i):
            r = rec.Record(source="retailer.de.boote", source_ref="fit-bad-%d" % i)
            for _ in range(1000):
                r.purchase.items.add()  # no equipment: one error per item
            return r
        recs = [bad(i) for i in range(999)] + [purchase("fit-good")]
        resp = self.daemon.submit(ing.SubmitRequest(records=recs), timeout=60)
        self.assertEqual(len(resp.results), 1000)
        self.assertTrue(resp.truncated)
        self.assertEqual(resp.results[999].outcome, R.ACCEPTED)
        self.assertEqual(self.count("source_ref = 'fit-good'"), 1)
        for r in resp.results[:999]:
            self.assertEqual(r.outcome, R.REJECTED)
            self.assertLessEqual(len(r.errors), 9)
            self.assertEqual(r.errors[-1].code, "truncated")
        self.assertIn("more", resp.results[0].errors[-1].reason)

    def test_empty_records_flood_is_refused_before_decoding(self):
        """4 MiB of empty records (two bytes each) is refused by counting on
        the wire, before protobuf-c turns it into hundreds of MiB."""
        data = b"\x0a\x00" * ((4 << 20) // 2 - 16)
        self.daemon.reset_peak_rss()
        base = self.daemon.status("VmRSS")
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.raw_submit(data, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("1000", cm.exception.details())
        grew = self.daemon.status("VmHWM") - base
        print("peak RSS growth: %d KiB" % grew, file=sys.stderr)
        self.assertLess(grew, 48 << 10, "peak RSS grew by %d KiB" % grew)

    def test_large_submit_does_not_stall_other_calls(self):
        """A 4 MiB Submit of records full of empty items is decoded record by
        record, in slices across loop turns: health checks on another
        connection are answered meanwhile, and memory stays bounded."""
        one = rec.Record(source="retailer.de.boote", source_ref="slices-x")
        for _ in range(1990):
            one.purchase.items.add()
        recs = []
        for i in range(1000):
            r = rec.Record()
            r.CopyFrom(one)
            r.source_ref = "slices-%d" % i
            recs.append(r)
        # Serialized up front: the probe thread must not wait for Python's
        # GIL while the client encodes two million sub-messages.
        req = ing.SubmitRequest(records=recs).SerializeToString()
        self.assertLess(len(req), 4 << 20)
        other = Client(self.daemon.port)
        latencies = []
        done = threading.Event()

        def probe():
            while not done.is_set():
                t0 = time.monotonic()
                other.health(b"", timeout=5)
                latencies.append(time.monotonic() - t0)
                time.sleep(0.002)
        self.daemon.reset_peak_rss()
        base = self.daemon.status("VmRSS")
        t = threading.Thread(target=probe)
        t.start()
        try:
            t0 = time.monotonic()
            resp = self.daemon.raw_submit(req, timeout=60)
            took = time.monotonic() - t0
        finally:
            done.set()
            t.join(10)
            other.close()
        grew = self.daemon.status("VmHWM") - base
        self.assertEqual([r.outcome for r in resp.results], [R.REJECTED] * 1000)
        self.assertIn(("purchase.items", "too_many"), {(e.field, e.code) for e in resp.results[0].errors})
        print("4 MiB Submit: %.0f ms; %d health checks meanwhile, slowest %.1f ms; peak RSS growth %d KiB" %
              (took * 1000, len(latencies), max(latencies) * 1000, grew), file=sys.stderr)
        self.assertGreater(len(latencies), 0)
        self.assertLess(grew, 64 << 10, "peak RSS grew by %d KiB" % grew)

    def test_many_small_records_in_one_submit_are_stored_exactly(self):
        """A Submit under the slice size but of many small records takes
        more than one loop turn (each record also counts a fixed cost): its
        later records must still be read from the request as sent, not from
        a buffer the server has reused meanwhile (they were rejected as
        malformed, or could be stored altered)."""
        recs = [purchase("small-%03d" % i, serial="6E5-X-1%06d" % i) for i in range(900)]
        req = ing.SubmitRequest(records=recs)
        self.assertLess(req.ByteSize(), 256 << 10, "under one slice in bytes")
        for attempt in range(3):
            fresh = Client(self.daemon.port)  # a new connection, as the first call of a client
            try:
                resp = fresh.submit(req, timeout=60)
            finally:
                fresh.close()
            bad = [(r.index, list(r.errors)) for r in resp.results
                   if r.outcome not in (R.ACCEPTED, R.DUPLICATE)]
            self.assertEqual(bad, [], "attempt %d" % attempt)
        stored = self.pg.query("SELECT string_agg(source_ref || ' ' || encode(payload, 'hex'), ',' "
                               "ORDER BY source_ref) FROM events WHERE source_ref LIKE 'small-%'")
        want = ",".join("%s %s" % (r.source_ref, r.SerializeToString().hex()) for r in recs)
        self.assertEqual(stored, want, "every record stored byte for byte as sent")

    def test_rejections_without_a_usable_key_are_counted_and_logged(self):
        """Records whose source or source_ref is unusable cannot wait in
        quarantine, but they are counted and logged like every rejection;
        their echoed reference stays valid UTF-8."""
        before = self.daemon.metric("tidewatch_ingest_records_total", 'outcome="rejected"')
        log_before = len(self.daemon.log_text())
        no_source = purchase("nokey-1", source="")
        ctl = purchase("nokey-2", source="retailer\x01de")
        long_ref = purchase("r" * 200)
        bad_utf8 = ld_field(1, b"retailer.\xff") + ld_field(2, b"nokey-4")
        recs = [no_source.SerializeToString(), ctl.SerializeToString(), long_ref.SerializeToString(),
                bad_utf8, purchase("nokey-good").SerializeToString()]
        resp = self.daemon.raw_submit(submit_bytes(recs), timeout=10)
        self.assertEqual([r.outcome for r in resp.results], [R.REJECTED] * 4 + [R.ACCEPTED])
        self.assertEqual(resp.results[3].source, "retailer.?")
        self.assertLessEqual(len(resp.results[2].source_ref), 128)
        after = self.daemon.metric("tidewatch_ingest_records_total", 'outcome="rejected"')
        self.assertEqual(after - before, 4)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            logged = self.daemon.log_text()[log_before:].count("without a usable reference")
            if logged >= 4:
                break
            time.sleep(0.1)
        self.assertEqual(logged, 4)

    def test_poisoning_client_does_not_fail_another(self):
        """One caller sends [bad K, good K, bad K] again and again (bad: no
        time) while another submits good records. Two quarantine rows for K
        in one statement once made PostgreSQL refuse the whole group commit,
        the other caller's records included."""
        other = Client(self.daemon.port)
        errors, a_out, b_out = [], [], []

        def poison():
            for i in range(40):
                bad = purchase("poison-%d" % i)
                bad.purchase.ClearField("time")
                try:
                    resp = self.daemon.submit(ing.SubmitRequest(records=[bad, purchase("poison-%d" % i), bad]),
                                              timeout=20)
                    a_out.append([r.outcome for r in resp.results])
                except grpc.RpcError as e:
                    errors.append(("poisoner", e.code(), e.details()))

        def bystander():
            for i in range(40):
                try:
                    resp = other.submit(ing.SubmitRequest(records=[purchase("bystander-%d-%d" % (i, k))
                                                                   for k in range(5)]), timeout=20)
                    b_out.extend(r.outcome for r in resp.results)
                except grpc.RpcError as e:
                    errors.append(("bystander", e.code(), e.details()))
        threads = [threading.Thread(target=poison), threading.Thread(target=bystander)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        other.close()
        self.assertEqual(errors, [])
        self.assertEqual(b_out, [R.ACCEPTED] * 200)
        self.assertEqual(a_out, [[R.REJECTED, R.ACCEPTED, R.REJECTED]] * 40)
        self.assertEqual(self.count("source_ref LIKE 'poison-%'"), 40)
        # One quarantine row per reference, counting both attempts, resolved
        # by the accepted record.
        self.assertEqual(self.pg.query("SELECT count(*), min(attempts), max(attempts), "
                                       "bool_and(resolved_event IS NOT NULL) FROM quarantine "
                                       "WHERE source_ref LIKE 'poison-%'"), "40|2|2|t")

    def test_record_the_database_refuses_fails_alone(self):
        """A record PostgreSQL refuses (here a test trigger raises for it)
        fails alone: the batch is split until the cause is found, it is
        rejected with the database's reason, and every other record in the
        same group commits, another caller's included."""
        self.pg.query("CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "IF NEW.source_ref LIKE 'refused-%' THEN RAISE EXCEPTION 'test trigger refuses %', "
                      "NEW.source_ref USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$; "
                      "CREATE TRIGGER test_refuse BEFORE INSERT ON events FOR EACH ROW "
                      "EXECUTE FUNCTION test_refuse()")
        other = Client(self.daemon.port)
        errors, a_out, b_out = [], [], []
        try:
            def poison():
                for i in range(20):
                    try:
                        resp = self.daemon.submit(ing.SubmitRequest(records=[
                            purchase("refusing-ok-%d-a" % i), purchase("refused-%d" % i),
                            purchase("refusing-ok-%d-b" % i)]), timeout=30)
                        a_out.append(resp.results)
                    except grpc.RpcError as e:
                        errors.append(("poisoner", e.code(), e.details()))

            def bystander():
                for i in range(20):
                    try:
                        resp = other.submit(ing.SubmitRequest(records=[purchase("refuse-by-%d-%d" % (i, k))
                                                                       for k in range(5)]), timeout=30)
                        b_out.extend(r.outcome for r in resp.results)
                    except grpc.RpcError as e:
                        errors.append(("bystander", e.code(), e.details()))
            threads = [threading.Thread(target=poison), threading.Thread(target=bystander)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
        finally:
            other.close()
            self.pg.query("DROP TRIGGER test_refuse ON events; DROP FUNCTION test_refuse()")
        self.assertEqual(errors, [])
        self.assertEqual(b_out, [R.ACCEPTED] * 100)
        for res in a_out:
            self.assertEqual([r.outcome for r in res], [R.ACCEPTED, R.REJECTED, R.ACCEPTED])
            self.assertEqual(res[1].errors[0].code, "storage_refused")
            self.assertIn("test trigger refuses", res[1].errors[0].reason)
        self.assertEqual(len(a_out), 20)
        self.assertEqual(self.count("source_ref LIKE 'refused-%'"), 0)
        self.assertEqual(self.count("source_ref LIKE 'refusing-ok-%'"), 40)

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

    def test_stream_answers_rejections_and_conflicts(self):
        """SubmitStream takes each message through the same checks: too
        large, unknown fields and unusable keys are rejected, a changed
        resubmission is a conflict, and all are counted and listed."""
        self.daemon.submit(ing.SubmitRequest(records=[purchase("s-conflict")]), timeout=10)
        unknown = purchase("s-unknown")
        p = rec.Purchase()
        p.ParseFromString(unknown.purchase.SerializeToString() + ld_field(42, b"zz"))
        unknown.purchase.CopyFrom(p)
        recs = [purchase("s-good"), padded_purchase("s-big", 70 * 1024), unknown,
                purchase("s-nokey", source=""), purchase("s-conflict", serial="6E5-X-1999999")]
        resp = self.daemon.stream(iter(recs), timeout=30)
        self.assertEqual((resp.accepted, resp.duplicates, resp.conflicts, resp.rejected), (1, 0, 1, 3))
        got = {r.source_ref: (r.outcome, r.errors[0].field, r.errors[0].code) for r in resp.rejections}
        self.assertEqual(got, {
            "s-big": (R.REJECTED, "(record)", "too_large"),
            "s-unknown": (R.REJECTED, "purchase", "unknown_field"),
            "s-nokey": (R.REJECTED, "source", "required"),
            "s-conflict": (R.CONFLICT, "(record)", "conflict"),
        })
        self.assertEqual(self.count("source_ref LIKE 's-%'"), 2)

    def test_settings_that_contradict_each_other_stop_the_daemon(self):
        out = subprocess.run([os.path.join(BIN, "tidewatch-ingest"), "--record-max", "4MiB",
                              "--batch-bytes", "1MiB", "--metrics-listen", ""],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("record_max", out.stderr)
        self.assertIn("batch_bytes", out.stderr)

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
