"""A throw-away PostgreSQL cluster for the server tests (Debian's ``postgresql`` package).

:func:`find_binaries` looks for ``initdb`` and ``pg_ctl`` on the PATH, in
``/usr/local/bin`` and in ``/usr/lib/postgresql/<version>/bin`` (where Debian
puts them, off the PATH).  :class:`PgCluster` ``initdb``s a cluster in a
temporary folder, starts it on 127.0.0.1 with a free port (its unix socket in
the same folder, never ``/var/run``), hands out one fresh database per test
(``CREATE DATABASE`` takes a few milliseconds) and stops and removes
everything at the end.  PostgreSQL refuses to run as root: as root, the
cluster runs as the ``postgres`` system user (or ``nobody``) via ``runuser``
(or ``su``).  Durability is switched off (``fsync=off``): the cluster lives
for one test session.

:func:`unavailable` says why no cluster can be started here (None when one
can); tests skip with that reason.  :data:`DATABASES` are the databases the
server tests run on (``SEGLOOP_TEST_DATABASES=sqlite`` for a quick local run).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["DATABASES", "PgCluster", "database_name", "find_binaries", "unavailable"]

USER = "segloop"  # the database superuser the cluster is made with (trust auth on loopback)
#: The databases every server test using ``served`` runs on.
DATABASES = [d for d in os.environ.get("SEGLOOP_TEST_DATABASES", "sqlite,postgresql").split(",")
             if d in ("sqlite", "postgresql")] or ["sqlite"]
_names = itertools.count()


def database_name() -> str:
    """A database name not used before in this session."""
    return f"t{os.getpid()}_{next(_names)}"


def find_binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres`` (newest version), or None."""
    candidates = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    candidates.append(Path("/usr/local/bin"))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    for folder in candidates + debian:
        if all((folder / name).is_file() and os.access(folder / name, os.X_OK)
               for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _run_as() -> tuple[list[str], str | None]:
    """(command prefix, user) to run the server binaries: as is, or as a non-root user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        if shutil.which("runuser"):
            return ["runuser", "-u", user, "--"], user
        if shutil.which("su"):
            return ["su", "-s", "/bin/sh", user, "-c", "exec \"$0\" \"$@\""], user
    raise RuntimeError("running as root without runuser/su or a non-root user (postgres, "
                       "nobody) to run PostgreSQL as (it refuses to run as root)")


def unavailable() -> str | None:
    """Why PostgreSQL cannot be started here, or None when it can."""
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover - psycopg is in the server extra
        return "psycopg is not installed (pip install -e '.[server]')"
    if find_binaries() is None:
        return ("PostgreSQL is not installed (no initdb/pg_ctl/postgres on the PATH, in "
                "/usr/local/bin or /usr/lib/postgresql/*/bin; apt-get install postgresql)")
    try:
        _run_as()
    except RuntimeError as err:
        return str(err)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    """A PostgreSQL cluster on 127.0.0.1 in a temporary folder; use as a context manager.

    Examples
    --------
    ::

        with PgCluster() as pg:
            url = pg.create_database("t1")   # postgresql://segloop@127.0.0.1:PORT/t1
            ...
            pg.drop_database("t1")
    """

    def __init__(self):
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        self.bin = find_binaries()
        self.prefix, self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="segloop-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.port = 0
        self._admin = None

    def _run(self, *args: str, timeout: float = 60) -> str:
        out = subprocess.run([*self.prefix, *args], capture_output=True, text=True,
                             timeout=timeout, cwd=self.root)
        if out.returncode != 0:
            log = self.root / "sock" / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({out.returncode}): "
                               f"{out.stderr.strip()[-2000:]}\n{tail}")
        return out.stdout

    def start(self) -> PgCluster:
        """``initdb``, then start the server and wait until it accepts connections."""
        self.data.mkdir()
        self.sock.mkdir()
        if self.user is not None:  # the server user must own its folders and reach them
            entry = pwd.getpwnam(self.user)
            self.root.chmod(0o755)
            for folder in (self.data, self.sock):
                os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--locale=C")
        self.port = _free_port()
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.sock} -F -c fsync=off "
                   "-c full_page_writes=off -c synchronous_commit=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.sock / "server.log"), "-w", "-t", "60", "-o", options, "start")
        import psycopg

        self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
        return self

    def url(self, database: str) -> str:
        """The URL of ``database`` on this cluster."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database ``name`` (letters, digits, ``_``); its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}")
        self._admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing any connection left to it."""
        self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        if (self.data / "postmaster.pid").is_file():
            with contextlib.suppress(Exception):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "-t", "30", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
