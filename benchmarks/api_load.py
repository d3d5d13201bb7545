"""Load and latency of the REST API on localhost, against a 10k-artwork collection.

    python benchmarks/api_load.py [--n 10000] [--clients 50] [--requests 1000] [--workdir DIR]

1. Builds (once, then reused from --workdir) a collection of ``--n`` artworks: the 360 drawn demo
   pictures, ingested for real, plus synthetic neighbours of them (jittered copies of their feature
   vectors and metadata, their files linked to the real pictures) so the indexes hold --n items.
2. Starts ``artlens serve`` on a free port in a subprocess (stopped by its process id at the end).
3. Load: ``--clients`` concurrent clients send ``--requests`` searches in all (text, more-like-this,
   liked-list recommendations and small image uploads); every answer must be 200, or 429 (the
   server's queueing signal, counted apart).
4. Crowd: ``--crowd`` concurrent clients (200), each from its own address, send ``--crowd-requests``
   searches each, half of them uploads of distinct pictures (nothing cached): p50/p95 of the answered
   ones, the share of 429s (rate limit or full image queue), how fast a 429 comes and its Retry-After.
   Each client is told apart by ``X-Forwarded-For``, which the server trusts from localhost as from
   a reverse proxy, so that the per-client rate limit sees 200 clients and not one.
5. Latency, one client at a time: image-upload search of distinct 1-megapixel JPEGs (decode + feature
   extraction + search, nothing cached) and text search of distinct texts; with the server's own
   time per request (``took_ms``) and the CPU time it spent per request, which tells the work from
   the waiting for a core on a shared machine.

Bounded in count and time (--max-seconds); prints a table and writes results/api_load.json.
Targets: 0 errors under load; upload p95 <= 300 ms; text p95 <= 50 ms (2 cores); in the crowd, 0
errors, a Retry-After on every 429, and a 429 within 1 s (p95) rather than a wait without a signal.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import print_table, write_result
from PIL import Image, ImageFilter

from artlens.progress import Reporter

TEXTS = ["blue waves over a landscape", "dotted portrait", "still life with fruit", "a quiet evening sea",
         "grid of red squares", "concentric circles in gold", "a wash of soft colours", "stormy sky at night",
         "portrait of an old man", "mountains in the morning", "bold brush strokes", "a vase of flowers"]


# -- the collection --------------------------------------------------------------------------------
def build_collection(workdir: Path, n: int, seed: int) -> Path:
    """A collection of ``n`` artworks in ``workdir/collection-N`` (made once)."""
    from artlens.collection import Collection
    from artlens.demo.generate import generate_demo_collection
    from artlens.errors import CollectionError
    from artlens.features import create_extractor
    from artlens.features.extract import artwork_text, text_key

    root = workdir / f"collection-{n}"
    if (root / "READY").exists():
        try:  # built by this artlens? (an extractor's new version needs a rebuild)
            coll = Collection.open(root)
            for aspect in coll.config.aspects:
                coll.index(aspect)
            coll.close()
            return root
        except CollectionError as exc:
            print(f"rebuilding the collection: {exc.message}")
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    labels = generate_demo_collection(workdir / "pictures", n=360, seed=seed, reporter=Reporter())
    coll = Collection.open(root, create=True)
    coll.ingest(labels.parent, labels, reporter=Reporter())
    print(f"demo collection ingested in {time.perf_counter() - t:.0f} s; adding {n - len(coll.catalog)} neighbours")
    rng = np.random.default_rng(seed)
    base_ids = coll.catalog.ids()
    bases = coll.catalog.get_many(base_ids)
    texts = coll.texts()
    links = workdir / f"links-{n}"
    links.mkdir(exist_ok=True)
    extractors = [create_extractor(spec.extractor) for spec in coll.config.aspects.values()]
    new = []  # (md5, base id, text)
    with coll.catalog.transaction():
        for i in range(n - len(base_ids)):
            base = bases[int(rng.choice(base_ids))]
            md5 = hashlib.md5(f"synthetic-{seed}-{i}".encode()).hexdigest()
            link = links / f"{i:06d}.jpg"
            if not link.exists():
                os.symlink(base.path, link)
            artwork_id, _ = coll.catalog.add_file(str(link), md5, base.size_bytes, 0, base.width, base.height)
            meta = dict(base.metadata, title=f"{base.metadata.get('title', 'Untitled')} (study {i + 1})")
            coll.catalog.set_metadata(artwork_id, meta)
            new.append((md5, base.id, artwork_text(meta, coll.config.text_columns)))
    for ex in extractors:
        modality_text = ex.modality == "text"
        base_keys = {i: (text_key(texts[i]) if modality_text else bases[i].md5) for i in base_ids if not modality_text or i in texts}
        vectors, found = coll.cache.get(ex.id, [base_keys[i] for i in base_keys])
        by_base = dict(zip(np.array(list(base_keys))[found], vectors))
        keys, rows = [], []
        for md5, base_id, text in new:
            if base_id not in by_base or (modality_text and not text):
                continue
            v = by_base[base_id].astype(np.float32)
            rows.append(v + rng.normal(0, 0.15 * (np.abs(v).mean() + 1e-6), v.shape).astype(np.float32))
            keys.append(text_key(text) if modality_text else md5)
        for start in range(0, len(keys), 2000):
            coll.cache.put(ex.id, keys[start : start + 2000], np.stack(rows[start : start + 2000]), ex.store_dtype)
    print("indexing", coll.update_indexes(rebuild=True))
    coll.close()
    (root / "READY").write_text("ok")
    print(f"collection of {n} artworks ready in {time.perf_counter() - t:.0f} s")
    return root


# -- the server ------------------------------------------------------------------------------------
def start_server(collection: Path, workdir: Path, timeout: float) -> tuple[subprocess.Popen, str]:
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "--collection", str(collection), "--port", "0",
                             "--thumbnails", str(workdir / "thumbnails")], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"serving at (http://\S+/)", (workdir / "server.log").read_text())
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- requests --------------------------------------------------------------------------------------
def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def megapixel_jpegs(pictures: list[Path], count: int, seed: int) -> list[bytes]:
    """Distinct 1000x1000 JPEGs (about 1 MP), photo-like: an upscaled picture, blurred and noised."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        image = Image.open(pictures[i % len(pictures)]).convert("RGB").resize((1000, 1000), Image.BICUBIC)
        image = image.filter(ImageFilter.GaussianBlur(1.2))
        noisy = np.clip(np.asarray(image, np.int16) + rng.integers(-12, 13, (1000, 1000, 3)), 0, 255).astype(np.uint8)
        out.append(jpeg(Image.fromarray(noisy)))
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far (Linux), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_ms_per_request(pid: int, run) -> tuple[object, float | None]:
    """``run()``'s result and the server's CPU milliseconds per request it made: the work itself,
    without the waiting for a core that a busy machine adds to the latency."""
    before = cpu_seconds(pid)
    result = run()
    after = cpu_seconds(pid)
    count = len(result[0]) + result[2]
    per = round((after - before) * 1000 / count, 1) if before is not None and after is not None and count else None
    return result, per


def percentiles(ms: list[float]) -> dict:
    a = np.asarray(ms) if ms else np.zeros(1)
    return {"count": len(ms), "p50_ms": round(float(np.percentile(a, 50)), 1), "p95_ms": round(float(np.percentile(a, 95)), 1),
            "max_ms": round(float(a.max()), 1)}


async def load_test(url: str, ids: list[int], small_images: list[bytes], clients: int, total: int, deadline: float) -> dict:
    import httpx

    rng = random.Random(7)
    plan = []
    for i in range(total):
        r = rng.random()
        if r < 0.4:
            plan.append(("text", {"data": {"text": f"{rng.choice(TEXTS)} {i % 50}", "k": "24"}}))
        elif r < 0.7:
            plan.append(("id", {"data": {"id": str(rng.choice(ids)), "k": "24"}}))
        elif r < 0.9:
            plan.append(("liked", {"data": {"liked": [str(x) for x in rng.sample(ids, 3)], "k": "24"}}))
        else:
            plan.append(("upload", {"files": {"image": ("q.jpg", rng.choice(small_images), "image/jpeg")}, "data": {"k": "24"}}))
    queue: asyncio.Queue = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    times: dict[str, list[float]] = {}
    errors: list[str] = []

    refused = 0

    async def client(http: httpx.AsyncClient, number: int) -> None:
        nonlocal refused
        while not queue.empty() and time.monotonic() < deadline:
            kind, request = queue.get_nowait()
            t = time.perf_counter()
            try:
                response = await http.post(url + "api/search", headers=client_address(number), **request)
                if response.status_code == 429:
                    refused += 1
                    continue
                ok = response.status_code == 200 and "results" in response.json()
                if not ok:
                    errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")
            except Exception as exc:  # noqa: BLE001 - every failure counts
                errors.append(f"{kind} at {time.perf_counter() - start:.1f} s after {(time.perf_counter() - t):.1f} s: "
                              f"{type(exc).__name__}: {exc}")
                continue
            times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    wall = time.perf_counter() - start
    done = sum(len(v) for v in times.values())
    every = [t for v in times.values() for t in v]
    return {"clients": clients, "requests": total, "completed": done, "refused_429": refused, "errors": len(errors),
            "error_samples": errors[:5],
            "seconds": round(wall, 1), "requests_per_s": round(done / wall, 1), "all": percentiles(every),
            "by_kind": {k: percentiles(v) for k, v in sorted(times.items())}}


def client_address(number: int) -> dict[str, str]:
    """The header that makes client ``number`` a client of its own (10.x.y.z) to the server's limits."""
    return {"X-Forwarded-For": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"}


def distinct_uploads(pictures: list[Path], count: int, seed: int) -> list[bytes]:
    """``count`` different small JPEGs (a picture with a few pixels changed): none is in the server's cache."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for i in range(count):
        pixels = np.asarray(Image.open(pictures[i % len(pictures)]).convert("RGB").resize((256, 256))).copy()
        pixels[rng.integers(0, 256, 8), rng.integers(0, 256, 8)] = rng.integers(0, 256, (8, 3))
        out.append(jpeg(Image.fromarray(pixels), quality=85))
    return out


async def crowd_test(url: str, ids: list[int], uploads: list[bytes], clients: int, per_client: int,
                     deadline: float) -> dict:
    """``clients`` at once, each its own address, each sending ``per_client`` searches (every other
    one an upload of a distinct picture, the others text or more-like-this): latency of the answered
    requests, the share of 429s, how fast they come and the Retry-After they carry."""
    import httpx

    rng = random.Random(11)
    answered: dict[str, list[float]] = {}
    refused: dict[str, list[float]] = {}
    retry_after: list[int] = []
    errors: list[str] = []
    pending = list(uploads)

    async def client(http: httpx.AsyncClient, number: int) -> None:
        for i in range(per_client):
            if time.monotonic() > deadline:
                return
            if i % 2 == 0 and pending:
                kind, request = "upload", {"files": {"image": ("q.jpg", pending.pop(), "image/jpeg")}, "data": {"k": "24"}}
            elif rng.random() < 0.5:
                kind, request = "text", {"data": {"text": f"{rng.choice(TEXTS)} {number}-{i}", "k": "24"}}
            else:
                kind, request = "id", {"data": {"id": str(rng.choice(ids)), "k": "24"}}
            t = time.perf_counter()
            try:
                response = await http.post(url + "api/search", headers=client_address(number), **request)
            except Exception as exc:  # noqa: BLE001 - every failure counts
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            ms = (time.perf_counter() - t) * 1000
            if response.status_code == 200:
                answered.setdefault(kind, []).append(ms)
            elif response.status_code == 429:
                refused.setdefault(kind, []).append(ms)
                if response.headers.get("retry-after", "").isdigit():
                    retry_after.append(int(response.headers["retry-after"]))
            else:
                errors.append(f"{kind}: HTTP {response.status_code} {response.text[:200]}")

    start = time.perf_counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http, n) for n in range(clients)))
    wall = time.perf_counter() - start
    kinds = sorted(set(answered) | set(refused))
    sent = sum(len(v) for v in answered.values()) + sum(len(v) for v in refused.values()) + len(errors)
    n_refused = sum(len(v) for v in refused.values())
    return {"clients": clients, "requests": sent, "seconds": round(wall, 1), "errors": len(errors), "error_samples": errors[:5],
            "refused_429": n_refused, "share_429": round(n_refused / max(1, sent), 3),
            "retry_after_on_every_429": len(retry_after) == n_refused,
            "retry_after_s": {"min": min(retry_after, default=None), "max": max(retry_after, default=None)},
            "answered": percentiles([t for v in answered.values() for t in v]),
            "refused": percentiles([t for v in refused.values() for t in v]),
            "by_kind": {k: {"answered": percentiles(answered.get(k, [])), "refused_429": len(refused.get(k, [])),
                            "share_429": round(len(refused.get(k, [])) / max(1, len(answered.get(k, [])) + len(refused.get(k, []))), 3),
                            "refused_p95_ms": percentiles(refused.get(k, []))["p95_ms"]} for k in kinds}}


def sequential(url: str, requests: list[dict], deadline: float) -> tuple[list[float], list[float], int]:
    """One request at a time: client-side latencies, the server's own ``took_ms``, and the errors."""
    import httpx

    times, server, errors = [], [], 0
    with httpx.Client(timeout=120) as http:
        for request in requests:
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            response = http.post(url + "api/search", **request)
            elapsed = (time.perf_counter() - t) * 1000
            if response.status_code == 200:
                times.append(elapsed)
                server.append(response.json()["took_ms"])
            else:
                errors += 1
    return times, server, errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="artworks in the collection")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--crowd", type=int, default=200, help="concurrent clients of the crowd phase (0: skip it)")
    parser.add_argument("--crowd-requests", type=int, default=4, help="searches per crowd client")
    parser.add_argument("--uploads", type=int, default=40, help="sequential 1 MP upload searches")
    parser.add_argument("--texts", type=int, default=200, help="sequential text searches")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "artlens-api-load")
    parser.add_argument("--max-seconds", type=float, default=1200, help="stop every phase after this long in all")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    deadline = start + args.max_seconds

    collection = build_collection(args.workdir, args.n, args.seed)
    from artlens.collection import Collection

    coll = Collection.open(collection)
    ids = coll.catalog.ids()
    pictures = sorted((args.workdir / "pictures" / "images").glob("*.jpg"))
    coll.close()
    small = [p.read_bytes() for p in pictures[:40]]
    big = megapixel_jpegs(pictures, args.uploads + 3, args.seed)

    proc, url = start_server(collection, args.workdir, timeout=300)
    try:
        print(f"server at {url}; warming up")
        sequential(url, [{"data": {"text": "warm up"}}, {"files": {"image": ("w.jpg", big[-1], "image/jpeg")}}], deadline)
        load = asyncio.run(load_test(url, ids, small, args.clients, args.requests, deadline))
        crowd = None
        if args.crowd:
            crowd_uploads = distinct_uploads(pictures, args.crowd * ((args.crowd_requests + 1) // 2), args.seed)
            crowd = asyncio.run(crowd_test(url, ids, crowd_uploads, args.crowd, args.crowd_requests, deadline))
        (uploads, upload_server, upload_errors), upload_cpu = cpu_ms_per_request(proc.pid, lambda: sequential(
            url, [{"files": {"image": (f"{i}.jpg", b, "image/jpeg")}, "data": {"k": "24"}} for i, b in enumerate(big[: args.uploads])],
            deadline))
        (texts, text_server, text_errors), text_cpu = cpu_ms_per_request(proc.pid, lambda: sequential(
            url, [{"data": {"text": f"{TEXTS[i % len(TEXTS)]} number {i}", "k": "24"}} for i in range(args.texts)], deadline))
    finally:
        stop_server(proc)

    upload_stats = percentiles(uploads) | {"errors": upload_errors, "jpeg_kib": round(np.mean([len(b) for b in big]) / 1024),
                                           "server_p95_ms": percentiles(upload_server)["p95_ms"], "server_cpu_ms": upload_cpu}
    text_stats = percentiles(texts) | {"errors": text_errors, "server_p95_ms": percentiles(text_server)["p95_ms"],
                                       "server_cpu_ms": text_cpu}
    rows = [{"phase": f"load ({args.clients} clients): {kind}", **v} for kind, v in load["by_kind"].items()]
    rows.append({"phase": f"load ({args.clients} clients): all", **load["all"]})
    if crowd:
        for kind, v in crowd["by_kind"].items():
            rows.append({"phase": f"crowd ({args.crowd} clients): {kind}, answered", **v["answered"],
                         "share_429": v["share_429"], "refused_p95_ms": v["refused_p95_ms"]})
        rows.append({"phase": f"crowd ({args.crowd} clients): all, answered", **crowd["answered"], "share_429": crowd["share_429"],
                     "refused_p95_ms": crowd["refused"]["p95_ms"]})
    rows.append({"phase": "upload 1 MP JPEG, sequential", **upload_stats})
    rows.append({"phase": "text, sequential", **text_stats})
    print()
    print_table(rows, ["phase", "count", "p50_ms", "p95_ms", "max_ms", "share_429", "refused_p95_ms", "server_p95_ms",
                       "server_cpu_ms"])
    print(f"\nload: {load['completed']}/{load['requests']} searches in {load['seconds']} s "
          f"({load['requests_per_s']} /s), {load['refused_429']} refused (429), {load['errors']} errors")
    if crowd:
        print(f"crowd: {crowd['requests']} searches from {crowd['clients']} clients in {crowd['seconds']} s: "
              f"{crowd['share_429']:.1%} answered 429 (Retry-After {crowd['retry_after_s']['min']}-"
              f"{crowd['retry_after_s']['max']} s), {crowd['errors']} errors")
    targets = {"load_errors": 0, "upload_p95_ms": 300, "text_p95_ms": 50, "crowd_errors": 0, "crowd_refused_p95_ms": 1000}
    met = {"load_errors": load["errors"] == 0 and load["completed"] + load["refused_429"] == load["requests"],
           "upload_p95_ms": upload_stats["p95_ms"] <= 300, "text_p95_ms": text_stats["p95_ms"] <= 50}
    if crowd:
        met.update({"crowd_errors": crowd["errors"] == 0 and crowd["retry_after_on_every_429"],
                    "crowd_refused_p95_ms": crowd["refused"]["p95_ms"] <= 1000})
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))
    load_average = os.getloadavg()
    print(f"machine load average during the run (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in load_average)} on {os.cpu_count()} cores")
    write_result("api_load", {"collection_size": args.n, "load": load, "crowd": crowd, "upload_1mp": upload_stats, "text": text_stats,
                              "targets": targets, "met": met, "load_average": load_average,
                              "seconds": round(time.monotonic() - start, 1)})
    return 0 if load["errors"] == 0 and (not crowd or crowd["errors"] == 0) else 1


if __name__ == "__main__":
    sys.exit(main())
