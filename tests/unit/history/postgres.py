"""A throwaway PostgreSQL server for the history tests: Debian's ``postgresql`` binaries, a cluster in a
temporary folder, on a free port of 127.0.0.1, trust authentication, stopped at the end of the session.

PostgreSQL refuses to run as root: as root, the cluster belongs to the package's ``postgres`` user and
every server command runs through ``runuser``. Where no server can start, :func:`start` raises
:class:`Unavailable` with the reason, and the tests that need it are skipped with that reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class Unavailable(Exception):
    """No PostgreSQL server can start here; the message says why."""


@dataclass
class Server:
    url: str  # postgresql+psycopg://postgres@127.0.0.1:PORT/  (append a database name)
    root: Path  # the temporary folder: the cluster (data/), the socket and the log
    pg_ctl: Path
    prefix: list[str]  # runuser -u postgres -- (as root), else nothing

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.pg_ctl), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, cwd="/")
        shutil.rmtree(self.root, ignore_errors=True)


def _bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin with initdb, else the folder of an initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)) if re.search(r"/(\d+)/bin/", p) else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> Server:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise Unavailable("psycopg is not installed (pip install 'quantbench[history]')") from None
    bindir = _bin_dir()
    if bindir is None or not (bindir / "pg_ctl").exists():
        raise Unavailable("no PostgreSQL server binaries (initdb, pg_ctl) here: apt-get install postgresql")
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root and there is no 'postgres' user to run the server as") from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise Unavailable("running as root and runuser is missing (PostgreSQL refuses to run as root)")
        prefix = [runuser, "-u", "postgres", "--"]
    datadir = Path(tempfile.mkdtemp(prefix="quantbench-pg-"))
    if owner is not None:
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
    os.chmod(datadir, 0o700)
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120, cwd="/")
        if done.returncode != 0:
            shutil.rmtree(datadir, ignore_errors=True)
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise Unavailable(f"{Path(args[0]).name} failed: {lines[-1] if lines else done.returncode}")

    run(str(bindir / "initdb"), "-D", str(datadir / "data"), "-U", "postgres", "-A", "trust", "--no-locale",
        "-E", "UTF8", "--no-sync")
    run(str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-l", str(datadir / "server.log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off", "start")
    return Server(f"postgresql+psycopg://postgres@127.0.0.1:{port}/", datadir, bindir / "pg_ctl", prefix)


def create_database(server: Server, name: str) -> str:
    """A fresh, empty database on ``server``; its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(server.url.replace("postgresql+psycopg", "postgresql") + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url + name
