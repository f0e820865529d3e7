#!/usr/bin/python3
"""The whole provenance pipeline end to end: records submitted to
tidewatch-ingest, consumed by tidewatch-provenance, served by
tidewatch-query, all real processes on a real PostgreSQL, each daemon logged
in as a user that is only a member of its own group role; python3-grpcio is
the client. The scenario (deploy/demo/chain_scenario.py, which also loads
it into the local stack) is the one investigators describe: an engine
bought for cash in Germany, driven to a depot near the coast, seized on a
beach with its plate and its block stamp disagreeing; the carrier's
manifest arrives after the seizure; a half-ground serial found elsewhere;
two buyers sharing one phone.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR (python modules in
build/py). Prints "N passed, M failed"."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, SRC, PgCluster, free_port  # noqa: E402
sys.path.insert(0, os.path.join(SRC, "deploy", "demo"))
from chain_scenario import records, retraction  # noqa: E402
import grpc  # noqa: E402
from tidewatch.v1 import ingest_pb2 as ing  # noqa: E402
from tidewatch.v1 import provenance_pb2 as pv  # noqa: E402
from tidewatch.v1 import records_pb2 as rec  # noqa: E402
from tidewatch.v1 import worker_pb2 as wk  # noqa: E402

class Proc:
    def __init__(self, name, url, extra=()):
        self.name = name
        self.port, self.metrics_port = free_port(), free_port()
        self.log = open(os.path.join(tempfile.gettempdir(), "tw-e2e-%s-%d.log" % (name, self.port)), "w+")
        self.args = [os.path.join(BIN, "tidewatch-" + name), "--listen", "127.0.0.1:%d" % self.port,
                     "--metrics-listen", "127.0.0.1:%d" % self.metrics_port, "--database-url", url,
                     "--log-level", "info"] + list(extra)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        grpc.channel_ready_future(self.channel).result(timeout=20)

    def unary(self, service, method, req, resp_type, timeout=10):
        call = self.channel.unary_unary("/tidewatch.v1.%s/%s" % (service, method),
                                        request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=resp_type.FromString)
        return call(req, timeout=timeout)

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.log.seek(0)
        text = self.log.read()
        self.log.close()
        os.unlink(self.log.name)
        return rc, text


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster("tw-e2e-pg-")
        cls.pg.query("CREATE DATABASE tidewatch", db="postgres")
        cls.pg.url = "host=%s dbname=tidewatch user=postgres" % cls.pg.dir
        out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", cls.pg.url],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        base = "host=%s dbname=tidewatch user=" % cls.pg.dir
        for login, role in (("e2e_ingest", "tidewatch_ingest"), ("e2e_prov", "tidewatch_provenance"),
                            ("e2e_query", "tidewatch_query")):
            cls.pg.query("CREATE ROLE %s LOGIN IN ROLE %s" % (login, role))
        cls.ingest = Proc("ingest", base + "e2e_ingest")
        cls.prov = Proc("provenance", base + "e2e_prov")
        cls.query = Proc("query", base + "e2e_query")
        cls.submit_all()

    @classmethod
    def tearDownClass(cls):
        for p in (cls.query, cls.prov, cls.ingest):
            rc, text = p.stop()
            if rc != 0 or "runtime error" in text or "AddressSanitizer" in text:
                print("--- %s (exit %d) ---\n%s" % (p.name, rc, text[-4000:]))
        cls.pg.destroy()

    @classmethod
    def submit(cls, *records):
        resp = cls.ingest.unary("IngestService", "Submit", ing.SubmitRequest(records=records),
                                ing.SubmitResponse)
        for r in resp.results:
            assert r.outcome == ing.RecordResult.ACCEPTED, r

    @classmethod
    def caught_up(cls, timeout=30):
        """Wait until provenance's committed cursor is past every event."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            left = cls.pg.query(
                "SELECT count(*) FROM events e, consumer_cursors c WHERE c.consumer = 'provenance' "
                "AND (e.tx, e.id) > (c.last_tx, c.last_id)")
            if left == "0":
                st = cls.prov.unary("WorkerService", "GetStatus", wk.GetWorkerStatusRequest(),
                                    wk.WorkerStatus)
                assert [c.name for c in st.consumers] == ["provenance"], st
                return
            time.sleep(0.1)
        raise AssertionError("provenance did not catch up")

    @classmethod
    def submit_all(cls):
        # Arrival order is not event order: the seizure first, then the sales,
        # then the carrier's manifest; one record per call, as they would come.
        for r in records():
            cls.submit(r)
        cls.caught_up()

    def chain(self, **kw):
        return self.query.unary("ProvenanceService", "GetChain", pv.GetChainRequest(**kw),
                                pv.GetChainResponse)

    def test_chain_in_event_order_whatever_the_arrival(self):
        r = self.chain(serial="6e5 x 1094417")
        self.assertEqual(r.normalized, "6E5X1094417")
        self.assertEqual(len(r.chains), 1)
        c = r.chains[0]
        kinds = [h.kind for h in c.hops if h.status == pv.HOP_STATUS_ACTIVE]
        self.assertEqual(kinds, [pv.HOP_KIND_SALE, pv.HOP_KIND_SHIPMENT, pv.HOP_KIND_SEIZURE])
        times = [h.time.seconds for h in c.hops]
        self.assertEqual(times, sorted(times))
        self.assertEqual(getattr(c.hops[0], "from").name, "Rhein-Boote GmbH")
        self.assertEqual(c.hops[0].to.name, "Jan Peeters")
        # The buyer and, in another record, the shipper are one actor.
        self.assertNotEqual(c.hops[0].to.id, getattr(c.hops[1], "from").id)
        self.assertEqual(c.hops[0].to.cluster, getattr(c.hops[1], "from").cluster)
        self.assertNotIn("custody_gap", [f.kind for f in c.facts])
        self.assertEqual(c.hops[0].payment, rec.PAYMENT_METHOD_CASH)
        self.assertEqual(c.hops[1].consignment_ref, "LEF-2026-0412")
        self.assertEqual(c.hops[1].carrier.name, "Transports Lefort")
        self.assertEqual(c.hops[2].place.name, "Gravelines")
        self.assertTrue(c.hops[2].place.coast_hub, "a seizure place has its nearest coast hub")
        self.assertLess(c.hops[2].place.coast_hub_km, 30)
        self.assertEqual(c.last_custodian.name, "Police aux frontières")
        # Every hop keeps its source and grading, and when we learnt of it.
        self.assertEqual(c.hops[1].sources[0].source, "carrier.fr.transports-lefort")
        self.assertGreater(c.hops[1].sources[0].received.seconds, c.hops[2].sources[0].received.seconds - 1)

    def test_plate_and_stamp_are_one_item_with_two_keys(self):
        c = self.chain(serial="6E5X1094471").chains[0]
        keys = sorted(k.key for k in c.item.keys)
        self.assertEqual(keys, ["6E5X1094417", "6E5X1094471"])
        self.assertIn("readings_disagree", [f.kind for f in c.facts])
        same = self.chain(serial="6E5X1094417").chains[0]
        self.assertEqual(same.item.id, c.item.id)

    def test_partial_reading_gets_candidates(self):
        r = self.chain(serial="6E5X10?44?7")
        self.assertTrue(r.candidates, "candidates for a half-ground serial")
        top = r.candidates[0]
        self.assertIn("6E5X1094417", [k.key for k in top.item.keys])
        self.assertTrue(top.reason)

    def test_unknown_serial_is_not_found_and_bad_input_names_the_field(self):
        with self.assertRaises(grpc.RpcError) as cm:
            self.chain(serial="6E5X9999999")
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as cm:
            self.chain()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_buyers_sharing_a_phone_are_one_cluster(self):
        c = self.chain(serial="6E5X1094417").chains[0]
        buyer = c.hops[0].to.id
        p = self.query.unary("ProvenanceService", "GetParty", pv.GetPartyRequest(party_id=buyer),
                             pv.GetPartyResponse)
        names = sorted(i.name for i in p.cluster)
        self.assertIn("J. Peters", names)
        self.assertIn("Jan Peeters", names)
        self.assertIn("phone", [link.kind for link in p.links])

    def test_search_and_trace(self):
        s = self.query.unary("ProvenanceService", "SearchItems", pv.SearchItemsRequest(pattern="6E5X1094*"),
                             pv.SearchItemsResponse)
        self.assertIn("6E5X1094417", [m.matched_key for m in s.items])
        ev = int(self.pg.query("SELECT id FROM events WHERE source_ref = 'Z-1'"))
        t = self.query.unary("ProvenanceService", "TraceBack", pv.TraceBackRequest(event_id=ev),
                             pv.TraceResponse)
        self.assertEqual(len(t.items), 1)
        self.assertIn(pv.HOP_KIND_SALE, [h.kind for h in t.items[0].hops])

    def test_retraction_shows_the_hop_retracted(self):
        self.submit(retraction("M-1-R", "carrier.fr.transports-lefort", "M-1"))
        self.caught_up()
        c = self.chain(serial="6E5X1094417").chains[0]
        ship = [h for h in c.hops if h.kind == pv.HOP_KIND_SHIPMENT]
        self.assertEqual([h.status for h in ship], [pv.HOP_STATUS_RETRACTED])

    def test_every_call_is_audited(self):
        before = int(self.pg.query("SELECT count(*) FROM query_audit"))
        self.chain(serial="6E5X1094417")
        with self.assertRaises(grpc.RpcError):
            self.chain(serial="6E5X9999999")
        after = int(self.pg.query("SELECT count(*) FROM query_audit"))
        self.assertEqual(after - before, 2)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
