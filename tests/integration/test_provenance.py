#!/usr/bin/python3
"""tidewatch-provenance end to end: records go through a real tidewatch-ingest
into a real PostgreSQL, a real tidewatch-provenance (logged in as a user that
is only a member of tidewatch_provenance) consumes the log, and the derived
prov_* tables are checked row by row:

  - a sale, a shipment and a seizure of one engine make one item with three
    hops, parties linked, times and places from the records;
  - the same records arriving in reverse order give the same model;
  - a plate and a stamp disagreeing on one engine: one item, two keys;
  - two items later proven one are merged (evidence kept), and the
    retraction of that evidence undoes the merge;
  - a correction after and before its target give the same model, and so
    do a correction and a retraction of one record in any order;
  - a reading without a maker matches a key only when it is the only one;
  - an event that cannot be decoded is skipped and the rest applied;
  - a line item without serials is a hop with a quantity and no item;
  - a partial reading gets its own partial item and merges nothing;
  - the consumer SIGKILLed at random points during a long replay and
    restarted ends with exactly the tables of an uninterrupted replay
    (--rebuild), compared whole, and WorkerService.GetStatus then reports
    lag 0.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py), TW_PG_BINDIR. Prints "N passed, M failed"."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, SRC, PgCluster, free_port  # noqa: E402
import grpc  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402
from tidewatch.v1 import worker_pb2 as wrk  # noqa: E402

R = ing.RecordResult
DAY = 86400
T0 = int(time.time()) - 200 * DAY  # event times: well in the past
TABLES = {  # every derived table and its primary key
    "prov_items": "item_id",
    "prov_item_keys": "key_kind, key, maker",
    "prov_readings": "event_id, field",
    "prov_merges": "item_id, into_id, event_id",
    "prov_parties": "party_id",
    "prov_party_identifiers": "party_id, kind, value",
    "prov_hops": "event_id, line",
    "prov_corrections": "correction_id",
}








class Cluster(PgCluster):
    """A private PostgreSQL cluster (unix socket only)."""

    def __init__(self):
        PgCluster.__init__(self, "tw-prov-pg-")
        self.logins = False

    def url(self, db, user="postgres"):
        return "host=%s dbname=%s user=%s" % (self.dir, db, user)

    def psql(self, db, sql):
        out = self.run_psql(db, sql, extra=["-F", "\x1f"])
        if out.returncode != 0:
            raise AssertionError("psql %s: %s" % (sql, out.stderr))
        return out.stdout.rstrip("\n")  # not strip(): "\x1f" counts as blank

    def new_db(self, db):
        self.psql("postgres", "CREATE DATABASE %s" % db)
        out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", self.url(db)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("migrate: " + out.stderr)
        if not self.logins:
            self.psql(db, "CREATE ROLE ingest_login LOGIN IN ROLE tidewatch_ingest; "
                          "CREATE ROLE prov_login LOGIN IN ROLE tidewatch_provenance")
            self.logins = True



class Proc:
    def __init__(self, binary, url, args, health):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="tw-prov-test-", suffix=".log",
                                               delete=False)
        self.cmd = [os.path.join(BIN, binary), "--listen", "127.0.0.1:%d" % self.port,
                    "--metrics-listen", "", "--database-url", url, "--log-level", os.environ.get("TW_PROV_LOG_LEVEL", "info")] + list(args)
        self.health_name = health.encode()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                               request_serializer=lambda b: b,
                                               response_deserializer=lambda b: b)
        end = time.monotonic() + 20
        while not self.serving():
            if time.monotonic() > end:
                raise AssertionError("%s never became SERVING:\n%s" % (binary, self.log_text()))
            time.sleep(0.05)

    def serving(self):
        n = self.health_name
        try:
            return self.health(b"\x0a" + bytes([len(n)]) + n, timeout=5) == b"\x08\x01"
        except grpc.RpcError:
            return False

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def kill(self):
        self.channel.close()
        self.proc.kill()
        self.proc.wait(20)

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(20)
        text = self.log_text()
        self.log.close()
        os.unlink(self.log.name)
        if rc != 0:
            raise AssertionError("%s exited %d:\n%s" % (self.cmd[0], rc, text))
        for bad in ("Sanitizer", "runtime error:"):
            if bad in text:
                raise AssertionError("%s: %s in its log:\n%s" % (self.cmd[0], bad, text))


class Ingest(Proc):
    def __init__(self, url):
        Proc.__init__(self, "tidewatch-ingest", url, [], "tidewatch.v1.IngestService")
        self.submit_call = self.channel.unary_unary(
            "/tidewatch.v1.IngestService/Submit",
            request_serializer=ing.SubmitRequest.SerializeToString,
            response_deserializer=ing.SubmitResponse.FromString)

    def submit(self, records):
        out = []
        for i in range(0, len(records), 100):
            resp = self.submit_call(ing.SubmitRequest(records=records[i:i + 100]), timeout=60)
            for r, res in zip(records[i:i + 100], resp.results):
                if res.outcome != R.ACCEPTED:
                    raise AssertionError("%s not accepted: %s" % (r.source_ref, res))
                out.append(res.event_id)
        return out


class Provenance(Proc):
    def __init__(self, url, args=(), metrics=False):
        self.metrics_port = free_port() if metrics else 0
        listen = ["--metrics-listen", "127.0.0.1:%d" % self.metrics_port] if metrics else []
        Proc.__init__(self, "tidewatch-provenance", url,
                      ["--data-dir", os.path.join(SRC, "deploy", "data"), "--poll-interval", "200ms"]
                      + listen + list(args), "tidewatch.v1.WorkerService")
        self.status_call = self.channel.unary_unary(
            "/tidewatch.v1.WorkerService/GetStatus",
            request_serializer=wrk.GetWorkerStatusRequest.SerializeToString,
            response_deserializer=wrk.WorkerStatus.FromString)

    def status(self):
        return self.status_call(wrk.GetWorkerStatusRequest(), timeout=5).consumers[0]

    def metric(self, name, label='consumer="provenance"'):
        """The value of the /metrics series `name` carrying `label`."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=10) as f:
            text = f.read().decode()
        for line in text.splitlines():
            if line.startswith(name + "{") and label in line.split("}")[0]:
                return float(line.split()[-1])
        raise AssertionError("no metric %s{%s} in:\n%s" % (name, label, text))


class Stack:
    """One database with its ingest and provenance daemons."""

    def __init__(self, cluster, db):
        self.pg, self.db = cluster, db
        cluster.new_db(db)
        self.ingest = Ingest(cluster.url(db, "ingest_login"))
        self.prov = Provenance(cluster.url(db, "prov_login"))

    def q(self, sql):
        return self.pg.psql(self.db, sql)

    def rows(self, sql):
        out = self.q(sql)
        return [line.split("\x1f") for line in out.splitlines()] if out else []

    def submit(self, records):
        return self.ingest.submit(records)

    def caught_up(self):
        last = self.q("SELECT coalesce((SELECT id FROM events ORDER BY tx DESC, id DESC LIMIT 1), 0)")
        cur = self.q("SELECT coalesce((SELECT last_id FROM consumer_cursors "
                     "WHERE consumer = 'provenance'), -1)")
        return last == cur

    def wait(self, timeout=60):
        end = time.monotonic() + timeout
        while not self.caught_up():
            if time.monotonic() > end:
                raise AssertionError("provenance did not catch up:\n" + self.prov.log_text())
            time.sleep(0.05)

    def dump(self):
        """Every derived table, whole, in primary-key order."""
        return {t: self.q("SELECT * FROM %s ORDER BY %s" % (t, k)) for t, k in TABLES.items()}

    def stop(self):
        try:
            self.prov.stop()
        finally:
            self.ingest.stop()


# ---- records ----------------------------------------------------------------

def graded(r):
    r.grading.source = rec.Grading.SOURCE_1_RELIABLE
    r.grading.information = rec.Grading.INFORMATION_A_KNOWN_DIRECTLY
    r.grading.handling = rec.Grading.HANDLING_P_LAWFUL_SHARING
    return r


def engine(eq, *readings, make="Yamaha", model="F40FETL"):
    eq.kind = rec.Equipment.ENGINE
    eq.make, eq.model = make, model
    for text, method, complete in readings:
        eq.serials.add(text=text, method=method,
                       completeness=rec.SerialReading.COMPLETE if complete
                       else rec.SerialReading.PARTIAL)


PLATE, STAMP, DOC = rec.SerialReading.PLATE, rec.SerialReading.STAMP, rec.SerialReading.DOCUMENT


def sale(ref, *readings, t=T0, src="retailer.de.boote", buyer="A. Karimi", qty=1, price=689000,
         make="Yamaha", model="F40FETL", body=None):
    r = graded(rec.Record(source=src, source_ref=ref))
    p = body if body is not None else r.purchase
    p.seller.kind, p.seller.name, p.seller.country = rec.Party.COMPANY, "Boote Nord GmbH", "DE"
    p.seller.identifiers.add(kind=rec.PartyIdentifier.VAT, value="DE811907980")
    p.buyer.kind, p.buyer.name, p.buyer.country = rec.Party.PERSON, buyer, "DE"
    p.buyer.identifiers.add(kind=rec.PartyIdentifier.PHONE, value="+49 1512 3456789")
    p.buyer.place.name, p.buyer.place.country = "Leer", "DE"
    item = p.items.add(quantity=qty)
    item.unit_price.currency, item.unit_price.amount_minor = "EUR", price
    if readings:
        engine(item.equipment, *readings, make=make, model=model)
    p.payment = rec.PAYMENT_METHOD_CASH
    p.place.name, p.place.country = "Leer", "DE"
    p.time.seconds = t
    p.invoice_ref = "RE-" + ref
    return r


def shipment(ref, *lines, t=T0 + 10 * DAY, src="carrier.be.transeuropa", dest="Dunkerque",
             body=None, make="Yamaha"):
    """lines: lists of readings (one line each), or an int (a bulk line of that quantity)."""
    r = graded(rec.Record(source=src, source_ref=ref))
    s = body if body is not None else r.shipment
    s.shipper.kind, s.shipper.name, s.shipper.country = rec.Party.PERSON, "A. Karimi", "DE"
    s.carrier.kind, s.carrier.name, s.carrier.country = rec.Party.COMPANY, "Trans Europa BV", "BE"
    s.consignee.kind, s.consignee.name, s.consignee.country = rec.Party.PERSON, "M. Rahimi", "FR"
    s.origin.name, s.origin.country = "Leer", "DE"
    s.destination.name, s.destination.country = dest, "FR"
    s.dispatched.seconds = t
    s.delivered.seconds = t + DAY
    s.consignment_ref = "TE-" + ref
    s.vehicle_registration = "1-ABC-234"
    for ln in lines:
        if isinstance(ln, int):
            item = s.items.add(quantity=ln)
            item.equipment.kind = rec.Equipment.ENGINE
            item.equipment.description = "outboard engines, no serials recorded"
        else:
            engine(s.items.add().equipment, *ln, make=make)
    return r


def seizure(ref, *lines, t=T0 + 20 * DAY, src="police.fr.pas-de-calais", make="Yamaha"):
    r = graded(rec.Record(source=src, source_ref=ref))
    z = r.seizure
    z.agency.kind, z.agency.name, z.agency.country = rec.Party.AGENCY, "Gendarmerie nationale", "FR"
    z.case_ref = "PV-" + ref
    z.place.name, z.place.country = "Gravelines", "FR"
    z.place.coordinates.lat, z.place.coordinates.lon = 50.9866, 2.1286
    z.time.seconds = t
    for ln in lines:
        it = z.items.add(condition=rec.SeizedItem.USED)
        engine(it.equipment, *ln, make=make)
    z.launch.people_aboard = 40
    return r


def correction(ref, target, src, replacement=None):
    c = graded(rec.Record(source=src, source_ref=ref))
    c.correction.corrects.source, c.correction.corrects.source_ref = src, target
    c.correction.reason = "fixed"
    if replacement is not None:
        which = replacement.WhichOneof("body")
        getattr(c.correction, which).CopyFrom(getattr(replacement, which))
    return c


class ProvenanceModel(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.pg = Cluster()
        cls.stacks = []
        cls.main = cls.stack("prov_main")

    @classmethod
    def stack(cls, db):
        s = Stack(cls.pg, db)
        cls.stacks.append(s)
        return s

    @classmethod
    def tearDownClass(cls):
        errors = []
        for s in cls.stacks:
            try:
                s.stop()
            except Exception as e:  # stop the others anyway, then report
                errors.append(e)
        cls.pg.destroy()
        if errors:
            raise errors[0]

    def release(self, *stacks):
        """Stop a test's own stacks once it is done with them."""
        for st in stacks:
            self.stacks.remove(st)
            st.stop()

    def apply(self, records, st=None):
        """Submit one record per call (ingest orders a group commit by key:
        one per call keeps the log in the order given), wait until applied."""
        st = st or self.main
        ids = [st.submit([r])[0] for r in records]
        st.wait()
        return ids

    # -- a chain ----------------------------------------------------------------
    def test_sale_shipment_seizure_of_one_engine(self):
        s = self.main
        e = self.apply([sale("c1-sale", ("6E5-X-1016523", PLATE, True)),
                        shipment("c1-ship", [("6E5X1016523", DOC, True)]),
                        seizure("c1-seize", [("6E5-X-1O16523", PLATE, True)])])
        item = e[0] * 1024
        self.assertEqual(s.rows("SELECT item_id, root_id, kind, maker, model, partial, first_event, "
                                "first_seen = to_timestamp(%d), last_seen = to_timestamp(%d), "
                                "last_place, last_country, round(last_lat::numeric, 4) "
                                "FROM prov_items WHERE item_id = %d" % (T0, T0 + 20 * DAY, item)),
                         [[str(item), str(item), "1", "Yamaha", "F40FETL", "f", str(e[0]), "t", "t",
                           "Gravelines", "FR", "50.9866"]])
        self.assertEqual(s.rows("SELECT key_kind, key, maker, item_id, loose, partial, first_event "
                                "FROM prov_item_keys WHERE item_id = %d" % item),
                         [["1", "6E5X1016523", "Yamaha", str(item), "6E5X1016523", "f", str(e[0])]])
        self.assertEqual(s.rows("SELECT event_id, field, item_id, raw, method, format, maker "
                                "FROM prov_readings WHERE item_id = %d ORDER BY event_id" % item),
                         [[str(e[0]), "purchase.items[0].equipment.serials[0]", str(item),
                           "6E5-X-1016523", "1", "Yamaha", "Yamaha"],
                          [str(e[1]), "shipment.items[0].equipment.serials[0]", str(item),
                           "6E5X1016523", "4", "Yamaha", "Yamaha"],
                          [str(e[2]), "seizure.items[0].equipment.serials[0]", str(item),
                           "6E5-X-1O16523", "1", "Yamaha", "Yamaha"]])
        hops = s.rows("SELECT event_id, line, item_id, kind, status, quantity, "
                      "extract(epoch FROM occurred_at)::bigint, "
                      "coalesce(extract(epoch FROM delivered_at)::bigint, 0), coalesce(from_party, 0), to_party, "
                      "coalesce(carrier_party, 0), origin_name, place_name, place_country, "
                      "coast_hub, coast_hub_km IS NOT NULL, currency, "
                      "coalesce(unit_price_minor, 0), payment, invoice_ref, consignment_ref, "
                      "vehicle, case_ref, condition, launch, line_field, source "
                      "FROM prov_hops WHERE item_id = %d ORDER BY occurred_at" % item)
        self.assertEqual(hops, [
            [str(e[0]), "0", str(item), "1", "0", "1", str(T0), "0", str(e[0] * 1024),
             str(e[0] * 1024 + 1), "0", "", "Leer", "DE", "Zeebrugge", "t", "EUR", "689000", "1",
             "RE-c1-sale", "", "", "", "0", "f", "purchase.items[0]", "retailer.de.boote"],
            [str(e[1]), "0", str(item), "2", "0", "1", str(T0 + 10 * DAY), str(T0 + 11 * DAY),
             str(e[1] * 1024 + 2), str(e[1] * 1024 + 4), str(e[1] * 1024 + 3), "Leer", "Dunkerque",
             "FR", "Dunkerque", "t", "", "0", "0", "", "TE-c1-ship", "1-ABC-234", "", "0", "f",
             "shipment.items[0]", "carrier.be.transeuropa"],
            [str(e[2]), "0", str(item), "3", "0", "1", str(T0 + 20 * DAY), "0", "0",
             str(e[2] * 1024 + 5), "0", "", "Gravelines", "FR", "Gravelines", "t", "", "0", "0", "",
             "", "", "PV-c1-seize", "2", "t", "seizure.items[0]", "police.fr.pas-de-calais"]])
        # Parties with their normalised identifiers and places.
        self.assertEqual(s.rows("SELECT party_id, role, kind, name, name_key, country, address_key, "
                                "place, lat IS NOT NULL FROM prov_parties WHERE event_id = %d "
                                "ORDER BY party_id" % e[0]),
                         [[str(e[0] * 1024), "seller", "2", "Boote Nord GmbH", "boote nord gmbh", "DE",
                           "", "", "f"],
                          [str(e[0] * 1024 + 1), "buyer", "1", "A. Karimi", "a karimi", "DE",
                           "leer|DE", "Leer", "t"]])
        self.assertEqual(s.rows("SELECT party_id, kind, value FROM prov_party_identifiers "
                                "WHERE party_id / 1024 = %d ORDER BY party_id" % e[0]),
                         [[str(e[0] * 1024), "vat", "DE811907980"],
                          [str(e[0] * 1024 + 1), "phone", "+4915123456789"]])

    # -- arrival order ------------------------------------------------------------
    def canon(self, st, refs):
        """The model of the events with these source_refs, ids replaced by what
        they stand for (event ids by source_ref, items by their keys)."""
        ref_of = dict((r[0], r[1]) for r in st.rows("SELECT id, source_ref FROM events"))
        keys = {}
        for k in st.rows("SELECT item_id, key FROM prov_item_keys ORDER BY key"):
            keys.setdefault(k[0], []).append(k[1])
        item = lambda i: ",".join(keys.get(i, [])) if i else ""  # noqa: E731
        group = {}
        for i, root in st.rows("SELECT item_id, root_id FROM prov_items"):
            group.setdefault(root, []).extend(keys.get(i, []))
        groups = sorted(",".join(sorted(g)) for g in group.values())
        hops = sorted((ref_of[h[0]], h[1], item(h[2]), h[3], ref_of.get(h[4], ""), ref_of.get(h[5], ""),
                       h[6], h[7])
                      for h in st.rows("SELECT event_id, line, coalesce(item_id, 0), status, "
                                       "coalesce(corrected_by, 0), coalesce(corrects, 0), "
                                       "place_name, extract(epoch FROM occurred_at)::bigint "
                                       "FROM prov_hops"))
        hops = [h for h in hops if h[0] in refs]
        items = sorted((item(i[0]), i[1], i[2], i[3], i[4])
                       for i in st.rows("SELECT item_id, partial, "
                                        "extract(epoch FROM first_seen)::bigint, "
                                        "extract(epoch FROM last_seen)::bigint, last_place "
                                        "FROM prov_items"))
        merges = sorted((",".join(sorted([item(m[0]), item(m[1])])), ref_of[m[2]],
                         ref_of.get(m[3], "")) for m in
                        st.rows("SELECT item_id, into_id, event_id, coalesce(undone_by, 0) "
                                "FROM prov_merges"))
        return {"hops": hops, "items": items, "groups": groups, "merges": merges}

    def test_out_of_order_arrival_gives_the_same_model(self):
        recs = [sale("o-sale", ("6E5-X-2016523", PLATE, True)),
                shipment("o-ship", [("6E5X2016523", DOC, True)]),
                seizure("o-seize", [("6E5X2016523", STAMP, True), ("6E5X2016599", PLATE, True)])]
        a, b = self.stack("prov_order_a"), self.stack("prov_order_b")
        self.apply(recs, a)
        self.apply(list(reversed(recs)), b)
        refs = {"o-sale", "o-ship", "o-seize"}
        ca, cb = self.canon(a, refs), self.canon(b, refs)
        self.release(a, b)
        self.assertEqual(ca, cb)
        # In time order, whatever the arrival: first seen at the sale, last at the seizure.
        self.assertEqual(ca["items"], [("6E5X2016523,6E5X2016599", "f", str(T0), str(T0 + 20 * DAY),
                                        "Gravelines")])

    # -- identities -----------------------------------------------------------------
    def test_plate_and_stamp_disagreeing_make_one_item_with_two_keys(self):
        s = self.main
        e = self.apply([seizure("ps-1", [("6E5-X-3016523", PLATE, True),
                                         ("6E5-X-3016532", STAMP, True)])])
        item = e[0] * 1024
        self.assertEqual(s.rows("SELECT key, item_id, first_event FROM prov_item_keys "
                                "WHERE key LIKE '6E5X30165%' ORDER BY key"),
                         [["6E5X3016523", str(item), str(e[0])], ["6E5X3016532", str(item), str(e[0])]])
        self.assertEqual(s.q("SELECT count(*) FROM prov_items WHERE first_event = %d" % e[0]), "1")
        self.assertEqual(s.q("SELECT count(*) FROM prov_merges WHERE event_id = %d" % e[0]), "0")

    def test_readings_without_a_maker_match_only_a_lone_key(self):
        s = self.main
        e = self.apply([sale("mk-1", ("6E5X8016523", PLATE, True), make="Yamaha"),
                        sale("mk-2", ("6E5X8016523", PLATE, True), make="Suzuki"),
                        sale("mk-3", ("6E5X8016523", PLATE, True), make=""),
                        sale("mk-4", ("6E5X8016599", PLATE, True), make="Yamaha"),
                        sale("mk-5", ("6E5X8016599", PLATE, True), make="")])
        item = lambda i: s.q("SELECT item_id FROM prov_hops WHERE event_id = %d" % e[i])  # noqa: E731
        # Another maker is another engine; without a maker, two candidates: a new item.
        self.assertEqual([item(i) for i in range(3)],
                         [str(e[0] * 1024), str(e[1] * 1024), str(e[2] * 1024)])
        # One key of that serial: the reading without a maker is that engine.
        self.assertEqual(item(4), str(e[3] * 1024))
        self.assertEqual(s.rows("SELECT maker, item_id FROM prov_item_keys "
                                "WHERE key = '6E5X8016599' ORDER BY maker"),
                         [["", str(e[3] * 1024)], ["Yamaha", str(e[3] * 1024)]])

    def test_merge_and_its_retraction(self):
        s = self.main
        e = self.apply([sale("m-a", ("6E5-X-4016523", PLATE, True)),
                        sale("m-b", ("6E5-X-4016532", PLATE, True), t=T0 + DAY)])
        a, b = e[0] * 1024, e[1] * 1024
        self.assertEqual(s.rows("SELECT item_id, root_id FROM prov_items WHERE item_id IN (%d, %d) "
                                "ORDER BY item_id" % (a, b)), [[str(a), str(a)], [str(b), str(b)]])
        m = self.apply([seizure("m-proof", [("6E5-X-4016523", PLATE, True),
                                            ("6E5-X-4016532", STAMP, True)])])[0]
        self.assertEqual(s.rows("SELECT item_id, into_id, event_id, reason, undone_by IS NULL "
                                "FROM prov_merges WHERE event_id = %d" % m),
                         [[str(b), str(a), str(m),
                           "seizure.items[0].equipment read as 6E5X4016523 (plate), "
                           "6E5X4016532 (stamp)", "t"]])
        self.assertEqual(s.rows("SELECT item_id, root_id FROM prov_items WHERE item_id IN (%d, %d) "
                                "ORDER BY item_id" % (a, b)), [[str(a), str(a)], [str(b), str(a)]])
        # The seizure's hop belongs to the smaller item (roots are followed when read).
        self.assertEqual(s.q("SELECT item_id FROM prov_hops WHERE event_id = %d" % m), str(a))
        c = self.apply([correction("m-proof-retract", "m-proof", "police.fr.pas-de-calais")])[0]
        self.assertEqual(s.rows("SELECT undone_by FROM prov_merges WHERE event_id = %d" % m), [[str(c)]])
        self.assertEqual(s.rows("SELECT item_id, root_id, last_place FROM prov_items "
                                "WHERE item_id IN (%d, %d) ORDER BY item_id" % (a, b)),
                         [[str(a), str(a), "Leer"], [str(b), str(b), "Leer"]])
        self.assertEqual(s.rows("SELECT status, corrected_by FROM prov_hops WHERE event_id = %d" % m),
                         [["2", str(c)]])
        self.assertEqual(s.rows("SELECT correction_id, target_ref, retraction FROM prov_corrections "
                                "WHERE correction_id = %d" % c), [[str(c), "m-proof", "t"]])

    def test_retracting_one_link_of_a_chain_of_merges_splits_it(self):
        s = self.main
        e = self.apply([sale("ch-a", ("6E5-X-6116523", PLATE, True)),
                        sale("ch-b", ("6E5-X-6116532", PLATE, True)),
                        sale("ch-c", ("6E5-X-6116599", PLATE, True)),
                        seizure("ch-ab", [("6E5-X-6116523", PLATE, True), ("6E5-X-6116532", STAMP, True)]),
                        seizure("ch-bc", [("6E5-X-6116532", PLATE, True), ("6E5-X-6116599", STAMP, True)])])
        a, b, c = e[0] * 1024, e[1] * 1024, e[2] * 1024
        roots = lambda: s.rows("SELECT root_id FROM prov_items WHERE item_id IN (%d, %d, %d) "  # noqa
                               "ORDER BY item_id" % (a, b, c))
        self.assertEqual(roots(), [[str(a)], [str(a)], [str(a)]])
        self.apply([correction("ch-ab-retract", "ch-ab", "police.fr.pas-de-calais")])
        self.assertEqual(roots(), [[str(a)], [str(b)], [str(b)]])

    def test_correction_after_and_before_its_target(self):
        def recs(tag):
            target = shipment(tag + "-ship", [("6E5X5016523", DOC, True)], dest="Dunkerque")
            fixed = shipment("unused", [("6E5X5016523", DOC, True)], dest="Calais")
            return target, correction(tag + "-fix", tag + "-ship", "carrier.be.transeuropa", fixed)

        a, b = self.stack("prov_corr_a"), self.stack("prov_corr_b")
        t, c = recs("k")
        ea = self.apply([sale("k-sale", ("6E5-X-5016523", PLATE, True)), t, c], a)
        eb = self.apply([sale("k-sale", ("6E5-X-5016523", PLATE, True)), c, t], b)
        for st, (es, et, ec) in ((a, ea), (b, (eb[0], eb[2], eb[1]))):
            self.assertEqual(st.rows("SELECT event_id, status, coalesce(corrected_by, 0), "
                                     "coalesce(corrects, 0), place_name FROM prov_hops "
                                     "WHERE event_id IN (%d, %d) ORDER BY status" % (et, ec)),
                             [[str(ec), "0", "0", str(et), "Calais"],
                              [str(et), "1", str(ec), "0", "Dunkerque"]])
            self.assertEqual(st.q("SELECT last_place FROM prov_items WHERE item_id = %d" % (es * 1024)),
                             "Calais")
        refs = {"k-sale", "k-ship", "k-fix"}
        self.assertEqual(self.canon(a, refs), self.canon(b, refs))
        self.release(a, b)

    def test_two_corrections_of_one_record_in_any_order(self):
        """A correction, then a retraction of the same record: the latest
        in the log decides the status, the first undid the merge, whatever
        the order the three arrive in."""
        src = "police.fr.pas-de-calais"
        proof = seizure("cc-proof", [("6E5-X-9016523", PLATE, True), ("6E5-X-9016532", STAMP, True)])
        fixed = seizure("x", [("6E5-X-9016523", PLATE, True)])
        c1 = correction("cc-fix", "cc-proof", src, fixed)
        c2 = correction("cc-retract", "cc-proof", src)
        pre = [sale("cc-a", ("6E5-X-9016523", PLATE, True)),
               sale("cc-b", ("6E5-X-9016532", PLATE, True))]
        refs = {"cc-a", "cc-b", "cc-proof", "cc-fix", "cc-retract"}
        models = []
        for n, order in enumerate([[proof, c1, c2], [c1, proof, c2], [c1, c2, proof]]):
            st = self.stack("prov_cc_%d" % n)
            self.apply(pre + order, st)
            models.append(self.canon(st, refs))
            self.release(st)
        self.assertEqual(models[0], models[1])
        self.assertEqual(models[0], models[2])
        hops = dict(((h[0], h[1]), h) for h in models[0]["hops"])
        self.assertEqual(hops[("cc-proof", "0")][3:6], ("2", "cc-retract", ""))
        self.assertEqual(hops[("cc-fix", "0")][3:6], ("2", "cc-retract", "cc-proof"))
        self.assertEqual(models[0]["merges"], [("6E5X9016523,6E5X9016532", "cc-proof", "cc-fix")])
        self.assertEqual(models[0]["groups"], ["6E5X9016523", "6E5X9016532"])

    def test_undecodable_event_is_skipped_and_the_rest_applied(self):
        """Ingest stores only validated records; an event that still cannot
        be decoded (written by hand here, as the superuser) adds no rows and
        stops nothing."""
        s = self.main
        bad = int(s.q("INSERT INTO events (source, source_ref, kind, payload) "
                      "VALUES ('manual', 'junk-1', 1, '\\xffffffff0f') RETURNING id"))
        e = self.apply([sale("after-junk", ("6E5-X-9916523", PLATE, True))])[0]
        self.assertGreater(e, bad)
        self.assertEqual(s.q("SELECT count(*) FROM prov_hops WHERE event_id = %d" % bad), "0")
        self.assertEqual(s.q("SELECT count(*) FROM prov_hops WHERE event_id = %d" % e), "1")
        self.assertIn("event %d (manual / junk-1) skipped: payload" % bad, s.prov.log_text())

    def test_bulk_line_without_serials(self):
        s = self.main
        e = self.apply([shipment("bulk-1", [("6E5X6016523", DOC, True)], 10)])[0]
        self.assertEqual(s.rows("SELECT line, item_id IS NULL, quantity, line_field FROM prov_hops "
                                "WHERE event_id = %d ORDER BY line" % e),
                         [["0", "f", "1", "shipment.items[0]"], ["1", "t", "10", "shipment.items[1]"]])
        self.assertEqual(s.q("SELECT count(*) FROM prov_items WHERE first_event = %d" % e), "1")

    def test_partial_reading_gets_its_own_item(self):
        s = self.main
        e = self.apply([sale("p-full", ("6E5-X-7016523", PLATE, True)),
                        seizure("p-part", [("6E5X70?65?3", STAMP, False)]),
                        seizure("p-part2", [("6E5X70?65?3", STAMP, False)], t=T0 + 21 * DAY)])
        full, part, part2 = e[0] * 1024, e[1] * 1024, e[2] * 1024
        self.assertEqual(s.rows("SELECT item_id, root_id, partial FROM prov_items "
                                "WHERE item_id IN (%d, %d, %d) ORDER BY item_id" % (full, part, part2)),
                         [[str(full), str(full), "f"], [str(part), str(part), "t"],
                          [str(part2), str(part2), "t"]])
        self.assertEqual(s.rows("SELECT key, item_id, partial FROM prov_item_keys "
                                "WHERE key = '6E5X70?65?3'"), [["6E5X70?65?3", str(part), "t"]])
        self.assertEqual(s.rows("SELECT event_id, item_id, partial FROM prov_readings "
                                "WHERE key = '6E5X70?65?3' ORDER BY event_id"),
                         [[str(e[1]), str(part), "t"], [str(e[2]), str(part2), "t"]])
        self.assertEqual(s.q("SELECT count(*) FROM prov_merges WHERE item_id IN (%d, %d, %d) "
                             "OR into_id IN (%d, %d, %d)" % (full, part, part2, full, part, part2)), "0")

    # -- crash safety and rebuild ----------------------------------------------------
    def test_sigkill_during_replay_then_rebuild_gives_the_same_tables(self):
        st = self.stack("prov_crash")
        st.prov.stop()  # consume later, under fire
        recs = generate(4000, seed=7)
        st.submit(recs[:1000])
        url = self.pg.url("prov_crash", "prov_login")
        rnd = random.Random(11)
        kills = 0
        t0 = time.monotonic()
        # The rest arrives, a little at a time, while the consumer is being
        # killed: every kill lands with part of the log still unapplied.
        failed = []

        def feed():
            try:
                for i in range(1000, len(recs), 25):
                    st.submit(recs[i:i + 25])
                    time.sleep(0.06)
            except Exception as e:  # reported by the test below
                failed.append(e)
        feeder = threading.Thread(target=feed)
        feeder.start()
        st.prov = Provenance(url, ["--batch", "10"])
        mid = 0  # kills that left part of the log unapplied
        while feeder.is_alive() and kills < 8:
            time.sleep(rnd.uniform(0.05, 0.5))
            st.prov.kill()
            kills += 1
            at = int(st.q("SELECT last_id FROM consumer_cursors"))
            mid += at < len(recs)
            print("kill %d at cursor %d" % (kills, at), file=sys.stderr)
            st.prov = Provenance(url, ["--batch", "10"])
        feeder.join()
        self.assertEqual(failed, [])
        total = int(st.q("SELECT count(*) FROM events"))
        self.assertEqual(total, len(recs))
        self.assertGreaterEqual(mid, 3, "too few kills landed before the end of the replay")
        st.wait(120)
        print("replay of %d events with %d SIGKILLs: %.1f s" % (total, kills, time.monotonic() - t0),
              file=sys.stderr)
        crashed = st.dump()
        self.assertGreater(len(crashed["prov_merges"].splitlines()), 0, "the scenario merges items")
        self.assertGreater(len(crashed["prov_corrections"].splitlines()), 0)
        # The scenario exercises every path: merges undone, hops corrected
        # and retracted, corrections that came before their target, bulk
        # lines, partial items.
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_merges WHERE undone_by IS NOT NULL")), 0)
        self.assertEqual(st.q("SELECT string_agg(DISTINCT status::text, ',') FROM prov_hops"), "0,1,2")
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_hops h JOIN events c ON c.id = h.corrects "
                                    "WHERE c.id > h.event_id")), 0)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_hops WHERE item_id IS NULL")), 0)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_items WHERE partial")), 0)
        st.prov.stop()
        t1 = time.monotonic()
        st.prov = Provenance(url, ["--rebuild", "--batch", "500"], metrics=True)
        end = time.monotonic() + 120
        while True:
            stt = st.prov.status()
            if stt.applied_events >= total and st.caught_up():
                break
            self.assertLess(time.monotonic(), end, "rebuild did not finish")
            time.sleep(0.1)
        print("rebuild of %d events, daemon start included: %.1f s" % (total, time.monotonic() - t1),
              file=sys.stderr)
        self.assertIn("derived tables emptied, replaying the log from the start", st.prov.log_text())
        rebuilt = st.dump()
        for t in TABLES:
            self.assertEqual(crashed[t], rebuilt[t], "table %s differs after SIGKILLs" % t)
        end = time.monotonic() + 10
        while st.prov.status().lag_events != 0:
            self.assertLess(time.monotonic(), end, "GetStatus never reported lag 0")
            time.sleep(0.1)
        stt = st.prov.status()
        self.assertEqual((stt.name, stt.loaded, stt.lag_events), ("provenance", True, 0))
        self.assertEqual(str(stt.cursor_id), st.q("SELECT last_id FROM consumer_cursors"))
        self.assertEqual(stt.applied_events, total)
        self.assertGreaterEqual(stt.batches, total // 500)
        # The same figures in /metrics.
        self.assertEqual(st.prov.metric("tidewatch_consumer_cursor_lag_events"), 0)
        self.assertEqual(st.prov.metric("tidewatch_consumer_applied_events_total"), total)


    def test_default_apply_equals_the_reference_apply(self):
        """The default apply (keys resolved in the daemon, rows by COPY, only
        corrections and corrected records through prov_apply() in SQL) gives
        every derived table exactly as the reference, prov_apply() for every
        event: a replay mostly of plain records, several makers and none,
        merges within and across batches, partial readings, bulk lines."""
        st = self.stack("prov_ref")
        st.prov.stop()
        recs = generate(3000, seed=5, correct=0.04, makes=("Yamaha", "Yamaha", "", "Tohatsu"))
        for i in range(0, len(recs), 100):
            st.submit(recs[i:i + 100])
        total = int(st.q("SELECT count(*) FROM events"))
        url = self.pg.url("prov_ref", "prov_login")

        def run(args):
            st.prov = Provenance(url, args)
            end = time.monotonic() + 120
            while st.prov.status().applied_events < total or not st.caught_up():
                self.assertLess(time.monotonic(), end, "provenance did not finish")
                time.sleep(0.1)
            return st.dump(), st.prov.log_text()
        fast, _ = run(["--batch", "300"])
        st.prov.stop()
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_merges")), 0)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_items WHERE partial")), 0)
        self.assertGreater(int(st.q("SELECT count(DISTINCT maker) FROM prov_item_keys")), 2)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_corrections")), 0)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_hops WHERE item_id IS NULL")), 0)
        self.assertGreater(int(st.q("SELECT count(*) FROM prov_items WHERE item_id <> root_id")), 0)
        reference, log = run(["--rebuild", "--reference-apply", "--batch", "300"])
        self.assertIn("derived tables emptied", log)
        for t in TABLES:
            self.assertEqual(fast[t], reference[t], "table %s differs from the reference" % t)
        self.release(st)

def generate(n, seed, correct=0.2, makes=("Yamaha",)):
    """A deterministic mix: sales, shipments, seizures over a pool of engines,
    some read twice (merges), partial readings, bulk lines, corrections and
    retractions (some sent before their target). correct: the share of
    corrections; makes: the makers records name (drawn per record; "" for
    none)."""
    rnd = random.Random(seed)
    out, held = [], []
    serial = lambda k: "6E5X%07d" % (3000000 + k)  # noqa: E731
    for i in range(n):
        k = rnd.randrange(300)
        t = T0 + rnd.randrange(150) * DAY
        x = rnd.random()
        if correct != 0.2:  # the first 1 - correct of the range to the three kinds
            x = x * 0.8 / (1 - correct) if x < 1 - correct else 0.8
        make = rnd.choice(makes) if len(makes) > 1 else makes[0]
        ref = "g-%d" % i
        if x < 0.35:
            r = sale(ref, (serial(k), PLATE, True), t=t, src="retailer.g%d" % (i % 3), make=make)
        elif x < 0.6:
            lines = [[(serial(k), DOC, True)]]
            if rnd.random() < 0.2:
                lines.append(rnd.randrange(1, 20))
            r = shipment(ref, *lines, t=t, src="carrier.g%d" % (i % 2),
                         dest=rnd.choice(["Dunkerque", "Calais", "Boulogne-sur-Mer"]), make=make)
        elif x < 0.8:
            readings = [(serial(k), PLATE, True)]
            if rnd.random() < 0.3:
                readings.append((serial(rnd.randrange(300)), STAMP, True))
            if rnd.random() < 0.1:
                readings = [(serial(k)[:-2] + "??", STAMP, False)]
            r = seizure(ref, readings, t=t, src="police.g", make=make)
        else:
            prev = [o for o in out if not o.HasField("correction")]
            if not prev:
                continue
            target = rnd.choice(prev[-50:])
            src = target.source
            if rnd.random() < 0.5:
                r = correction(ref, target.source_ref, src)
            else:
                fixed = seizure("x", [(serial(rnd.randrange(300)), PLATE, True)], t=t, src=src,
                                make=make)
                r = correction(ref, target.source_ref, src, fixed)
            if rnd.random() < 0.3:
                # Sent before its target: hold the target back.
                out.remove(target)
                held.append(target)
        out.append(r)
        if held and rnd.random() < 0.1:
            out.append(held.pop(0))
    return out + held


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
