"""A throwaway PostgreSQL server for the tests of the durable stores.

:class:`PgCluster` runs ``initdb`` and ``pg_ctl start`` on a fresh temporary directory that
holds the data directory, the server log and the Unix socket. The server listens on no TCP
address at all (``listen_addresses=''``); clients reach it through the socket only, with the
connection string in :attr:`PgCluster.dsn` (libpq key/value form, for psycopg 3)::

    host=<tmp>/sock port=<port> dbname=postgres user=postgres

Authentication is ``trust`` and durability is off (``initdb --no-sync``, ``fsync=off``): the
cluster is fast and disposable. :meth:`PgCluster.stop` (``pg_ctl stop -m immediate``) removes
the directory; it is also registered with :mod:`atexit` (Ctrl-C, an exception) and runs on
SIGTERM (a CI timeout) when that signal is otherwise unhandled, so an interrupted test run
does not leave a server behind. A SIGKILLed one still can (look for ``textsecure-pg-`` in
``ps``).

The PostgreSQL tools refuse to run as root: as root the directory is handed to the
``postgres`` OS user and the tools run as that user; otherwise they run as the current user.
The binaries are taken from the newest ``/usr/lib/postgresql/<version>/bin`` (Debian,
Ubuntu), else from ``PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

__all__ = [
    "PgCluster",
    "PgClusterError",
    "PgUnavailable",
    "find_bindir",
    "require_postgres",
]

PG_LIB_DIR = Path("/usr/lib/postgresql")
_TOOLS = ("initdb", "pg_ctl")


class PgUnavailable(RuntimeError):
    """PostgreSQL is not installed here (or cannot be run): tests needing it should skip."""


class PgClusterError(RuntimeError):
    """PostgreSQL is installed but the cluster could not be created, started or stopped."""


def _version_key(bindir: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/15/bin -> (15,); 9.6 -> (9, 6); anything odd sorts first.
    return tuple(int(n) for n in re.findall(r"\d+", bindir.parent.name)) or (-1,)


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest Debian-style install, else
    the one on ``PATH``; ``None`` when PostgreSQL is not installed."""
    candidates = [
        d for d in PG_LIB_DIR.glob("*/bin") if all(os.access(d / tool, os.X_OK) for tool in _TOOLS)
    ]
    if candidates:
        return max(candidates, key=_version_key)
    initdb = shutil.which("initdb")
    if initdb is not None:
        bindir = Path(initdb).resolve().parent
        if os.access(bindir / "pg_ctl", os.X_OK):
            return bindir
    return None


def require_postgres() -> PgCluster:
    """A new, not yet started :class:`PgCluster`, for a pytest fixture.

    When PostgreSQL or psycopg is missing the calling test is skipped (``pytest.skip``) with
    the reason; with ``TEXTSECURE_STRICT=1`` (CI, where both are installed) it fails instead.
    """
    import pytest

    if os.environ.get("TEXTSECURE_UNIT") == "1":
        raise pytest.fail.Exception(
            "this test needs PostgreSQL but is not marked needs_postgres (make test-unit)"
        )
    reason = None
    try:
        cluster = PgCluster()
    except PgUnavailable as e:
        reason = str(e)
    if importlib.util.find_spec("psycopg") is None:
        reason = 'psycopg is not installed: pip install "psycopg[binary]>=3.2" (make venv)'
    if reason is None:
        return cluster
    if os.environ.get("TEXTSECURE_STRICT") == "1":
        raise pytest.fail.Exception(f"PostgreSQL tests cannot run (TEXTSECURE_STRICT=1): {reason}")
    raise pytest.skip.Exception(reason)


_live: set[PgCluster] = set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Stop every live cluster, then die of SIGTERM as if this handler did not exist."""
    for cluster in list(_live):
        cluster.stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    # Only where nobody else handles SIGTERM, and only from the main thread (Python's rule).
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _traversable_by_others(path: Path) -> bool:
    """Whether every directory from ``/`` down to ``path`` can be entered by any user."""
    for d in (path, *path.parents):
        try:
            mode = d.stat().st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
    return True


class PgCluster:
    """One temporary PostgreSQL cluster: ``start()``, use :attr:`dsn`, ``stop()``.

    Also a context manager. ``port`` only names the socket file (``.s.PGSQL.<port>``);
    nothing listens on TCP.
    """

    def __init__(
        self,
        *,
        bindir: Path | None = None,
        port: int | None = None,
        max_connections: int = 200,
        start_timeout: float = 60.0,
    ) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PgUnavailable(
                "PostgreSQL is not installed (no initdb/pg_ctl in "
                f"{PG_LIB_DIR}/*/bin or on PATH): apt-get install postgresql"
            )
        self.bindir = found
        self.port = port if port is not None else random.randint(20000, 59999)
        self.max_connections = max_connections
        self.start_timeout = start_timeout
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable(
                    "running as root, but there is no 'postgres' OS user to run PostgreSQL as"
                ) from None
        self._lock = threading.RLock()  # RLock: the SIGTERM handler may stop mid-start
        self._root: Path | None = None
        self._started = False

    # -- paths ------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The temporary directory (data, log and socket); only valid after ``start()``."""
        if self._root is None:
            raise PgClusterError("the cluster is not started")
        return self._root

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def dsn_for(self, dbname: str) -> str:
        """The psycopg 3 connection string for database ``dbname`` (as superuser postgres)."""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user=postgres"

    @property
    def dsn(self) -> str:
        """The connection string of the ``postgres`` database."""
        return self.dsn_for("postgres")

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """Create an empty database ``t_<random>``, yield its connection string, drop it
        (``WITH (FORCE)``: connections still open to it are terminated). Needs psycopg."""
        import psycopg
        from psycopg import sql

        name = f"t_{secrets.token_hex(8)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.dsn_for(name)
        finally:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    # -- running the tools --------------------------------------------------

    def _run(self, tool: str, args: Sequence[str], timeout: float) -> str:
        cmd = [str(self.bindir / tool), *args]
        as_user = self._user  # None: run as ourselves
        env = dict(os.environ)
        env.pop("PGDATA", None)
        env["LC_ALL"] = "C"
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                user=None if as_user is None else as_user.pw_uid,
                group=None if as_user is None else as_user.pw_gid,
                extra_groups=None if as_user is None else [],
            )
        except subprocess.TimeoutExpired as e:
            raise PgClusterError(f"{tool} timed out after {timeout:.0f}s{self._log_tail()}") from e
        except OSError as e:
            raise PgClusterError(f"cannot run {cmd[0]}: {e}") from e
        out = f"{proc.stdout}{proc.stderr}"
        if proc.returncode != 0:
            raise PgClusterError(
                f"{tool} {' '.join(args[:1])} failed (rc={proc.returncode}): "
                f"{out.strip()}{self._log_tail()}"
            )
        return out

    def _log_tail(self, limit: int = 3000) -> str:
        try:
            text = self.log_file.read_text("utf-8", "replace")
        except (OSError, PgClusterError):
            return ""
        return f"\n--- server log ---\n{text[-limit:]}" if text else ""

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> PgCluster:
        """initdb + pg_ctl start; returns ``self``. Cleans up after itself if it fails."""
        with self._lock:
            if self._root is not None:
                raise PgClusterError("the cluster was started already")
            base = Path(tempfile.gettempdir())
            if self._user is not None and not _traversable_by_others(base):
                base = Path("/tmp")  # the postgres user must be able to reach its directory
            self._root = Path(tempfile.mkdtemp(prefix="textsecure-pg-", dir=base))
            atexit.register(self.stop)
            _live.add(self)
            _install_sigterm_handler()
            try:
                self._start()
            except BaseException:
                self._stop_locked()
                raise
            self._started = True
        return self

    def _start(self) -> None:
        root = self.root
        self.socket_dir.mkdir(mode=0o700)
        if self._user is not None:
            for p in (root, self.socket_dir):
                os.chown(p, self._user.pw_uid, self._user.pw_gid)
        self._run(
            "initdb",
            [
                "-D",
                str(self.data_dir),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )
        settings = {
            "listen_addresses": "''",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": str(self.max_connections),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        conf = "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as f:
            f.write(f"\n# textsecure tests (tests/pgcluster.py)\n{conf}")
        self._run(
            "pg_ctl",
            [
                "start",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(self.start_timeout)),
            ],
            timeout=self.start_timeout + 30,
        )

    def stop(self) -> None:
        """pg_ctl stop -m immediate, then remove the directory. Idempotent."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        root = self._root
        if root is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", ["stop", "-D", str(self.data_dir), "-m", "immediate"], 60)
                except PgClusterError:
                    pass  # removing the data directory below still makes the server give up
        finally:
            shutil.rmtree(root, ignore_errors=True)
            self._root = None
            self._started = False
            atexit.unregister(self.stop)
            _live.discard(self)

    @property
    def running(self) -> bool:
        return self._started

    def __enter__(self) -> PgCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._root if self._root is not None else "not started"
        return f"PgCluster({self.bindir}, port={self.port}, {where})"
