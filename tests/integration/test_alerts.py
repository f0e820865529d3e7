#!/usr/bin/python3
"""tidewatch-alerts end to end: records go through a real tidewatch-ingest
and a real tidewatch-provenance into a real PostgreSQL, and a real
tidewatch-alerts (logged in as a member of tidewatch_alerts only) raises
alerts from the derived model:

  - equipment bought for cash by a private buyer in Germany and moved by
    van to the Channel coast raises alerts (medium or above) on the item,
    naming the hub, with known_at = the latest event time of the evidence;
    a coastal marina selling one engine to a local buyer, and its usual
    importer delivering stock to it, raise nothing;
  - replay equals live: the same records evaluated as they arrive, and
    evaluated after provenance has applied all of them (the alerts daemon
    started late), give the same alerts with the same evidence and history;
  - the alerts daemon SIGKILLed at random points and restarted ends with
    exactly the alerts of an uninterrupted run: nothing lost, nothing
    doubled;
  - a scheduled job raises its alerts once, even with two alerts daemons
    (RunJob on both at once, and both on the same cron slot): one run
    takes the advisory lock, every run is recorded, a re-run raises
    nothing new;
  - a WatchAlerts client (python3-grpcio, on tidewatch-query) receives the
    alert a record causes within one second of the record's acknowledgement;
  - RunJob / ListJobs answer bad input with a status naming the field, and
    the CLI (tidewatch jobs run / list) runs a past day and lists the runs.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py), TW_PG_BINDIR. Prints "N passed, M failed"."""

import os
import random
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN  # noqa: E402
from test_provenance import (Cluster, Ingest, Proc, Provenance, graded, engine,  # noqa: E402
                             PLATE, STAMP)
import grpc  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402
from tidewatch.v1 import alerts_pb2 as al  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402
from tidewatch.v1 import worker_pb2 as wrk  # noqa: E402

DAY = 86400
T0 = 1767225600 + 30 * DAY  # 2026-01-31: event times, fixed so runs compare
ALERT_COLS = ("rule, subject_kind, subject, hub, severity, score, state, title, explanation, "
              "evidence::text, known_at, updates, config_version, job, source_event")


class Alerts(Proc):
    def __init__(self, url, args=()):
        Proc.__init__(self, "tidewatch-alerts", url, ["--poll-interval", "200ms"] + list(args),
                      "tidewatch.v1.WorkerService")
        mk = self.channel.unary_unary
        self.run_call = mk("/tidewatch.v1.WorkerService/RunJob",
                           request_serializer=wrk.RunJobRequest.SerializeToString,
                           response_deserializer=wrk.JobRun.FromString)
        self.list_call = mk("/tidewatch.v1.WorkerService/ListJobs",
                            request_serializer=wrk.ListJobsRequest.SerializeToString,
                            response_deserializer=wrk.ListJobsResponse.FromString)
        self.status_call = mk("/tidewatch.v1.WorkerService/GetStatus",
                              request_serializer=wrk.GetWorkerStatusRequest.SerializeToString,
                              response_deserializer=wrk.WorkerStatus.FromString)

    def run_job(self, job, as_of=None):
        """RunJob; the JobRun answered."""
        req = wrk.RunJobRequest(job=job)
        if as_of is not None:
            req.as_of.CopyFrom(timestamp_pb2.Timestamp(seconds=as_of))
        return self.run_call(req, timeout=60)


class Query(Proc):
    def __init__(self, url):
        Proc.__init__(self, "tidewatch-query", url, [], "tidewatch.v1.AlertService")
        self.watch = self.channel.unary_stream(
            "/tidewatch.v1.AlertService/WatchAlerts",
            request_serializer=al.WatchAlertsRequest.SerializeToString,
            response_deserializer=al.AlertChange.FromString)


# ---- records ------------------------------------------------------------------

def party(p, kind, name, country, place=None, **ids):
    p.kind, p.name, p.country = kind, name, country
    kinds = {"vat": rec.PartyIdentifier.VAT, "phone": rec.PartyIdentifier.PHONE,
             "email": rec.PartyIdentifier.EMAIL}
    for k, v in ids.items():
        p.identifiers.add(kind=kinds[k], value=v)
    if place:
        p.place.name, p.place.country = place, country


def line(items, serial, kind=rec.Equipment.ENGINE, make="Parsun", model="F15ABMS", price=0):
    it = items.add(quantity=1)
    it.equipment.kind = kind
    it.equipment.make, it.equipment.model = make, model
    if kind == rec.Equipment.BOAT:
        it.equipment.hull_number = serial
        it.equipment.length_m = 8.5
    else:
        it.equipment.serials.add(text=serial, method=PLATE, completeness=rec.SerialReading.COMPLETE)
        it.equipment.power_hp = 15
    if price:
        it.unit_price.currency, it.unit_price.amount_minor = "EUR", price
    return it


def purchase(ref, src, t, seller, buyer, lines, place, country, cash=True):
    r = graded(rec.Record(source=src, source_ref=ref))
    p = r.purchase
    party(p.seller, *seller[0:4], **seller[4])
    party(p.buyer, *buyer[0:4], **buyer[4])
    for args in lines:
        line(p.items, *args)
    p.payment = rec.PAYMENT_METHOD_CASH if cash else rec.PAYMENT_METHOD_TRANSFER
    p.place.name, p.place.country = place, country
    p.time.seconds = t
    return r


def ship(ref, src, t, shipper, consignee, lines, origin, dest, consignment, van="GE-XY-123"):
    r = graded(rec.Record(source=src, source_ref=ref))
    s = r.shipment
    party(s.shipper, *shipper[0:4], **shipper[4])
    party(s.consignee, *consignee[0:4], **consignee[4])
    party(s.carrier, rec.Party.PERSON, "Van driver", "DE")
    s.origin.name, s.origin.country = origin
    s.destination.name, s.destination.country = dest
    s.dispatched.seconds = t
    s.delivered.seconds = t + DAY // 2
    s.consignment_ref = consignment
    s.vehicle_registration = van
    for args in lines:
        line(s.items, *args)
    return r


def seize(ref, t, lines, place=("Gravelines", "FR"), launch=True):
    r = graded(rec.Record(source="police.fr.pas-de-calais", source_ref=ref))
    z = r.seizure
    party(z.agency, rec.Party.AGENCY, "Gendarmerie nationale", "FR")
    z.case_ref = "PV-" + ref
    z.place.name, z.place.country = place
    z.time.seconds = t
    for args in lines:
        it = z.items.add(condition=rec.SeizedItem.USED)
        it.equipment.kind = args[1] if len(args) > 1 else rec.Equipment.ENGINE
        it.equipment.make = "Parsun"
        if it.equipment.kind == rec.Equipment.BOAT:
            it.equipment.hull_number = args[0]
        else:
            it.equipment.serials.add(text=args[0], method=STAMP,
                                     completeness=rec.SerialReading.COMPLETE)
    if launch:
        z.launch.people_aboard = 52
    return r


DEALER_DE = (rec.Party.COMPANY, "Wassersport Ruhr GmbH", "DE", "Essen", {"vat": "DE129273398"})
IMPORTER = (rec.Party.COMPANY, "Nautic Import NV", "BE", "Antwerpen", {"vat": "BE0403170701"})
MARINA = (rec.Party.COMPANY, "Marina de Boulogne SARL", "FR", "Boulogne-sur-Mer",
          {"vat": "FR40303265045"})
BOAT = rec.Equipment.BOAT


def network(tag, t, n=1):
    """A ring buyer (shared phone) buys engines and a boat for cash in
    Essen, a van takes them to Saint-Omer, then to Calais; seized at a
    launch near Gravelines."""
    out = []
    for k in range(n):
        buyer = (rec.Party.PERSON, "R. Ahmadi %s%d" % (tag, k), "DE", "Gelsenkirchen",
                 {"phone": "+49 1577 55501%02d" % (len(tag) * 7 + k)})
        serials = ["PS%s%d%04dA" % (tag, k, j) for j in range(3)]
        hull = "DE-XKA%s%d3K526" % (tag, k)
        lines = [(s,) for s in serials] + [(hull, BOAT, "Yamaha", "T-850")]
        out.append(purchase("%s-%d-buy" % (tag, k), "retailer.de.wassersport-ruhr", t + k * DAY,
                            DEALER_DE, buyer, lines, "Essen", "DE", cash=True))
        out.append(ship("%s-%d-van1" % (tag, k), "police.de.anpr", t + (k + 5) * DAY, buyer,
                        (rec.Party.PERSON, "M. Saberi", "FR", "Saint-Omer",
                         {"phone": "+33 6 55 44 33 %02d" % k}),
                        lines, ("Essen", "DE"), ("Saint-Omer", "FR"), "VAN-%s-%d" % (tag, k)))
        out.append(ship("%s-%d-van2" % (tag, k), "police.fr.anpr", t + (k + 9) * DAY,
                        (rec.Party.PERSON, "M. Saberi", "FR", "Saint-Omer",
                         {"phone": "+33 6 55 44 33 %02d" % k}),
                        (rec.Party.PERSON, "Unknown", "FR", None, {}),
                        lines, ("Saint-Omer", "FR"), ("Calais", "FR"),
                        "VAN2-%s-%d" % (tag, k), van="FR-AB-123-CD"))
        out.append(seize("%s-%d-seized" % (tag, k), t + (k + 12) * DAY,
                         [(s,) for s in serials[:2]] + [(hull, BOAT)]))
    return out


def legit(t):
    """The importer delivers stock to the marina four times; the marina sells
    single engines to local buyers (by transfer)."""
    out = []
    for k in range(4):
        out.append(ship("stock-%d" % k, "carrier.be.nautic", t + k * 20 * DAY, IMPORTER, MARINA,
                        [("TH%05dM" % (k * 10 + j), rec.Equipment.ENGINE, "Tohatsu", "MFS9.9")
                         for j in range(3)],
                        ("Antwerpen", "BE"), ("Boulogne-sur-Mer", "FR"), "NI-%d" % k,
                        van="1-NIV-%03d" % k))
    for k in range(4):
        buyer = (rec.Party.PERSON, "J. Dupont %d" % k, "FR", "Boulogne-sur-Mer",
                 {"phone": "+33 3 21 00 00 %02d" % k})
        out.append(purchase("marina-sale-%d" % k, "retailer.fr.marina-boulogne",
                            t + (k * 20 + 5) * DAY, MARINA, buyer,
                            [("TH%05dM" % (k * 10), rec.Equipment.ENGINE, "Tohatsu", "MFS9.9")],
                            "Boulogne-sur-Mer", "FR", cash=False))
    return out


def scenario(seed, n=60):
    """Network and legitimate records interleaved, deterministically."""
    rnd = random.Random(seed)
    recs = network("a", T0, 2) + legit(T0 - 40 * DAY) + network("b", T0 + 30 * DAY, 1)
    extra = []
    for k in range(n):
        buyer = (rec.Party.PERSON, "Leisure %d" % k, "DE", "Köln", {"phone": "+49 221 %07d" % k})
        extra.append(purchase("leisure-%d" % k, "retailer.de.wassersport-ruhr",
                              T0 + rnd.randrange(60) * DAY, DEALER_DE, buyer,
                              [("YM%06dL" % k, rec.Equipment.ENGINE, "Yamaha", "F4BMHS")],
                              "Essen", "DE", cash=rnd.random() < 0.3))
    out = recs + extra
    rnd.shuffle(out)
    return out


def same_lines(tc, a, b):
    """Assert two table dumps are equal; on a difference show the first
    differing rows whole (one alert's evidence is long)."""
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            tc.fail("row %d differs (of %d / %d):\n%s\n---\n%s" % (i, len(la), len(lb), x, y))
    tc.assertEqual(len(la), len(lb), "row counts differ; extra: %s" % (la[len(lb):] or lb[len(la):])[:3])


class Stack:
    """A database with ingest, provenance and (optionally) alerts."""

    def __init__(self, pg, db, alerts=True, alerts_args=()):
        self.pg, self.db = pg, db
        pg.new_db(db)
        self.ingest = Ingest(pg.url(db, "ingest_login"))
        self.prov = Provenance(pg.url(db, "prov_login"))
        self.alerts_args = alerts_args
        self.alerts = [Alerts(pg.url(db, "alerts_login"), alerts_args)] if alerts else []

    def add_alerts(self, args=None):
        a = Alerts(self.pg.url(self.db, "alerts_login"),
                   self.alerts_args if args is None else args)
        self.alerts.append(a)
        return a

    def q(self, sql):
        return self.pg.psql(self.db, sql)

    def submit_each(self, records):
        for r in records:
            self.ingest.submit([r])

    def cursor(self, name):
        return self.q("SELECT coalesce((SELECT last_id FROM consumer_cursors "
                      "WHERE consumer = '%s'), -1)" % name)

    def wait(self, consumers=("provenance", "alerts"), timeout=90):
        last = self.q("SELECT coalesce((SELECT id FROM events ORDER BY tx DESC, id DESC LIMIT 1), 0)")
        end = time.monotonic() + timeout
        for c in consumers:
            while self.cursor(c) != last:
                if time.monotonic() > end:
                    logs = "\n".join(a.log_text() for a in self.alerts)
                    raise AssertionError("%s did not catch up:\n%s" % (c, logs))
                time.sleep(0.05)

    def alerts_dump(self):
        return self.q("SELECT %s FROM alerts ORDER BY alert_id" % ALERT_COLS)

    def updates_dump(self):
        return self.q("SELECT u.alert_id, u.kind, u.severity, u.known_at, u.note, a.source_event "
                      "FROM alert_updates u JOIN alerts a USING (alert_id) ORDER BY u.seq")

    def stop(self):
        errors = []
        for p in self.alerts + [self.prov, self.ingest]:
            try:
                p.stop()
            except Exception as e:
                errors.append(e)
        if errors:
            raise errors[0]


class AlertsCluster(Cluster):
    def new_db(self, db):
        first = not self.logins
        Cluster.new_db(self, db)
        if first:
            self.psql(db, "CREATE ROLE alerts_login LOGIN IN ROLE tidewatch_alerts; "
                          "CREATE ROLE query_login LOGIN IN ROLE tidewatch_query")


class AlertsEndToEnd(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.pg = AlertsCluster()
        cls.stacks = []

    @classmethod
    def tearDownClass(cls):
        errors = []
        for s in cls.stacks:
            try:
                s.stop()
            except Exception as e:
                errors.append(e)
        cls.pg.destroy()
        if errors:
            raise errors[0]

    def stack(self, db, **kw):
        s = Stack(self.pg, db, **kw)
        self.stacks.append(s)
        return s

    def release(self, s):
        self.stacks.remove(s)
        s.stop()

    # -- the rules on a flow to the coast -------------------------------------------
    def test_flow_to_the_coast_raises_and_legitimate_trade_stays_quiet(self):
        s = self.stack("al_flow")
        s.submit_each(legit(T0 - 40 * DAY) + network("f", T0, 1))
        s.wait()
        rows = s.q("SELECT a.rule, a.subject_kind, a.hub, a.severity, a.known_at = "
                   "(SELECT max(h.occurred_at) FROM prov_hops h WHERE (h.event_id, h.line) IN "
                   "(SELECT (e->>'event_id')::bigint, (e->>'line')::int "
                   " FROM jsonb_array_elements(a.evidence->'hops') e)), a.explanation "
                   "FROM alerts a ORDER BY a.alert_id")
        lines = [r.split("\x1f") for r in rows.splitlines()]
        self.assertTrue(lines, "no alert raised:\n" + s.alerts[0].log_text())
        flow = [r for r in lines if r[0] in ("destination_hub", "approach_coast", "via_transit")
                and int(r[3]) >= 2]
        self.assertTrue(flow, "no flow alert at medium or above: %s" % lines)
        self.assertTrue(any(r[2] in ("Calais", "Saint-Omer") for r in flow), lines)
        for r in lines:
            self.assertEqual(r[4], "t", "known_at is not the latest event time of the evidence: %s" % r)
            self.assertTrue(r[5].strip(), r)
        # Nothing concerns the marina's trade: no alert's evidence names its
        # records, and no subject is one of its items.
        legit_refs = s.q("SELECT count(*) FROM alerts a, jsonb_array_elements(a.evidence->'hops') e "
                         "WHERE e->>'source' IN ('retailer.fr.marina-boulogne', 'carrier.be.nautic')")
        self.assertEqual(legit_refs, "0", s.q("SELECT title, evidence FROM alerts"))
        self.release(s)

    # -- replay equals live --------------------------------------------------------------
    def test_replay_equals_live(self):
        recs = scenario(11)
        live = self.stack("al_live")
        live.submit_each(recs)
        live.wait()
        late = self.stack("al_late", alerts=False)
        late.submit_each(recs)
        late.wait(consumers=("provenance",))
        late.add_alerts()
        late.wait()
        a = live.alerts_dump()
        self.assertNotEqual(a, "", "the scenario raised no alert:\n" + live.alerts[0].log_text())
        same_lines(self, live.updates_dump(), late.updates_dump())
        same_lines(self, a, late.alerts_dump())
        self.release(live)
        self.release(late)

    # -- crash safety ------------------------------------------------------------------------
    def test_sigkill_loses_and_doubles_no_alert(self):
        recs = scenario(12, n=300)
        ref = self.stack("al_ref", alerts=False)
        ref.submit_each(recs)
        ref.wait(consumers=("provenance",))
        ref.add_alerts(["--batch", "7"])
        ref.wait()
        crash = self.stack("al_crash", alerts=False)
        crash.submit_each(recs)
        crash.wait(consumers=("provenance",))
        rnd = random.Random(5)
        for _ in range(4):
            a = crash.add_alerts(["--batch", "7"])
            time.sleep(rnd.uniform(0.05, 0.4))
            a.kill()
            crash.alerts.remove(a)
        crash.add_alerts(["--batch", "7"])
        crash.wait()
        self.assertNotEqual(ref.alerts_dump(), "")
        same_lines(self, ref.alerts_dump(), crash.alerts_dump())
        same_lines(self, ref.updates_dump(), crash.updates_dump())
        self.release(ref)
        self.release(crash)

    # -- jobs ----------------------------------------------------------------------------------
    def test_job_raises_once_with_two_daemons(self):
        s = self.stack("al_jobs", alerts_args=["--bulk-schedule", "", "--quiet-schedule", ""])
        ring = []
        for k in range(3):  # three buyers sharing one e-mail, 2 engines each
            buyer = (rec.Party.PERSON, "Buyer %d" % k, "DE", "Osnabrück",
                     {"email": "kapitan.boats@example.net", "phone": "+49 160 900%04d" % k})
            ring.append(purchase("ring-%d" % k, "retailer.de.boote-%d" % k, T0 + k * 3 * DAY,
                                 (rec.Party.COMPANY, "Boote %d GmbH" % k, "DE", "Münster",
                                  {"vat": "DE1234567%02d" % k}),
                                 buyer, [("RG%d%04dX" % (k, j),) for j in range(2)],
                                 "Münster", "DE", cash=True))
        s.submit_each(ring)
        s.wait()
        second = s.add_alerts()
        as_of = T0 + 10 * DAY
        results = [None, None]

        def run(i, d):
            try:
                results[i] = d.run_job("bulk_acquisition", as_of)
            except grpc.RpcError as e:
                results[i] = e
        th = [threading.Thread(target=run, args=(i, d)) for i, d in enumerate(s.alerts)]
        for t in th:
            t.start()
        for t in th:
            t.join(90)
        ok = [r for r in results if isinstance(r, wrk.JobRun)]
        aborted = [r for r in results if isinstance(r, grpc.RpcError)]
        for e in aborted:
            self.assertEqual(e.code(), grpc.StatusCode.ABORTED, e.details())
        self.assertTrue(ok, results)
        raised = sum(r.raised for r in ok)
        self.assertGreaterEqual(raised, 1, "the ring raised nothing: %s" % results)
        self.assertEqual(s.q("SELECT count(*) FROM alerts WHERE job = 'bulk_acquisition'"),
                         str(raised))
        # A re-run as of the same time raises nothing new.
        again = second.run_job("bulk_acquisition", as_of)
        self.assertEqual((again.outcome, again.raised, again.updated), ("ok", 0, 0))
        self.assertEqual(s.q("SELECT count(*) FROM alerts WHERE job = 'bulk_acquisition'"),
                         str(raised))
        runs = s.q("SELECT outcome, trigger FROM alert_job_runs ORDER BY run_id").splitlines()
        self.assertEqual(len(runs), len(results) + 1, runs)
        listed = second.list_call(wrk.ListJobsRequest(job="bulk_acquisition"), timeout=10)
        self.assertEqual([j.name for j in listed.jobs], ["bulk_acquisition", "quiet_near_coast"])
        self.assertEqual(len(listed.runs), len(runs))
        self.assertEqual(listed.runs[0].run_id, again.run_id)
        self.release(s)

    def test_quiet_job_names_a_cluster_gone_quiet_near_the_coast(self):
        """Rule 6 for a party cluster: two people under different names
        sharing a phone buy engines in cash inland and ship them to a house
        near Calais; nothing more is recorded of either. The job names the
        cluster (as well as its items); the marina receiving its stock and
        then quiet for as long does not; a re-run raises nothing new; as of
        a day before quiet_days nothing is quiet yet."""
        s = self.stack("al_quiet_cl", alerts_args=["--bulk-schedule", "", "--quiet-schedule", ""])
        phone = {"phone": "+49 1512 3456789"}
        a = (rec.Party.PERSON, "Karim Haddad", "DE", "Osnabrück", phone)
        b = (rec.Party.PERSON, "K. Hadad-Nour", "FR", "Calais", phone)
        lines = [("QC%04dZ" % j,) for j in range(3)]
        recs = [purchase("qc-buy", "retailer.de.wassersport-ruhr", T0, DEALER_DE, a, lines,
                         "Essen", "DE", cash=True),
                ship("qc-van", "police.de.anpr", T0 + 2 * DAY, a, b, lines, ("Osnabrück", "DE"),
                     ("Calais", "FR"), "VAN-QC")]
        recs += [ship("qc-stock-%d" % k, "carrier.be.nautic", T0 + k * DAY, IMPORTER, MARINA,
                      [("QM%05dM" % (k * 10 + j), rec.Equipment.ENGINE, "Tohatsu", "MFS9.9")
                       for j in range(3)], ("Antwerpen", "BE"), ("Boulogne-sur-Mer", "FR"),
                      "NI-QC-%d" % k, van="1-NIV-%03d" % k) for k in range(3)]
        s.submit_each(recs)
        s.wait()
        d = s.alerts[0]
        quiet = int(s.q("SELECT (settings->>'quiet_days')::int FROM alert_config "
                        "ORDER BY version DESC LIMIT 1") or 10)
        early = d.run_job("quiet_near_coast", T0 + 2 * DAY + quiet * DAY - DAY)
        self.assertEqual((early.outcome, early.raised), ("ok", 0))
        as_of = T0 + 2 * DAY + (quiet + 5) * DAY
        run = d.run_job("quiet_near_coast", as_of)
        self.assertEqual(run.outcome, "ok", run.message)
        rows = s.q("SELECT subject_kind, subject, hub, severity >= 2, known_at >= to_timestamp(%d) "
                   "FROM alerts WHERE rule = 'quiet_near_coast' AND subject_kind = 'cluster' "
                   "ORDER BY subject" % (T0 + 2 * DAY)).splitlines()
        self.assertEqual(rows, ["\x1f".join(["cluster", "phone:+4915123456789", "Calais", "t", "t"])], rows)
        expl = s.q("SELECT explanation FROM alerts WHERE subject_kind = 'cluster' "
                   "AND rule = 'quiet_near_coast'")
        self.assertIn("last received equipment at Calais", expl)
        self.assertIn("shared identifiers", expl)
        self.assertEqual(s.q("SELECT count(*) FROM alerts WHERE subject = 'vat:FR40303265045' "
                             "OR explanation LIKE '%Marina de Boulogne%'"), "0")
        items = int(s.q("SELECT count(*) FROM alerts WHERE rule = 'quiet_near_coast' "
                        "AND subject_kind = 'item'"))
        self.assertEqual(items, 3, "the three engines are quiet too")
        self.assertEqual(run.raised, items + 1)
        again = d.run_job("quiet_near_coast", as_of)
        self.assertEqual((again.outcome, again.raised, again.updated), ("ok", 0, 0))
        # A day later nothing has changed but the time it looked: no update,
        # and an alert an investigator closed stays closed.
        cid = s.q("SELECT alert_id FROM alerts WHERE subject_kind = 'cluster' "
                  "AND rule = 'quiet_near_coast'")
        s.q("SELECT alert_close(%s, 'investigator', 'known household, checked')" % cid)
        day = d.run_job("quiet_near_coast", as_of + DAY)
        self.assertEqual((day.outcome, day.raised, day.updated), ("ok", 0, 0), day.message)
        self.assertEqual(s.q("SELECT state FROM alerts WHERE alert_id = %s" % cid), "closed")
        # A later record of one member, before as_of: the cluster is not quiet.
        s.submit_each([purchase("qc-sold-on", "police.fr.pv", as_of - 3 * DAY, b,
                                (rec.Party.PERSON, "Buyer X", "FR", "Calais", {}),
                                [lines[0]], "Calais", "FR", cash=True)])
        s.wait()
        later = d.run_job("quiet_near_coast", as_of + 2 * DAY)
        self.assertEqual((later.outcome, later.raised, later.updated), ("ok", 0, 0),
                         later.message)
        self.assertEqual(s.q("SELECT count(*) FROM alerts WHERE subject_kind = 'cluster' "
                             "AND rule = 'quiet_near_coast'"), "1")
        self.release(s)

    def test_a_second_run_of_a_job_in_progress_is_refused_and_the_first_completes(self):
        """Two RunJob calls for one job on one daemon at once: the second is
        ABORTED at once, saying a run is in progress; the first, held up by
        a lock on the model, completes when it is released, and ListJobs
        still answers meanwhile (it does not queue behind the run)."""
        s = self.stack("al_twice", alerts_args=["--bulk-schedule", "", "--quiet-schedule", ""])
        s.submit_each(network("t", T0, 1))
        s.wait()
        d = s.alerts[0]
        holder = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                                   s.pg.url(s.db)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            holder.stdin.write("BEGIN; LOCK TABLE prov_hops IN ACCESS EXCLUSIVE MODE; "
                               "SELECT 'locked';\n")
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            first = d.run_call.future(wrk.RunJobRequest(job="quiet_near_coast"), timeout=60)
            deadline = time.monotonic() + 20
            while s.q("SELECT count(*) FROM pg_locks WHERE NOT granted "
                      "AND relation = 'prov_hops'::regclass") == "0":
                self.assertLess(time.monotonic(), deadline, "the first run never waited")
                time.sleep(0.05)
            with self.assertRaises(grpc.RpcError) as cm:
                d.run_job("quiet_near_coast")
            self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
            self.assertIn("in progress", cm.exception.details())
            listed = d.list_call(wrk.ListJobsRequest(job="quiet_near_coast"), timeout=10)
            self.assertEqual(listed.runs[0].outcome, "running")
        finally:
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(10)
            holder.stdout.close()
        done = first.result()
        self.assertEqual(done.outcome, "ok", done.message)
        self.assertEqual(s.q("SELECT string_agg(outcome, ',' ORDER BY run_id) FROM alert_job_runs"),
                         "ok")
        self.release(s)

    def test_scheduled_slot_runs_once_across_daemons(self):
        args = ["--bulk-schedule", "* * * * *", "--quiet-schedule", ""]
        s = self.stack("al_slot", alerts_args=args)
        s.add_alerts()
        # Both daemons fire at the next minute; one runs the slot, the other
        # finds it locked or already run.
        end = time.monotonic() + 75
        while time.monotonic() < end:
            if int(s.q("SELECT count(*) FROM alert_job_runs WHERE trigger = 'schedule'")) >= 2:
                break
            time.sleep(0.5)
        time.sleep(1)
        rows = s.q("SELECT as_of, outcome FROM alert_job_runs WHERE trigger = 'schedule' "
                   "ORDER BY run_id").splitlines()
        self.assertTrue(rows, "no scheduled run within 75 s")
        slots = {}
        for r in rows:
            as_of, outcome = r.split("\x1f")
            slots.setdefault(as_of, []).append(outcome)
        for as_of, outcomes in slots.items():
            self.assertEqual(outcomes.count("ok"), 1, slots)
            self.assertTrue(set(outcomes) <= {"ok", "skipped"}, slots)
        self.release(s)

    # -- the whole way: a record to an investigator's stream ------------------------------
    def test_watch_receives_the_alert_within_a_second_of_its_record(self):
        s = self.stack("al_watch")
        query = Query(self.pg.url("al_watch", "query_login"))
        try:
            recs = legit(T0 - 40 * DAY) + network("w", T0, 1)
            cause = [r for r in recs if r.source_ref == "w-0-van2"][0]
            s.submit_each([r for r in recs if r is not cause and "seized" not in r.source_ref])
            s.wait()
            got = []
            call = query.watch(al.WatchAlertsRequest(), timeout=60)

            def read():
                try:
                    for ch in call:
                        got.append((time.monotonic(), ch))
                except grpc.RpcError:
                    pass
            th = threading.Thread(target=read, daemon=True)
            th.start()
            time.sleep(0.5)  # the stream is open: it starts from now
            sent = time.monotonic()
            s.ingest.submit([cause])
            end = sent + 10
            first = None
            while time.monotonic() < end and first is None:
                for t, ch in list(got):
                    if "w-0-van2" in ch.alert.evidence_json:
                        first = (t, ch)
                        break
                time.sleep(0.01)
            call.cancel()
            th.join(10)
            self.assertIsNotNone(first, "no alert caused by the record reached the stream: %s"
                                 % [c.alert.title for _, c in got])
            latency = first[0] - sent
            sys.stderr.write("record acknowledged -> alert on WatchAlerts: %.0f ms\n" % (latency * 1000))
            self.assertLess(latency, 1.0, "%.3f s from the record's acknowledgement" % latency)
            self.assertGreaterEqual(first[1].alert.severity, al.ALERT_SEVERITY_MEDIUM)
            self.assertIn(first[1].kind, ("raised", "evidence"))
        finally:
            query.stop()
        self.release(s)

    # -- versioned thresholds ---------------------------------------------------------------
    def test_a_new_thresholds_version_applies_at_once_and_a_bad_one_is_refused(self):
        s = self.stack("al_conf")
        a = s.alerts[0]
        s.q("INSERT INTO alert_config (version, note, settings) VALUES "
            "(2, 'test', '{\"approach_min_km\": 120}'), (3, 'test: bad', '{\"nope\": 1}')")
        # Version 3 is refused (unknown key): the daemon says so and uses version 2.
        end = time.monotonic() + 10
        while "alert_config version 3: nope: unknown key" not in a.log_text():
            self.assertLess(time.monotonic(), end, a.log_text())
            time.sleep(0.05)
        s.submit_each(network("c", T0, 1))
        s.wait()
        versions = s.q("SELECT DISTINCT config_version FROM alerts").split()
        self.assertEqual(versions, ["2"], a.log_text())
        # The log says so: error lines are expected here, not a failure.
        self.assertIn("(not used)", a.log_text())
        self.release(s)

    def test_run_job_bad_input(self):
        s = self.stack("al_bad", alerts_args=["--bulk-schedule", "", "--quiet-schedule", ""])
        a = s.alerts[0]
        with self.assertRaises(grpc.RpcError) as cm:
            a.run_job("no_such_job")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("job", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            a.run_job("")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as cm:
            a.run_job("quiet_near_coast", as_of=int(time.time()) + 5 * 365 * DAY)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("as_of", cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            a.list_call(wrk.ListJobsRequest(job="nope"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:  # field 1 says 255 bytes follow: none do
            a.channel.unary_unary("/tidewatch.v1.WorkerService/RunJob")(b"\x0a\xff", timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(s.q("SELECT count(*) FROM alert_job_runs"), "0")
        ok = a.run_job("quiet_near_coast", as_of=T0)
        self.assertEqual(ok.outcome, "ok")
        self.assertEqual(ok.trigger, "manual")
        # The CLI: a run as of a past day, the list, an unknown job.
        cli = [os.path.join(BIN, "tidewatch"), "jobs"]
        target = ["--alerts", "127.0.0.1:%d" % a.port]
        out = subprocess.run(cli + ["run", "quiet_near_coast", "--as-of", "2026-01-31"] + target,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^run \d+ of quiet_near_coast as of 2026-01-31 00:00:00Z: ok, "
                                     r"\d+ raised, \d+ updated")
        out = subprocess.run(cli + ["list"] + target, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("bulk_acquisition   (on demand)", out.stdout)
        self.assertEqual(len([ln for ln in out.stdout.splitlines() if " quiet_near_coast " in ln
                              and " manual " in ln]), 2, out.stdout)
        out = subprocess.run(cli + ["run", "nope"] + target, capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("no such job", out.stderr)
        out = subprocess.run(cli + ["run", "quiet_near_coast", "--alerts", "127.0.0.1:1"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 3)
        self.assertIn("the alerts daemon at 127.0.0.1:1 is not reachable", out.stderr)
        self.release(s)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
