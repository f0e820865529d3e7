#!/usr/bin/python3
"""tidewatch.v1.AlertService on tidewatch-query, end to end: a real daemon on a
throwaway PostgreSQL, alerts raised by alert_raise() as a login of
tidewatch_alerts (as tidewatch-alerts does), python3-grpcio as the client,
and the tidewatch CLI against the same daemon.

ListAlerts filters and pages (newest change first, signed tokens); GetAlert
has the history oldest first; AcknowledgeAlert / CloseAlert go through the
state functions (NOT_FOUND, FAILED_PRECONDITION, "note: required"); hubs are
added, changed (version checked: ABORTED), disabled and enabled with a
hub_changes row each, bad input is refused per field and changes nothing;
WatchAlerts delivers a change within 1 s of its commit, resumes with
after_seq with exactly the missed changes, sends the after_alert_id
backlog, is not closed by the idle timeout, holds no more than its buffer
for a reader that never reads while another watcher gets everything, and
refuses watchers past watch_max; every call leaves one audit row.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR, TW_PG_BINDIR. Prints
"N passed, M failed"."""

import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, PgCluster, free_port  # noqa: E402
import grpc  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402
from tidewatch.v1 import alerts_pb2 as al  # noqa: E402

SERVICE = "tidewatch.v1.AlertService"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
PG = None
URL = None


def q(s):
    return "'" + s.replace("'", "''") + "'"


class Daemon:
    def __init__(self, url, extra=()):
        self.port = free_port()
        self.metrics_port = free_port()
        self.log = open(os.path.join(tempfile.gettempdir(), "tw-alerts-api-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-query"), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port, "--database-url", url,
             "--log-level", "info"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        self.target = "127.0.0.1:%d" % self.port
        self.channel = grpc.insecure_channel(self.target)
        grpc.channel_ready_future(self.channel).result(timeout=15)

        def method(name, req, resp):
            return self.channel.unary_unary("/%s/%s" % (SERVICE, name),
                                            request_serializer=req.SerializeToString,
                                            response_deserializer=resp.FromString)
        self.list = method("ListAlerts", al.ListAlertsRequest, al.ListAlertsResponse)
        self.get = method("GetAlert", al.GetAlertRequest, al.Alert)
        self.ack = method("AcknowledgeAlert", al.AcknowledgeAlertRequest, al.Alert)
        self.close = method("CloseAlert", al.CloseAlertRequest, al.Alert)
        self.hubs = method("ListHubs", al.ListHubsRequest, al.ListHubsResponse)
        self.put_hub = method("PutHub", al.PutHubRequest, al.Hub)
        self.set_hub = method("SetHubEnabled", al.SetHubEnabledRequest, al.Hub)
        self.watch = self.channel.unary_stream("/%s/WatchAlerts" % SERVICE,
                                               request_serializer=al.WatchAlertsRequest.SerializeToString,
                                               response_deserializer=al.AlertChange.FromString)
        health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                          request_serializer=lambda b: b,
                                          response_deserializer=lambda b: b)
        name = SERVICE.encode()
        end = time.monotonic() + 20
        while health(b"\x0a" + bytes([len(name)]) + name, timeout=5) != b"\x08\x01":
            if time.monotonic() > end:
                raise AssertionError("AlertService never became SERVING:\n" + self.log_text())
            time.sleep(0.1)

    def metric(self, name):
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                      timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_metric(self, name, value, seconds=20):
        end = time.monotonic() + seconds
        while self.metric(name) != value:
            if time.monotonic() > end:
                raise AssertionError("%s never reached %s (is %s)" % (name, value, self.metric(name)))
            time.sleep(0.02)

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        text = self.log_text()
        self.log.close()
        os.unlink(self.log.name)
        return rc, text


def raise_alert(rule, subject, hub="", severity=2, evidence=None, title=None,
                known="2026-11-20T05:40:00Z", job="", kind="item"):
    """alert_raise() as the alerts daemon's login: (alert_id, outcome)."""
    ev = json.dumps(evidence if evidence is not None else {"subject": subject})
    sql = ("SELECT alert_id, outcome FROM alert_raise(%s, %s, %s, %s, %d::smallint, %f, %s, %s, "
           "%s::jsonb, %s::timestamptz, 1, %s, NULL, NULL)"
           % (q(rule), q(kind), q(subject), q(hub), severity, severity / 4.0,
              q(title or "%s for %s" % (rule, subject)), q("because %s" % subject), q(ev), q(known),
              q(job)))
    out = PG.run_psql("tidewatch", sql, user="alerts_login")
    if out.returncode != 0:
        raise AssertionError("alert_raise: " + out.stderr)
    a, o = out.stdout.strip().split("|")
    return int(a), o


def max_seq():
    return int(PG.query("SELECT coalesce(max(seq), 0) FROM alerts"))


def last_audit_id():
    return int(PG.query("SELECT coalesce(max(id), 0) FROM query_audit"))


def audit_rows(method, after_id):
    rows = PG.query("SELECT status, result_count, arguments::text FROM query_audit WHERE id > %d "
                    "AND method = '/%s/%s' ORDER BY id" % (after_id, SERVICE, method))
    return [r.split("|") for r in rows.splitlines()] if rows else []


class Watch:
    """A WatchAlerts call read by a thread into a queue of (time, change)."""

    def __init__(self, daemon, **req):
        self.call = daemon.watch(al.WatchAlertsRequest(**req))
        self.q = queue.Queue()
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            for ch in self.call:
                self.q.put((time.monotonic(), ch))
        except grpc.RpcError as e:
            self.error = e
        self.q.put((time.monotonic(), None))

    def next(self, timeout=10):
        try:
            t, ch = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no change within %s s" % timeout)
        if ch is None:
            raise AssertionError("the stream ended: %s" % self.error)
        return t, ch

    def take(self, n, timeout=10):
        return [self.next(timeout)[1] for _ in range(n)]

    def cancel(self):
        self.call.cancel()
        self.thread.join(10)


def setUpModule():
    global PG, URL
    PG = PgCluster("tw-alerts-api-pg-")
    PG.query("CREATE DATABASE tidewatch", db="postgres")
    admin = "host=%s dbname=tidewatch user=postgres" % PG.dir
    out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", admin],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError("migrate: " + out.stderr)
    PG.query("CREATE ROLE query_login LOGIN IN ROLE tidewatch_query")
    PG.query("CREATE ROLE alerts_login LOGIN IN ROLE tidewatch_alerts")
    URL = "host=%s dbname=tidewatch user=query_login" % PG.dir


def tearDownModule():
    PG.destroy()


class AlertsApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(URL, ["--watch-poll", "200ms"])

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.d.stop()
        if rc != 0:
            print(log, file=sys.stderr)
        assert rc == 0, "query must exit 0 on SIGTERM"
        errors = [line for line in log.splitlines() if "ERROR" in line or " error " in line.lower()]
        assert not errors, "the daemon logged errors:\n" + "\n".join(errors)

    def fails(self, fn, req, code, field=None):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(req, timeout=10)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        if field:
            self.assertTrue(cm.exception.details().startswith(field),
                            "%r does not name %s" % (cm.exception.details(), field))
        return cm.exception.details()

    # ---- ListAlerts -------------------------------------------------------------

    def test_list_newest_change_first_filters_and_pages(self):
        ids = []
        for i in range(7):
            ids.append(raise_alert("t_list", "L%d" % i, hub="Calais" if i % 2 else "Dunkerque",
                                   severity=1 + i % 4,
                                   known="2026-11-%02dT00:00:00Z" % (10 + i))[0])
        # the oldest gets new evidence: it becomes the newest change
        self.assertEqual(raise_alert("t_list", "L0", hub="Dunkerque", severity=1,
                                     evidence={"more": 1}, known="2026-11-10T00:00:00Z")[1],
                         "updated")
        resp = self.d.list(al.ListAlertsRequest(rule="t_list"), timeout=10)
        got = [a.alert_id for a in resp.alerts]
        self.assertEqual(got, [ids[0]] + ids[:0:-1])
        self.assertEqual(resp.next_page_token, "")
        seqs = [a.seq for a in resp.alerts]
        self.assertEqual(seqs, sorted(seqs, reverse=True))
        a = resp.alerts[1]
        self.assertEqual((a.rule, a.subject_kind, a.subject, a.state),
                         ("t_list", "item", "L6", al.ALERT_STATE_OPEN))
        self.assertEqual(a.known_at.ToJsonString(), "2026-11-16T00:00:00Z")
        self.assertGreater(a.raised_at.seconds, 1700000000)
        self.assertEqual(json.loads(a.evidence_json), {"subject": "L6"})
        self.assertEqual(a.config_version, 1)
        # filters
        f = self.d.list(al.ListAlertsRequest(rule="t_list", hub="Calais"), timeout=10)
        self.assertEqual(sorted(x.alert_id for x in f.alerts), [ids[1], ids[3], ids[5]])
        f = self.d.list(al.ListAlertsRequest(rule="t_list", min_severity=al.ALERT_SEVERITY_HIGH),
                        timeout=10)
        self.assertEqual(sorted(x.alert_id for x in f.alerts), [ids[2], ids[3], ids[6]])
        f = self.d.list(al.ListAlertsRequest(rule="t_list", subject_kind="item", subject="L4"),
                        timeout=10)
        self.assertEqual([x.alert_id for x in f.alerts], [ids[4]])
        known = timestamp_pb2.Timestamp()
        known.FromJsonString("2026-11-15T00:00:00Z")
        f = self.d.list(al.ListAlertsRequest(rule="t_list", known_after=known), timeout=10)
        self.assertEqual(sorted(x.alert_id for x in f.alerts), [ids[5], ids[6]])
        # state: open and acknowledged by default; closed ones with include_closed
        self.d.close(al.CloseAlertRequest(alert_id=ids[2], note="checked: a legitimate dealer"),
                     timeout=10)
        self.d.ack(al.AcknowledgeAlertRequest(alert_id=ids[3], by="inv1"), timeout=10)
        f = self.d.list(al.ListAlertsRequest(rule="t_list"), timeout=10)
        self.assertNotIn(ids[2], [x.alert_id for x in f.alerts])
        self.assertEqual(f.alerts[0].alert_id, ids[3], "the acknowledgement is the newest change")
        f = self.d.list(al.ListAlertsRequest(rule="t_list", include_closed=True), timeout=10)
        self.assertEqual(len(f.alerts), 7)
        f = self.d.list(al.ListAlertsRequest(rule="t_list", state=al.ALERT_STATE_CLOSED), timeout=10)
        self.assertEqual([x.alert_id for x in f.alerts], [ids[2]])
        f = self.d.list(al.ListAlertsRequest(rule="t_list", state=al.ALERT_STATE_ACKNOWLEDGED),
                        timeout=10)
        self.assertEqual([x.alert_id for x in f.alerts], [ids[3]])
        # pages of 2 go through every alert once, in order
        req = al.ListAlertsRequest(rule="t_list", include_closed=True, page_size=2)
        seen, pages = [], 0
        while True:
            r = self.d.list(req, timeout=10)
            pages += 1
            self.assertLessEqual(len(r.alerts), 2)
            seen += [x.seq for x in r.alerts]
            if not r.next_page_token:
                break
            req.page_token = r.next_page_token
        self.assertEqual(pages, 4)
        self.assertEqual(seen, sorted(seen, reverse=True))
        self.assertEqual(len(set(seen)), 7)
        # a token with other filters, or forged, is refused
        first = self.d.list(al.ListAlertsRequest(rule="t_list", include_closed=True, page_size=2),
                            timeout=10)
        self.fails(self.d.list, al.ListAlertsRequest(rule="t_list", page_size=2,
                                                     page_token=first.next_page_token),
                   INVALID, "page_token")
        self.fails(self.d.list, al.ListAlertsRequest(page_token=first.next_page_token[:-2] + "AA"),
                   INVALID, "page_token")

    def test_list_invalid_arguments_name_the_field(self):
        self.fails(self.d.list, al.ListAlertsRequest(state=9), INVALID, "state")
        self.fails(self.d.list, al.ListAlertsRequest(min_severity=7), INVALID, "min_severity")
        self.fails(self.d.list, al.ListAlertsRequest(subject_kind="person"), INVALID, "subject_kind")
        self.fails(self.d.list, al.ListAlertsRequest(rule="x" * 65), INVALID, "rule")
        self.fails(self.d.list, al.ListAlertsRequest(hub="a\x01b"), INVALID, "hub")
        self.fails(self.d.list, al.ListAlertsRequest(page_size=-1), INVALID, "page_size")
        bad = timestamp_pb2.Timestamp(seconds=1, nanos=-5)
        self.fails(self.d.list, al.ListAlertsRequest(known_after=bad), INVALID, "known_after")

    def test_page_size_default_and_cap(self):
        for i in range(55):
            raise_alert("t_page", "P%d" % i)
        self.assertEqual(len(self.d.list(al.ListAlertsRequest(rule="t_page"), timeout=10).alerts), 50)
        capped = Daemon(URL, ["--page-max", "5"])
        try:
            r = capped.list(al.ListAlertsRequest(rule="t_page", page_size=1000), timeout=10)
            self.assertEqual(len(r.alerts), 5)
            self.assertNotEqual(r.next_page_token, "")
        finally:
            self.assertEqual(capped.stop()[0], 0)

    # ---- GetAlert, AcknowledgeAlert, CloseAlert ------------------------------------

    def test_get_with_history_oldest_first(self):
        aid, o = raise_alert("t_get", "G1", hub="Calais", severity=2, evidence={"hops": 1})
        self.assertEqual(o, "raised")
        self.assertEqual(raise_alert("t_get", "G1", hub="Calais", severity=3,
                                     evidence={"hops": 2})[1], "updated")
        self.d.ack(al.AcknowledgeAlertRequest(alert_id=aid, by="inv7", note="looking"), timeout=10)
        self.d.close(al.CloseAlertRequest(alert_id=aid, by="inv7", note="handed to the NCA"),
                     timeout=10)
        a = self.d.get(al.GetAlertRequest(alert_id=aid), timeout=10)
        self.assertEqual([h.kind for h in a.history], ["raised", "evidence", "acknowledged", "closed"])
        self.assertEqual([h.seq for h in a.history], sorted(h.seq for h in a.history))
        self.assertEqual(a.history[-1].seq, a.seq)
        self.assertEqual((a.history[2].by, a.history[2].note), ("inv7", "looking"))
        self.assertEqual(a.history[0].by, "rule t_get")
        self.assertEqual(a.severity, al.ALERT_SEVERITY_HIGH)
        self.assertEqual(a.updates, 1)
        self.assertEqual(json.loads(a.evidence_json), {"hops": 2})
        self.assertEqual((a.state, a.closed_by, a.close_note, a.acknowledged_by),
                         (al.ALERT_STATE_CLOSED, "inv7", "handed to the NCA", "inv7"))
        self.assertTrue(a.HasField("closed_at") and a.HasField("acknowledged_at"))
        self.assertGreaterEqual(a.history[3].at.ToNanoseconds(), a.history[0].at.ToNanoseconds())
        self.fails(self.d.get, al.GetAlertRequest(alert_id=99999999), grpc.StatusCode.NOT_FOUND,
                   "alert_id")
        self.fails(self.d.get, al.GetAlertRequest(), INVALID, "alert_id")
        # history is capped by the setting
        capped = Daemon(URL, ["--alert-history", "2"])
        try:
            h = capped.get(al.GetAlertRequest(alert_id=aid), timeout=10).history
            self.assertEqual([x.kind for x in h], ["raised", "evidence"])
        finally:
            self.assertEqual(capped.stop()[0], 0)

    def test_acknowledge_and_close_states(self):
        aid = raise_alert("t_state", "S1", severity=4)[0]
        updates = lambda: int(PG.query("SELECT count(*) FROM alert_updates WHERE alert_id = %d" % aid))
        a = self.d.ack(al.AcknowledgeAlertRequest(alert_id=aid, by="inv2", note="on it"), timeout=10)
        self.assertEqual((a.state, a.acknowledged_by), (al.ALERT_STATE_ACKNOWLEDGED, "inv2"))
        self.assertEqual([h.kind for h in a.history], ["raised", "acknowledged"])
        again = self.d.ack(al.AcknowledgeAlertRequest(alert_id=aid, by="inv3"), timeout=10)
        self.assertEqual((again.seq, again.acknowledged_by), (a.seq, "inv2"), "a no-op")
        n = updates()
        self.assertEqual(self.fails(self.d.close, al.CloseAlertRequest(alert_id=aid, note="  "),
                                    INVALID, "note"), "note: required (say why the alert is closed)")
        self.fails(self.d.close, al.CloseAlertRequest(alert_id=aid, by="x" * 129, note="ok"),
                   INVALID, "by")
        self.fails(self.d.close, al.CloseAlertRequest(alert_id=aid, note="n" * 5000), INVALID, "note")
        self.fails(self.d.ack, al.AcknowledgeAlertRequest(alert_id=aid, note="bad\x07bell"),
                   INVALID, "note")
        self.assertEqual(updates(), n, "refused requests change nothing")
        self.assertEqual(self.d.get(al.GetAlertRequest(alert_id=aid), timeout=10).state,
                         al.ALERT_STATE_ACKNOWLEDGED)
        c = self.d.close(al.CloseAlertRequest(alert_id=aid, by="inv2", note="a false match\nline 2"),
                         timeout=10)
        self.assertEqual((c.state, c.close_note), (al.ALERT_STATE_CLOSED, "a false match\nline 2"))
        self.assertIn("closed", self.fails(self.d.ack, al.AcknowledgeAlertRequest(alert_id=aid),
                                           grpc.StatusCode.FAILED_PRECONDITION, "alert_id"))
        self.fails(self.d.close, al.CloseAlertRequest(alert_id=aid, note="again"),
                   grpc.StatusCode.FAILED_PRECONDITION, "alert_id")
        self.fails(self.d.ack, al.AcknowledgeAlertRequest(alert_id=88888888),
                   grpc.StatusCode.NOT_FOUND, "alert_id")
        self.fails(self.d.close, al.CloseAlertRequest(alert_id=88888888, note="x"),
                   grpc.StatusCode.NOT_FOUND, "alert_id")
        self.assertEqual(updates(), n + 1)
        # the same evidence does not reopen what an investigator closed
        self.assertEqual(raise_alert("t_state", "S1", severity=4)[1], "unchanged")
        login = PG.query("SELECT db_login FROM alert_updates WHERE alert_id = %d AND kind = 'closed'"
                         % aid)
        self.assertEqual(login, "query_login")

    def test_every_call_is_audited(self):
        aid = raise_alert("t_audit", "A1")[0]
        start = last_audit_id()
        self.d.list(al.ListAlertsRequest(rule="t_audit"), timeout=10)
        self.d.get(al.GetAlertRequest(alert_id=aid), timeout=10)
        self.fails(self.d.get, al.GetAlertRequest(alert_id=77777777), grpc.StatusCode.NOT_FOUND)
        self.d.ack(al.AcknowledgeAlertRequest(alert_id=aid, by="inv9"), timeout=10)
        self.fails(self.d.close, al.CloseAlertRequest(alert_id=aid), INVALID)
        self.d.hubs(al.ListHubsRequest(), timeout=10)
        self.fails(self.d.set_hub, al.SetHubEnabledRequest(hub_id=987654), grpc.StatusCode.NOT_FOUND)
        self.assertEqual([r[:2] for r in audit_rows("ListAlerts", start)], [["0", "1"]])
        self.assertEqual([r[0] for r in audit_rows("GetAlert", start)], ["0", "5"])
        ack = audit_rows("AcknowledgeAlert", start)
        self.assertEqual([r[0] for r in ack], ["0"])
        self.assertEqual(json.loads(ack[0][2]), {"alert_id": aid, "by": "inv9"})
        self.assertEqual([r[0] for r in audit_rows("CloseAlert", start)], ["3"])
        self.assertEqual([r[:2] for r in audit_rows("ListHubs", start)], [["0", "38"]])
        self.assertEqual([r[0] for r in audit_rows("SetHubEnabled", start)], ["5"])

    # ---- hubs ---------------------------------------------------------------------

    def hub(self, **kw):
        h = dict(name="Hardelot Test", country="FR", locode="FRHD2", lat=50.63, lon=1.59,
                 kind=al.HUB_KIND_COAST, radius_km=8)
        h.update(kw)
        return al.Hub(**h)

    def changes(self, hub_id=None):
        where = "" if hub_id is None else " WHERE hub_id = %d" % hub_id
        return PG.query("SELECT count(*) FROM hub_changes" + where)

    def test_hubs_add_change_conflict_disable_enable(self):
        seeded = self.d.hubs(al.ListHubsRequest(), timeout=10).hubs
        self.assertEqual(len(seeded), 38)
        calais = [h for h in seeded if h.name == "Calais"][0]
        self.assertEqual((calais.country, calais.locode, calais.kind, calais.radius_km, calais.version),
                         ("FR", "FRCQF", al.HUB_KIND_COAST, 10, 1))
        dk = [h for h in seeded if h.name == "Dunkerque"][0]
        self.assertEqual(list(dk.aliases), ["Dunkirk", "Duinkerke"])
        transit = self.d.hubs(al.ListHubsRequest(kind=al.HUB_KIND_TRANSIT), timeout=10).hubs
        self.assertEqual(len(transit), 5)
        # add
        h = self.d.put_hub(al.PutHubRequest(hub=self.hub(aliases=['Hardelot "T"', "H\\T"]), by="ops1",
                                            note="new launch site"), timeout=10)
        self.assertGreater(h.hub_id, 38)
        self.assertEqual((h.name, h.version, h.enabled, list(h.aliases)),
                         ("Hardelot Test", 1, True, ['Hardelot "T"', "H\\T"]))
        row = PG.query("SELECT action, by, note, db_login, after->>'radius_km' FROM hub_changes "
                       "WHERE hub_id = %d" % h.hub_id)
        self.assertEqual(row, "add|ops1|new launch site|query_login|8")
        # change with the version read
        h.radius_km = 12
        h2 = self.d.put_hub(al.PutHubRequest(hub=h, by="ops2", note="wider"), timeout=10)
        self.assertEqual((h2.version, h2.radius_km), (2, 12))
        row = PG.query("SELECT action, before->>'radius_km', after->>'radius_km' FROM hub_changes "
                       "WHERE hub_id = %d ORDER BY change_id DESC LIMIT 1" % h.hub_id)
        self.assertEqual(row, "change|8|12")
        # a stale version is refused: read it again
        h.radius_km = 20
        msg = self.fails(self.d.put_hub, al.PutHubRequest(hub=h), grpc.StatusCode.ABORTED, "version")
        self.assertIn("read it again", msg)
        self.assertEqual(self.changes(h.hub_id), "2")
        # duplicate name in the same country; unknown id
        self.fails(self.d.put_hub, al.PutHubRequest(hub=self.hub(name="calais", locode="")),
                   grpc.StatusCode.ALREADY_EXISTS, "name")
        self.fails(self.d.put_hub, al.PutHubRequest(hub=self.hub(hub_id=54321, version=1)),
                   grpc.StatusCode.NOT_FOUND, "hub_id")
        # disable, list, enable
        d = self.d.set_hub(al.SetHubEnabledRequest(hub_id=h.hub_id, enabled=False, by="ops3",
                                                   note="closed by the prefecture"), timeout=10)
        self.assertEqual((d.enabled, d.version), (False, 3))
        names = [x.name for x in self.d.hubs(al.ListHubsRequest(), timeout=10).hubs]
        self.assertNotIn("Hardelot Test", names)
        names = [x.name for x in self.d.hubs(al.ListHubsRequest(include_disabled=True),
                                             timeout=10).hubs]
        self.assertIn("Hardelot Test", names)
        same = self.d.set_hub(al.SetHubEnabledRequest(hub_id=h.hub_id, enabled=False), timeout=10)
        self.assertEqual(same.version, 3, "no change, no new version")
        e = self.d.set_hub(al.SetHubEnabledRequest(hub_id=h.hub_id, enabled=True), timeout=10)
        self.assertEqual((e.enabled, e.version), (True, 4))
        acts = PG.query("SELECT string_agg(action, ',' ORDER BY change_id) FROM hub_changes WHERE "
                        "hub_id = %d" % h.hub_id)
        self.assertEqual(acts, "add,change,disable,enable")

    def test_hub_bad_input_per_field_changes_nothing(self):
        before = (self.changes(), PG.query("SELECT count(*), sum(version) FROM hubs"))
        cases = [
            (self.hub(name=""), "hub.name"),
            (self.hub(name="x" * 129), "hub.name"),
            (self.hub(name="bad\nname"), "hub.name"),
            (self.hub(country="fr"), "hub.country"),
            (self.hub(country="FRA"), "hub.country"),
            (self.hub(locode="FR1AB"), "hub.locode"),
            (self.hub(locode="FRCQ"), "hub.locode"),
            (self.hub(lat=91), "hub.lat"),
            (self.hub(lat=float("nan")), "hub.lat"),
            (self.hub(lon=-180.5), "hub.lon"),
            (self.hub(kind=0), "hub.kind"),
            (self.hub(kind=9), "hub.kind"),
            (self.hub(radius_km=0), "hub.radius_km"),
            (self.hub(radius_km=200.1), "hub.radius_km"),
            (self.hub(aliases=[""]), "hub.aliases[0]"),
            (self.hub(aliases=["ok"] * 33), "hub.aliases"),
            (self.hub(hub_id=1), "hub.version"),
            (self.hub(hub_id=-1), "hub.hub_id"),
        ]
        for hub, field in cases:
            self.fails(self.d.put_hub, al.PutHubRequest(hub=hub), INVALID, field)
        self.fails(self.d.put_hub, al.PutHubRequest(), INVALID, "hub")
        self.fails(self.d.put_hub, al.PutHubRequest(hub=self.hub(), by="b" * 200), INVALID, "by")
        self.fails(self.d.set_hub, al.SetHubEnabledRequest(hub_id=0), INVALID, "hub_id")
        self.fails(self.d.set_hub, al.SetHubEnabledRequest(hub_id=1, note="n" * 5000), INVALID, "note")
        self.fails(self.d.hubs, al.ListHubsRequest(kind=7), INVALID, "kind")
        self.assertEqual((self.changes(), PG.query("SELECT count(*), sum(version) FROM hubs")), before)

    # ---- WatchAlerts -----------------------------------------------------------------

    def test_watch_gets_a_change_within_a_second_of_its_commit(self):
        w = Watch(self.d, after_seq=max_seq())
        try:
            lat = []
            for i in range(5):
                aid, _ = raise_alert("t_watch", "W%d" % i, severity=3)
                committed = time.monotonic()
                t, ch = w.next(5)
                self.assertEqual((ch.alert.alert_id, ch.kind), (aid, "raised"))
                self.assertEqual(ch.seq, ch.alert.seq)
                self.assertEqual(ch.alert.subject, "W%d" % i)
                lat.append(t - committed)
            print("WatchAlerts: commit to client %.1f ms at most, %.1f ms median"
                  % (max(lat) * 1e3, sorted(lat)[2] * 1e3), file=sys.stderr)
            self.assertLess(max(lat), 1.0)
            # state changes arrive as their kind, the alert in its new state
            self.d.ack(al.AcknowledgeAlertRequest(alert_id=aid, by="inv4"), timeout=10)
            ch = w.next(5)[1]
            self.assertEqual((ch.kind, ch.alert.state, ch.alert.acknowledged_by),
                             ("acknowledged", al.ALERT_STATE_ACKNOWLEDGED, "inv4"))
        finally:
            w.cancel()

    def test_watch_from_now_and_severity_filter(self):
        self.d.wait_metric("tidewatch_query_watchers", 0)
        raise_alert("t_now", "before")
        w = Watch(self.d, min_severity=al.ALERT_SEVERITY_HIGH)
        try:
            self.d.wait_metric("tidewatch_query_watchers", 1)
            raise_alert("t_now", "low", severity=1)
            high = raise_alert("t_now", "high", severity=4)[0]
            ch = w.next(5)[1]
            self.assertEqual(ch.alert.alert_id, high, "neither the past nor the low one")
        finally:
            w.cancel()

    def test_watch_resume_after_seq_gets_exactly_the_missed_changes(self):
        w = Watch(self.d, after_seq=max_seq())
        a = [raise_alert("t_resume", "R%d" % i)[0] for i in range(3)]
        got = w.take(3)
        self.assertEqual([c.alert.alert_id for c in got], a)
        w.cancel()
        last = got[-1].seq
        missed = [raise_alert("t_resume", "M%d" % i)[0] for i in range(2)]
        self.d.ack(al.AcknowledgeAlertRequest(alert_id=a[0]), timeout=10)
        w2 = Watch(self.d, after_seq=last)
        try:
            got = w2.take(3)
            self.assertEqual([(c.alert.alert_id, c.kind) for c in got],
                             [(missed[0], "raised"), (missed[1], "raised"), (a[0], "acknowledged")])
            self.assertGreater(got[0].seq, last)
            marker = raise_alert("t_resume", "marker")[0]
            self.assertEqual(w2.next(5)[1].alert.alert_id, marker, "nothing else in between")
        finally:
            w2.cancel()

    def test_watch_after_alert_id_backlog_then_live(self):
        old = raise_alert("t_backlog", "old")[0]
        new = [raise_alert("t_backlog", "B%d" % i, severity=2 + i % 2)[0] for i in range(4)]
        raise_alert("t_backlog", "old", evidence={"changed": True})  # id <= old: not backlog
        w = Watch(self.d, after_alert_id=old)
        try:
            got = w.take(4)
            self.assertEqual([(c.alert.alert_id, c.kind) for c in got], [(x, "backlog") for x in new])
            live = raise_alert("t_backlog", "live")[0]
            ch = w.next(5)[1]
            self.assertEqual((ch.alert.alert_id, ch.kind), (live, "raised"))
        finally:
            w.cancel()
        w = Watch(self.d, after_alert_id=old, min_severity=al.ALERT_SEVERITY_HIGH)
        try:
            got = w.take(2)
            self.assertEqual([c.alert.alert_id for c in got], [new[1], new[3]])
        finally:
            w.cancel()

    def test_watch_invalid_arguments(self):
        for req, field in [(al.WatchAlertsRequest(after_seq=-1), "after_seq"),
                           (al.WatchAlertsRequest(after_alert_id=-2), "after_alert_id"),
                           (al.WatchAlertsRequest(after_seq=1, after_alert_id=1), "after_seq"),
                           (al.WatchAlertsRequest(min_severity=8), "min_severity")]:
            with self.assertRaises(grpc.RpcError) as cm:
                list(self.d.watch(req, timeout=10))
            self.assertEqual(cm.exception.code(), INVALID)
            self.assertTrue(cm.exception.details().startswith(field), cm.exception.details())

    def test_watch_one_audit_row_per_call(self):
        self.d.wait_metric("tidewatch_query_watchers", 0)
        start = last_audit_id()
        after = max_seq()
        w = Watch(self.d, after_seq=after)
        raise_alert("t_waudit", "1")
        raise_alert("t_waudit", "2")
        w.take(2)

        def mine():  # rows of this call (an earlier watcher's row may land meanwhile)
            return [r for r in audit_rows("WatchAlerts", start)
                    if json.loads(r[2]).get("after_seq") == after]
        self.assertEqual(mine(), [], "audited when it ends")
        w.cancel()
        end = time.monotonic() + 10
        while not mine() and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
        rows = mine()
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][:2], ["1", "2"], "CANCELLED by the client, two changes sent")


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


class StuckWatcher:
    """A WatchAlerts call on a raw HTTP/2 connection whose stream window is 0
    and which never reads: nothing the server sends on it can leave."""

    def __init__(self, port, after_seq):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        req = al.WatchAlertsRequest(after_seq=after_seq).SerializeToString()
        headers = b"".join(hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", "/%s/WatchAlerts" % SERVICE),
            (":authority", "127.0.0.1:%d" % port), ("content-type", "application/grpc"),
            ("te", "trailers")])
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                          h2_frame(4, 0, 0, struct.pack(">HI", 4, 0)) +  # INITIAL_WINDOW_SIZE 0
                          h2_frame(1, 4, 1, headers) +
                          h2_frame(0, 1, 1, b"\x00" + struct.pack(">I", len(req)) + req))

    def close(self):
        self.sock.close()


class WatchLimits(unittest.TestCase):
    """A daemon with small watcher limits and a 1 s idle timeout."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(URL, ["--watch-max", "3", "--watch-buffer", "64KiB", "--idle-timeout", "1s",
                             "--watch-page", "20"])

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.d.stop()
        if rc != 0:
            print(log, file=sys.stderr)
        assert rc == 0

    def test_reader_that_never_reads_holds_its_buffer_only_and_delays_no_one(self):
        start = max_seq()
        stuck = StuckWatcher(self.d.port, start)
        w = Watch(self.d, after_seq=start)
        try:
            self.d.wait_metric("tidewatch_query_watchers", 2)
            n = 400
            blob = "x" * 4000
            PG.run_psql("tidewatch", "SELECT alert_raise('t_slow', 'item', 'S' || g, '', 2::smallint, "
                        "0.5, 'slow ' || g, 'e', jsonb_build_object('pad', %s, 'g', g), now(), 1, "
                        "'', NULL, NULL) FROM generate_series(1, %d) g" % (q(blob), n),
                        user="alerts_login")
            got = w.take(n, timeout=20)
            self.assertEqual([c.alert.subject for c in got], ["S%d" % i for i in range(1, n + 1)])
            # the stuck reader: its queue stopped at the buffer (plus one message)
            time.sleep(0.5)
            queued = self.d.metric("tidewatch_query_watch_queued_bytes")
            print("a reader that never reads: %d bytes queued for it (buffer 64 KiB, %d changes "
                  "of ~4.3 KB pending)" % (queued, n), file=sys.stderr)
            self.assertGreater(queued, 32 * 1024)
            self.assertLessEqual(queued, 64 * 1024 + 8 * 1024)
            self.assertEqual(self.d.metric("tidewatch_query_watchers"), 2, "it is still open")
        finally:
            w.cancel()
            stuck.close()
        self.d.wait_metric("tidewatch_query_watchers", 0)

    def test_watch_max_and_idle_timeout(self):
        self.d.wait_metric("tidewatch_query_watchers", 0)
        ws = [Watch(self.d, after_seq=max_seq()) for _ in range(3)]
        try:
            self.d.wait_metric("tidewatch_query_watchers", 3)
            with self.assertRaises(grpc.RpcError) as cm:
                list(self.d.watch(al.WatchAlertsRequest(), timeout=10))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("watch_max", cm.exception.details())
            # longer than the idle timeout: the open streams keep the connection
            time.sleep(2.5)
            aid = raise_alert("t_idle", "I1")[0]
            for w in ws:
                self.assertEqual(w.next(5)[1].alert.alert_id, aid)
        finally:
            for w in ws:
                w.cancel()
        self.d.wait_metric("tidewatch_query_watchers", 0)

    def test_shutdown_ends_watchers_unavailable(self):
        d = Daemon(URL, ["--watch-poll", "100ms"])
        w = Watch(d, after_seq=max_seq())
        d.wait_metric("tidewatch_query_watchers", 1)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(20), 0)
        self.assertLess(time.monotonic() - t0, 8, "watchers do not hold the shutdown grace")
        w.thread.join(10)
        self.assertEqual(w.error.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("resume with after_seq", w.error.details())
        d.channel.close()
        d.log.close()
        os.unlink(d.log.name)


def cli(target, *args, timeout=30):
    """Run the tidewatch CLI against `target`: (exit code, stdout, stderr)."""
    env = dict(os.environ, USER="cli-user")
    out = subprocess.run([os.path.join(BIN, "tidewatch"), args[0], "--target", target] + list(args[1:]),
                         capture_output=True, text=True, timeout=timeout, env=env)
    return out.returncode, out.stdout, out.stderr


class AlertsCli(unittest.TestCase):
    """The tidewatch CLI's alerts and hubs commands against the real daemon."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(URL)
        cls.t = cls.d.target

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.d.stop()
        assert rc == 0, log

    def test_alerts_list_filters_json_and_exit_codes(self):
        a = raise_alert("t_cli", "C1", hub="Calais", severity=3, title="engine heading to Calais")[0]
        b = raise_alert("t_cli", "C2", severity=1, title="a small one")[0]
        rc, out, err = cli(self.t, "alerts", "--rule", "t_cli")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ID"), out)
        self.assertTrue(lines[1].startswith(str(b)) and lines[2].startswith(str(a)), out)
        self.assertIn("high", lines[2])
        self.assertIn("item C1 -> Calais  engine heading to Calais", lines[2])
        rc, out, _ = cli(self.t, "alerts", "--rule", "t_cli", "--severity", "high", "--hub", "Calais")
        self.assertEqual((rc, len(out.splitlines())), (0, 2))
        rc, out, err = cli(self.t, "alerts", "--rule", "t_cli", "--json")
        self.assertEqual(rc, 0, err)
        from google.protobuf import json_format
        resp = json_format.Parse(out, al.ListAlertsResponse())
        self.assertEqual([x.alert_id for x in resp.alerts], [b, a])
        self.assertEqual(json.loads(resp.alerts[1].evidence_json), {"subject": "C1"})
        rc, _, err = cli(self.t, "alerts", "--rule", "no_such_rule")
        self.assertEqual(rc, 1, err)
        rc, _, err = cli(self.t, "alerts", "--state", "bogus")
        self.assertEqual(rc, 2)
        self.assertIn("--state", err)
        rc, _, err = cli(self.t, "alerts", "--rule", "x" * 100)
        self.assertEqual(rc, 2)
        self.assertIn("invalid argument: rule", err)
        rc, _, err = cli(self.t, "alerts", "--watch", "--rule", "t_cli")
        self.assertEqual(rc, 2)
        rc, out, _ = cli(self.t, "alerts", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("alerts --watch", out)
        rc, _, err = cli("127.0.0.1:%d" % free_port(), "alerts")
        self.assertEqual(rc, 3)
        self.assertIn("not reachable", err)

    def test_alerts_show_ack_close(self):
        aid = raise_alert("t_cli_show", "X1", hub="Gravelines", severity=4,
                          evidence={"hops": [{"event": 1}, {"event": 2}], "distance_km": 3.5},
                          title="seized near Gravelines")[0]
        rc, out, err = cli(self.t, "alerts", "show", str(aid))
        self.assertEqual(rc, 0, err)
        for part in ["Alert %d: seized near Gravelines" % aid, "severity   critical",
                     "state      open", "subject    item X1", "hub        Gravelines",
                     "known      2026-11-20 05:40:00Z", "Explanation:\n  because X1",
                     "  hops: 2 items", "    - {\"event\":1}", "  distance_km: 3.5", "History:",
                     "raised       critical rule t_cli_show"]:
            self.assertIn(part, out)
        rc, out, err = cli(self.t, "alerts", "ack", str(aid), "--note", "on it")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip().split(" seq")[0], "alert %d acknowledged (cli-user)," % aid)
        n = PG.query("SELECT count(*) FROM alert_updates WHERE alert_id = %d" % aid)
        rc, _, err = cli(self.t, "alerts", "close", str(aid))
        self.assertEqual(rc, 2)
        self.assertIn("--note is required", err)
        self.assertEqual(PG.query("SELECT count(*) FROM alert_updates WHERE alert_id = %d" % aid), n)
        rc, out, err = cli(self.t, "alerts", "close", str(aid), "--note", "false match", "--by", "inv5")
        self.assertEqual(rc, 0, err)
        self.assertIn("closed (inv5)", out)
        rc, _, err = cli(self.t, "alerts", "ack", str(aid))
        self.assertEqual(rc, 1)
        self.assertIn("refused", err)
        self.assertIn("closed", err)
        rc, _, err = cli(self.t, "alerts", "show", "99999999")
        self.assertEqual(rc, 1)
        self.assertIn("no alert 99999999", err)
        rc, _, _ = cli(self.t, "alerts", "show", "abc")
        self.assertEqual(rc, 2)

    def test_alerts_watch_prints_changes_and_resumes(self):
        start = max_seq()
        p = subprocess.Popen([os.path.join(BIN, "tidewatch"), "alerts", "--target", self.t, "--watch",
                              "--after-seq", str(start)], stdout=subprocess.PIPE, text=True)
        try:
            aid = raise_alert("t_cli_watch", "W1", title="watched")[0]
            line = p.stdout.readline()
            self.assertTrue(line.startswith("seq "), line)
            self.assertIn("raised", line)
            self.assertIn("%d " % aid, line)
            self.assertIn("watched", line)
            seq = int(line.split()[1])
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()
        missed = raise_alert("t_cli_watch", "W2")[0]
        p = subprocess.Popen([os.path.join(BIN, "tidewatch"), "alerts", "--target", self.t, "--watch",
                              "--after-seq", str(seq), "--json"], stdout=subprocess.PIPE, text=True)
        try:
            from google.protobuf import json_format
            ch = json_format.Parse(p.stdout.readline(), al.AlertChange())
            self.assertEqual((ch.alert.alert_id, ch.kind), (missed, "raised"))
        finally:
            p.kill()
            p.wait(10)
            p.stdout.close()

    def test_hubs_commands(self):
        rc, out, err = cli(self.t, "hubs", "--kind", "transit")
        self.assertEqual((rc, len(out.splitlines())), (0, 5), err)
        self.assertIn("Osnabrück", out)
        rc, out, _ = cli(self.t, "hubs")
        self.assertIn("Dunkerque", out)
        self.assertIn("aka Dunkirk, Duinkerke", out)
        rc, out, err = cli(self.t, "hubs", "add", "--name", "Cli Beach", "--country", "FR", "--lat",
                           "50.8", "--lon", "1.6", "--kind", "coast", "--radius", "5", "--alias",
                           "CB", "--alias", "Plage CLI", "--note", "test")
        self.assertEqual(rc, 0, err)
        hid = int(out.split()[0])
        self.assertIn("Cli Beach", out)
        self.assertIn("aka CB, Plage CLI", out)
        rc, out, err = cli(self.t, "hubs", "set", str(hid), "--version", "1", "--radius", "7.5")
        self.assertEqual(rc, 0, err)
        self.assertIn("7.5 km", out)
        self.assertIn("v2", out)
        self.assertIn("aka CB, Plage CLI", out, "fields not given stay")
        rc, _, err = cli(self.t, "hubs", "set", str(hid), "--version", "1", "--radius", "9")
        self.assertEqual(rc, 1)
        self.assertIn("read it again", err)
        rc, out, err = cli(self.t, "hubs", "disable", str(hid), "--note", "closed")
        self.assertEqual(rc, 0, err)
        self.assertIn("disabled", out)
        self.assertNotIn("Cli Beach", cli(self.t, "hubs")[1])
        self.assertIn("Cli Beach", cli(self.t, "hubs", "--all")[1])
        self.assertEqual(cli(self.t, "hubs", "enable", str(hid))[0], 0)
        by = PG.query("SELECT string_agg(action || ':' || by, ',' ORDER BY change_id) FROM hub_changes "
                      "WHERE hub_id = %d" % hid)
        self.assertEqual(by, "add:cli-user,change:cli-user,disable:cli-user,enable:cli-user")
        rc, _, err = cli(self.t, "hubs", "add", "--country", "FR")
        self.assertEqual(rc, 2)
        self.assertIn("--name is required", err)
        rc, _, err = cli(self.t, "hubs", "add", "--name", "X", "--country", "fr", "--lat", "50",
                         "--lon", "1", "--kind", "coast", "--radius", "5")
        self.assertEqual(rc, 2)
        self.assertIn("hub.country", err)
        rc, _, err = cli(self.t, "hubs", "add", "--name", "Calais", "--country", "FR", "--lat", "50",
                         "--lon", "1", "--kind", "coast", "--radius", "5")
        self.assertEqual(rc, 1)
        self.assertIn("already exists", err)
        rc, _, err = cli(self.t, "hubs", "set", "999999", "--version", "1")
        self.assertEqual(rc, 1)
        self.assertEqual(cli(self.t, "hubs", "set", str(hid), "--radius", "3")[0], 2)
        self.assertEqual(cli(self.t, "hubs", "add", "--lat", "abc")[0], 2)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
