"""Ingest beside a running server: how long until new works are searchable, and whether any request
sees a half-updated collection.

A real server (127.0.0.1, in a thread) serves a collection while, round after round, another
collection object ingests new works into it (the colour histogram: no neural network, so the
ingest itself is short and the reload is what is measured) and a client searches in a loop. Every
answer is checked: the catalog count equals every index's count, a search by id ranks every other
work of one generation with every aspect. Latency is from the ingest's end
to the first search by the newest work's id that answers 200.

    python benchmarks/live_reload.py --rounds 5 --per-round 20

Prints a table and writes results/live_reload.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from _common import REPO, print_table, write_result

sys.path.insert(0, str(REPO / "benchmarks"))
from crash_campaign import CHEAP, KINDS, draw  # noqa: E402

from artlens.api import ApiSettings, create_app  # noqa: E402
from artlens.api.server import BackgroundServer  # noqa: E402
from artlens.api.settings import AccessSettings  # noqa: E402
from artlens.collection import Collection  # noqa: E402


def add_pictures(folder: Path, start: int, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        draw(KINDS[i % 3], 5000 + i).save(folder / f"w{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--start", type=int, default=30, help="works before the first round")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="artlens-reload-"))
    try:
        folder = work / "pictures"
        add_pictures(folder, 0, args.start)
        coll = Collection.open(work / "c", create=True, config=CHEAP)
        coll.ingest(folder)
        first_id = coll.catalog.ids()[0]
        problems: list[str] = []
        sizes = {min(args.start + r * args.per_round, 200) for r in range(args.rounds + 1)}
        requests = [0]
        stop = threading.Event()

        def loop(url: str) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                while not stop.is_set():
                    stats = http.get("api/stats").json()
                    n = stats["artworks"]
                    if {i["count"] for i in stats["indexes"].values()} != {n} or len(stats["indexes"]) != 2:
                        problems.append(f"stats {n}: {stats['indexes']}")
                    found = http.post("api/search", data={"id": first_id, "k": 200}).json()
                    got = len(found.get("results", []))  # every other work of one generation, each by both aspects
                    if min(got + 1, 200) not in sizes or any(len(r["aspects"]) != 2 for r in found["results"]):
                        problems.append(f"search: {got} results")
                    requests[0] += 2

        rows = []
        settings = ApiSettings(collection=coll.root, thumbnail_dir=work / "t",
                               access=AccessSettings(rate_limit=0))  # the loop asks as fast as it can
        with BackgroundServer(create_app(settings)) as url:
            thread = threading.Thread(target=loop, args=(url,), daemon=True)
            thread.start()
            writer = Collection.open(coll.root)
            for r in range(args.rounds):
                add_pictures(folder, args.start + r * args.per_round, args.per_round)
                t0 = time.monotonic()
                writer.ingest(folder)
                ended = time.monotonic()
                newest = max(writer.catalog.ids())
                with httpx.Client(base_url=url, timeout=60) as http:
                    while http.post("api/search", data={"id": newest, "k": 5}).status_code != 200:
                        if time.monotonic() - ended > 30:
                            break
                        time.sleep(0.01)
                rows.append({"round": r + 1, "artworks": len(writer.catalog), "ingest_s": round(ended - t0, 3),
                             "searchable_after_s": round(time.monotonic() - ended, 3)})
            stop.set()
            thread.join(timeout=60)
        print_table(rows, ["round", "artworks", "ingest_s", "searchable_after_s"])
        latencies = [r["searchable_after_s"] for r in rows]
        print(f"\nsearchable after the ingest's end: p50 {np.median(latencies):.3f} s, max {max(latencies):.3f} s "
              f"(target 2 s); {requests[0]} requests during the ingests, {len(problems)} saw a half-updated state")
        write_result("live_reload", {"rounds": rows, "p50_s": float(np.median(latencies)), "max_s": max(latencies),
                                     "requests": requests[0], "half_states": len(problems), "examples": problems[:5]})
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
