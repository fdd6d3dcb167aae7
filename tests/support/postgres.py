"""A throwaway PostgreSQL server for the test session (initdb + pg_ctl in a temp dir).

Runs as the unprivileged ``postgres`` user when the tests run as root (initdb refuses
root). Listens on 127.0.0.1 on a free port with trust auth, ``wal_level=logical`` so
the CDC tests can use logical replication.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def find_bindir() -> Path:
    explicit = os.environ.get("STRANGLER_PG_BINDIR")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 "
        "(apt-get install postgresql-15) or set STRANGLER_PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    user: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy/Django style URL."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq keyword DSN (psycopg2)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.dsn())
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def _as_unprivileged() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "postgres"], check=True
        )
        pw = pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_roots(tmp: Path) -> list[Path]:
    """Server directories left by test sessions that died without stopping them
    (killed from outside): the session that started each one is no longer running."""
    stale = []
    for root in sorted(tmp.glob("strangler-pg-*")):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # still being set up, or not ours to judge
        if not _alive(owner):
            stale.append(root)
    return stale


def reap_stale(bindir: Path) -> None:
    prefix, _, _ = _as_unprivileged()
    for root in stale_roots(Path(tempfile.gettempdir())):
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate",
             "-w", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(root, ignore_errors=True)


def start_server() -> PostgresServer:
    bindir = find_bindir()
    reap_stale(bindir)
    prefix, uid, gid = _as_unprivileged()
    root = Path(tempfile.mkdtemp(prefix="strangler-pg-"))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    if uid is not None and gid is not None:
        os.chown(root, uid, gid)
        root.chmod(0o700)
    server = PostgresServer(bindir=bindir, root=root, port=_free_port())
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(server.datadir), "-U", "postgres",
         "--auth=trust", "--encoding=UTF8", "--no-sync", "-A", "trust"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={server.port} "
        f"-c unix_socket_directories={root} -c wal_level=logical "
        "-c max_replication_slots=32 -c max_wal_senders=32 -c max_connections=200 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c timezone=UTC"
    )
    subprocess.run(
        [*prefix, str(bindir / "pg_ctl"), "-D", str(server.datadir), "-o", opts,
         "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
        check=True, stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.1)
    raise PostgresUnavailable(f"PostgreSQL did not accept connections; see {root}/server.log")


def stop_server(server: PostgresServer) -> None:
    prefix, _, _ = _as_unprivileged()
    subprocess.run(
        [*prefix, str(server.bindir / "pg_ctl"), "-D", str(server.datadir), "-m",
         "immediate", "-w", "stop"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    shutil.rmtree(server.root, ignore_errors=True)
