#!/usr/bin/python3
"""`tidewatch simulate` and `tidewatch ingest` against a real tidewatch-ingest
and tidewatch-provenance on a real PostgreSQL: the scenario of seed 7 is
submitted and every answer is what its truth expects (accepted, duplicate,
rejected), the log holds exactly the accepted records, --out gives the same
files twice, the records file submitted again is all duplicates and
rejections, provenance knows every network item by the keys the truth gives,
and tests/bench/alerts_score.py scores alerts raised on them.

Environment: TW_BIN_DIR, TW_SOURCE_DIR, TW_BUILD_DIR. Prints "N passed, M
failed"."""

import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, SRC, PgCluster, free_port  # noqa: E402
import grpc  # noqa: E402

CLI = os.path.join(BIN, "tidewatch")
SCORE = os.path.join(SRC, "tests", "bench", "alerts_score.py")


class Proc:
    def __init__(self, name, url):
        self.name = name
        self.port, self.metrics_port = free_port(), free_port()
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "tidewatch-" + name), "--listen", "127.0.0.1:%d" % self.port,
             "--metrics-listen", "127.0.0.1:%d" % self.metrics_port, "--database-url", url],
            stdout=self.log, stderr=subprocess.STDOUT)
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        grpc.channel_ready_future(ch).result(timeout=20)
        ch.close()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        self.log.seek(0)
        return rc, self.log.read()


def run(*args, timeout=240):
    out = subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=timeout)
    for word in ("ERROR: LeakSanitizer", "ERROR: AddressSanitizer", "runtime error:"):
        assert word not in out.stderr, out.stderr[-4000:]
    return out


class Simulate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tw-sim-")
        cls.pg = PgCluster("tw-sim-pg-")
        cls.ingest = cls.prov = None
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        cls.pg.query("CREATE DATABASE tidewatch", db="postgres")
        cls.url = "host=%s dbname=tidewatch user=postgres" % cls.pg.dir
        out = subprocess.run([os.path.join(BIN, "tidewatch-migrate"), "--database-url", cls.url],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        base = "host=%s dbname=tidewatch user=" % cls.pg.dir
        for login, role in (("sim_ingest", "tidewatch_ingest"), ("sim_prov", "tidewatch_provenance")):
            cls.pg.query("CREATE ROLE %s LOGIN IN ROLE %s" % (login, role))
        cls.ingest = Proc("ingest", base + "sim_ingest")
        cls.prov = Proc("provenance", base + "sim_prov")
        cls.target = "127.0.0.1:%d" % cls.ingest.port
        cls.out = os.path.join(cls.tmp, "a")
        cls.sim = run("simulate", "--seed", "7", "--target", cls.target, "--out", cls.out)
        with open(os.path.join(cls.out, "truth.json")) as f:
            cls.truth = json.load(f)

    @classmethod
    def tearDownClass(cls):
        for p in (cls.prov, cls.ingest):
            if p is None:
                continue
            rc, text = p.stop()
            if rc != 0 or "runtime error" in text or "AddressSanitizer" in text:
                print("--- %s (exit %d) ---\n%s" % (p.name, rc, text[-4000:]))
        cls.pg.destroy()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def caught_up(self, timeout=120):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            left = self.pg.query(
                "SELECT count(*) FROM events e, consumer_cursors c WHERE c.consumer = 'provenance' "
                "AND (e.tx, e.id) > (c.last_tx, c.last_id)")
            if left == "0":
                return
            time.sleep(0.2)
        raise AssertionError("provenance did not catch up")

    def test_1_every_answer_as_the_truth_expects(self):
        s = self.sim
        self.assertEqual(s.returncode, 0, s.stdout + s.stderr)
        self.assertIn("every answer as expected", s.stdout)
        ex = self.truth["expected"]
        m = re.search(r"answers from \S+: (\d+) accepted, (\d+) duplicate, (\d+) rejected, (\d+) conflict",
                      s.stdout)
        self.assertTrue(m, s.stdout)
        self.assertEqual([int(x) for x in m.groups()],
                         [ex["accepted"], ex["duplicate"], ex["rejected"], 0])
        self.assertGreater(ex["duplicate"], 0)
        self.assertGreater(ex["rejected"], 0)
        # The log holds exactly the accepted records; quarantine the rejected ones.
        self.assertEqual(int(self.pg.query("SELECT count(*) FROM events")), ex["accepted"])
        self.assertGreater(int(self.pg.query("SELECT count(*) FROM quarantine")), 0)
        for r in self.truth["legit_coastal"]["records"][:50]:
            self.assertEqual(self.pg.query(
                "SELECT count(*) FROM events WHERE source = '%s' AND source_ref = '%s'"
                % (r["source"], r["source_ref"])), "1")

    def test_2_out_twice_gives_the_same_files(self):
        other = os.path.join(self.tmp, "b")
        s = run("simulate", "--seed", "7", "--out", other)
        self.assertEqual(s.returncode, 0, s.stderr)
        for name in ("records.pb", "index.csv", "truth.json"):
            self.assertTrue(filecmp.cmp(os.path.join(self.out, name), os.path.join(other, name),
                                        shallow=False), name)
        third = os.path.join(self.tmp, "c")
        self.assertEqual(run("simulate", "--seed", "8", "--out", third).returncode, 0)
        self.assertFalse(filecmp.cmp(os.path.join(self.out, "records.pb"),
                                     os.path.join(third, "records.pb"), shallow=False))

    def test_3_ingest_the_file_again(self):
        s = run("ingest", os.path.join(self.out, "records.pb"), "--target", self.target, "--quiet")
        self.assertEqual(s.returncode, 1, "rejections make it exit 1: " + s.stderr[-2000:])
        ex = self.truth["expected"]
        m = re.search(r"(\d+) records: (\d+) accepted, (\d+) duplicate, (\d+) rejected, (\d+) conflict",
                      s.stderr)
        self.assertTrue(m, s.stderr[-2000:])
        n, acc, dup, rej, conf = (int(x) for x in m.groups())
        self.assertEqual(n, ex["records"])
        self.assertEqual((acc, conf), (0, 0))
        self.assertEqual(dup + rej, ex["records"])
        self.assertGreaterEqual(rej, ex["rejected"])
        # Each rejection is printed with its reference and its fields.
        self.assertRegex(s.stdout, r"record \d+ \(\S+ \S+\): rejected\n  \S+: \w+: ")
        self.assertEqual(int(self.pg.query("SELECT count(*) FROM events")), ex["accepted"])

    def test_4_malformed_file_and_usage(self):
        path = os.path.join(self.tmp, "cut.pb")
        with open(os.path.join(self.out, "records.pb"), "rb") as f:
            data = f.read(5000)
        with open(path, "wb") as f:
            f.write(data)
        s = run("ingest", path, "--target", self.target, "--quiet", "--no-errors")
        self.assertEqual(s.returncode, 2)
        self.assertIn("truncated record", s.stderr)
        s = run("simulate", "--out", os.path.join(self.tmp, "x"))
        self.assertEqual(s.returncode, 2)
        self.assertIn("--seed", s.stderr)
        s = run("simulate", "--seed", "1")
        self.assertEqual(s.returncode, 2)
        self.assertIn("--out DIR, --target", s.stderr)
        s = run("simulate", "--seed", "1", "--days", "10", "--out", os.path.join(self.tmp, "y"))
        self.assertEqual(s.returncode, 2)
        self.assertIn("days", s.stderr)
        s = run("ingest", os.path.join(self.tmp, "missing.pb"))
        self.assertEqual(s.returncode, 2)
        self.assertIn("cannot read", s.stderr)

    def score(self):
        js = os.path.join(self.tmp, "score.json")
        out = subprocess.run([sys.executable, SCORE, "--truth", os.path.join(self.out, "truth.json"),
                              "--db", self.url, "--json", js], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(js) as f:
            return json.load(f), out.stdout

    def test_5_provenance_knows_the_network_items_and_the_scorer_counts(self):
        self.caught_up()
        s, text = self.score()
        found, total = s["network_items_found_in_db"]
        self.assertEqual(found, total, text)
        self.assertEqual(s["recall_counts"][0], 0)
        self.assertIn("recall: 0.000", text)
        # One alert in time on a caught network item (its root), one on a
        # legitimate coastal item: recall counts the first, precision is
        # 1 of 2, and the coastal trade has one alert.
        it = next(i for i in self.truth["network_items"] if i["warn_by"] and i["keys"][0]["kind"] == "serial"
                  and not i["keys"][0]["partial"])
        root = self.pg.query("SELECT i.root_id FROM prov_item_keys k JOIN prov_items i USING (item_id) "
                             "WHERE k.key_kind = 1 AND k.key = '%s' LIMIT 1" % it["keys"][0]["key"])
        co = next(i for i in self.truth["legit_coastal"]["items"] if i["keys"])
        k = co["keys"][0]
        coid = self.pg.query("SELECT item_id FROM prov_item_keys WHERE key_kind = %d AND key = '%s' LIMIT 1"
                             % (1 if k["kind"] == "serial" else 2, k["key"]))
        self.assertTrue(root and coid)
        for subject, known in ((root, it["warn_by"]), (coid, "2026-04-01T00:00:00Z")):
            self.pg.query("SELECT alert_raise('destination_hub', 'item', '%s', 'Calais', 3::smallint, 5, "
                          "'t', 'e', '{}'::jsonb, timestamptz '%s' - interval '1 day', 1, '', NULL, NULL)"
                          % (subject, known))
        s, text = self.score()
        self.assertGreaterEqual(s["recall_counts"][0], 1, text)
        self.assertEqual(s["precision_counts"], [1, 2], text)
        self.assertEqual(s["coastal_alerts"], 1, text)
        self.assertEqual(s["rules"]["destination_hub"]["alerts"], 2, text)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
