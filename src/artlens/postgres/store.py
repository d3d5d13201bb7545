"""A collection in one PostgreSQL schema: the location URL, the connections, the schema and its
version, the collection's generation counter and the writers' advisory lock.

    postgresql://USER[:PASSWORD]@HOST:PORT/DB?schema=NAME     (schema: default ``artlens``)

Any other query parameter is passed to libpq (``?host=/run/postgresql`` for a Unix socket,
``sslmode=require``, ...). Readers use autocommit connections, so they see every committed write
at once and never hold a transaction open; a writer makes its catalog and index changes in one
transaction on its own connection (readers see them all at its commit, or none), takes the
collection's advisory lock on another, and commits feature batches on a third (an interrupted
extraction resumes where it stopped, as with the folder backend).
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from artlens.errors import ArtlensError, CollectionError
from artlens.files import user_cache

SCHEMA_VERSION = 1
DEFAULT_SCHEMA = "artlens"
SCHEMES = ("postgresql://", "postgres://")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
INSTALL_HINT = "pip install 'artlens[postgres]' (psycopg 3 and pgvector's Python adapter)"

_TABLES = """
    CREATE TABLE IF NOT EXISTS info (key text PRIMARY KEY, value text NOT NULL);
    CREATE TABLE IF NOT EXISTS artworks (
        id bigserial PRIMARY KEY, md5 text NOT NULL UNIQUE, path text NOT NULL, size_bytes bigint NOT NULL,
        width integer NOT NULL, height integer NOT NULL, added_at double precision NOT NULL);
    CREATE TABLE IF NOT EXISTS files (
        path text PRIMARY KEY, artwork_id bigint NOT NULL REFERENCES artworks(id) ON DELETE CASCADE,
        size_bytes bigint NOT NULL, mtime_ns bigint NOT NULL);
    CREATE INDEX IF NOT EXISTS files_artwork ON files(artwork_id);
    CREATE TABLE IF NOT EXISTS metadata (
        artwork_id bigint NOT NULL REFERENCES artworks(id) ON DELETE CASCADE, key text NOT NULL, value text NOT NULL,
        PRIMARY KEY (artwork_id, key));
    CREATE INDEX IF NOT EXISTS metadata_key_value ON metadata(key, value);
    CREATE TABLE IF NOT EXISTS skipped (
        path text PRIMARY KEY, reason text NOT NULL, size_bytes bigint, mtime_ns bigint, at double precision NOT NULL);
    CREATE TABLE IF NOT EXISTS extractors (id text PRIMARY KEY, dim integer NOT NULL, info jsonb NOT NULL);
    CREATE TABLE IF NOT EXISTS features (
        extractor text NOT NULL, key text NOT NULL, dtype text NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (extractor, key));
    CREATE TABLE IF NOT EXISTS artifacts (name text PRIMARY KEY, data bytea NOT NULL, generation bigint NOT NULL);
    CREATE TABLE IF NOT EXISTS indexes (
        aspect text PRIMARY KEY, manifest jsonb NOT NULL, vectors text NOT NULL,
        mean bytea, components bytea, hasher bytea);
    CREATE TABLE IF NOT EXISTS retired (name text PRIMARY KEY, generation bigint NOT NULL);
"""


@dataclass(frozen=True)
class Location:
    """A parsed ``postgresql://`` location: libpq's connection string and the schema."""

    conninfo: str
    schema: str
    shown: str  # the URL without its password, for messages

    def __str__(self) -> str:
        return self.shown


def is_postgres(location) -> bool:
    """Whether a collection location names a PostgreSQL database (a path that went through
    ``pathlib.Path`` has lost one slash of ``postgresql://``: still one)."""
    text = str(location)
    return text.startswith(SCHEMES) or text.startswith(("postgresql:/", "postgres:/"))


def parse_location(location) -> Location:
    """``postgresql://USER@HOST:PORT/DB?schema=NAME`` -> Location; a URL without a database or with
    a schema name PostgreSQL would need quoting for is a one-line error."""
    text = str(location)
    for scheme in SCHEMES:
        bare = scheme[:-1]  # "postgresql:/"
        if text.startswith(bare) and not text.startswith(scheme):
            text = scheme + text[len(bare):]
    parts = urlsplit(text)
    database = parts.path.lstrip("/")
    example = "postgresql://artlens@db.example:5432/museum?schema=artlens"
    if not database:
        raise ArtlensError(f"the collection URL {_hide_password(text)} names no database",
                           f"give one after the host, e.g. {example}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA) or DEFAULT_SCHEMA
    if not _NAME.match(schema):
        raise ArtlensError(f"bad schema name {schema!r} in the collection URL",
                           "use lower-case letters, digits and underscores, e.g. ?schema=artlens")
    rest = [(k, v) for k, v in query if k != "schema"]
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return Location(conninfo, schema, _hide_password(text))


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{quote(parts.username or '')}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _psycopg():
    try:
        import psycopg
        from pgvector.psycopg import register_vector  # noqa: F401 (checks the adapter is there)
    except ImportError as exc:
        raise ArtlensError(f"a postgresql:// collection needs psycopg and pgvector ({exc.name} is not installed)",
                           INSTALL_HINT) from None
    return psycopg


def _application_name() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    line = " ".join(["artlens" if name in ("__main__.py", "-m", "-c") else name, *sys.argv[1:]])
    return line[:60]


def connect(location: Location, schema_ready: bool = True):
    """A new autocommit connection to ``location`` with the schema on its search path and pgvector's
    types registered; every failure to connect is a one-line CollectionError saying what to do."""
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(location.conninfo, autocommit=True, connect_timeout=10,
                               application_name=_application_name())
    except psycopg.OperationalError as exc:
        raise _connect_error(location, str(exc)) from None
    conn.execute(f"SET search_path TO {location.schema}, public")
    if schema_ready:
        _register(conn, location)
    return conn


def _register(conn, location: Location) -> None:
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
    except Exception:  # psycopg.ProgrammingError: the vector type is unknown
        conn.close()
        raise _no_extension(location) from None


def _no_extension(location: Location) -> CollectionError:
    return CollectionError(f"the database of {location} has no `vector` extension (pgvector)",
                           "install pgvector on the server and run `CREATE EXTENSION vector;` in that database "
                           "(as its owner or a superuser)")


def _connect_error(location: Location, message: str) -> CollectionError:
    first = (message.strip().splitlines() or ["?"])[-1 if "FATAL" not in message else 0]
    low = message.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return CollectionError(f"PostgreSQL refused the password for {location}",
                               "check the user and password in the URL (or ~/.pgpass, $PGPASSWORD)")
    if "does not exist" in low and "database" in low:
        return CollectionError(f"the database of {location} does not exist",
                               "create it first (createdb NAME), or name an existing one in the URL")
    if "connection refused" in low or "could not connect" in low or "timeout" in low \
            or "could not translate host name" in low or "no such file" in low:
        return CollectionError(f"cannot reach the PostgreSQL server of {location}",
                               "check the host and port, and that the server is running and accepts connections")
    return CollectionError(f"cannot connect to {location}: {first.strip()}", "check the collection URL")


class Store:
    """One collection's schema: opened (checked) or created, with the connection its readers use."""

    def __init__(self, location: Location, conn):
        self.location = location
        self.conn = conn  # autocommit; a writer opens a transaction on it for its scope
        self._features = None
        self._lock_conn = None
        self.ef_search: int | None = None  # hnsw.ef_search as set on ``conn`` (None: the server's default)

    @classmethod
    def open(cls, location, create: bool = False, read_only: bool = False) -> "Store":
        location = location if isinstance(location, Location) else parse_location(location)
        conn = connect(location, schema_ready=False)
        try:
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (location.schema,)).fetchone()
            has_info = exists and conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'info'", (location.schema,)).fetchone()
            if not has_info:
                if not create or read_only:
                    raise CollectionError(f"no artlens collection at {location}",
                                          f"create one with `artlens ingest DIR --collection '{location}'`")
                cls._create(conn, location)
            _register(conn, location)
            store = cls(location, conn)
            store.check_version()
            return store
        except BaseException:
            if not conn.closed:
                conn.close()
            raise

    @staticmethod
    def _create(conn, location: Location) -> None:
        has_vector = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        if not has_vector:
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except Exception:  # not allowed to: the administrator installs it
                raise _no_extension(location) from None
        with conn.transaction():
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {location.schema}")
            conn.execute(_TABLES)
            conn.execute("INSERT INTO info(key, value) VALUES ('schema_version', %s), ('generation', '0'), "
                         "('created_at', %s) ON CONFLICT (key) DO NOTHING", (str(SCHEMA_VERSION), str(time.time())))

    def check_version(self) -> int:
        row = self.conn.execute("SELECT value FROM info WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise CollectionError(
                f"the collection at {self.location} has schema version {version}, newer than this artlens "
                f"({SCHEMA_VERSION})", "upgrade artlens (pip install -U 'artlens[postgres]'), which migrates nothing back")
        if version < SCHEMA_VERSION:
            raise CollectionError(
                f"the collection at {self.location} has schema version {version}, this artlens reads {SCHEMA_VERSION}",
                "copy it into a new schema with this artlens: artlens collection copy OLD NEW")
        return version

    # -- connections ----------------------------------------------------------------------------
    def features_connection(self):
        """The connection feature batches commit on (each on its own, outside a writer's transaction)."""
        if self._features is None:
            self._features = connect(self.location)
        return self._features

    def close(self) -> None:
        for conn in (self.conn, self._features, self._lock_conn):
            if conn is not None and not conn.closed:
                conn.close()

    # -- the generation counter -----------------------------------------------------------------
    def generation(self) -> int:
        row = self.conn.execute("SELECT value FROM info WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def set_generation(self, number: int) -> None:
        self.conn.execute("UPDATE info SET value = %s WHERE key = 'generation'", (str(int(number)),))

    # -- artifacts (settings, heads) ------------------------------------------------------------
    def artifact(self, name: str) -> bytes | None:
        row = self.conn.execute("SELECT data FROM artifacts WHERE name = %s", (name,)).fetchone()
        return bytes(row[0]) if row else None

    def artifact_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM artifacts ORDER BY name")]

    def put_artifact(self, name: str, data: bytes, generation: int) -> None:
        self.conn.execute("INSERT INTO artifacts(name, data, generation) VALUES (%s, %s, %s) ON CONFLICT (name) "
                          "DO UPDATE SET data = EXCLUDED.data, generation = EXCLUDED.generation",
                          (name, data, int(generation)))

    # -- the writers' advisory lock -------------------------------------------------------------
    @property
    def lock_key(self) -> str:
        return f"artlens:{self.location.schema}"

    def holder(self) -> str:
        row = self.conn.execute(
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1", (self.lock_key,)).fetchone()
        if row is None:
            return "another process"
        since = row[3].strftime("%H:%M:%S") if row[3] else "?"
        where = f" on {row[2]}" if row[2] else ""
        return f"a client{where} ({row[1] or '?'}, since {since}; server process {row[0]})"

    def acquire_lock(self, wait: bool = False, notice=None) -> None:
        """The collection's one-writer lock (a session-level advisory lock on a connection of its own,
        so a crashed writer's lock goes with its connection); held elsewhere: a one-line error naming
        the holder, or with ``wait`` a wait."""
        if self._lock_conn is None or self._lock_conn.closed:
            self._lock_conn = connect(self.location)
        got = self._lock_conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.lock_key,)).fetchone()[0]
        if got:
            return
        who = self.holder()
        if not wait:
            raise CollectionError(f"{self.location} is being written by {who}",
                                  "wait for it to finish, or pass --wait to start when it has")
        if notice:
            notice(f"waiting for {who} to finish writing {self.location}")
        self._lock_conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (self.lock_key,))

    def release_lock(self) -> None:
        if self._lock_conn is not None and not self._lock_conn.closed:
            self._lock_conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.lock_key,))

    # -- retired vector tables ------------------------------------------------------------------
    def retire(self, table: str, generation: int) -> None:
        self.conn.execute("INSERT INTO retired(name, generation) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                          (table, int(generation)))

    def drop_retired(self, before: int) -> None:
        """Drop the vector tables replaced before generation ``before`` (readers of the generation
        just replaced may still be reading the others)."""
        for (name,) in self.conn.execute("SELECT name FROM retired WHERE generation < %s", (int(before),)).fetchall():
            self.conn.execute(f"DROP TABLE IF EXISTS {name}")
            self.conn.execute("DELETE FROM retired WHERE name = %s", (name,))


def side_folder(location: Location) -> Path:
    """A local folder for what a collection keeps beside its data (thumbnails, probe caches):
    USER_CACHE/postgres/HOST-PORT-DB-SCHEMA (``artlens.files.user_cache``)."""
    parts = urlsplit(location.conninfo)
    host = (parts.hostname or dict(parse_qsl(parts.query)).get("host", "local")).strip("/").replace("/", "_")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{host}-{parts.port or 5432}-{parts.path.lstrip('/')}-{location.schema}")
    return user_cache() / "postgres" / name


class AdvisoryLock:
    """A store's one-writer lock (its advisory lock) as a collection's writing scope holds a lock:
    ``acquire(wait, notice)`` and ``release()``, as the folder's ``storage.WriterLock``."""

    def __init__(self, store: Store):
        self.store = store

    def acquire(self, wait: bool = False, notice=None) -> bool:
        self.store.acquire_lock(wait, notice)
        return True

    def release(self) -> None:
        self.store.release_lock()
