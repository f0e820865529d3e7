#!/usr/bin/python3
"""deploy/local.sh as a new user would run it, in a throwaway copy of the
repository (deploy/, migrations/, and a copy of the built binaries so that a
"rebuild" can be simulated): `up` makes a durable PostgreSQL behind a private
socket directory with peer and password logins; `status` judges each daemon
by its own gRPC service (ingest NOT_SERVING while PostgreSQL is down); `up`
after a rebuild restarts exactly the daemon whose binary changed; `restart
SERVICE` restarts one; `down` stops everything; the first `up` loads the
demo scenario (a simulated season) through every daemon, once.

Environment: TW_BIN_DIR (binaries), TW_SOURCE_DIR, TW_PG_BINDIR. Prints
"N passed, M failed"; exits 1 on any failure."""

import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from twtest import BIN, SRC, as_postgres, pg_bindir  # noqa: E402

BINARIES = ["tidewatch-ingest", "tidewatch-query", "tidewatch-provenance", "tidewatch-alerts",
            "tidewatch-migrate", "tidewatch"]
SERVICES = ["ingest", "query", "provenance", "alerts"]






def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_block(n, avoid=()):
    """A first port of n consecutive free ports."""
    for _ in range(200):
        base = random.randrange(20000, 60000)
        ports = range(base, base + n)
        if not set(ports) & set(avoid) and all(port_free(p) for p in ports):
            return base
    raise AssertionError("no block of %d free ports" % n)


def running(pid):
    """True while pid runs (a zombie waiting for its reaper does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class LocalStack(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tw-local-")
        # As root the server runs as postgres, which must traverse this.
        os.chmod(self.root, 0o711)
        shutil.copytree(os.path.join(SRC, "deploy"), os.path.join(self.root, "deploy"),
                        ignore=shutil.ignore_patterns("data"))
        shutil.copytree(os.path.join(SRC, "migrations"), os.path.join(self.root, "migrations"))
        self.bin = os.path.join(self.root, "bin")
        os.mkdir(self.bin)
        for b in BINARIES:
            shutil.copy2(os.path.join(BIN, b), os.path.join(self.bin, b))
        grpc = free_block(4)
        metrics = free_block(4, avoid=range(grpc, grpc + 4))
        self.env = dict(os.environ, TW_LOCAL_BIN_DIR=self.bin, TW_LOCAL_GRPC_BASE=str(grpc),
                        TW_LOCAL_METRICS_BASE=str(metrics), TW_LOCAL_HEALTH_TIMEOUT="60",
                        TIDEWATCH_LOG_LEVEL="info")
        self.run_dir = os.path.join(self.root, "var", "run")

    def tearDown(self):
        self.local("down", "--purge")
        shutil.rmtree(self.root, ignore_errors=True)

    def local(self, *args):
        out = subprocess.run([os.path.join(self.root, "deploy", "local.sh")] + list(args),
                             env=self.env, capture_output=True, text=True, timeout=240)
        return out.returncode, out.stdout + out.stderr

    def ok(self, *args):
        rc, out = self.local(*args)
        self.assertEqual(rc, 0, "local.sh %s failed:\n%s" % (" ".join(args), out))
        return out

    def line(self, out, name):
        for ln in out.splitlines():
            if ln.startswith(name + " "):
                return ln
        self.fail("no %s line in:\n%s" % (name, out))

    def pid(self, name):
        with open(os.path.join(self.run_dir, name + ".pid")) as f:
            return int(f.read())

    def psql(self, user, sql, passfile=None):
        url = "host=%s dbname=tidewatch user=%s" % (self.run_dir, user)
        if passfile:
            url += " passfile=%s" % passfile
        env = dict(os.environ)
        env.pop("PGPASSWORD", None)
        return subprocess.run(["psql", "-X", "-w", "-tA", url, "-c", sql], capture_output=True,
                              text=True, env=env)

    def test_up_status_rebuild_restart_down(self):
        out = self.ok("up", "--no-install", "--no-build")
        self.assertIn("durable", out)
        for name in SERVICES:
            self.assertIn("SERVING", self.line(out, name))
        # The demo scenario was loaded once, through every daemon, and raised alerts.
        self.assertRegex(out, r"demo: [1-9][0-9]* alerts raised")
        r = self.psql("postgres", "SELECT (SELECT count(*) FROM events) > 1000, "
                                  "(SELECT count(*) FROM alerts) > 0, "
                                  "(SELECT count(*) FROM alert_job_runs WHERE outcome = 'ok')")
        self.assertEqual(r.stdout.strip(), "t|t|2", r.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.root, "var", "demo", "truth.json")))

        # Durable, private, authenticated.
        r = self.psql("postgres", "SELECT current_setting('fsync') || current_setting('full_page_writes')")
        self.assertEqual(r.stdout.strip(), "onon", r.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(self.run_dir).st_mode), 0o700)
        pgpass = os.path.join(self.root, "var", "pgpass")
        self.assertEqual(stat.S_IMODE(os.stat(pgpass).st_mode), 0o600)
        r = self.psql("tw_ingest", "SELECT 1", passfile="/dev/null")
        self.assertNotEqual(r.returncode, 0, "a service login needs its password")
        self.assertIn("password", r.stderr)
        r = self.psql("tw_ingest", "SELECT current_user", passfile=pgpass)
        self.assertEqual(r.stdout.strip(), "tw_ingest", r.stderr)
        if os.geteuid() == 0:
            nobody = subprocess.run(["runuser", "-u", "nobody", "--", "psql", "-X", "-w",
                                     "host=%s dbname=tidewatch user=postgres" % self.run_dir,
                                     "-c", "SELECT 1"], capture_output=True, text=True)
            self.assertNotEqual(nobody.returncode, 0, "another OS user cannot reach the socket")

        out = self.ok("status")
        self.assertRegex(self.line(out, "ingest"), r" SERVING$")

        # PostgreSQL down: ingest's own service says so (the server entry would not).
        data = os.path.join(self.root, "var", "pg")
        subprocess.run(as_postgres([os.path.join(pg_bindir(), "pg_ctl"), "-D", data, "-m", "fast",
                                    "-w", "stop"]), check=True, capture_output=True)
        rc, out = self.local("status")
        self.assertEqual(rc, 3, out)
        self.assertIn("NOT_SERVING", self.line(out, "ingest"))
        self.assertIn("stopped", self.line(out, "postgres"))

        # up again: PostgreSQL back, daemons kept, the demo not loaded twice.
        before = {n: self.pid(n) for n in SERVICES}
        out = self.ok("up", "--no-install", "--no-build")
        self.assertEqual({n: self.pid(n) for n in SERVICES}, before, out)
        self.assertIn("the demo is not loaded again", out)

        # A rebuild replaces the ingest binary (new file, as the linker does).
        ingest = os.path.join(self.bin, "tidewatch-ingest")
        shutil.copy2(os.path.join(BIN, "tidewatch-ingest"), ingest + ".new")
        os.rename(ingest + ".new", ingest)
        out = self.ok("status")
        self.assertIn("stale", self.line(out, "ingest"))
        out = self.ok("up", "--no-install", "--no-build")
        self.assertIn("restarting, its binary was replaced", out)
        after = {n: self.pid(n) for n in SERVICES}
        self.assertNotEqual(after["ingest"], before["ingest"])
        for name in ["query", "provenance", "alerts"]:
            self.assertEqual(after[name], before[name], "%s was not rebuilt" % name)
        self.assertNotIn("stale", self.ok("status"))

        out = self.ok("restart", "ingest")
        self.assertNotEqual(self.pid("ingest"), after["ingest"])
        self.assertEqual(self.pid("query"), after["query"])
        self.assertIn("SERVING", self.line(out, "ingest"))

        # down with a name stops that daemon only; a wrong name stops nothing.
        query_pid = self.pid("query")
        self.ok("down", "alerts")
        rc, out = self.local("status")
        self.assertIn("not running", self.line(out, "alerts"))
        self.assertIn("accepting connections", self.line(out, "postgres"))
        self.assertEqual(self.pid("query"), query_pid)
        rc, out = self.local("down", "nosuch")
        self.assertNotEqual(rc, 0)
        self.assertIn("unknown service", out)
        self.assertTrue(running(query_pid), "a wrong name must stop nothing")
        self.ok("up", "--no-install", "--no-build")

        pids = [self.pid(n) for n in SERVICES]
        self.ok("down")
        for p in pids:
            self.assertFalse(running(p), "pid %d still runs after down" % p)
        rc, out = self.local("status")
        self.assertEqual(rc, 3)
        self.assertIn("not running", self.line(out, "ingest"))
        self.assertIn("stopped", self.line(out, "postgres"))


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or result.testsRun == 0 else 0)
