"""What the Python integration suites share: where the build is, free ports,
and a private PostgreSQL cluster on a unix socket (run as the postgres user
when the suite runs as root). Import it before the generated modules: it puts
build/py on sys.path.

Environment: TW_SOURCE_DIR, TW_BUILD_DIR, TW_BIN_DIR, TW_PG_BINDIR (all
optional; defaults for a build/ in the source tree)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

SRC = os.environ.get("TW_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("TW_BUILD_DIR", os.path.join(SRC, "build"))
BIN = os.environ.get("TW_BIN_DIR", os.path.join(BUILD, "bin"))
if os.path.join(BUILD, "py") not in sys.path:
    sys.path.insert(0, os.path.join(BUILD, "py"))


def pg_bindir():
    """PostgreSQL's server binaries."""
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
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A private, started PostgreSQL cluster (initdb in a temporary directory,
    unix socket only, fsync off). `dir` is also the socket directory."""

    def __init__(self, prefix="tw-pg-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
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

    def start(self):
        subprocess.run(as_postgres([self.pg_ctl, "-D", self.data, "-w", "-l",
                                    os.path.join(self.dir, "log"), "-o",
                                    "-k %s -c listen_addresses='' -c fsync=off" % self.dir, "start"]),
                       check=True, capture_output=True)

    def stop(self):
        subprocess.run(as_postgres([self.pg_ctl, "-D", self.data, "-w", "-m", "fast", "stop"]),
                       check=True, capture_output=True)

    def run_psql(self, db, sql, user="postgres", extra=()):
        """psql -c SQL as `user` on `db`: the CompletedProcess (text)."""
        return subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"] + list(extra) +
                              ["host=%s dbname=%s user=%s" % (self.dir, db, user), "-c", sql],
                              capture_output=True, text=True)

    def query(self, sql, db="tidewatch"):
        """Run SQL as the superuser on `db`: its output, stripped; raises
        AssertionError on an error."""
        out = self.run_psql(db, sql)
        if out.returncode != 0:
            raise AssertionError("psql %s: %s" % (sql, out.stderr))
        return out.stdout.strip()

    def log_text(self):
        with open(os.path.join(self.dir, "log"), errors="replace") as f:
            return f.read()

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
