"""Search across institutions: what the portal gives up against one collection holding everything,
and what it costs.

    python benchmarks/federation.py [--n 1200] [--queries 200] [--members 5] [--member-size 10000]
                                    [--latency-queries 100] [--timeout 1.0]

1. Parity (wikiart_styles): ``--n`` paintings split row by row into three members, a head trained on
   the whole (style labels, DEFAULT_FEATURES) shared by all; ``--queries`` other paintings uploaded as
   queries. Top-10 overlap of the portal with the whole collection on the head's aspect
   (``aspect=learned``), with exact (flat) and approximate (HNSW) indexes, and of the default mix of
   pretrained aspects (each member fits its own PCA).
2. Latency: ``--members`` member servers of ``--member-size`` artworks each (features drawn around
   class centres under the real extractor ids: index sizes are real, contents synthetic) and a portal,
   as processes on 127.0.0.1. p50/p95 of an image-upload search on the portal (decode and encode
   there, fan-out, merge) against each member's own image-upload search.
3. A member that never answers (a socket that accepts and stays silent): the portal's search time
   with it, against the ``--timeout`` it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from _common import RESULTS, dataset, print_table, write_result

from artlens.api import ApiSettings, create_app
from artlens.api.routes.federation import install_member
from artlens.api.server import BackgroundServer
from artlens.collection import Collection
from artlens.config import CollectionConfig, IndexConfig
from artlens.features import create_extractor
from artlens.federated.processes import answers_health, wait_ready
from artlens.federation import (
    Member,
    MemberEntry,
    Portal,
    load_member_settings,
    token_sha256,
)
from artlens.models import HeadConfig, InputSpec, create_head
from artlens.models.inputs import gather_features
from artlens.progress import Reporter
from artlens.search import SearchEngine
from artlens.train.config import TrainConfig
from artlens.train.run import train_learned_aspect

TOKEN = "benchmark-token"
ASPECTS = ("content", "style", "colour")


def write_member_toml(path: Path, name: str, head: Path) -> Path:
    path.write_text(f'name = "{name}"\nhead = "{head}"\ntokens_sha256 = ["{token_sha256(TOKEN)}"]\n'
                    'expose = ["style"]\nthumbnails = true\n')
    return path


def image_config(kind: str) -> CollectionConfig:
    base = CollectionConfig()
    return dataclasses.replace(base, aspects={a: base.aspects[a] for a in ASPECTS},
                               weights={a: w for a, w in base.weights.items() if a in ASPECTS},
                               index=IndexConfig(kind=kind))


def write_folder(root: Path, data: Path, rows: list[dict]) -> Path:
    (root / "images").mkdir(parents=True)
    out = []
    for i, row in enumerate(rows):
        target = root / "images" / f"{i}.jpg"
        shutil.copy(data / row["path"], target)
        out.append({"path": f"images/{i}.jpg", "style": row["style"]})
    with open(root / "labels.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "style"])
        writer.writeheader()
        writer.writerows(out)
    return root


# -- 1. parity --------------------------------------------------------------------------------------
def parity(args, work: Path, reporter: Reporter) -> list[dict]:
    data = dataset("wikiart_styles")
    with open(data / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = np.random.default_rng(0).permutation(len(rows))
    chosen = [rows[i] for i in order[: args.n]]
    queries = [data / rows[i]["path"] for i in order[args.n: args.n + args.queries]]
    whole = Collection.open(work / "whole", create=True, config=image_config("flat"))
    t = time.perf_counter()
    whole.ingest(write_folder(work / "pictures", data, chosen), work / "pictures" / "labels.csv", reporter=reporter)
    print(f"ingested {len(whole.catalog)} paintings in {time.perf_counter() - t:.0f} s", flush=True)
    run = train_learned_aspect(whole, "style", features=("content", "style"), config=TrainConfig(epochs=20),
                               out=work / "head.pt")
    print(f"head {run.head.id}: test {run.test}", flush=True)
    parts = []
    for m in range(3):
        coll = Collection.open(work / f"member-{m}", create=True, config=image_config("flat"))
        whole.cache.copy_into(coll.cache)
        folder = write_folder(work / f"pictures-{m}", data, [r for i, r in enumerate(chosen) if i % 3 == m])
        coll.ingest(folder, folder / "labels.csv")
        parts.append(coll)
    out = []
    for kind in ("flat", "hnsw"):
        collections = [whole, *parts]
        for coll in collections:
            coll.config = dataclasses.replace(coll.config, index=IndexConfig(kind=kind))
            coll.update_indexes(rebuild=True)
        whole.attach_head(run.head)
        servers, entries = [], []
        for m, coll in enumerate(parts):
            toml = write_member_toml(work / f"member-{m}.toml", f"Member {m}", work / "head.pt")
            app = create_app(ApiSettings(collection=coll.root), collection=coll, warm_up=False)
            member = Member.open(coll, load_member_settings(toml))
            member.collection.attach_head(member.head)  # this kind of index for the learned aspect too
            install_member(app, member)
            server = BackgroundServer(app)
            entries.append(MemberEntry(f"Member {m}", server.__enter__(), TOKEN))
            servers.append(server)
        engine = SearchEngine(whole)
        portal = Portal(entries, head=run.head, timeout=30)
        overlaps = {"learned": [], "mixed": []}

        async def go():
            await portal.refresh()
            for q in queries:
                vectors = portal.encode_image(str(q))
                for name, options in (("learned", {"aspect": "learned"}), ("mixed", {"weights": whole.config.weights})):
                    got = await portal.search(vectors, 10, **options)
                    want = engine.search(image=str(q), k=10, **options)
                    got_keys = {(h["institution"], h["member_id"]) for h in got["results"]}
                    want_md5 = {h.id: whole.catalog.get(h.id).md5 for h in want.hits}
                    got_md5 = {parts[int(i[-1])].catalog.get(local).md5 for i, local in got_keys}
                    overlaps[name].append(len(got_md5 & set(want_md5.values())) / 10)
            await portal.aclose()

        asyncio.run(go())
        for server in servers:
            server.__exit__(None)
        for name, values in overlaps.items():
            out.append({"index": kind, "ranking": name, "queries": len(values), "top10_overlap": float(np.mean(values)),
                        "min_overlap": float(np.min(values))})
    return out


# -- 2. latency -------------------------------------------------------------------------------------
def synthetic_member(root: Path, n: int, seed: int, head_path: Path | None) -> Collection:
    """A member of ``n`` artworks whose features are drawn around 20 class centres under the real
    extractor ids (as tests/feature_collections.py does), indexed like a real collection."""
    rng = np.random.default_rng(seed)
    coll = Collection.open(root, create=True, config=image_config("auto"))
    keys = []
    with coll.catalog.transaction():
        for i in range(n):
            md5 = hashlib.md5(f"{seed}-{i}".encode()).hexdigest()
            art, _ = coll.catalog.add_file(f"/synthetic/{seed}/{i}.jpg", md5, 1000, 0, 224, 224)
            coll.catalog.set_metadata(art, {"style": f"style {i % 20}"})
            keys.append(md5)
    classes = np.arange(n) % 20
    centre_rng = np.random.default_rng(1234)  # the same centres at every member
    for name in coll.config.extractor_names():
        ex = create_extractor(name)
        centres = np.abs(centre_rng.standard_normal((20, ex.dim)))
        vectors = centres[classes] + 0.5 * np.abs(rng.standard_normal((n, ex.dim)))
        coll.cache.register(ex.id, ex.dim, {"synthetic": True})
        coll.cache.put(ex.id, keys, vectors.astype(np.float32))
    coll.update_indexes()
    return coll


def fitted_head(coll: Collection, path: Path):
    specs = []
    for name in ("effnet-lite0", "gram-block4+block5", "colour-hist"):
        ex = create_extractor(name)
        specs.append(InputSpec(name, ex.id, "image", ex.dim, reduce_dims=256 if ex.dim > 2048 else None))
    head = create_head("fusion", HeadConfig(tuple(specs), hidden=(512,), dim=256, dropout=0.0))
    features = gather_features(coll, head.config.inputs)
    head.fit_inputs(features.inputs, features.present)
    head.save(path)
    return head


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload_latencies(url: str, images: list[Path], repeat: int) -> np.ndarray:
    times = []
    with httpx.Client(timeout=60) as client:
        for i in range(repeat):
            data = images[i % len(images)].read_bytes()
            t = time.perf_counter()
            answer = client.post(url + "api/search", files={"image": ("q.jpg", data, "image/jpeg")}, data={"k": "10"})
            times.append((time.perf_counter() - t) * 1000)
            answer.raise_for_status()
    return np.asarray(times)


class BlackHole:
    """A member that accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)


def latency(args, work: Path) -> tuple[list[dict], list[dict]]:
    data = dataset("wikiart_styles")
    with open(data / "labels.csv", newline="") as fh:
        # distinct uploads: a server remembers recent uploads' vectors, a repeated one would not be encoded
        images = [data / r["path"] for r in list(csv.DictReader(fh))[-(args.latency_queries + 5):]]
    first = synthetic_member(work / "lat-0", args.member_size, 0, None)
    head = fitted_head(first, work / "lat-head.pt")
    members = [first] + [synthetic_member(work / f"lat-{m}", args.member_size, m, None) for m in range(1, args.members)]
    for coll in members:
        coll.close()
    procs, urls = [], []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for m, coll in enumerate(members):
            port = free_port()
            toml = write_member_toml(work / f"lat-{m}.toml", f"Member {m}", work / "lat-head.pt")
            procs.append(subprocess.Popen([sys.executable, "-m", "artlens", "serve", "-c", str(coll.root), "--member", str(toml),
                                           "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
            urls.append(f"http://127.0.0.1:{port}/")
        for url, proc in zip(urls, procs):
            wait_ready(lambda url=url: answers_health(url), f"the member at {url}", 600, proc)
        members_toml = work / "lat-MEMBERS.toml"
        members_toml.write_text("".join(f'[[member]]\nname = "Member {m}"\nurl = "{u}"\ntoken = "{TOKEN}"\n\n'
                                        for m, u in enumerate(urls)))
        port = free_port()
        portal_url = f"http://127.0.0.1:{port}/"
        procs.append(subprocess.Popen([sys.executable, "-m", "artlens", "portal", "--members", str(members_toml), "--head",
                                       str(work / "lat-head.pt"), "--port", str(port), "--timeout", "10"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait_ready(lambda: answers_health(portal_url), f"the portal at {portal_url}", 600, procs[-1])
        rows = []
        for name, url in [*((f"Member {m}", u) for m, u in enumerate(urls)), ("portal", portal_url)]:
            upload_latencies(url, images[-5:], 5)  # warm
            t = upload_latencies(url, images[: args.latency_queries], args.latency_queries)
            rows.append({"server": name, "artworks": args.member_size * (args.members if name == "portal" else 1),
                         "p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95))})
        # 3. a member that never answers, on top of the live ones
        hole = BlackHole()
        entries = [MemberEntry(f"Member {m}", u, TOKEN) for m, u in enumerate(urls)]
        silent = []
        for with_hole in (False, True):
            portal = Portal(entries + ([MemberEntry("Silent", hole.url, TOKEN)] if with_hole else []), head=head,
                            timeout=args.timeout)

            async def go(portal=portal):
                await portal.refresh()
                query = portal.encode_image(str(images[0]))
                times, statuses = [], set()
                for _ in range(10):
                    t = time.perf_counter()
                    answer = await portal.search(query, 10)
                    times.append((time.perf_counter() - t) * 1000)
                    statuses |= {m["status"] for m in answer["members"] if m["name"] == "Silent"}
                await portal.aclose()
                return np.asarray(times), statuses

            times, statuses = asyncio.run(go())
            silent.append({"members": f"{args.members} live" + (" + 1 silent" if with_hole else ""),
                           "timeout_ms": args.timeout * 1000, "p50_ms": float(np.percentile(times, 50)),
                           "max_ms": float(times.max()), "silent_status": ",".join(sorted(statuses)) or "-"})
        return rows, silent
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--member-size", type=int, default=10_000)
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="artlens-federation-"))
    result: dict = {"args": vars(args)}
    try:
        if not args.skip_parity:
            rows = parity(args, work, Reporter(progress=False))
            print("\nTop-10 overlap with one collection holding every member's works")
            print_table(rows, ["index", "ranking", "queries", "top10_overlap", "min_overlap"])
            result["parity"] = rows
        if not args.skip_latency:
            rows, silent = latency(args, work)
            print("\nImage-upload search latency (portal: decode + encode + fan-out + merge)")
            print_table(rows, ["server", "artworks", "p50_ms", "p95_ms"])
            slowest = max(r["p95_ms"] for r in rows if r["server"] != "portal")
            portal_p95 = next(r["p95_ms"] for r in rows if r["server"] == "portal")
            print(f"portal p95 - slowest member p95 = {portal_p95 - slowest:+.1f} ms (target <= +30 ms)")
            print("\nA member that never answers")
            print_table(silent, ["members", "timeout_ms", "p50_ms", "max_ms", "silent_status"])
            result.update(latency=rows, portal_minus_slowest_p95_ms=portal_p95 - slowest, silent_member=silent)
        previous = RESULTS / "federation.json"
        if (args.skip_parity or args.skip_latency) and previous.exists():  # keep the part not rerun
            kept = json.loads(previous.read_text())
            for key in ("parity",) if args.skip_parity else ("latency", "portal_minus_slowest_p95_ms", "silent_member"):
                if key in kept:
                    result[key] = kept[key]
            if args.skip_parity and "parity" in kept:
                result["args"].update(n=kept["args"]["n"], queries=kept["args"]["queries"])
        write_result("federation", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
