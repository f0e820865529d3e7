#!/usr/bin/python3
"""tidewatch-query end to end: a real daemon on a throwaway PostgreSQL whose
provenance tables are filled by the superuser as tidewatch-provenance would
(query_fixture.py), python3-grpcio as the client.

Each ProvenanceService method answers from those tables; bad arguments are
INVALID_ARGUMENT naming the field; unknown keys NOT_FOUND; pages go through
every result once; forged page tokens are refused; partial serials get
ranked candidates; every call, failed ones included, leaves one audit row
(the rows of calls that end together go in one INSERT, each once; a failed
INSERT answers every OK call in it UNAVAILABLE; a full audit queue refuses);
a query held up by a lock ends DEADLINE_EXCEEDED at the statement timeout
while other calls are answered; the daemon's login can change nothing but
add audit rows.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py), TW_PG_BINDIR. Prints "N passed, M failed"."""

import json
import os
import shutil
import signal
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
from tidewatch.v1 import provenance_pb2 as pv  # noqa: E402

import query_fixture  # noqa: E402

SERVICE = "tidewatch.v1.ProvenanceService"
INVALID = grpc.StatusCode.INVALID_ARGUMENT








class Cluster(PgCluster):
    """A private PostgreSQL cluster (unix socket only)."""

    def __init__(self):
        PgCluster.__init__(self, "tw-query-pg-")
        self.psql("postgres", "CREATE DATABASE tidewatch")
        self.url = "host=%s dbname=tidewatch user=postgres" % self.dir

    def psql(self, db, sql, user="postgres", check=True):
        out = self.run_psql(db, sql, user)
        if check and out.returncode != 0:
            raise AssertionError("psql %s: %s" % (sql, out.stderr))
        return out if not check else out.stdout.strip()


class Daemon:
    def __init__(self, url, extra=(), wait=True, metrics=False):
        self.port = free_port()
        self.metrics_port = free_port() if metrics else 0
        self.log = open(os.path.join(tempfile.gettempdir(), "tw-query-test-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-query"), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port if metrics else "",
             "--database-url", url, "--log-level", "info"] + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        grpc.channel_ready_future(self.channel).result(timeout=15)

        def method(name, req, resp):
            return self.channel.unary_unary("/%s/%s" % (SERVICE, name),
                                            request_serializer=req.SerializeToString,
                                            response_deserializer=resp.FromString)
        self.get_chain = method("GetChain", pv.GetChainRequest, pv.GetChainResponse)
        self.search = method("SearchItems", pv.SearchItemsRequest, pv.SearchItemsResponse)
        self.events = method("ListEvents", pv.ListEventsRequest, pv.ListEventsResponse)
        self.get_party = method("GetParty", pv.GetPartyRequest, pv.GetPartyResponse)
        self.trace_back = method("TraceBack", pv.TraceBackRequest, pv.TraceResponse)
        self.trace_forward = method("TraceForward", pv.TraceForwardRequest, pv.TraceResponse)
        self.raw_chain = self.channel.unary_unary("/%s/GetChain" % SERVICE,
                                                  request_serializer=lambda b: b,
                                                  response_deserializer=pv.GetChainResponse.FromString)
        self.health = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                               request_serializer=lambda b: b,
                                               response_deserializer=lambda b: b)
        end = time.monotonic() + 20
        while wait and not self.serving():
            if time.monotonic() > end:
                raise AssertionError("query never became SERVING:\n" + self.log_text())
            time.sleep(0.1)

    def metric(self, name):
        """The value of metric `name` (the daemon listens for metrics when
        started with --metrics-listen)."""
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
            time.sleep(0.05)

    def serving(self):
        name = SERVICE.encode()
        return self.health(b"\x0a" + bytes([len(name)]) + name, timeout=5) == b"\x08\x01"

    def log_text(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        text = self.log_text()
        self.log.close()
        os.unlink(self.log.name)
        return rc, text


class AuditLock:
    """Holds a SHARE lock on query_audit (INSERTs wait) in a psql session
    until release()."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-t", "-A", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdin.write("BEGIN; LOCK TABLE query_audit IN SHARE MODE; SELECT 'locked';\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "locked":
            self.proc.kill()
            raise AssertionError("query_audit was never locked")

    def release(self):
        if self.proc.poll() is None:
            self.proc.communicate("COMMIT;\n", timeout=20)


def ts(text):
    t = timestamp_pb2.Timestamp()
    t.FromJsonString(text)
    return t


class Query(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = Cluster()
        out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", cls.pg.url],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("migrate: " + out.stderr)
        fixture = os.path.join(cls.pg.dir, "fixture.sql")
        with open(fixture, "w") as f:
            f.write(query_fixture.build())
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", fixture, cls.pg.url],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError("fixture: " + out.stderr)
        # The daemon's login: a member of tidewatch_query only.
        cls.pg.query("CREATE ROLE query_login LOGIN IN ROLE tidewatch_query")
        cls.daemon = Daemon("host=%s dbname=tidewatch user=query_login" % cls.pg.dir,
                            ["--statement-timeout", "2s"])

    @classmethod
    def tearDownClass(cls):
        try:
            rc, log = cls.daemon.stop()
            if rc != 0:
                print(log, file=sys.stderr)
            assert rc == 0, "query must exit 0 on SIGTERM"
        finally:
            cls.pg.destroy()

    def fails(self, fn, req, code, field=None):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(req, timeout=10)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        if field:
            self.assertTrue(cm.exception.details().startswith(field),
                            "%r does not name %s" % (cm.exception.details(), field))
        return cm.exception.details()

    def audit_rows(self, method, after_id):
        rows = self.pg.query("SELECT status, result_count, arguments::text, peer, "
                             "principal IS NULL FROM query_audit WHERE id > %d AND method = "
                             "'/%s/%s' ORDER BY id" % (after_id, SERVICE, method))
        return [r.split("|") for r in rows.splitlines()] if rows else []

    def hold_lock(self, seconds):
        """Lock prov_items for `seconds` in another session; returns once held."""
        locker = subprocess.Popen(["psql", "-X", "-q", self.pg.url, "-c",
                                   "BEGIN; LOCK TABLE prov_items IN ACCESS EXCLUSIVE MODE; "
                                   "SELECT pg_sleep(%s); COMMIT;" % seconds],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 10
        while self.pg.query("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
                            "l.relation WHERE c.relname = 'prov_items' AND l.mode = "
                            "'AccessExclusiveLock' AND l.granted") != "1":
            if time.monotonic() > end:
                locker.kill()
                raise AssertionError("the lock was never taken")
            time.sleep(0.05)
        return locker

    def last_audit_id(self):
        return int(self.pg.query("SELECT coalesce(max(id), 0) FROM query_audit"))

    # ---- GetChain -------------------------------------------------------------

    def test_chain_by_serial_as_typed(self):
        resp = self.daemon.get_chain(pv.GetChainRequest(serial="6e5-x 1O16523", maker="yamaha"),
                                     timeout=10)
        self.assertEqual(resp.normalized, "6E5X1016523")
        self.assertEqual(len(resp.chains), 1)
        c = resp.chains[0]
        self.assertEqual(c.item.id, 1024)
        self.assertEqual(c.item.kind, pv.ITEM_KIND_ENGINE)
        # every hop of every merged item, in the order things happened
        self.assertEqual([h.event_id for h in c.hops], [5, 1, 2, 3])
        self.assertEqual([h.kind for h in c.hops], [pv.HOP_KIND_SALE, pv.HOP_KIND_SALE,
                                                    pv.HOP_KIND_SHIPMENT, pv.HOP_KIND_SEIZURE])
        self.assertEqual(c.hops[1].to.name, "A. Karimi")
        self.assertEqual(c.hops[1].to.role, "buyer")
        self.assertEqual(c.hops[2].carrier.name, "Trans Europa BV")
        self.assertEqual(c.hops[2].origin.name, "Leer")
        self.assertEqual(c.hops[2].consignment_ref, "TE-88412")
        self.assertEqual(c.hops[3].condition, "used")
        self.assertTrue(c.hops[3].launch)
        self.assertEqual(c.hops[1].sources[0].source, "retailer.de.boote-nord")
        self.assertEqual(c.hops[1].time.ToJsonString(), "2026-10-02T14:10:00Z")
        # keys with every reading, and the merge with its evidence
        keys = {k.key: k for k in c.item.keys}
        self.assertEqual(set(keys), {"6E5X1016523", "6E5X1016532"})
        self.assertEqual(sorted(r.text for r in keys["6E5X1016523"].readings),
                         ["6E5-X-1016523", "6E5X1016523", "6E5X1O16523"])
        stamp = [r for r in keys["6E5X1016532"].readings if r.event_id == 3][0]
        self.assertEqual((stamp.method, stamp.source), ("stamp", "police.fr.pas-de-calais"))
        self.assertEqual([(m.item_id, m.event_id, m.undone) for m in c.item.merges],
                         [(5121, 3, False)])
        # last custodian and place: the seizure
        self.assertEqual(c.last_custodian.name, "Gendarmerie nationale")
        self.assertEqual(c.last_place.name, "Gravelines")
        self.assertFalse(c.truncated)
        # related: the other engine of the same purchase, the buyer's other purchase
        rel = {(r.relation, r.item_id) for r in c.related}
        self.assertIn(("same_purchase", 1025), rel)
        self.assertIn(("same_buyer_cluster", 4096), rel)
        self.assertNotIn(1024, {r.item_id for r in c.related})
        buyer = [r for r in c.related if r.relation == "same_buyer_cluster"][0]
        self.assertTrue(buyer.detail.startswith("bought by "), buyer.detail)

    def test_chain_by_merged_key_item_id_and_hull(self):
        by_stamp = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016532"), timeout=10)
        self.assertEqual([c.item.id for c in by_stamp.chains], [1024], "the merged item's root")
        by_id = self.daemon.get_chain(pv.GetChainRequest(item_id=5121), timeout=10)
        self.assertEqual([c.item.id for c in by_id.chains], [1024])
        boat = self.daemon.get_chain(pv.GetChainRequest(hull_number="gb-abc00042-a3-99"), timeout=10)
        self.assertEqual(boat.normalized, "GBABC00042A399")
        self.assertEqual([c.item.id for c in boat.chains], [3074])
        self.assertEqual(boat.chains[0].item.kind, pv.ITEM_KIND_BOAT)
        self.assertEqual([h.event_id for h in boat.chains[0].hops], [3])

    def test_chain_parties_beyond_the_cluster_cap_keep_their_names(self):
        # With one party clustered, the hops' other parties are read on their
        # own (a third round trip): the hops show the same parties as always.
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        d = Daemon(url, ["--cluster-parties", "1"])
        try:
            req = pv.GetChainRequest(serial="6E5X1016523")
            full = self.daemon.get_chain(req, timeout=10).chains[0]
            capped = d.get_chain(req, timeout=10).chains[0]
        finally:
            self.assertEqual(d.stop()[0], 0)

        def parties(c):
            return [[(p.id, p.name, p.kind, p.country, p.place, p.role) if p.id else None
                     for p in (h.__getattribute__("from"), h.to, h.carrier)] for h in c.hops]
        self.assertEqual(parties(capped), parties(full))
        self.assertEqual(parties(full)[1][1][1], "A. Karimi")
        self.assertGreater(sum(1 for hop in parties(full) for p in hop if p), 2)

    def test_chain_max_hops_truncates_keeping_the_earliest(self):
        resp = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=2),
                                     timeout=10)
        c = resp.chains[0]
        self.assertTrue(c.truncated)
        self.assertEqual([h.event_id for h in c.hops], [5, 1])
        one = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=1),
                                    timeout=10).chains[0]
        self.assertEqual([h.event_id for h in one.hops], [5])
        self.assertEqual(sum(len(k.readings) for k in one.item.keys), 5,
                         "every reading, whatever max_hops")

    def test_partial_reading_gets_ranked_candidates(self):
        resp = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X10?65?3", maker="Yamaha"),
                                     timeout=10)
        self.assertEqual(resp.normalized, "6E5X10?65?3")
        self.assertEqual([c.item.id for c in resp.chains], [3073], "the partial item itself")
        self.assertTrue(resp.chains[0].item.partial)
        self.assertEqual([c.item.id for c in resp.candidates], [1024])
        cand = resp.candidates[0]
        self.assertTrue(cand.probable, "the only plausible one, well ahead")
        self.assertGreaterEqual(cand.score, 0.6)
        self.assertIn("characters agree", cand.reason)
        self.assertEqual(cand.reading, "6E5X10?65?3")

    def test_partial_reading_without_item_two_candidates(self):
        resp = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X101652?"), timeout=10)
        self.assertEqual(len(resp.chains), 0)
        self.assertEqual(sorted(c.item.id for c in resp.candidates), [1024, 1025])
        self.assertFalse(any(c.probable for c in resp.candidates), "two plausible: none probable")

    def test_chain_not_found(self):
        d = self.fails(self.daemon.get_chain, pv.GetChainRequest(serial="6E5X9999999"),
                       grpc.StatusCode.NOT_FOUND, "serial")
        self.assertIn("6E5X9999999", d)
        self.fails(self.daemon.get_chain, pv.GetChainRequest(item_id=77), grpc.StatusCode.NOT_FOUND,
                   "item_id")

    def test_chain_invalid_arguments_name_the_field(self):
        gc = self.daemon.get_chain
        self.fails(gc, pv.GetChainRequest(), INVALID, "serial, hull_number, item_id")
        self.fails(gc, pv.GetChainRequest(serial="6E5X1016523", item_id=1024), INVALID,
                   "serial, hull_number, item_id")
        self.fails(gc, pv.GetChainRequest(serial="A" * 200), INVALID, "serial")
        self.fails(gc, pv.GetChainRequest(serial="6E5#1016523"), INVALID, "serial")
        self.fails(gc, pv.GetChainRequest(serial="6E5X1016523", max_hops=-1), INVALID, "max_hops")
        self.fails(gc, pv.GetChainRequest(hull_number="GB-ABC00042-A3-99!"), INVALID, "hull_number")
        self.fails(gc, pv.GetChainRequest(item_id=-5), INVALID, "item_id")
        self.fails(gc, pv.GetChainRequest(serial="6E5X10?65?3", max_candidates=-1), INVALID,
                   "max_candidates")
        self.fails(gc, pv.GetChainRequest(serial="6E5X1016523", maker="x" * 300), INVALID, "maker")
        # bytes that are no GetChainRequest
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.raw_chain(b"\x0a\xff\xff\xff", timeout=10)
        self.assertEqual(cm.exception.code(), INVALID)

    # ---- SearchItems ----------------------------------------------------------------

    def test_search_wildcards_and_fuzzy(self):
        r = self.daemon.search(pv.SearchItemsRequest(pattern="6e5x10?652*"), timeout=10)
        self.assertEqual([m.item.id for m in r.items][:2], [1024, 1025])
        self.assertEqual({m.matched_key for m in r.items}, {"6E5X1016523", "6E5X1016524"})
        self.assertTrue(all(0.5 <= m.score <= 1 for m in r.items))
        exact = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X1016523"), timeout=10)
        self.assertEqual(exact.items[0].item.id, 1024)
        self.assertEqual(exact.items[0].score, 1.0)
        ocr = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X1O16523"), timeout=10)
        self.assertEqual((ocr.items[0].item.id, ocr.items[0].score), (1024, 0.9))
        self.assertIn("look-alikes", ocr.items[0].reason)
        self.assertEqual(exact.items[0].last_place.name, "Gravelines")
        scores = [m.score for m in exact.items]
        self.assertEqual(scores, sorted(scores, reverse=True), "ranked by score")
        self.assertGreater(len(exact.items), 1, "trigram neighbours too")
        # a LIKE metacharacter is never a wildcard: '_' reads as one unknown character
        self.fails(self.daemon.search, pv.SearchItemsRequest(pattern="6E5X%"), INVALID, "pattern")

    def test_search_filters(self):
        boats = self.daemon.search(pv.SearchItemsRequest(pattern="GB*", kind=pv.ITEM_KIND_BOAT),
                                   timeout=10)
        self.assertEqual([m.item.id for m in boats.items], [3074])
        engines = self.daemon.search(pv.SearchItemsRequest(pattern="GB*", kind=pv.ITEM_KIND_ENGINE),
                                     timeout=10)
        self.assertEqual(len(engines.items), 0)
        fr = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", country="FR",
                                                      page_size=100), timeout=10)
        self.assertEqual(len(fr.items), 30, "the even ones were sold in Dunkerque")
        aug = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", page_size=100,
                                                       seen_after=ts("2026-08-01T00:00:00Z"),
                                                       seen_before=ts("2026-08-02T00:00:00Z")),
                                 timeout=10)
        self.assertEqual(sorted(m.matched_key for m in aug.items),
                         ["6E5X3000000", "6E5X3000028", "6E5X3000056"])
        mk = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", maker="Mercury"),
                                timeout=10)
        self.assertEqual(len(mk.items), 0)

    def test_search_pages_without_loss_or_duplicates(self):
        seen, token, pages = [], "", 0
        while True:
            r = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", page_size=7,
                                                         page_token=token), timeout=10)
            self.assertLessEqual(len(r.items), 7)
            seen += [m.item.id for m in r.items]
            pages += 1
            token = r.next_page_token
            if not token:
                break
            self.assertLess(pages, 20)
        self.assertEqual(pages, 9)
        self.assertEqual(len(seen), 60)
        self.assertEqual(len(set(seen)), 60, "no duplicates")
        self.assertEqual(set(seen), {(200 + n) * 1024 for n in range(60)}, "no loss")

    def test_search_invalid_and_forged_tokens(self):
        s = self.daemon.search
        self.fails(s, pv.SearchItemsRequest(), INVALID, "pattern")
        self.fails(s, pv.SearchItemsRequest(pattern="*"), INVALID, "pattern")
        self.fails(s, pv.SearchItemsRequest(pattern="6E5*", country="fr"), INVALID, "country")
        self.fails(s, pv.SearchItemsRequest(pattern="6E5*", page_size=-1), INVALID, "page_size")
        self.fails(s, pv.SearchItemsRequest(pattern="6E5*", seen_after=ts("2026-09-01T00:00:00Z"),
                                            seen_before=ts("2026-08-01T00:00:00Z")),
                   INVALID, "seen_before")
        first = s(pv.SearchItemsRequest(pattern="6E5X30000*", page_size=5), timeout=10)
        tok = first.next_page_token
        self.assertTrue(tok)
        forged = [
            "' OR 1=1; --",
            tok[:-2] + ("00" if tok[-2:] != "00" else "11"),
            tok[:10],
            "zz" * 40,
            tok.upper(),
        ]
        for bad in forged:
            self.fails(s, pv.SearchItemsRequest(pattern="6E5X30000*", page_size=5, page_token=bad),
                       INVALID, "page_token")
        # mutated tokens (bounded: 300 seeded mutations): every one refused, none answered
        # or failing otherwise
        import random
        rnd = random.Random(7)
        alphabet = "0123456789abcdefABCDEF|-'%_\\\x00zé"
        for i in range(300):
            t = list(tok)
            for _ in range(rnd.randint(1, 4)):
                op = rnd.randrange(3)
                pos = rnd.randrange(len(t) + 1)
                if op == 0 and t:
                    t[min(pos, len(t) - 1)] = rnd.choice(alphabet)
                elif op == 1:
                    t.insert(pos, rnd.choice(alphabet))
                elif t:
                    del t[min(pos, len(t) - 1)]
            bad = "".join(t)
            if bad == tok:
                continue
            self.fails(s, pv.SearchItemsRequest(pattern="6E5X30000*", page_size=5, page_token=bad),
                       INVALID, "page_token")
        # a genuine token with other filters is refused too
        self.fails(s, pv.SearchItemsRequest(pattern="6E5X1*", page_size=5, page_token=tok),
                   INVALID, "page_token")

    # ---- ListEvents ---------------------------------------------------------------

    def test_list_events_pages_filters_and_records(self):
        ids, token = [], ""
        while True:
            r = self.daemon.events(pv.ListEventsRequest(page_size=13, page_token=token), timeout=10)
            ids += [e.id for e in r.events]
            token = r.next_page_token
            if not token:
                break
        total = int(self.pg.query("SELECT count(*) FROM events"))
        self.assertEqual(len(ids), total)
        self.assertEqual(ids, sorted(set(ids)), "log order, no duplicates")
        seiz = self.daemon.events(pv.ListEventsRequest(kind="seizure"), timeout=10)
        self.assertEqual([e.id for e in seiz.events], [3])
        e = seiz.events[0]
        self.assertEqual((e.source, e.source_ref, e.kind), ("police.fr.pas-de-calais", "PV-1",
                                                            "seizure"))
        self.assertEqual(e.record.seizure.case_ref, "2026/0412", "the Record decoded")
        self.assertIn("6E5X10?65?3", e.serial_keys)
        self.assertEqual(list(e.hull_keys), ["GBABC00042A399"])
        self.assertEqual(e.occurred.ToJsonString(), "2026-11-20T05:40:00Z")
        rng = self.daemon.events(pv.ListEventsRequest(after=ts("2026-10-01T00:00:00Z"),
                                                      before=ts("2026-11-13T00:00:00Z"),
                                                      source="retailer.de.boote-nord"),
                                 timeout=10)
        self.assertEqual([e.id for e in rng.events], [1, 4])
        self.fails(self.daemon.events, pv.ListEventsRequest(kind="theft"), INVALID, "kind")
        self.fails(self.daemon.events, pv.ListEventsRequest(page_token="abc"), INVALID, "page_token")
        self.fails(self.daemon.events, pv.ListEventsRequest(page_size=-3), INVALID, "page_size")

    # ---- GetParty ----------------------------------------------------------------------

    def test_party_cluster_links_too_common_and_hops(self):
        r = self.daemon.get_party(pv.GetPartyRequest(party_id=1025), timeout=10)
        self.assertEqual((r.party.id, r.party.name, r.party.role), (1025, "A. Karimi", "buyer"))
        self.assertEqual(sorted(p.id for p in r.cluster), [1025, 2048, 4097])
        self.assertEqual(len(r.links), 2, "a spanning tree: n - 1 links")
        self.assertEqual({(l.kind, l.value) for l in r.links}, {("phone", "+4915123456789")})
        linked = {l.party_a for l in r.links} | {l.party_b for l in r.links}
        self.assertEqual(linked, {1025, 2048, 4097})
        self.assertEqual(len(r.too_common), 1, r.too_common)
        self.assertTrue(r.too_common[0].startswith("phone +33999999999"), r.too_common)
        self.assertEqual([(h.event_id, h.item_id) for h in r.hops],
                         [(1, 1024), (1, 1025), (1, 0), (4, 4096), (4, 4097), (2, 1024)])
        p4097 = [p for p in r.cluster if p.id == 4097][0]
        self.assertIn("a.karimi@example.org", [i.value for i in p4097.identifiers])
        self.assertFalse(r.truncated)
        # a name and an address tie the consignee to a later seller
        r = self.daemon.get_party(pv.GetPartyRequest(party_id=2050), timeout=10)
        self.assertEqual(sorted(p.id for p in r.cluster), [2050, 6144])
        self.assertEqual([l.kind for l in r.links], ["name_address"])
        self.fails(self.daemon.get_party, pv.GetPartyRequest(), INVALID, "party_id")
        self.fails(self.daemon.get_party, pv.GetPartyRequest(party_id=1025, max_hops=-2), INVALID,
                   "max_hops")
        self.fails(self.daemon.get_party, pv.GetPartyRequest(party_id=999999),
                   grpc.StatusCode.NOT_FOUND, "party_id")
        limited = self.daemon.get_party(pv.GetPartyRequest(party_id=1025, max_hops=2), timeout=10)
        self.assertEqual(len(limited.hops), 2)
        self.assertTrue(limited.truncated)

    # ---- traces ---------------------------------------------------------------------------

    def test_trace_back_from_a_seizure(self):
        r = self.daemon.trace_back(pv.TraceBackRequest(event_id=3), timeout=10)
        by = {t.item.id: t for t in r.items}
        self.assertEqual(sorted(by), [1024, 3073, 3074])
        self.assertEqual([h.event_id for h in by[1024].hops], [5, 1, 2, 3])
        self.assertEqual([h.event_id for h in by[3074].hops], [3])
        same = self.daemon.trace_back(pv.TraceBackRequest(source="police.fr.pas-de-calais",
                                                          source_ref="PV-1"), timeout=10)
        self.assertEqual(sorted(t.item.id for t in same.items), [1024, 3073, 3074])
        # from the shipment: only what came before it
        r = self.daemon.trace_back(pv.TraceBackRequest(event_id=2), timeout=10)
        self.assertEqual([h.event_id for h in r.items[0].hops], [5, 1, 2])
        # the purchase with a bulk line
        r = self.daemon.trace_back(pv.TraceBackRequest(event_id=1), timeout=10)
        self.assertEqual([(h.quantity, h.item_id) for h in r.unidentified], [(10, 0)])
        self.fails(self.daemon.trace_back, pv.TraceBackRequest(), INVALID,
                   "event_id, source, source_ref")
        self.fails(self.daemon.trace_back, pv.TraceBackRequest(source="x"), INVALID, "source_ref")
        self.fails(self.daemon.trace_back, pv.TraceBackRequest(event_id=3, max_items=-1), INVALID,
                   "max_items")
        self.fails(self.daemon.trace_back, pv.TraceBackRequest(event_id=424242),
                   grpc.StatusCode.NOT_FOUND, "event_id")

    def test_trace_forward_from_purchase_and_party(self):
        r = self.daemon.trace_forward(pv.TraceForwardRequest(event_id=1), timeout=10)
        depth = {t.item.id: t.depth for t in r.items}
        self.assertEqual(depth, {1024: 0, 1025: 0, 6144: 1},
                         "the consignee (same name and address) passed on another engine")
        hops = {t.item.id: [h.event_id for h in t.hops] for t in r.items}
        self.assertEqual(hops[1024], [1, 2, 3], "from the purchase on")
        self.assertEqual(hops[6144], [6])
        self.assertEqual([h.quantity for h in r.unidentified], [10], "10 boats without hulls")
        shallow = self.daemon.trace_forward(pv.TraceForwardRequest(event_id=1, max_depth=1),
                                            timeout=10)
        self.assertIn(6144, [t.item.id for t in shallow.items])
        r = self.daemon.trace_forward(pv.TraceForwardRequest(party_id=1025), timeout=10)
        depth = {t.item.id: t.depth for t in r.items}
        self.assertEqual(depth, {1024: 0, 1025: 0, 4096: 0, 4097: 0, 6144: 1},
                         "the buyer's whole cluster received four engines")
        one = self.daemon.trace_forward(pv.TraceForwardRequest(party_id=1025, max_items=2),
                                        timeout=10)
        self.assertEqual(len(one.items), 2)
        self.assertTrue(one.truncated)
        self.fails(self.daemon.trace_forward, pv.TraceForwardRequest(), INVALID,
                   "party_id, event_id")
        self.fails(self.daemon.trace_forward, pv.TraceForwardRequest(party_id=1025, event_id=1),
                   INVALID, "party_id, event_id")
        self.fails(self.daemon.trace_forward, pv.TraceForwardRequest(event_id=1, max_depth=-1),
                   INVALID, "max_depth")
        self.fails(self.daemon.trace_forward, pv.TraceForwardRequest(party_id=5),
                   grpc.StatusCode.NOT_FOUND, "party_id")

    # ---- audit, privileges, timeouts ------------------------------------------------

    def test_every_call_is_audited(self):
        start = self.last_audit_id()
        self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=10)
        self.fails(self.daemon.get_chain, pv.GetChainRequest(max_hops=-1), INVALID)
        self.fails(self.daemon.get_chain, pv.GetChainRequest(serial="6E5X9999999"),
                   grpc.StatusCode.NOT_FOUND)
        rows = self.audit_rows("GetChain", start)
        self.assertEqual([r[0] for r in rows], ["0", "3", "5"], rows)
        self.assertEqual(rows[0][1], "1", "one chain answered")
        self.assertEqual(json.loads(rows[0][2]), {"serial": "6E5X1016523"})
        self.assertEqual(json.loads(rows[1][2]), {"max_hops": -1})
        # a huge argument is refused, and audited by its first bytes and its length
        self.fails(self.daemon.get_chain, pv.GetChainRequest(serial="€" * 40000), INVALID, "serial")
        big = json.loads(self.audit_rows("GetChain", start)[-1][2])
        self.assertEqual(big["serial"]["bytes"], 120000)
        self.assertLessEqual(len(big["serial"]["prefix"].encode()), 1024)
        self.assertTrue(rows[0][3].startswith("127.0.0.1:"))
        self.assertEqual(rows[0][4], "t", "principal is NULL until auth exists")
        self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", page_size=4), timeout=10)
        self.daemon.events(pv.ListEventsRequest(page_size=2), timeout=10)
        self.assertEqual([r[:2] for r in self.audit_rows("SearchItems", start)], [["0", "4"]])
        self.assertEqual([r[:2] for r in self.audit_rows("ListEvents", start)], [["0", "2"]])
        login = self.pg.query("SELECT DISTINCT db_login FROM query_audit WHERE id > %d" % start)
        self.assertEqual(login, "query_login")

    def test_query_login_cannot_change_anything(self):
        for sql in ["UPDATE query_audit SET status = 0",
                    "DELETE FROM query_audit",
                    "INSERT INTO query_audit (id, peer, method, arguments, status) "
                    "OVERRIDING SYSTEM VALUE VALUES (1, 'x', 'x', '{}', 0)",
                    "UPDATE prov_items SET maker = 'x'",
                    "DELETE FROM prov_hops",
                    "INSERT INTO prov_parties (party_id, event_id, role, kind) VALUES (9, 9, 'x', 1)",
                    "TRUNCATE prov_merges",
                    "INSERT INTO events (source, source_ref, kind, payload) VALUES ('a', 'b', 1, '')",
                    "DELETE FROM events",
                    "UPDATE consumer_cursors SET last_id = 0"]:
            out = self.pg.psql("tidewatch", sql, user="query_login", check=False)
            self.assertNotEqual(out.returncode, 0, "query_login may not: " + sql)
            self.assertIn("permission denied", out.stderr, sql)
        # what it may do: read, and add an audit row naming only its columns
        self.assertEqual(self.pg.psql("tidewatch", "SELECT count(*) > 0 FROM prov_hops",
                                      user="query_login"), "t")
        # and nobody rewrites the audit, not even the superuser
        out = self.pg.psql("tidewatch", "DELETE FROM query_audit", check=False)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("append-only", out.stderr)

    def test_slow_query_times_out_without_blocking_others(self):
        # Hold a lock that GetChain's statements wait for, longer than the
        # daemon's 2 s statement timeout.
        locker = self.hold_lock(6)
        try:
            start = self.last_audit_id()
            result = {}

            def slow():
                try:
                    self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=30)
                    result["code"] = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    result["code"], result["details"] = e.code(), e.details()
                result["done"] = time.monotonic()
            t = threading.Thread(target=slow)
            t.start()
            time.sleep(0.3)
            # meanwhile another call is answered (it reads events, not prov_items)
            r = self.daemon.events(pv.ListEventsRequest(kind="seizure"), timeout=5)
            events_done = time.monotonic()
            self.assertEqual([e.id for e in r.events], [3])
            t.join(20)
            self.assertLess(events_done, result["done"], "answered while GetChain waited")
            self.assertEqual(result.get("code"), grpc.StatusCode.DEADLINE_EXCEEDED, result)
            self.assertIn("statement timeout", result["details"])
            self.assertEqual([r[0] for r in self.audit_rows("GetChain", start)], ["4"])
        finally:
            locker.wait(20)

    def test_concurrent_calls_all_answered_and_audited(self):
        start = self.last_audit_id()
        results, errors = [], []

        def call(i):
            try:
                if i % 3 == 0:
                    r = self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=20)
                    results.append(("chain", [h.event_id for h in r.chains[0].hops]))
                elif i % 3 == 1:
                    r = self.daemon.search(pv.SearchItemsRequest(pattern="6E5X30000*", page_size=3),
                                           timeout=20)
                    results.append(("search", len(r.items)))
                else:
                    r = self.daemon.get_party(pv.GetPartyRequest(party_id=1025), timeout=20)
                    results.append(("party", len(r.cluster)))
            except grpc.RpcError as e:
                errors.append((e.code(), e.details()))
        threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 24)
        for kind, value in results:
            self.assertEqual(value, {"chain": [5, 1, 2, 3], "search": 3, "party": 3}[kind])
        n = int(self.pg.query("SELECT count(*) FROM query_audit WHERE id > %d" % start))
        self.assertEqual(n, 24, "one audit row per call")

    # ---- audit rows of concurrent calls ----------------------------------------------

    def calls_in_threads(self, daemon, hops):
        """GetChain with max_hops h for each h, each in its own thread;
        returns (threads, results: h -> status code)."""
        results = {}

        def call(h):
            try:
                daemon.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=h), timeout=30)
                results[h] = (grpc.StatusCode.OK, "")
            except grpc.RpcError as e:
                results[h] = (e.code(), e.details())
        threads = [threading.Thread(target=call, args=(h,)) for h in hops]
        for t in threads:
            t.start()
        return threads, results

    def audited_hops(self, start):
        """(max_hops, status, transaction) of the audit rows after id start."""
        rows = self.pg.query("SELECT arguments->>'max_hops', status, xmin FROM query_audit "
                             "WHERE id > %d ORDER BY id" % start)
        return [tuple(r.split("|")) for r in rows.splitlines()] if rows else []

    def test_audit_rows_of_concurrent_calls_share_inserts_each_once(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        d = Daemon(url, ["--audit-batch", "8"], metrics=True)
        lock = None
        try:
            start = self.last_audit_id()
            lock = AuditLock(self.pg.url)
            # the first call's row is in flight, held up by the lock ...
            first, res = self.calls_in_threads(d, [1])
            d.wait_metric("tidewatch_query_audit_in_flight_calls", 1)
            # ... while 20 more calls end and wait for theirs
            rest, res2 = self.calls_in_threads(d, range(2, 22))
            d.wait_metric("tidewatch_query_audit_queued_calls", 20)
            self.assertEqual(res, {}, "no answer before its audit row is written")
            self.assertEqual(res2, {}, "no answer before its audit row is written")
            lock.release()
            for t in first + rest:
                t.join(60)
            res.update(res2)
            self.assertEqual(sorted(res), list(range(1, 22)))
            self.assertEqual({c for c, _ in res.values()}, {grpc.StatusCode.OK})
            rows = self.audited_hops(start)
            # one row per call, each once
            self.assertEqual(sorted(int(h) for h, _, _ in rows), list(range(1, 22)))
            self.assertEqual({st for _, st, _ in rows}, {"0"})
            # the first alone, then the 20 others in INSERTs of at most 8 (audit_batch)
            per_xact = {}
            for _, _, x in rows:
                per_xact[x] = per_xact.get(x, 0) + 1
            self.assertEqual(rows[0][0], "1")
            self.assertEqual(sorted(per_xact.values()), [1, 4, 8, 8])
            self.assertEqual(d.metric("tidewatch_query_audit_queued_calls"), 0)
        finally:
            if lock:
                lock.release()
            self.assertEqual(d.stop()[0], 0)

    def test_failed_audit_insert_answers_every_call_in_it_unavailable(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        d = Daemon(url, [], metrics=True)
        # an audit row for max_hops 99 makes its INSERT fail (the superuser's trigger)
        self.pg.query("CREATE FUNCTION test_audit_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$BEGIN IF NEW.arguments->>'max_hops' = '99' THEN RAISE EXCEPTION "
                      "'refused by the test'; END IF; RETURN NEW; END$$; "
                      "CREATE TRIGGER test_audit_refuse BEFORE INSERT ON query_audit FOR EACH ROW "
                      "EXECUTE FUNCTION test_audit_refuse()")
        lock = None
        try:
            start = self.last_audit_id()
            lock = AuditLock(self.pg.url)
            first, res = self.calls_in_threads(d, [1])
            d.wait_metric("tidewatch_query_audit_in_flight_calls", 1)
            rest, res2 = self.calls_in_threads(d, [2, 3, 4, 5, 99])
            d.wait_metric("tidewatch_query_audit_queued_calls", 5)
            lock.release()
            for t in first + rest:
                t.join(60)
            res.update(res2)
            self.assertEqual(res[1], (grpc.StatusCode.OK, ""))
            for h in [2, 3, 4, 5, 99]:
                self.assertEqual(res[h][0], grpc.StatusCode.UNAVAILABLE, res[h])
                self.assertIn("could not be audited", res[h][1])
            self.assertEqual([r[0] for r in self.audited_hops(start)], ["1"])
        finally:
            if lock:
                lock.release()
            self.pg.query("DROP TRIGGER test_audit_refuse ON query_audit; "
                          "DROP FUNCTION test_audit_refuse()")
        try:
            # the next INSERT is a new one: answered and audited
            start = self.last_audit_id()
            d.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=7), timeout=10)
            self.assertEqual([r[0] for r in self.audited_hops(start)], ["7"])
        finally:
            rc, log = d.stop()
            self.assertEqual(rc, 0)
        self.assertIn("5 audit rows not written", log)

    def test_audit_queue_cap_refuses_calls_past_it(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        d = Daemon(url, ["--audit-queue", "3"], metrics=True)
        lock = None
        try:
            start = self.last_audit_id()
            lock = AuditLock(self.pg.url)
            first, res = self.calls_in_threads(d, [1])
            d.wait_metric("tidewatch_query_audit_in_flight_calls", 1)
            rest, res2 = self.calls_in_threads(d, [2, 3])
            d.wait_metric("tidewatch_query_audit_queued_calls", 2)
            # three calls wait for their rows: the fourth is answered at once, without one
            with self.assertRaises(grpc.RpcError) as cm:
                d.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=4), timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("waiting for their audit rows", cm.exception.details())
            self.assertEqual(d.metric("tidewatch_query_audit_refused_total"), 1)
            self.assertEqual(res, {})
            lock.release()
            for t in first + rest:
                t.join(60)
            res.update(res2)
            self.assertEqual({h: c for h, (c, _) in res.items()},
                             {h: grpc.StatusCode.OK for h in [1, 2, 3]})
            self.assertEqual(sorted(r[0] for r in self.audited_hops(start)), ["1", "2", "3"])
        finally:
            if lock:
                lock.release()
            self.assertEqual(d.stop()[0], 0)

    def test_call_cancelled_while_its_audit_row_waits_is_audited_once(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        d = Daemon(url, [], metrics=True)
        lock = None
        try:
            start = self.last_audit_id()
            lock = AuditLock(self.pg.url)
            first, res = self.calls_in_threads(d, [1])
            d.wait_metric("tidewatch_query_audit_in_flight_calls", 1)
            # its answer is ready, its row queued; the client gives up meanwhile
            with self.assertRaises(grpc.RpcError) as cm:
                d.get_chain(pv.GetChainRequest(serial="6E5X1016523", max_hops=2), timeout=1)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            d.wait_metric("tidewatch_query_audit_queued_calls", 1)
            lock.release()
            for t in first:
                t.join(60)
            self.assertEqual(res, {1: (grpc.StatusCode.OK, "")})
            # both rows, once each; the cancelled call's as it was decided
            d.wait_metric("tidewatch_query_audit_queued_calls", 0)
            d.wait_metric("tidewatch_query_audit_in_flight_calls", 0)
            self.assertEqual(sorted(r[0] for r in self.audited_hops(start)), ["1", "2"])
        finally:
            if lock:
                lock.release()
            self.assertEqual(d.stop()[0], 0)

    def test_health_serving(self):
        self.assertTrue(self.daemon.serving())

    def test_cancelled_and_undecodable_calls_are_audited(self):
        start = self.last_audit_id()
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.raw_chain(b"\x0a\xff\xff\xff", timeout=10)
        self.assertEqual(cm.exception.code(), INVALID)
        locker = self.hold_lock(3)
        try:
            with self.assertRaises(grpc.RpcError) as cm:
                self.daemon.get_chain(pv.GetChainRequest(serial="6E5X1016524"), timeout=0.5)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            locker.wait(20)
        end = time.monotonic() + 10
        while True:
            rows = self.audit_rows("GetChain", start)
            if len(rows) == 2 or time.monotonic() > end:
                break
            time.sleep(0.1)
        self.assertEqual([r[0] for r in rows], ["3", "1"], "INVALID_ARGUMENT, then CANCELLED")
        self.assertEqual(json.loads(rows[0][2]), {"undecodable_bytes": 4})
        self.assertEqual(json.loads(rows[1][2]), {"serial": "6E5X1016524"})
        # a request the transport refuses (over the 4 MiB message limit) is audited too
        mark = self.last_audit_id()
        with self.assertRaises(grpc.RpcError) as cm:
            self.daemon.raw_chain(b"\x0a" + b"\x80" * 5 * 1024 * 1024, timeout=20)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        end = time.monotonic() + 10
        while not self.audit_rows("GetChain", mark) and time.monotonic() < end:
            time.sleep(0.1)
        rows = self.audit_rows("GetChain", mark)
        self.assertEqual([(r[0], json.loads(r[2])) for r in rows],
                         [("1", {"request": "not received"})])

    def test_page_size_capped_by_setting_and_database_down(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        capped = Daemon(url, ["--page-max", "5", "--page-token-key", "replica secret"])
        replica = Daemon(url, ["--page-max", "5", "--page-token-key", "replica secret"])
        try:
            r = capped.events(pv.ListEventsRequest(page_size=1000), timeout=10)
            self.assertEqual(len(r.events), 5)
            self.assertTrue(r.next_page_token)
            # a replica with the same key continues the pages; another key refuses the token
            r2 = replica.events(pv.ListEventsRequest(page_size=1000, page_token=r.next_page_token),
                                timeout=10)
            self.assertEqual(len(r2.events), 5)
            self.assertGreater(r2.events[0].id, r.events[-1].id)
            self.fails(self.daemon.events, pv.ListEventsRequest(page_token=r.next_page_token),
                       INVALID, "page_token")
        finally:
            self.assertEqual(capped.stop()[0], 0)
            self.assertEqual(replica.stop()[0], 0)
        empty = tempfile.mkdtemp(prefix="tw-query-nopg-")
        down = Daemon("host=%s dbname=tidewatch user=query_login connect_timeout=2" % empty,
                      wait=False)
        try:
            time.sleep(0.5)
            self.assertFalse(down.serving(), "NOT_SERVING without a database")
            with self.assertRaises(grpc.RpcError) as cm:
                down.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        finally:
            self.assertEqual(down.stop()[0], 0)
            shutil.rmtree(empty, ignore_errors=True)

    def test_audit_database_separate_from_reads(self):
        url = "host=%s dbname=tidewatch user=query_login" % self.pg.dir
        # audit rows through their own connection (reads could come from a standby)
        sep = Daemon(url, ["--audit-database-url", url + " application_name=audit"])
        try:
            start = self.last_audit_id()
            sep.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=10)
            self.assertEqual([r[0] for r in self.audit_rows("GetChain", start)], ["0"])
        finally:
            self.assertEqual(sep.stop()[0], 0)
        # no audit database: nothing is answered, and health says so
        empty = tempfile.mkdtemp(prefix="tw-query-noaudit-")
        blind = Daemon(url, ["--audit-database-url", "host=%s dbname=tidewatch" % empty],
                       wait=False)
        try:
            time.sleep(0.5)
            self.assertFalse(blind.serving(), "NOT_SERVING while audit rows cannot be written")
            with self.assertRaises(grpc.RpcError) as cm:
                blind.get_chain(pv.GetChainRequest(serial="6E5X1016523"), timeout=10)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("audited", cm.exception.details())
        finally:
            self.assertEqual(blind.stop()[0], 0)
            shutil.rmtree(empty, ignore_errors=True)

    def test_zz_daemon_logged_no_errors(self):
        # every statement prepared, nothing refused (runs last: named zz)
        errors = [line for line in self.daemon.log_text().splitlines() if " error " in line.lower()
                  or "ERROR" in line]
        self.assertEqual(errors, [])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
