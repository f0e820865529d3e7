#!/usr/bin/python3
"""The tidewatch CLI's investigator commands (chain, search, trace, party,
events) run as real processes against a fake tidewatch.v1.ProvenanceService
written with python3-grpcio (cli_fake_query.py), over real gRPC on loopback.

The fake answers canned responses and errors (NOT_FOUND, INVALID_ARGUMENT,
UNAVAILABLE, a slow answer) and records every request, so each test checks
both what the CLI printed (exit code, text, JSON, DOT, GeoJSON) and what it
sent (the arguments as typed: normalising them is the server's job; --all
follows the page tokens).

Environment: TW_BIN_DIR, TW_BUILD_DIR (python modules in build/py). Prints
"N passed, M failed"."""

import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

SRC = os.environ.get("TW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TW_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.environ.get("TW_BIN_DIR", os.path.join(BUILD, "bin"))
sys.path.insert(0, os.path.join(BUILD, "py"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from google.protobuf import json_format  # noqa: E402

import cli_fake_query as fake  # noqa: E402
from tidewatch.v1 import provenance_pb2 as pv  # noqa: E402

CLI = os.path.join(BIN, "tidewatch")
SERVER = None


def run(*args, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("TIDEWATCH_TARGET", None)
    e.pop("TIDEWATCH_TIMEOUT", None)
    if env:
        e.update(env)
    argv = [CLI] + list(args)
    if env is None or "TIDEWATCH_TARGET" not in env:
        argv += ["--target", SERVER.target]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def in_order(testcase, text, parts):
    pos = 0
    for part in parts:
        i = text.find(part, pos)
        testcase.assertGreaterEqual(i, 0, "%r missing or out of order in:\n%s" % (part, text))
        pos = i + len(part)


def dot_well_formed(testcase, d):
    """Structure of a DOT text: a digraph, strings closed (escapes honoured),
    braces balanced outside strings."""
    testcase.assertTrue(d.startswith("digraph "), d)
    depth, in_str, i = 0, False, 0
    while i < len(d):
        c = d[i]
        if in_str:
            testcase.assertNotEqual(c, "\n", "raw newline in a string")
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            testcase.assertGreaterEqual(depth, 0)
        i += 1
    testcase.assertFalse(in_str)
    testcase.assertEqual(depth, 0)


class CliTest(unittest.TestCase):
    def setUp(self):
        SERVER.clear()

    # ---- chain ---------------------------------------------------------------

    def test_chain_text_timeline(self):
        rc, out, err = run("chain", "6e5-x 1016523")
        self.assertEqual(rc, 0, err)
        in_order(self, out, [
            "Engine 6E5X1016523 (Yamaha F40), item 17",
            "2026-03-02  sold     Bootshandel Nord #5 -> Bob \"the boat\" O'Neil #7, at Hamburg, DE "
            "(640 km from Dunkerque); 2 sources: dealer-de 1A, police-de 2BP; event 101",
            "~ 2026-03-10  shipped", "CORRECTED by event 130",
            "  2026-03-11  shipped  Bob \"the boat\" O'Neil #7 -> Jan Peeters #9 by Transports Lefort #11",
            "(corrects event 120)",
            "x 2026-03-12  sold", "RETRACTED",
            "  2026-03-15  seized   by Police aux Fronti\u00e8res #20",
            "Gravelines, FR (coast hub Gravelines), at a launch, used, case PV 2026/114; 1 source: "
            "paf-fr 1A; event 140",
            "Facts:", "[!]  custody gap: sold to Bob", "[!!] too fast:",
            "Last known: Police aux Fronti\u00e8res #20 (agency, FR), at Gravelines",
            "Related items:", "same purchase: item 18 6E5X1016524, event 101",
        ])
        # what was typed went out as typed
        req = SERVER.only("GetChain")
        self.assertEqual(req.serial, "6e5-x 1016523")
        self.assertEqual(req.hull_number, "")
        self.assertEqual(req.maker, "")
        self.assertEqual(req.item_id, 0)

    def test_chain_maker_hull_item_and_limits(self):
        rc, out, err = run("chain", "6E5X1016523", "--maker", "Yamaha", "--max-hops=3")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("GetChain")
        self.assertEqual((req.serial, req.maker, req.max_hops), ("6E5X1016523", "Yamaha", 3))
        SERVER.clear()
        rc, out, err = run("chain", "--hull", "fr-abc12345d606")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("GetChain")
        self.assertEqual((req.serial, req.hull_number), ("", "fr-abc12345d606"))
        self.assertIn("Boat FRABC12345D606", out)
        SERVER.clear()
        rc, out, err = run("chain", "--item", "17", "--max-candidates", "4")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("GetChain")
        self.assertEqual((req.serial, req.item_id, req.max_candidates), ("", 17, 4))

    def test_chain_json_is_protobuf_json_mapping(self):
        rc, out, err = run("chain", "6E5X1016523", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        # exactly what protobuf's own JSON printer makes of the answer
        want = json_format.MessageToDict(fake.chain_response())
        self.assertEqual(doc, want)
        self.assertEqual(doc["chains"][0]["hops"][0]["eventId"], "101")
        self.assertEqual(doc["chains"][0]["hops"][1]["status"], "HOP_STATUS_CORRECTED")
        self.assertEqual(doc["chains"][0]["lastPlace"]["name"], "Gravelines")

    def test_chain_dot(self):
        rc, out, err = run("chain", "6E5X1016523", "--dot")
        self.assertEqual(rc, 0, err)
        dot_well_formed(self, out)
        self.assertIn('label="Bob \\"the boat\\" O\'Neil\\nperson, GB"', out)
        self.assertIn('"c0_party_5" -> "c0_party_7" [label="2026-03-02 sold', out)
        self.assertIn("shape=note", out)
        if shutil.which("dot"):
            p = subprocess.run(["dot", "-Tsvg"], input=out, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("<svg", p.stdout)
        else:
            print("graphviz not installed: DOT checked structurally only", file=sys.stderr)

    def test_chain_geojson(self):
        rc, out, err = run("chain", "6E5X1016523", "--geojson")
        self.assertEqual(rc, 0, err)
        g = json.loads(out)
        self.assertEqual(g["type"], "FeatureCollection")
        route = g["features"][0]
        self.assertEqual(route["geometry"]["type"], "LineString")
        # [lon, lat], time order, active hops only: Hamburg, Roubaix, Gravelines
        self.assertEqual(route["geometry"]["coordinates"],
                         [[9.99, 53.55], [3.17, 50.69], [2.12, 50.98]])
        points = [f for f in g["features"] if f["geometry"]["type"] == "Point"]
        self.assertEqual([p["properties"]["date"] for p in points],
                         ["2026-03-02", "2026-03-10", "2026-03-11", "2026-03-12", "2026-03-15"])
        self.assertEqual(points[0]["properties"]["kind"], "sale")
        self.assertEqual(points[0]["properties"]["from"], "Bootshandel Nord")
        self.assertEqual(points[0]["properties"]["to"], "Bob \"the boat\" O'Neil")
        self.assertEqual(points[-1]["geometry"]["coordinates"], [2.12, 50.98])
        self.assertIn("9.99,", out)  # 15 significant digits, not 9.9900000000000002

    def test_chain_candidates_probable_link(self):
        rc, out, err = run("chain", "6E5X10?6523")
        self.assertEqual(rc, 0, err)
        in_order(self, out, ["Candidates for the reading \"6E5X10?6523\"",
                             "0.86  PROBABLE LINK  item 17 6E5X1016523",
                             "(probable link, not merged)",
                             "0.61  candidate      item 44 6E5X1016528"])
        self.assertEqual(SERVER.only("GetChain").serial, "6E5X10?6523")

    def test_chain_errors(self):
        rc, out, err = run("chain", "NOPE123")
        self.assertEqual(rc, 1, err)
        self.assertIn("tidewatch chain: no item with serial NOPE123", err)
        self.assertEqual(out, "")
        rc, out, err = run("chain", "BAD!")
        self.assertEqual(rc, 2, err)
        self.assertIn("invalid argument: serial: '!' is not part of any serial", err)
        rc, out, err = run("chain", "DOWN")
        self.assertEqual(rc, 3, err)
        self.assertIn("is unavailable: database unavailable", err)
        rc, out, err = run("chain", "SLOW", "--timeout", "300ms")
        self.assertEqual(rc, 3, err)
        self.assertIn("did not answer within 300ms", err)

    def test_connection_refused(self):
        port = free_port()
        target = "127.0.0.1:%d" % port
        rc, out, err = run("chain", "6E5X1016523", env={"TIDEWATCH_TARGET": target})
        self.assertEqual(rc, 3, err)
        self.assertEqual(err.strip(), "tidewatch chain: the query service at %s is not reachable "
                                      "(connection refused)" % target)

    def test_bad_target_is_a_usage_error(self):
        rc, out, err = run("chain", "X", env={"TIDEWATCH_TARGET": "127.0.0.1:99999"})
        self.assertEqual(rc, 2, err)
        self.assertIn("TIDEWATCH_TARGET", err)
        rc, out, err = run("search", "X", "--target", "no port here")
        self.assertEqual(rc, 2, err)
        self.assertIn("--target", err)

    def test_target_from_environment(self):
        rc, out, err = run("party", "9", env={"TIDEWATCH_TARGET": SERVER.target})
        self.assertEqual(rc, 0, err)
        self.assertEqual(SERVER.only("GetParty").party_id, 9)

    def test_usage_errors_send_nothing(self):
        cases = [
            ("chain",),
            ("chain", "A", "B"),
            ("chain", "X", "--json", "--dot"),
            ("chain", "X", "--bogus"),
            ("chain", "--item", "zero"),
            ("chain", "--hull", "X", "--maker", "Y"),
            ("search",),
            ("search", "X", "--after", "2026-02-30"),
            ("search", "X", "--kind", "car"),
            ("search", "X", "--limit", "0"),
            ("trace",),
            ("trace", "sideways"),
            ("trace", "back"),
            ("trace", "back", "abc"),
            ("trace", "back", "--source", "s"),
            ("trace", "forward"),
            ("trace", "forward", "--party", "1", "--event", "2"),
            ("trace", "forward", "--party", "1", "--depth", "0"),
            ("party",),
            ("party", "-3"),
            ("events", "extra"),
            ("events", "--before", "yesterday"),
        ]
        for args in cases:
            rc, out, err = run(*args)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
            self.assertTrue(err.startswith("tidewatch"), "%s: %r" % (args, err))
        self.assertEqual(SERVER.requests, [], "no usage error reaches the server")

    def test_help_per_command(self):
        for cmd in (["chain"], ["search"], ["trace", "back"], ["trace", "forward"], ["party"],
                    ["events"]):
            rc, out, err = run(*(cmd + ["--help"]))
            self.assertEqual(rc, 0, err)
            self.assertIn("Usage: tidewatch " + cmd[0], out)
            self.assertIn("Exit status:", out)
            self.assertIn("3  the query service is not reachable", out)
        rc, out, err = run("--help")
        self.assertEqual(rc, 0)
        for cmd in ("chain", "search", "trace", "party", "events"):
            self.assertIn("  " + cmd, out)
        self.assertEqual(SERVER.requests, [])

    # ---- search --------------------------------------------------------------

    def test_search_all_follows_page_tokens(self):
        rc, out, err = run("search", "6e5x*", "--all", "--limit", "2")
        self.assertEqual(rc, 0, err)
        reqs = SERVER.of("SearchItems")
        self.assertEqual([r.page_token for r in reqs], ["", "p2", "p3"])
        for r in reqs:
            self.assertEqual((r.pattern, r.page_size), ("6e5x*", 2))
        in_order(self, out, ["6E5X0000001", "6E5X0000002", "6E5X0000003", "6E5X0000004"])
        SERVER.clear()
        rc, out, err = run("search", "6e5x*", "--all", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual([m["matchedKey"] for m in doc["items"]],
                         ["6E5X0000001", "6E5X0000002", "6E5X0000003", "6E5X0000004"])
        self.assertNotIn("nextPageToken", doc)

    def test_search_one_page_and_filters(self):
        rc, out, err = run("search", "6e5x*", "--kind", "boat", "--maker", "Zodiac", "--after",
                           "2026-01-01", "--before", "2026-02-01T12:30:00Z", "--country", "fr")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("SearchItems")
        self.assertEqual(req.kind, pv.ITEM_KIND_BOAT)
        self.assertEqual((req.maker, req.country, req.page_token), ("Zodiac", "fr", ""))
        self.assertEqual(req.seen_after.seconds, 1767225600)  # 2026-01-01T00:00:00Z
        self.assertEqual(req.seen_before.seconds, 1769949000)  # 2026-02-01T12:30:00Z
        self.assertIn("--page-token p2", err)
        self.assertIn("6E5X0000002", out)
        self.assertNotIn("6E5X0000003", out)
        SERVER.clear()
        rc, out, err = run("search", "6e5x*", "--page-token", "p3")
        self.assertEqual(rc, 0, err)
        self.assertEqual(SERVER.only("SearchItems").page_token, "p3")
        self.assertIn("6E5X0000004", out)

    def test_search_no_match(self):
        rc, out, err = run("search", "ZZZ*")
        self.assertEqual(rc, 1, err)
        self.assertIn("No items match.", out)

    def test_search_server_keeps_paging(self):
        rc, out, err = run("search", "LOOP*", "--all")
        self.assertEqual(rc, 3, err)
        self.assertIn("same page token twice", err)

    # ---- trace ---------------------------------------------------------------

    def test_trace_back(self):
        rc, out, err = run("trace", "back", "140")
        self.assertEqual(rc, 0, err)
        self.assertEqual(SERVER.only("TraceBack").event_id, 140)
        in_order(self, out, ["Where the items came from: 1 item", "Engine 6E5X1016523",
                             "2026-03-02  sold", "Line items without serials (bulk):",
                             "10 x Bootshandel Nord #5"])
        SERVER.clear()
        rc, out, err = run("trace", "back", "--source", "paf-fr", "--ref", "PV 2026/114", "--json")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("TraceBack")
        self.assertEqual((req.event_id, req.source, req.source_ref), (0, "paf-fr", "PV 2026/114"))
        self.assertEqual(json.loads(out)["items"][0]["item"]["id"], "17")
        SERVER.clear()
        rc, out, err = run("trace", "back", "999")
        self.assertEqual(rc, 1, err)
        self.assertIn("no event with id 999", err)

    def test_trace_forward(self):
        rc, out, err = run("trace", "forward", "--party", "5", "--depth", "2")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("TraceForward")
        self.assertEqual((req.party_id, req.event_id, req.max_depth), (5, 0, 2))
        in_order(self, out, ["Where the items went: 1 item", "1 handoff from the start"])
        SERVER.clear()
        rc, out, err = run("trace", "forward", "--event", "101")
        self.assertEqual(rc, 0, err)
        req = SERVER.only("TraceForward")
        self.assertEqual((req.party_id, req.event_id, req.max_depth), (0, 101, 0))

    # ---- party and events ----------------------------------------------------

    def test_party(self):
        rc, out, err = run("party", "9")
        self.assertEqual(rc, 0, err)
        in_order(self, out, ["Party #9 Jan Peeters (person, BE), buyer in event 101",
                             "Cluster (2 identities):", "#10 J. Peeters",
                             "Tied by:", "#9 - #10: same phone +32470123456",
                             "Hops (1, in the order things happened):", "2026-03-02  sold"])
        rc, out, err = run("party", "9", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), json_format.MessageToDict(fake.party_response()))
        rc, out, err = run("party", "404")
        self.assertEqual(rc, 1, err)
        self.assertIn("tidewatch party: no party with id 404", err)

    def test_events(self):
        rc, out, err = run("events", "--kind", "seizure", "--source", "paf-fr", "--after",
                           "2026-03-01", "--limit", "1", "--all")
        self.assertEqual(rc, 0, err)
        reqs = SERVER.of("ListEvents")
        self.assertEqual([r.page_token for r in reqs], ["", "e2"])
        for r in reqs:
            self.assertEqual((r.kind, r.source, r.page_size), ("seizure", "paf-fr", 1))
            self.assertEqual(r.after.seconds, 1772323200)  # 2026-03-01
            self.assertFalse(r.HasField("before"))
        in_order(self, out, ["140", "2026-03-15  seizure", "paf-fr/PV 2026/114",
                             "serial 6E5X1016523", "141"])
        SERVER.clear()
        rc, out, err = run("events", "--json")
        self.assertEqual(rc, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["events"][0]["id"], "140")
        self.assertEqual(doc["nextPageToken"], "e2")
        rc, out, err = run("events", "--kind", "nothing")
        self.assertEqual(rc, 1, err)


if __name__ == "__main__":
    SERVER = fake.FakeQuery()
    SERVER.start()
    try:
        result = unittest.main(exit=False, verbosity=2).result
    finally:
        SERVER.stop()
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
